// Per-process CPU, faults, context switches and memory from one task-iterator pass,
// with CPU times scaled the way the kernel scales them for /proc (cputime_adjust), so
// utime/stime match /proc/<pid>/stat.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vmscope.h"

namespace vmscope {

struct ProcSample {
  uint32_t tgid = 0;
  uint32_t threads = 0;
  // The whole process's: all threads, alive and dead. utime_ns and stime_ns adjusted
  // (cputime_adjust), as /proc/<pid>/stat.
  vs_task_counters counters{};
  uint64_t start_boottime_ns = 0;
  uint64_t rss_pages = 0;  // file + anon + shmem, as statm "resident"
  uint64_t vsize_bytes = 0, text_pages = 0, data_pages = 0, stack_pages = 0;
  bool has_leader = false;  // the leader was sampled: the process-wide fields above are set
};

// The kernel's prev_cputime: adjusted times never go backwards.
struct PrevCputime {
  uint64_t utime = 0, stime = 0;
};

// kernel/sched/cputime.c cputime_adjust(): splits rtime in the utime:stime ratio of the
// tick-sampled times, monotonic against prev.
void cputime_adjust(uint64_t utime, uint64_t stime, uint64_t rtime, PrevCputime& prev, uint64_t& ut,
                    uint64_t& st);
// The same over a process's counters: replaces the tick-sampled utime_ns and stime_ns by
// the adjusted ones (rtime = runtime_ns), as /proc/<pid>/stat shows them.
void cputime_adjust(vs_task_counters& c, PrevCputime& prev);

class ProcAggregator {
 public:
  // Sums the samples per process (threads + what exited threads left behind), utime and
  // stime adjusted; ordered by tgid; valid until the next call.
  const std::vector<ProcSample>& aggregate(std::span<const vs_task_sample> samples);
  // Forget a process (it exited).
  void forget(uint32_t tgid);

 private:
  struct Prev {
    uint32_t tgid;
    PrevCputime cputime;
    // run_delay/run_count last reported: a thread caught exiting between the kernel's
    // two records of it (its own, and what proc.bpf.c collected at its exit) may be seen
    // in both or neither for one sample; the totals never go backwards.
    uint64_t run_delay_ns = 0, run_count = 0;
  };
  ProcSample& entry(uint32_t tgid);
  // Sorts raw_ by tgid and merges entries of the same process (input out of order).
  void sort_and_merge();
  // Flat, ordered by tgid, reused every tick: no allocation or hashing per process once
  // warmed up. prev_ keeps a process until forget(), even while it is not sampled.
  std::vector<Prev> prev_, next_prev_;
  // Summed in place and returned: utime_ns/stime_ns tick-sampled until aggregate()
  // adjusts them at its end.
  std::vector<ProcSample> raw_, merged_;
  std::vector<uint32_t> order_;
  bool sorted_ = true;  // raw_ ordered by tgid, one entry per process
};

}  // namespace vmscope
