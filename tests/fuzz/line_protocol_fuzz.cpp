// Fuzz target: line-protocol escaping. The input is a script of lines for one LineWriter
// (measurement, tags, fields of every type, timestamp; lines abandoned before end(); text
// the caller appends between lines). What the writer produced is decoded again by the
// decoder below, written for this test from the rules in output/line_protocol.h, and must
// give back exactly what was written, after the documented changes: a newline or carriage
// return in a name becomes the two characters \n or \r, trailing backslashes in names are
// dropped, empty elements are skipped, a line without a name or a field is dropped. String
// field values, integers and floats round-trip exactly; fixed-point values read as
// std::to_chars writes them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "output/line_protocol.h"

namespace {

// ---- the input script ----

class Script {
 public:
  explicit Script(std::string_view d) : d_(d) {}
  bool empty() const { return d_.empty(); }
  uint8_t byte() {
    if (d_.empty()) return 0;
    const auto b = static_cast<uint8_t>(d_.front());
    d_.remove_prefix(1);
    return b;
  }
  std::string str() {
    const size_t n = std::min<size_t>(byte(), d_.size());
    std::string s(d_.substr(0, n));
    d_.remove_prefix(n);
    return s;
  }
  template <typename T>
  T raw() {
    unsigned char b[sizeof(T)] = {};
    const size_t n = std::min(sizeof(T), d_.size());
    std::memcpy(b, d_.data(), n);
    d_.remove_prefix(n);
    T v;
    std::memcpy(&v, b, sizeof(T));
    return v;
  }

 private:
  std::string_view d_;
};

// ---- what must come back ----

enum class Kind { kInt, kFloat, kFixed, kString, kBool, kLiteral };

struct Field {
  std::string key;
  Kind kind;
  std::string text;   // kInt, kFixed, kBool, kLiteral: the value as written; kString: the value
  double number = 0;  // kFloat
};

struct Line {
  std::string raw;  // text the caller appended itself (no point)
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> tags;
  std::vector<Field> fields;
  std::optional<int64_t> ts;
};

// A name as line protocol keeps it (line_protocol.h): newline and carriage return spelled
// out, trailing backslashes dropped.
std::string normalize(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else
      out += c;
  }
  while (!out.empty() && out.back() == '\\') out.pop_back();
  return out;
}

// ---- the decoder ----

// A name up to one of `stops` (returned in *stop, 0 at the end of text). An odd run of
// backslashes before one of `specials` escapes it and stands for half of the run less one;
// any other run is literal. The encoder never writes an even nonzero run before a special.
std::string decode_name(std::string_view& text, std::string_view specials, std::string_view stops,
                        char* stop) {
  std::string out;
  *stop = 0;
  while (!text.empty()) {
    const char c = text.front();
    if (c == '\\') {
      size_t n = 0;
      while (n < text.size() && text[n] == '\\') ++n;
      if (n < text.size() && specials.find(text[n]) != std::string_view::npos) {
        FUZZ_CHECK(n % 2 == 1);
        out.append(n / 2, '\\');
        out += text[n];
        text.remove_prefix(n + 1);
      } else {
        out.append(n, '\\');
        text.remove_prefix(n);
      }
      continue;
    }
    if (stops.find(c) != std::string_view::npos) {
      *stop = c;
      text.remove_prefix(1);
      return out;
    }
    out += c;
    text.remove_prefix(1);
  }
  return out;
}

// A quoted string field value; text starts after the opening quote.
std::string decode_string(std::string_view& text) {
  std::string out;
  for (;;) {
    FUZZ_CHECK(!text.empty());  // closed
    const char c = text.front();
    text.remove_prefix(1);
    if (c == '"') return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    FUZZ_CHECK(!text.empty());
    const char e = text.front();
    text.remove_prefix(1);
    FUZZ_CHECK(e == '"' || e == '\\' || e == 'n' || e == 'r');
    out += e == 'n' ? '\n' : e == 'r' ? '\r' : e;
  }
}

void check_line(std::string_view text, const Line& want) {
  if (!want.raw.empty()) {
    FUZZ_CHECK(text == std::string_view(want.raw).substr(0, want.raw.size() - 1));
    return;
  }
  FUZZ_CHECK(text.find('\r') == std::string_view::npos);
  char stop = 0;
  FUZZ_CHECK(decode_name(text, ", ", ", ", &stop) == want.measurement);
  size_t tags = 0;
  while (stop == ',') {
    FUZZ_CHECK(tags < want.tags.size());
    FUZZ_CHECK(decode_name(text, ",= ", "=", &stop) == want.tags[tags].first);
    FUZZ_CHECK(stop == '=');
    FUZZ_CHECK(decode_name(text, ",= ", ", ", &stop) == want.tags[tags].second);
    ++tags;
  }
  FUZZ_CHECK(tags == want.tags.size());
  FUZZ_CHECK(stop == ' ');
  size_t fields = 0;
  for (;;) {
    FUZZ_CHECK(fields < want.fields.size());
    const Field& f = want.fields[fields++];
    FUZZ_CHECK(decode_name(text, ",= ", "=", &stop) == f.key);
    FUZZ_CHECK(stop == '=');
    if (f.kind == Kind::kString) {
      FUZZ_CHECK(!text.empty() && text.front() == '"');
      text.remove_prefix(1);
      FUZZ_CHECK(decode_string(text) == f.text);
    } else {
      const size_t end = std::min(text.find(','), text.find(' '));
      const std::string_view value = text.substr(0, end);
      text.remove_prefix(value.size());
      if (f.kind == Kind::kFloat) {
        double v = 0;
        const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
        FUZZ_CHECK(r.ec == std::errc() && r.ptr == value.data() + value.size());
        FUZZ_CHECK(v == f.number && std::signbit(v) == std::signbit(f.number));
      } else {
        FUZZ_CHECK(value == f.text);
      }
    }
    if (text.empty() || text.front() == ' ') break;
    FUZZ_CHECK(text.front() == ',');
    text.remove_prefix(1);
  }
  FUZZ_CHECK(fields == want.fields.size());
  if (want.ts) {
    FUZZ_CHECK(text == " " + std::to_string(*want.ts));
  } else {
    FUZZ_CHECK(text.empty());
  }
}

// ---- writing the script, and what it must give ----

// One line through w; returns what must come back (nullopt: dropped).
std::optional<Line> write_line(Script& in, vmscope::LineWriter& w, bool finish) {
  Line want;
  const std::string measurement = in.str();
  want.measurement = normalize(measurement);
  w.begin(measurement);
  bool has_field = false;
  const int items = in.byte() % 8;
  for (int i = 0; i < items; ++i) {
    const int kind = in.byte() % 8;
    if (kind == 7) {
      static constexpr vmscope::UintKeys kZeros{"ixrss", "idrss"};
      w.uints(kZeros, 0, 0);
      want.fields.push_back({"ixrss", Kind::kLiteral, "0i"});
      want.fields.push_back({"idrss", Kind::kLiteral, "0i"});
      has_field = true;
      continue;
    }
    const std::string key = in.str();
    const std::string nkey = normalize(key);
    Field f{nkey, Kind::kInt, {}};
    bool skipped = nkey.empty();
    switch (kind) {
      case 0: {
        const std::string value = in.str();
        w.tag(key, value);
        const std::string nvalue = normalize(value);
        if (!has_field && !nkey.empty() && !nvalue.empty()) want.tags.emplace_back(nkey, nvalue);
        continue;
      }
      case 1: {
        const auto v = in.raw<int64_t>();
        w.field_int(key, v);
        f.text = std::to_string(v) + "i";
        break;
      }
      case 2: {
        const auto v = in.raw<uint64_t>();
        w.field_uint(key, v);
        f.text = std::to_string(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max())) + "i";
        break;
      }
      case 3: {
        const auto v = in.raw<double>();
        w.field_float(key, v);
        f.kind = Kind::kFloat;
        f.number = v;
        skipped = skipped || !std::isfinite(v);
        break;
      }
      case 4: {
        const int decimals = static_cast<int8_t>(in.byte()) % 24;  // clamped to [0, 17]
        const auto v = in.raw<double>();
        w.field_fixed(key, v, decimals);
        f.kind = Kind::kFixed;
        char buf[400];
        auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed,
                               std::clamp(decimals, 0, 17));
        if (r.ec != std::errc()) r = std::to_chars(buf, buf + sizeof(buf), v);
        f.text.assign(buf, r.ptr);
        skipped = skipped || !std::isfinite(v);
        break;
      }
      case 5: {
        const std::string v = in.str();
        w.field_string(key, v);
        f.kind = Kind::kString;
        f.text = v;
        break;
      }
      case 6: {
        const bool v = in.byte() & 1;
        w.field_bool(key, v);
        f.kind = Kind::kBool;
        f.text = v ? "true" : "false";
        break;
      }
    }
    if (skipped) continue;
    want.fields.push_back(std::move(f));
    has_field = true;
  }
  const uint8_t ts_kind = in.byte();
  const int64_t ts = (ts_kind & 1) ? in.raw<int64_t>() : -1;
  if (ts >= 0) want.ts = ts;
  if (!finish) return std::nullopt;  // begun, never ended: the next begin() drops it
  w.end(ts);
  if (want.measurement.empty() || !has_field) return std::nullopt;
  return want;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script in(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string out;
  std::vector<Line> want;
  {
    vmscope::LineWriter w(out);
    bool open = false;  // a line begun and not ended
    size_t ended = 0;
    for (int n = 0; n < 64 && !in.empty(); ++n) {
      const int op = in.byte() % 8;
      if (op == 7 && !open) {
        out += "# between lines\n";  // the caller's own text, kept as it is
        Line raw;
        raw.raw = "# between lines\n";
        want.push_back(std::move(raw));
        continue;
      }
      open = op == 6;
      auto line = write_line(in, w, !open);
      if (!open) {
        if (line) {
          want.push_back(std::move(*line));
          ++ended;
        }
      }
    }
    if (open) {
      w.begin("m");  // drops the abandoned line; this one has no field: dropped too
      w.end(0);
    }
    FUZZ_CHECK(w.lines() == ended);
  }
  // One point per line: nothing but the end of a line is a newline.
  std::string_view text = out;
  for (const Line& line : want) {
    const size_t nl = text.find('\n');
    FUZZ_CHECK(nl != std::string_view::npos);
    check_line(text.substr(0, nl), line);
    text.remove_prefix(nl + 1);
  }
  FUZZ_CHECK(text.empty());
  return 0;
}
