// Which processes hold which taps: /proc/<pid>/fd/* that are the tun device (character
// device 10:200, /dev/net/tun on the host, whatever path a chroot or container gives it)
// carry an "iff:\t<tap>" line in their fdinfo. No orchestrator needs to be asked.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "discover/naming.h"

namespace vmscope {

// tap name -> pids holding it open (a tap fd may be shared after fork or fd passing).
using TapOwners = std::unordered_map<std::string, std::vector<int>>;

// One pass over every process under proc_root. Processes that vanish mid-scan or are
// unreadable are skipped. With same_netns_only, only processes in the caller's network
// namespace count: tap names repeat across namespaces (every test netns, every kata pod
// has its own vmmtap0/tap0), and a tap is created in its opener's namespace.
TapOwners scan_tap_owners(const std::string& proc_root = "/proc", bool same_netns_only = true);

// argv and cgroup of one process.
Result<ProcessInfo> read_process(int pid, const std::string& proc_root = "/proc");

// Whether the file an fd link (/proc/<pid>/fd/N) leads to is the tun device.
bool is_tun_device(const std::string& fd_link);

// The "iff:" value of one fdinfo text, or "" when it has none.
std::string tap_from_fdinfo(std::string_view fdinfo);

}  // namespace vmscope
