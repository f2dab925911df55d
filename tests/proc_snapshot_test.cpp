// ProcAggregator: per-process sums from task records in any order (one record per thread
// from the task iterator, one per process from the task-list walk).
#include "drain/proc_snapshot.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmscope {
namespace {

vs_task_sample record(uint32_t tgid, uint32_t tid, uint32_t threads, uint64_t utime_ns,
                      uint64_t min_flt, bool leader) {
  vs_task_sample s{};
  s.tgid = tgid;
  s.tid = tid;
  s.threads = threads;
  s.own.utime_ns = utime_ns;
  s.own.runtime_ns = utime_ns;
  s.own.min_flt = min_flt;
  if (leader) {
    s.is_leader = 1;
    s.dead.min_flt = 1000;
    s.rss_anon_pages = 7;
    s.start_boottime_ns = 42;
  }
  return s;
}

TEST(ProcAggregator, SumsRecordsOfAProcessInAnyOrder) {
  ProcAggregator agg;
  // 300: leader + thread; 100: a thread numbered before... and after other processes
  // (pid wrap); 200: one record for 3 threads (task-list walk).
  std::vector<vs_task_sample> in = {
      record(300, 300, 1, 10, 1, true), record(300, 301, 1, 20, 2, false),
      record(100, 99, 1, 5, 3, false),  record(200, 200, 3, 60, 4, true),
      record(100, 100, 1, 7, 5, true),
  };
  const auto& out = agg.aggregate(in);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].tgid, 100u);
  EXPECT_EQ(out[0].threads, 2u);
  EXPECT_EQ(out[0].counters.runtime_ns, 12u);
  EXPECT_EQ(out[0].counters.min_flt, 3u + 5u + 1000u);
  EXPECT_EQ(out[0].rss_pages, 7u);
  EXPECT_EQ(out[0].start_boottime_ns, 42u);
  EXPECT_EQ(out[1].tgid, 200u);
  EXPECT_EQ(out[1].threads, 3u);
  EXPECT_EQ(out[1].counters.runtime_ns, 60u);
  EXPECT_EQ(out[2].tgid, 300u);
  EXPECT_EQ(out[2].threads, 2u);
  EXPECT_EQ(out[2].counters.min_flt, 1u + 2u + 1000u);
  // CPU time is split by cputime_adjust (all user time here) and never goes back.
  EXPECT_EQ(out[2].counters.utime_ns, 30u);
  EXPECT_EQ(out[2].counters.stime_ns, 0u);
}

TEST(ProcAggregator, AdjustedTimesStayMonotonicAcrossTicks) {
  ProcAggregator agg;
  std::vector<vs_task_sample> in = {record(10, 10, 1, 100, 0, true)};
  EXPECT_EQ(agg.aggregate(in)[0].counters.utime_ns, 100u);
  in[0].own.runtime_ns = 90;  // the kernel's sum may lag; the reported value may not
  EXPECT_EQ(agg.aggregate(in)[0].counters.utime_ns, 100u);
  agg.forget(10);
  EXPECT_EQ(agg.aggregate(in)[0].counters.utime_ns, 90u);
}

}  // namespace
}  // namespace vmscope
