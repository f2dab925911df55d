// Which processes are VMs: the ones a naming rule (or an operator override) names.
// Found once by a /proc scan at start-up, then from exec events as they happen.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "discover/naming.h"

namespace vmscope {

struct VmProcess {
  uint32_t tgid = 0;
  VmIdentity vm;
  bool named = true;  // false: only known as the holder of an unnamed tap
};

struct VmProcessOptions {
  NamingOptions naming;
  std::vector<NameOverride> overrides;
  std::string proc_root = "/proc";
};

// The VM identity of one process, or nullopt when it is no VM (or already gone).
std::optional<VmProcess> classify_process(uint32_t tgid, const VmProcessOptions& opts);
// The same for a process known from its exec event: argv as captured at exec time
// (NUL-separated), so that even a process gone by now is named; /proc adds the cgroup
// and completes a truncated argv when the process is still there.
std::optional<VmProcess> classify_exec(uint32_t tgid, std::string_view args, bool truncated,
                                       const VmProcessOptions& opts);

// Every VM process running now.
std::vector<VmProcess> scan_vm_processes(const VmProcessOptions& opts);

}  // namespace vmscope
