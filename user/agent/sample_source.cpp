#include "agent/sample_source.h"

#include <spdlog/spdlog.h>

namespace vmscope {

Result<std::unique_ptr<SampleSource>> open_sample_source(SourceChoice choice, AttachMode mode,
                                                         uint32_t net_slots,
                                                         const VmProcessOptions& procs) {
  if (choice != SourceChoice::kViewer)
    return open_own_source(mode, net_slots, procs, choice == SourceChoice::kPublish);
  auto paths = shared_map_paths();
  if (!paths) return paths.error();
  auto found = SharedMaps::open(*paths);
  if (!found) return found.error();
  if (!*found) return open_own_source(mode, net_slots, procs, false);  // no agent runs here
  return open_shared_source(std::move(**found), procs);
}

std::map<int, std::string> counted_devices(const Inventory& inv) {
  std::map<int, std::string> devices;
  for (const auto& [ifindex, tap] : inv.taps()) devices[ifindex] = tap.link.name;
  for (const auto& [ifindex, br] : inv.vm_bridges()) devices[ifindex] = br.name;
  return devices;
}

// Process metrics are a feature the kernel may lack (tp_btf, task iterators).
std::unique_ptr<ProcTracker> tracker_or_none(Result<std::unique_ptr<ProcTracker>> tracker) {
  if (tracker) return std::move(*tracker);
  spdlog::warn("process metrics disabled: {}", tracker.error().message);
  return nullptr;
}

}  // namespace vmscope
