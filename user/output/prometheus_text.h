// The Prometheus text exposition format (version 0.0.4) and OpenMetrics 1.0, written by
// one writer: the two differ only in how a counter's family is named in HELP/TYPE (with
// or without _total), the info type, the escaping of '"' in HELP, and the closing # EOF.
// Families are written whole, one after the other (both formats forbid interleaving);
// label values are escaped, and bytes that are not UTF-8 (a VM named from a raw argv)
// are replaced, since Prometheus refuses a whole scrape over one invalid label value.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace vmscope {

enum class ExpositionFormat { kPrometheus, kOpenMetrics };

// The Content-Type of a response in this format.
std::string_view content_type(ExpositionFormat f);
// OpenMetrics when the Accept header asks for application/openmetrics-text (with a
// non-zero q), as Prometheus does by default; the text format otherwise.
ExpositionFormat negotiate_format(std::string_view accept);

enum class MetricType { kCounter, kGauge, kHistogram, kSummary, kInfo };

struct Label {
  std::string_view name, value;
};

// A few labels, by value: a family's samples add one (mode="user") to a common set.
class LabelSet {
 public:
  static constexpr size_t kMax = 6;
  LabelSet() = default;
  LabelSet(std::initializer_list<Label> labels);
  LabelSet with(std::string_view name, std::string_view value) const;
  std::span<const Label> items() const { return {items_.data(), n_}; }

 private:
  std::array<Label, kMax> items_{};
  size_t n_ = 0;
};

// One bucket of a histogram: observations at most `le` (cumulative, as Prometheus counts).
struct Bucket {
  double le;
  uint64_t count;
};

class Exposition {
 public:
  // const_labels: labels every sample carries after its own, already written as
  // name="value",... (encode_const_labels), e.g. host and the global tags.
  Exposition(ExpositionFormat format, std::string& out, std::string_view const_labels = {})
      : format_(format), out_(out), const_labels_(const_labels) {}

  // Starts a family: HELP and TYPE. `name` is the family's name as OpenMetrics has it:
  // without the _total of a counter's samples or the _info of an info's.
  Exposition& family(std::string_view name, MetricType type, std::string_view help);
  // The family's sample for these labels: name_total for a counter, name_info (value 1)
  // for an info, name for a gauge.
  template <std::unsigned_integral T>  // uint64_t and the contract's __u64 alike
  Exposition& value(const LabelSet& labels, T v) {
    return value_uint(labels, static_cast<uint64_t>(v));
  }
  Exposition& value(const LabelSet& labels, double v);
  // A histogram's samples for one label set: buckets in increasing `le` (cumulative),
  // the +Inf bucket (= count), _count and _sum.
  Exposition& histogram(const LabelSet& labels, std::span<const Bucket> buckets, uint64_t count,
                        double sum);
  // A summary without quantiles: _count and _sum.
  Exposition& summary(const LabelSet& labels, uint64_t count, double sum);
  // Ends the exposition (OpenMetrics: "# EOF").
  void finish();

 private:
  Exposition& value_uint(const LabelSet& labels, uint64_t v);
  void sample(std::string_view suffix, const LabelSet& labels, const Label* extra,
              std::string_view value);
  ExpositionFormat format_;
  std::string& out_;
  std::string_view const_labels_;
  std::string_view name_;
  MetricType type_ = MetricType::kGauge;
};

// Escaping, exposed for the tests. Label values: \ " and newline escaped, invalid UTF-8
// replaced by U+FFFD. HELP: \ and newline, and " in OpenMetrics.
void append_label_value(std::string& out, std::string_view value);
void append_help(std::string& out, std::string_view help, ExpositionFormat f);
// Labels as a sample writes them, name="value" joined by commas, values escaped: encoded
// once for the labels every sample carries.
std::string encode_const_labels(std::span<const Label> labels);
// A sample value or an `le`: shortest round-trip decimal, +Inf, -Inf, NaN.
void append_number(std::string& out, double v);

}  // namespace vmscope
