#include "output/output_tags.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "output/line_protocol.h"
#include "output/prometheus_text.h"

namespace vmscope {
namespace {

// Every tag key the encoders write and every label name /metrics writes (net_lines,
// proc_lines, self_lines, prometheus_metrics, prometheus_text), plus host: a global tag of
// the same name would make a line with two values for one key.
constexpr std::array<std::string_view, 16> kReserved = {
    "vm",   "bridge", "tap",  "ifname",  "event",   "host",     "direction", "protocol",
    "path", "mode",   "type", "program", "version", "revision", "le",        "quantile"};

}  // namespace

bool bypasses_telegraf(std::string_view url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

std::string line_tag_suffix(const OutputTags& t, std::string_view url) {
  std::vector<std::pair<std::string, std::string>> tags(t.tags.begin(), t.tags.end());
  if (!t.host.empty() && bypasses_telegraf(url)) tags.emplace_back("host", t.host);
  std::sort(tags.begin(), tags.end());  // the same order on every line and every run
  return encode_tag_suffix(tags);
}

std::string metrics_labels(const OutputTags& t) {
  std::vector<Label> labels;
  for (const auto& [k, v] : t.tags) labels.push_back({k, v});
  if (!t.host.empty()) labels.push_back({"host", t.host});
  std::sort(labels.begin(), labels.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  return encode_const_labels(labels);
}

Status validate_tag(std::string_view key, std::string_view value) {
  const auto bad = [&](std::string_view why) {
    return Error::msg(fmt::format("tag \"{}\": {}", key, why));
  };
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (key.empty()) return Error::msg("tag with an empty key");
  if (!(letter(key[0]) || key[0] == '_') || !std::all_of(key.begin(), key.end(), [&](char c) {
        return letter(c) || digit(c) || c == '_';
      }))
    return bad("a key is a letter or _ followed by letters, digits or _");
  if (key.starts_with("__")) return bad("keys starting with __ are Prometheus' own");
  if (std::find(kReserved.begin(), kReserved.end(), key) != kReserved.end())
    return bad(key == "host" ? "vmscope writes host itself (set hostname / --hostname)"
                             : "vmscope writes this key itself");
  if (value.empty()) return bad("empty value");
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    return bad("control characters in the value");
  if (value.back() == '\\') return bad("a value may not end in a backslash");
  return {};
}

}  // namespace vmscope
