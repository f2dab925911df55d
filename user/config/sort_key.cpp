#include "config/sort_key.h"

#include <utility>

namespace vmscope {
namespace {

const std::vector<std::pair<SortKey, std::string_view>>& key_names() {
  static const std::vector<std::pair<SortKey, std::string_view>> names = {
      {SortKey::kName, "name"},   {SortKey::kPid, "pid"},      {SortKey::kCpu, "cpu"},
      {SortKey::kWait, "wait"},   {SortKey::kMem, "mem"},      {SortKey::kFaults, "faults"},
      {SortKey::kDisk, "disk"},   {SortKey::kNet, "net"},      {SortKey::kRx, "rx"},
      {SortKey::kTx, "tx"},       {SortKey::kPkts, "pkts"},    {SortKey::kConns, "conns"},
      {SortKey::kDrops, "drops"}, {SortKey::kUptime, "uptime"}};
  return names;
}

}  // namespace

const std::vector<SortKey>& sort_keys() {
  static const std::vector<SortKey> keys = [] {
    std::vector<SortKey> k;
    for (const auto& [key, _] : key_names()) k.push_back(key);
    return k;
  }();
  return keys;
}

std::string_view sort_key_name(SortKey k) {
  for (const auto& [key, name] : key_names())
    if (key == k) return name;
  return "?";
}

std::optional<SortKey> parse_sort_key(std::string_view name) {
  for (const auto& [key, n] : key_names())
    if (n == name) return key;
  return std::nullopt;
}

}  // namespace vmscope
