// Tags for many hosts: the global tags ([tags], --tag K=V) that every line of every
// output and every /metrics series carries, and host=<hostname> on the outputs that
// bypass Telegraf (http/https: Telegraf adds its own host tag, so lines sent to it over
// tcp/udp, and stdout, do not get one) and on /metrics. Each output's suffix and the
// /metrics labels are encoded once per configuration, never per line or per field.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"

namespace vmscope {

struct OutputTags {
  std::map<std::string, std::string> tags;  // validated (validate_tag)
  std::string host;                         // empty: no host tag
};

// Does this output's destination store lines as they come (InfluxDB over http/https),
// rather than Telegraf, which adds host itself?
bool bypasses_telegraf(std::string_view url);

// The pre-encoded line-protocol tags of the output at url (",k=v,...", possibly empty):
// the global tags, and host when it bypasses Telegraf.
std::string line_tag_suffix(const OutputTags& t, std::string_view url);

// The labels of every /metrics series (global tags and host), escaped as
// encode_const_labels (output/prometheus_text.h) writes them.
std::string metrics_labels(const OutputTags& t);

// One tag the user gives: the key a plain label name ([A-Za-z_][A-Za-z0-9_]*, not "__..."),
// so that it is valid in line protocol and Prometheus alike, and none that vmscope writes
// itself (vm, bridge, tap, host, ...); the value non-empty, without control characters.
// The error names the key.
Status validate_tag(std::string_view key, std::string_view value);

}  // namespace vmscope
