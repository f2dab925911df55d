#include "output/prometheus_text.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace vmscope {

std::string_view content_type(ExpositionFormat f) {
  return f == ExpositionFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

ExpositionFormat negotiate_format(std::string_view accept) {
  const auto trim = [](std::string_view s) {
    const size_t a = s.find_first_not_of(" \t");
    if (a == std::string_view::npos) return std::string_view();
    return s.substr(a, s.find_last_not_of(" \t") - a + 1);
  };
  // Each comma-separated media range with its parameters; q=0 means "not this one".
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semi = range.find(';');
    if (trim(range.substr(0, semi)) != "application/openmetrics-text") continue;
    double q = 1;
    while (semi != std::string_view::npos) {
      range.remove_prefix(semi + 1);
      semi = range.find(';');
      const std::string_view param = trim(range.substr(0, semi));
      if (param.substr(0, 2) == "q=")
        q = std::strtod(std::string(param.substr(2)).c_str(), nullptr);
    }
    if (q > 0) return ExpositionFormat::kOpenMetrics;
  }
  return ExpositionFormat::kPrometheus;
}

LabelSet::LabelSet(std::initializer_list<Label> labels) {
  for (const Label& l : labels)
    if (n_ < kMax) items_[n_++] = l;
}

LabelSet LabelSet::with(std::string_view name, std::string_view value) const {
  LabelSet s = *this;
  if (s.n_ < kMax) s.items_[s.n_++] = Label{name, value};
  return s;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one (overlong forms,
// surrogates and code points beyond U+10FFFF are invalid, as Go's utf8.ValidString has it).
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // beyond U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void append_label_value(std::string& out, std::string_view v) {
  for (size_t i = 0; i < v.size();) {
    const char c = v[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      const size_t n = utf8_sequence(v, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD for one invalid byte
        ++i;
        continue;
      }
      out.append(v.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
}

void append_help(std::string& out, std::string_view help, ExpositionFormat f) {
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && f == ExpositionFormat::kOpenMetrics)
      out += "\\\"";
    else
      out += c;
  }
}

std::string encode_const_labels(std::span<const Label> labels) {
  std::string out;
  for (const Label& l : labels) {
    if (!out.empty()) out += ',';
    out.append(l.name) += "=\"";
    append_label_value(out, l.value);
    out += '"';
  }
  return out;
}

void append_number(std::string& out, double v) {
  if (std::isnan(v))
    out += "NaN";
  else if (std::isinf(v))
    out += v > 0 ? "+Inf" : "-Inf";
  else
    fmt::format_to(std::back_inserter(out), "{}", v);
}

namespace {

std::string_view type_name(MetricType t, ExpositionFormat f) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kInfo:
      // The text format has no info type: a gauge of value 1, named ..._info.
      return f == ExpositionFormat::kOpenMetrics ? "info" : "gauge";
  }
  return "untyped";
}

}  // namespace

Exposition& Exposition::family(std::string_view name, MetricType type, std::string_view help) {
  name_ = name;
  type_ = type;
  // The text format names a counter's (and an info's) family as its samples are named.
  std::string_view suffix;
  if (format_ == ExpositionFormat::kPrometheus) {
    if (type == MetricType::kCounter) suffix = "_total";
    if (type == MetricType::kInfo) suffix = "_info";
  }
  out_ += "# HELP ";
  out_.append(name).append(suffix) += ' ';
  append_help(out_, help, format_);
  out_ += "\n# TYPE ";
  out_.append(name).append(suffix) += ' ';
  out_.append(type_name(type, format_)) += '\n';
  return *this;
}

void Exposition::sample(std::string_view suffix, const LabelSet& labels, const Label* extra,
                        std::string_view value) {
  out_.append(name_).append(suffix);
  if (!labels.items().empty() || extra || !const_labels_.empty()) {
    out_ += '{';
    bool first = true;
    const auto label = [&](const Label& l) {
      if (!first) out_ += ',';
      first = false;
      out_.append(l.name) += "=\"";
      append_label_value(out_, l.value);
      out_ += '"';
    };
    for (const Label& l : labels.items()) label(l);
    if (extra) label(*extra);
    if (!const_labels_.empty()) {
      if (!first) out_ += ',';
      out_ += const_labels_;
    }
    out_ += '}';
  }
  out_ += ' ';
  out_.append(value) += '\n';
}

Exposition& Exposition::value_uint(const LabelSet& labels, uint64_t v) {
  const std::string_view suffix = type_ == MetricType::kCounter ? "_total"
                                  : type_ == MetricType::kInfo  ? "_info"
                                                                : "";
  sample(suffix, labels, nullptr, fmt::format_int(v).str());
  return *this;
}

Exposition& Exposition::value(const LabelSet& labels, double v) {
  const std::string_view suffix = type_ == MetricType::kCounter ? "_total"
                                  : type_ == MetricType::kInfo  ? "_info"
                                                                : "";
  std::string text;
  append_number(text, v);
  sample(suffix, labels, nullptr, text);
  return *this;
}

Exposition& Exposition::histogram(const LabelSet& labels, std::span<const Bucket> buckets,
                                  uint64_t count, double sum) {
  std::string le;
  for (const Bucket& b : buckets) {
    le.clear();
    append_number(le, b.le);
    const Label extra{"le", le};
    sample("_bucket", labels, &extra, fmt::format_int(b.count).str());
  }
  const Label inf{"le", "+Inf"};
  sample("_bucket", labels, &inf, fmt::format_int(count).str());
  return summary(labels, count, sum);
}

Exposition& Exposition::summary(const LabelSet& labels, uint64_t count, double sum) {
  sample("_count", labels, nullptr, fmt::format_int(count).str());
  std::string text;
  append_number(text, sum);
  sample("_sum", labels, nullptr, text);
  return *this;
}

void Exposition::finish() {
  if (format_ == ExpositionFormat::kOpenMetrics) out_ += "# EOF\n";
}

}  // namespace vmscope
