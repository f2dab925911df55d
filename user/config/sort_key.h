// What `vmscope top` can sort by, and the names --sort accepts. The command line parses
// and lists them, top sorts by them and steps through them with `<` and `>`: they live
// with the configuration, below both.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace vmscope {

enum class SortKey {
  kCpu,
  kWait,
  kMem,
  kNet,
  kFaults,
  kDisk,
  kName,
  kPid,
  kRx,
  kTx,
  kPkts,
  kConns,
  kDrops,
  kUptime
};

// The sort keys in column order (for `<` and `>`), their names (for --sort).
const std::vector<SortKey>& sort_keys();
std::string_view sort_key_name(SortKey k);
std::optional<SortKey> parse_sort_key(std::string_view name);

}  // namespace vmscope
