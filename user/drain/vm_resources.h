// Per-VM resource figures of one tick (summed over the VM's processes) and VM lifecycle
// events: what output/proc_lines encodes and `top` shows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vmscope.h"

namespace vmscope {

// Names are views into the tracker's state: valid until it next changes (the agent
// encodes right after collecting; copy to keep them longer).
struct VmResources {
  std::string_view vm, launcher;
  uint32_t pid = 0;        // its first process (lowest pid)
  uint32_t processes = 0;  // a VM's child processes count into it
  uint32_t threads = 0;
  vs_task_counters counters{};  // utime_ns, stime_ns adjusted, as /proc/<pid>/stat
  uint64_t rss_pages = 0, vsize_bytes = 0, text_pages = 0, data_pages = 0, stack_pages = 0;
  double uptime_s = 0;  // of its oldest process
};

struct VmEvent {
  enum class Kind { kStart, kExit };
  Kind kind = Kind::kStart;
  int64_t timestamp_ns = 0;  // realtime, when it happened
  std::string vm, launcher;
  uint32_t pid = 0, ppid = 0;
  // exit only:
  bool exit_known = false;  // false when the process vanished without an exit event
  int exit_code = 0;        // exit status (0-255) when it exited normally
  int signal = 0;           // terminating signal, 0 if none
  double lifetime_s = 0;
  vs_task_counters final{};  // the process's totals; utime_ns, stime_ns adjusted
};

}  // namespace vmscope
