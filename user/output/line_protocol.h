// LineWriter: encodes points as InfluxDB line protocol (1.x reference) into a caller's buffer.
//
// Escaping, per the InfluxDB 1.x line protocol reference:
//   measurement:                    comma, space             -> \,  "\ "
//   tag key, tag value, field key:  comma, equals sign, space -> \,  \=  "\ "
//   string field value:             double quote, backslash  -> \"  \\   (inside "...")
// Beyond the spec, so that each point stays exactly one line that InfluxDB 1.6 and Telegraf parse:
//   - a newline or carriage return anywhere becomes the two characters \n or \r (as Telegraf's
//     serializer does). InfluxDB 1.x stores them literally; it never splits the point.
//   - in names and tag values, backslashes right before an escaped character are doubled (Telegraf
//     and the 1.x field scanner read "\x" pairs, so an odd run would swallow the escape), and
//     trailing backslashes are dropped (1.x has no way to write one before a separator).
// An element that ends up empty is skipped (tag, field) or drops the line (measurement).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace vmscope {

// A tag or field key, written the same way everywhere: as a string literal, or as a string
// built at run time. A literal is scanned at compile time, so one that needs no escaping
// (every key vmscope writes) is copied as it is, without the per-character scan at run
// time: a tick at 1000 VMs writes ~60,000 keys. Keys built at run time are escaped.
class Key {
 public:
  template <size_t N>
  consteval Key(const char (&literal)[N]) : Key(std::string_view(literal)) {
    plain_ = !text().empty();
    for (char c : text())
      if (c == ',' || c == '=' || c == ' ' || c == '\\' || c == '\n' || c == '\r') plain_ = false;
  }
  constexpr Key(std::string_view s) : p_(s.data()), n_(static_cast<uint32_t>(s.size())) {}
  Key(const std::string& s) : Key(std::string_view(s)) {}
  constexpr std::string_view text() const { return {p_, n_}; }
  constexpr bool is_plain() const { return plain_; }

 private:
  // 16 bytes, trivially copyable: passed in two registers, not through memory (a tick
  // passes ~60,000 keys).
  const char* p_;
  uint32_t n_;
  bool plain_ = false;
};

// One key of a uint run as ",key=", in a slot that is copied whole: a fixed-size copy per
// field, without a branch on the key's length.
struct UintKeySlot {
  char text[32];
};

// The keys of a run of unsigned integer fields, checked once at compile time (plain,
// non-empty literals), for LineWriter::uints:
//   constexpr UintKeys kKeys{"rx_bytes", "rx_packets"};  w.uints(kKeys, bytes, packets);
// A tick at 1000 VMs writes ~60,000 counters: as one run per line they take one room
// check and one call, not one of each per field.
template <size_t N>
class UintKeys {
 public:
  template <size_t... M>
  consteval UintKeys(const char (&... literals)[M]) {
    static_assert(sizeof...(M) == N);
    size_t i = 0;
    (add(i++, Key(literals)), ...);
  }
  constexpr const UintKeySlot* slots() const { return slots_; }
  constexpr const uint8_t* lengths() const { return lengths_; }  // of ",key="
  constexpr size_t key_bytes() const { return bytes_; }          // all slots' lengths

 private:
  consteval void add(size_t i, Key k) {
    const std::string_view t = k.text();
    char* slot = slots_[i].text;
    if (!k.is_plain() || t.size() + 2 > sizeof slots_[i].text)
      throw "UintKeys: plain literals of <= 30 chars";
    slot[0] = ',';
    for (size_t j = 0; j < t.size(); ++j) slot[j + 1] = t[j];
    slot[t.size() + 1] = '=';
    lengths_[i] = static_cast<uint8_t>(t.size() + 2);
    bytes_ += t.size() + 2;
  }
  UintKeySlot slots_[N] = {};
  uint8_t lengths_[N] = {};
  size_t bytes_ = 0;
};
template <size_t... M>
UintKeys(const char (&... literals)[M]) -> UintKeys<sizeof...(M)>;

// A tag value escaped once for the several lines that carry it (a tap's vm, bridge and
// ifname tag three lines each): the escape scan runs once, the lines copy the result.
class TagValue {
 public:
  TagValue() = default;
  explicit TagValue(std::string_view raw) { set(raw); }
  // Escapes raw as tag(key, raw) would; the buffer's capacity is kept for the next value.
  void set(std::string_view raw);
  // Empty when raw was empty or escaped to nothing: tag() then skips it.
  std::string_view text() const { return text_; }

 private:
  std::string text_;
};

// Appends InfluxDB line protocol to a caller-owned buffer (no allocation per line beyond the
// buffer's growth). Usage: w.begin("m").tag("k", "v").field_int("n", 1).end(ts);
// Tags must come before fields; a tag after a field is skipped.
class LineWriter {
 public:
  explicit LineWriter(std::string& out);
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Starts a line. A literal name that needs no escaping (Key) is copied as it is.
  LineWriter& begin(Key measurement);
  // Skipped when value is empty (line protocol forbids empty tag values).
  LineWriter& tag(Key key, std::string_view value);
  LineWriter& tag(Key key, const TagValue& value);  // the same, escaped beforehand
  LineWriter& field_int(Key key, int64_t v);        // 123i
  // Written as integer with i (clamped to INT64_MAX) for InfluxDB 1.x compatibility.
  LineWriter& field_uint(Key key, uint64_t v);
  // Shortest round-trip repr; NaN/Inf fields are skipped (not representable).
  LineWriter& field_float(Key key, double v);
  // e.g. utime 1.250000 (albatross writes sec.usec with 6 decimals); NaN/Inf skipped.
  LineWriter& field_fixed(Key key, double v, int decimals);
  LineWriter& field_string(Key key, std::string_view v);
  LineWriter& field_bool(Key key, bool v);
  // One field_uint per key, in order, with the values given (as many as keys: checked
  // at compile time; counters, never negative). The albatross schema's constant zero
  // fields are written as 0 here.
  template <size_t N, class... V>
  LineWriter& uints(const UintKeys<N>& keys, V... values) {
    static_assert(sizeof...(V) == N, "one value per key");
    static_assert((std::is_integral_v<V> && ...), "integer values only");
    const uint64_t v[N] = {static_cast<uint64_t>(values)...};
    return uint_run(keys.slots(), keys.lengths(), N, keys.key_bytes(), v);
  }
  // Appends " <ts>\n"; a negative ts writes no timestamp. A line with no field is dropped entirely
  // (invalid in line protocol): end() then rolls the buffer back to where begin() started.
  void end(int64_t timestamp_ns);
  size_t lines() const { return lines_; }  // lines completed by this writer

 private:
  // While a line is open the buffer is written through a cursor: out_ holds at least `n`
  // bytes of slack past pos_ after room(n) (their content is undefined until written);
  // end() trims out_ back to the bytes written, so between lines out_ is exactly the output.
  [[gnu::always_inline]] char* room(size_t n) {
    if (out_.size() - pos_ < n) grow(n);
    return out_.data() + pos_;
  }
  [[gnu::noinline]] void grow(size_t n);
  void commit(const char* p) { pos_ = static_cast<size_t>(p - out_.data()); }
  // Writes the separator and escaped key; null (nothing written) if the field must be
  // skipped, else the cursor after '=' with `value_room` more bytes of room.
  char* field_key(Key key, size_t value_room);
  LineWriter& uint_run(const UintKeySlot* slots, const uint8_t* lengths, size_t n, size_t key_bytes,
                       const uint64_t* values);

  std::string& out_;
  size_t pos_ = 0;  // end of what was written (out_.size() when no line is open)
  size_t line_start_ = 0;
  size_t last_line_ = 256;  // length of the last line: room reserved for the next
  size_t lines_ = 0;
  // The last timestamp end() wrote, as " <ts>\n" (copied whole: kTimestampRoom bytes).
  static constexpr size_t kTimestampRoom = 24;
  int64_t ts_value_ = -1;
  char ts_text_[kTimestampRoom] = {'\n'};
  uint8_t ts_len_ = 1;
  bool open_ = false;      // begin() seen, end() not yet
  bool has_name_ = false;  // measurement escaped to something non-empty
  bool has_field_ = false;
};

// Where an encoder may cut a long batch: called between two entities' lines (a tap's, a
// VM's), never inside a line, with the buffer the encoder appends to. The agent hands the
// lines so far on once they fill a chunk and carries on in a recycled buffer: at 10,000
// VMs a tick is ~20 MB of line protocol, which then never exists whole, and the outputs
// send the first chunks while the rest is encoded.
class ChunkPoint {
 public:
  virtual void between(std::string& out) = 0;

 protected:
  ~ChunkPoint() = default;
};
// The size at which the agent cuts (bench/ cuts alike); a chunk overshoots it by one
// tap's or VM's lines at most, so a buffer of both never grows on the way.
inline constexpr size_t kChunkBytes = 256 << 10;
inline constexpr size_t kChunkSlack = 16 << 10;

// Tags added to every line of one output (the global tags, the host), pre-encoded once
// per output and configuration as ",k=v,k2=v2": keys as they are (validated to plain
// label names), values escaped as tag() escapes them. Empty: no tags.
std::string encode_tag_suffix(const std::vector<std::pair<std::string, std::string>>& tags);

// Appends lines to out with suffix spliced in at the end of each line's series key (its
// first unescaped space), so that the output's own tags follow the ones vmscope wrote.
// One scan of each series key and one copy: the encoder writes every line once for all
// outputs, and only the outputs that carry tags pay for them, on their own thread.
void append_with_tags(std::string_view lines, std::string_view suffix, std::string& out);

}  // namespace vmscope
