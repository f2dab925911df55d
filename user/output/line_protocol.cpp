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

// Appends s escaped for a measurement, tag or field key, or tag value (see line_protocol.h).
void append_escaped(std::string& out, std::string_view s, std::string_view specials) {
  // Fast path: most names are plain identifiers (a tick encodes ~60,000 of them).
  const EscapeTable& table = specials == kMeasurementSpecials ? kMeasurementTable : kKeyTable;
  if (table.plain(s)) {
    out.append(s);
    return;
  }
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\') {
      const size_t run_end = s.find_first_not_of('\\', i);
      if (run_end == std::string_view::npos) return;  // trailing: 1.x cannot represent it
      const size_t n = run_end - i;
      const bool before_special = specials.find(s[run_end]) != std::string_view::npos;
      out.append(before_special ? 2 * n : n, '\\');
      i = run_end;
      continue;
    }
    if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else {
      if (specials.find(c) != std::string_view::npos) out.push_back('\\');
      out.push_back(c);
    }
    ++i;
  }
}

void append_key(std::string& out, Key key) {
  if (key.is_plain())
    out.append(key.text());
  else
    append_escaped(out, key.text(), kKeySpecials);
}

void append_string_value(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
      case '\\':
        out.push_back('\\');
        out.push_back(c);
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      default:
        out.push_back(c);
    }
  }
  out.push_back('"');
}

template <typename T>
void append_number(std::string& out, T v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

LineWriter::LineWriter(std::string& out) : out_(out) {}

LineWriter& LineWriter::begin(std::string_view measurement) {
  if (open_) out_.resize(line_start_);  // the previous line was never end()ed
  line_start_ = out_.size();
  open_ = true;
  has_field_ = false;
  append_escaped(out_, measurement, kMeasurementSpecials);
  has_name_ = out_.size() > line_start_;
  return *this;
}

LineWriter& LineWriter::tag(Key key, std::string_view value) {
  if (!open_ || has_field_ || value.empty()) return *this;
  const size_t mark = out_.size();
  out_.push_back(',');
  append_key(out_, key);
  const size_t key_end = out_.size();
  out_.push_back('=');
  append_escaped(out_, value, kKeySpecials);
  // Key or value may have escaped to nothing (e.g. only backslashes).
  if (key_end == mark + 1 || out_.size() == key_end + 1) out_.resize(mark);
  return *this;
}

bool LineWriter::field_key(Key key) {
  if (!open_) return false;
  const size_t mark = out_.size();
  out_.push_back(has_field_ ? ',' : ' ');
  append_key(out_, key);
  if (out_.size() == mark + 1) {
    out_.resize(mark);
    return false;
  }
  out_.push_back('=');
  has_field_ = true;
  return true;
}

LineWriter& LineWriter::field_int(Key key, int64_t v) {
  // Hot path (most fields of a tick): a plain key and an integer composed on the stack and
  // appended once.
  if (open_ && key.is_plain() && key.text().size() <= 64) {
    char buf[96];
    char* p = buf;
    *p++ = has_field_ ? ',' : ' ';
    std::memcpy(p, key.text().data(), key.text().size());
    p += key.text().size();
    *p++ = '=';
    p = std::to_chars(p, buf + sizeof buf - 1, v).ptr;
    *p++ = 'i';
    out_.append(buf, static_cast<size_t>(p - buf));
    has_field_ = true;
    return *this;
  }
  if (field_key(key)) {
    append_number(out_, v);
    out_.push_back('i');
  }
  return *this;
}

LineWriter& LineWriter::field_uint(Key key, uint64_t v) {
  // InfluxDB 1.x rejects the "u" suffix unless built with uint support; clamp instead.
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  return field_int(key, static_cast<int64_t>(std::min(v, kMax)));
}

LineWriter& LineWriter::field_float(Key key, double v) {
  if (std::isfinite(v) && field_key(key)) append_number(out_, v);  // shortest round trip
  return *this;
}

LineWriter& LineWriter::field_fixed(Key key, double v, int decimals) {
  if (!std::isfinite(v) || !field_key(key)) return *this;
  decimals = std::clamp(decimals, 0, 17);
  char buf[400];  // DBL_MAX has 309 integer digits
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (r.ec == std::errc()) {
    out_.append(buf, r.ptr);
  } else {
    append_number(out_, v);
  }
  return *this;
}

LineWriter& LineWriter::field_string(Key key, std::string_view v) {
  if (field_key(key)) append_string_value(out_, v);
  return *this;
}

LineWriter& LineWriter::fields(Fields f) {
  if (!open_) return *this;
  out_.push_back(has_field_ ? ',' : ' ');
  out_.append(f.text());
  has_field_ = true;
  return *this;
}

LineWriter& LineWriter::field_bool(Key key, bool v) {
  if (field_key(key)) out_.append(v ? "true" : "false");
  return *this;
}

void LineWriter::end(int64_t timestamp_ns) {
  if (!open_) return;
  open_ = false;
  if (!has_name_ || !has_field_) {
    out_.resize(line_start_);
    return;
  }
  if (timestamp_ns >= 0) {
    out_.push_back(' ');
    append_number(out_, timestamp_ns);
  }
  out_.push_back('\n');
  ++lines_;
}

}  // namespace vmscope
