#include "output/line_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace vmscope {
namespace {

constexpr std::string_view kMeasurementSpecials = ", ";
constexpr std::string_view kKeySpecials = ",= ";  // tag keys, tag values, field keys

// Characters that need escaping in an element with the given specials (plus backslash,
// CR and LF everywhere): one table look-up per character on the hot path.
struct EscapeTable {
  bool special[256] = {};
  constexpr explicit EscapeTable(std::string_view specials) {
    for (char c : specials) special[static_cast<unsigned char>(c)] = true;
    special[static_cast<unsigned char>('\\')] = true;
    special[static_cast<unsigned char>('\n')] = true;
    special[static_cast<unsigned char>('\r')] = true;
  }
  bool plain(std::string_view s) const {
    for (char c : s)
      if (special[static_cast<unsigned char>(c)]) return false;
    return true;
  }
};
constexpr EscapeTable kMeasurementTable{kMeasurementSpecials};
constexpr EscapeTable kKeyTable{kKeySpecials};

// Writes s escaped for a measurement, tag or field key, or tag value (see line_protocol.h)
// at p, which has room for 2 * s.size() bytes; returns the end.
char* write_escaped(char* p, std::string_view s, std::string_view specials) {
  // Fast path: most names are plain identifiers (a tick encodes ~60,000 of them).
  const EscapeTable& table = specials == kMeasurementSpecials ? kMeasurementTable : kKeyTable;
  if (table.plain(s)) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());  // an empty view may hold null
    return p + s.size();
  }
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\') {
      const size_t run_end = s.find_first_not_of('\\', i);
      if (run_end == std::string_view::npos) return p;  // trailing: 1.x cannot represent it
      const size_t n = run_end - i;
      const bool before_special = specials.find(s[run_end]) != std::string_view::npos;
      const size_t out_n = before_special ? 2 * n : n;
      std::memset(p, '\\', out_n);
      p += out_n;
      i = run_end;
      continue;
    }
    if (c == '\n') {
      *p++ = '\\';
      *p++ = 'n';
    } else if (c == '\r') {
      *p++ = '\\';
      *p++ = 'r';
    } else {
      if (specials.find(c) != std::string_view::npos) *p++ = '\\';
      *p++ = c;
    }
    ++i;
  }
  return p;
}

// Room a key needs: escaped it is at most twice as long.
[[gnu::always_inline]] inline size_t key_room(Key key) {
  return key.is_plain() ? key.text().size() : 2 * key.text().size();
}

// memcpy of a short run without a library call: two overlapping fixed-size copies that
// read only [s, s + n).
[[gnu::always_inline]] inline char* copy_short(char* p, const char* s, size_t n) {
  if (n >= 16 && n <= 32) {
    std::memcpy(p, s, 16);
    std::memcpy(p + n - 16, s + n - 16, 16);
  } else if (n >= 8 && n < 16) {
    std::memcpy(p, s, 8);
    std::memcpy(p + n - 8, s + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    std::memcpy(p, s, 4);
    std::memcpy(p + n - 4, s + n - 4, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; ++i) p[i] = s[i];
  } else {
    std::memcpy(p, s, n);
  }
  return p + n;
}

[[gnu::always_inline]] inline char* write_key(char* p, Key key) {
  if (key.is_plain()) return copy_short(p, key.text().data(), key.text().size());
  return write_escaped(p, key.text(), kKeySpecials);
}

// Room: 2 * s.size() + 2.
char* write_string_value(char* p, std::string_view s) {
  *p++ = '"';
  for (const char c : s) {
    switch (c) {
      case '"':
      case '\\':
        *p++ = '\\';
        *p++ = c;
        break;
      case '\n':
        *p++ = '\\';
        *p++ = 'n';
        break;
      case '\r':
        *p++ = '\\';
        *p++ = 'r';
        break;
      default:
        *p++ = c;
    }
  }
  *p++ = '"';
  return p;
}

// Decimal integers: two digits per step from a table (a tick writes ~40,000 of them).
constexpr char kDigitPairs[201] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243"
    "4445464748495051525354555657585960616263646566676869707172737475767778798081828384858687"
    "888990919293949596979899";
constexpr uint64_t kPow10[20] = {1ULL,
                                 10ULL,
                                 100ULL,
                                 1000ULL,
                                 10000ULL,
                                 100000ULL,
                                 1000000ULL,
                                 10000000ULL,
                                 100000000ULL,
                                 1000000000ULL,
                                 10000000000ULL,
                                 100000000000ULL,
                                 1000000000000ULL,
                                 10000000000000ULL,
                                 100000000000000ULL,
                                 1000000000000000ULL,
                                 10000000000000000ULL,
                                 100000000000000000ULL,
                                 1000000000000000000ULL,
                                 10000000000000000000ULL};

[[gnu::always_inline]] inline unsigned digits10(uint64_t v) {
  // floor(log10) estimated from the bit length (1233/4096 ~ log10(2)), then corrected.
  const unsigned bits = 64 - static_cast<unsigned>(__builtin_clzll(v | 1));
  const unsigned t = (bits * 1233) >> 12;
  return t + ((v | 1) >= kPow10[t] ? 1 : 0);
}

[[gnu::always_inline]] inline void write_pair(char* p, uint32_t v) {
  std::memcpy(p, kDigitPairs + v * 2, 2);
}

// Exactly 8 digits of v < 10^8, leading zeros included: four independent pairs.
[[gnu::always_inline]] inline void write8(char* p, uint32_t v) {
  const uint32_t hi = v / 10000, lo = v % 10000;
  write_pair(p, hi / 100);
  write_pair(p + 2, hi % 100);
  write_pair(p + 4, lo / 100);
  write_pair(p + 6, lo % 100);
}

// v < 10^8 without leading zeros.
[[gnu::always_inline]] inline char* write_below_1e8(char* p, uint32_t v) {
  const unsigned n = digits10(v);
  char* const end = p + n;
  char* q = end;
  while (v >= 100) {
    q -= 2;
    write_pair(q, v % 100);
    v /= 100;
  }
  if (v >= 10)
    write_pair(q - 2, v);
  else
    q[-1] = static_cast<char>('0' + v);
  return end;
}

// Split in 8-digit blocks so that the digit pairs of a block do not wait for each other
// (the counters of a tick have 10-13 digits).
[[gnu::always_inline]] inline char* write_uint(char* p, uint64_t v) {
  if (v < 100000000) return write_below_1e8(p, static_cast<uint32_t>(v));
  if (v < 10000000000000000ULL) {
    p = write_below_1e8(p, static_cast<uint32_t>(v / 100000000));
    write8(p, static_cast<uint32_t>(v % 100000000));
    return p + 8;
  }
  p = write_below_1e8(p, static_cast<uint32_t>(v / 10000000000000000ULL));
  write8(p, static_cast<uint32_t>(v / 100000000 % 100000000));
  write8(p + 8, static_cast<uint32_t>(v % 100000000));
  return p + 16;
}

// InfluxDB 1.x rejects the "u" suffix unless built with uint support: unsigned fields
// are clamped to this and written as integers.
constexpr uint64_t kMaxUintField = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

[[gnu::always_inline]] inline char* write_int(char* p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    return write_uint(p, 0 - static_cast<uint64_t>(v));
  }
  return write_uint(p, static_cast<uint64_t>(v));
}

// v with `decimals` digits after the point, exactly as std::to_chars(fixed, decimals) writes
// it (correctly rounded), or null when v is outside the fast path's safe range: then the
// caller uses to_chars. The scaled value is rounded in double arithmetic; that matches the
// exact decimal rounding unless it lies within the arithmetic's error of a tie, and those
// (rare) values take the slow path.
char* write_fixed_fast(char* p, double v, int decimals) {
  if (decimals > 9 || std::signbit(v)) return nullptr;
  const double scaled = v * static_cast<double>(kPow10[decimals]);
  if (!(scaled < 0x1p46)) return nullptr;  // ulp(scaled) <= 2^-6: well inside the margin
  const double whole = std::floor(scaled);
  const double frac = scaled - whole;  // exact
  if (std::fabs(frac - 0.5) < 0.02) return nullptr;
  const uint64_t r = static_cast<uint64_t>(whole) + (frac > 0.5 ? 1 : 0);
  const uint64_t unit = kPow10[decimals];
  p = write_uint(p, r / unit);
  if (decimals > 0) {
    *p++ = '.';
    // The fraction with its leading zeros, two digits per step from the end, straight
    // into the output (through a scratch array, the copy's loads would wait on the pair
    // stores: a store-forwarding stall per field).
    uint64_t f = r % unit;
    char* q = p + decimals;
    for (; q - p >= 2; f /= 100) {
      q -= 2;
      write_pair(q, static_cast<uint32_t>(f % 100));
    }
    if (q != p) *p = static_cast<char>('0' + f);
    p += decimals;
  }
  return p;
}

}  // namespace

void TagValue::set(std::string_view raw) {
  text_.resize(2 * raw.size());
  text_.resize(static_cast<size_t>(write_escaped(text_.data(), raw, kKeySpecials) - text_.data()));
}

LineWriter::LineWriter(std::string& out) : out_(out), pos_(out.size()) {}

LineWriter::~LineWriter() {
  if (open_) out_.resize(pos_);  // an unfinished line stays as written so far
}

void LineWriter::grow(size_t n) {
  // Room for a line as long as the last one (lines of one kind follow each other), so
  // that a line usually grows the buffer once, at begin().
  out_.resize(pos_ + std::max(n, last_line_) + 64);
}

LineWriter& LineWriter::begin(Key measurement) {
  if (open_) {
    pos_ = line_start_;  // the previous line was never end()ed
  } else {
    pos_ = out_.size();  // the caller may have appended since the last line
  }
  line_start_ = pos_;
  open_ = true;
  has_field_ = false;
  const std::string_view name = measurement.text();
  char* p = room(2 * name.size());
  // A plain key has none of the measurement's specials either (they are a subset).
  commit(measurement.is_plain() ? copy_short(p, name.data(), name.size())
                                : write_escaped(p, name, kMeasurementSpecials));
  has_name_ = pos_ > line_start_;
  return *this;
}

LineWriter& LineWriter::tag(Key key, std::string_view value) {
  if (!open_ || has_field_ || value.empty()) return *this;
  char* const mark = room(2 + key_room(key) + 2 * value.size());
  char* p = mark;
  *p++ = ',';
  p = write_key(p, key);
  char* const key_end = p;
  *p++ = '=';
  p = write_escaped(p, value, kKeySpecials);
  // Key or value may have escaped to nothing (e.g. only backslashes).
  if (key_end == mark + 1 || p == key_end + 1) return *this;
  commit(p);
  return *this;
}

LineWriter& LineWriter::tag(Key key, const TagValue& value) {
  const std::string_view v = value.text();
  if (!open_ || has_field_ || v.empty()) return *this;
  char* const mark = room(2 + key_room(key) + v.size());
  char* p = mark;
  *p++ = ',';
  p = write_key(p, key);
  if (p == mark + 1) return *this;  // the key escaped to nothing
  *p++ = '=';
  commit(copy_short(p, v.data(), v.size()));
  return *this;
}

[[gnu::always_inline]] inline char* LineWriter::field_key(Key key, size_t value_room) {
  if (!open_) return nullptr;
  char* const mark = room(2 + key_room(key) + value_room);
  char* p = mark;
  *p++ = has_field_ ? ',' : ' ';
  p = write_key(p, key);
  if (p == mark + 1) return nullptr;
  *p++ = '=';
  has_field_ = true;
  return p;
}

LineWriter& LineWriter::field_int(Key key, int64_t v) {
  if (char* p = field_key(key, 21)) {
    p = write_int(p, v);
    *p++ = 'i';
    commit(p);
  }
  return *this;
}

LineWriter& LineWriter::field_uint(Key key, uint64_t v) {
  if (char* p = field_key(key, 20)) {
    p = write_uint(p, std::min(v, kMaxUintField));
    *p++ = 'i';
    commit(p);
  }
  return *this;
}

LineWriter& LineWriter::field_float(Key key, double v) {
  if (!std::isfinite(v)) return *this;
  constexpr size_t kMaxShortest = 32;  // "-1.7976931348623157e+308" is 24
  if (char* p = field_key(key, kMaxShortest))
    commit(std::to_chars(p, p + kMaxShortest, v).ptr);  // shortest round trip
  return *this;
}

LineWriter& LineWriter::field_fixed(Key key, double v, int decimals) {
  if (!std::isfinite(v)) return *this;
  decimals = std::clamp(decimals, 0, 17);
  // Room for the fast path (at most 14 integer digits, the point and 9 decimals); the
  // rare value beyond it gets room for any double (DBL_MAX has 309 integer digits) then.
  constexpr size_t kMaxFast = 24, kMaxFixed = 400;
  char* p = field_key(key, kMaxFast);
  if (!p) return *this;
  if (char* q = write_fixed_fast(p, v, decimals)) {
    commit(q);
    return *this;
  }
  const size_t value_at = static_cast<size_t>(p - out_.data());
  if (out_.size() - value_at < kMaxFixed) out_.resize(value_at + kMaxFixed);
  p = out_.data() + value_at;
  const auto r = std::to_chars(p, p + kMaxFixed, v, std::chars_format::fixed, decimals);
  commit(r.ec == std::errc() ? r.ptr : std::to_chars(p, p + kMaxFixed, v).ptr);
  return *this;
}

LineWriter& LineWriter::field_string(Key key, std::string_view v) {
  if (char* p = field_key(key, 2 * v.size() + 2)) commit(write_string_value(p, v));
  return *this;
}

LineWriter& LineWriter::uint_run(const UintKeySlot* slots, const uint8_t* lengths, size_t n,
                                 size_t key_bytes, const uint64_t* values) {
  if (!open_ || n == 0) return *this;
  // Per field its slot, at most 19 digits (clamped as field_uint does) and 'i'; the last
  // slot's copy runs past its key by up to a slot.
  char* p = room(key_bytes + 20 * n + sizeof(UintKeySlot));
  char* const first = p;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(p, slots[i].text, sizeof slots[i].text);
    p += lengths[i];
    p = write_uint(p, std::min(values[i], kMaxUintField));
    *p++ = 'i';
  }
  if (!has_field_) *first = ' ';
  has_field_ = true;
  commit(p);
  return *this;
}

LineWriter& LineWriter::field_bool(Key key, bool v) {
  if (char* p = field_key(key, 5)) {
    const std::string_view text = v ? "true" : "false";
    std::memcpy(p, text.data(), text.size());
    commit(p + text.size());
  }
  return *this;
}

void LineWriter::end(int64_t timestamp_ns) {
  if (!open_) return;
  open_ = false;
  if (!has_name_ || !has_field_) {
    out_.resize(line_start_);
    pos_ = line_start_;
    return;
  }
  char* p = room(kTimestampRoom);
  // The lines of a batch share their timestamp: it is formatted once.
  if (timestamp_ns != ts_value_) {
    char* q = ts_text_;
    if (timestamp_ns >= 0) {
      *q++ = ' ';
      q = write_int(q, timestamp_ns);
    }
    *q++ = '\n';
    ts_value_ = timestamp_ns;
    ts_len_ = static_cast<uint8_t>(q - ts_text_);
  }
  std::memcpy(p, ts_text_, kTimestampRoom);
  commit(p + ts_len_);
  out_.resize(pos_);
  last_line_ = pos_ - line_start_;
  ++lines_;
}

std::string encode_tag_suffix(const std::vector<std::pair<std::string, std::string>>& tags) {
  std::string out;
  TagValue v;
  for (const auto& [key, value] : tags) {
    v.set(value);
    if (key.empty() || v.text().empty()) continue;  // as tag() skips it
    out.resize(out.size() + 2 + 2 * key.size());
    char* const start = out.data() + out.size() - 2 - 2 * key.size();
    char* p = start;
    *p++ = ',';
    p = write_escaped(p, key, kKeySpecials);
    *p++ = '=';
    out.resize(static_cast<size_t>(p - out.data()));
    out += v.text();
  }
  return out;
}

void append_with_tags(std::string_view lines, std::string_view suffix, std::string& out) {
  if (suffix.empty()) {
    out += lines;
    return;
  }
  const size_t n_lines = static_cast<size_t>(std::count(lines.begin(), lines.end(), '\n')) + 1;
  const size_t base = out.size();
  out.resize(base + lines.size() + n_lines * suffix.size());
  char* p = out.data() + base;
  const char* const begin = lines.data();
  const char* const end = begin + lines.size();
  const char* at = begin;
  while (at < end) {
    const char* nl = static_cast<const char*>(std::memchr(at, '\n', static_cast<size_t>(end - at)));
    nl = nl ? nl + 1 : end;
    // The series key ends at the first space not escaped. write_escaped doubles every
    // backslash run before a space, then escapes the space with one more: an escaped
    // space follows an odd run, a separator an even one (none).
    const char* k = at;
    for (;;) {
      k = static_cast<const char*>(std::memchr(k, ' ', static_cast<size_t>(nl - k)));
      if (!k) break;
      const char* b = k;
      while (b > at && b[-1] == '\\') --b;
      if ((k - b) % 2 == 0) break;
      ++k;
    }
    if (!k) {  // no fields: not a line the encoders write; copied as it is
      std::memcpy(p, at, static_cast<size_t>(nl - at));
      p += nl - at;
    } else {
      std::memcpy(p, at, static_cast<size_t>(k - at));
      p += k - at;
      std::memcpy(p, suffix.data(), suffix.size());
      p += suffix.size();
      std::memcpy(p, k, static_cast<size_t>(nl - k));
      p += nl - k;
    }
    at = nl;
  }
  out.resize(static_cast<size_t>(p - out.data()));
}

}  // namespace vmscope
