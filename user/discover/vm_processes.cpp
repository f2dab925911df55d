#include "discover/vm_processes.h"

#include <cstdlib>

#include "common/dir.h"
#include "discover/tap_owners.h"

namespace vmscope {

namespace {

std::optional<VmProcess> classify(const ProcessInfo& proc, const VmProcessOptions& opts) {
  if (proc.argv.empty()) return std::nullopt;  // a kernel thread, or gone
  std::optional<VmIdentity> id = match_override(opts.overrides, "", &proc);
  if (!id) id = name_vm(proc, opts.naming);
  if (!id) return std::nullopt;
  return VmProcess{static_cast<uint32_t>(proc.pid), std::move(*id), true};
}

}  // namespace

std::optional<VmProcess> classify_process(uint32_t tgid, const VmProcessOptions& opts) {
  auto proc = read_process(static_cast<int>(tgid), opts.proc_root);
  if (!proc) return std::nullopt;
  return classify(*proc, opts);
}

std::optional<VmProcess> classify_exec(uint32_t tgid, std::string_view args, bool truncated,
                                       const VmProcessOptions& opts) {
  auto live = read_process(static_cast<int>(tgid), opts.proc_root);
  ProcessInfo proc;
  proc.pid = static_cast<int>(tgid);
  if (live) proc.cgroup = live->cgroup;
  if (truncated && live && !live->argv.empty())
    proc.argv = live->argv;
  else
    proc.argv = split_argv(args);
  return classify(proc, opts);
}

std::vector<VmProcess> scan_vm_processes(const VmProcessOptions& opts) {
  std::vector<VmProcess> out;
  DirHandle dir(opts.proc_root);
  while (const dirent* e = dir.next()) {
    char* end;
    unsigned long pid = std::strtoul(e->d_name, &end, 10);
    if (*end != '\0' || pid == 0) continue;
    if (auto vm = classify_process(static_cast<uint32_t>(pid), opts)) out.push_back(std::move(*vm));
  }
  return out;
}

}  // namespace vmscope
