// The counter lists of the contract (bpf/vmscope.h) drive the user-space sums: every
// counter of a list, arrays included, is summed, so a counter added to a list is summed
// without touching the sums.
#include "drain/counter_sums.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "drain/proc_snapshot.h"

namespace vmscope {
namespace {

// The struct's u64 words: the lists generate u64s only, back to back (contract_check.h).
template <typename T>
std::vector<uint64_t> words(const T& c) {
  std::vector<uint64_t> w(sizeof(T) / sizeof(uint64_t));
  std::memcpy(w.data(), &c, sizeof(T));
  return w;
}

template <typename T>
T from_words(uint64_t first, uint64_t step) {
  std::vector<uint64_t> w(sizeof(T) / sizeof(uint64_t));
  for (size_t i = 0; i < w.size(); ++i) w[i] = first + i * step;
  T c;
  std::memcpy(&c, w.data(), sizeof(T));
  return c;
}

TEST(CounterSums, NetSumAddsEveryCounterAndBucket) {
  static_assert(sizeof(vs_net_counters) == VS_NET_COUNTER_WORDS * sizeof(uint64_t));
  auto a = from_words<vs_net_counters>(1, 1);       // 1, 2, 3, ...
  auto b = from_words<vs_net_counters>(1000, 100);  // 1000, 1100, ...
  add_counters(a, b);
  std::vector<uint64_t> w = words(a);
  ASSERT_EQ(w.size(), size_t{VS_NET_COUNTER_WORDS});
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i], (1 + i) + (1000 + 100 * i)) << "word " << i;
  EXPECT_EQ(a.l4_bytes[VS_L4_OTHER], (1 + 7) + (1000 + 700));
}

TEST(CounterSums, TaskSumAddsEveryCounter) {
  auto a = from_words<vs_task_counters>(5, 3);
  auto b = from_words<vs_task_counters>(7, 11);
  add_counters(a, b);
  std::vector<uint64_t> w = words(a);
  ASSERT_EQ(w.size(), size_t{VS_TASK_COUNTER_COUNT});
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i], (5 + 3 * i) + (7 + 11 * i)) << "word " << i;
}

// The aggregator sums every counter over a process's records: its live threads and, on
// the leader's record, what exited threads left behind.
TEST(CounterSums, AggregatorSumsEveryTaskCounterOfLiveAndExitedThreads) {
  std::vector<vs_task_sample> in(2);
  in[0].tgid = in[1].tgid = 50;
  in[0].tid = 50;
  in[1].tid = 51;
  in[0].threads = in[1].threads = 1;
  in[0].is_leader = 1;
  uint64_t k = 1;
#define VS_SET_(field, ...)   \
  in[0].own.field = k;        \
  in[1].own.field = 10 * k;   \
  in[0].dead.field = 100 * k; \
  in[1].dead.field = 1000 * k++; /* not a leader: ignored */
  VS_TASK_COUNTERS(VS_SET_)
#undef VS_SET_
  ProcAggregator agg;
  const auto& out = agg.aggregate(in);
  ASSERT_EQ(out.size(), 1u);
  const vs_task_counters& c = out[0].counters;
  k = 1;
#define VS_CHECK_(field, ...) EXPECT_EQ(c.field, 111 * k++) << #field;
  VS_TASK_COUNTERS(VS_CHECK_)
#undef VS_CHECK_
  // Of which the CPU times: utime 111 and stime 222 sampled, runtime 333; cputime_adjust
  // splits runtime in the sampled ratio, so here they come out as sampled.
  EXPECT_EQ(c.utime_ns, 111u);
  EXPECT_EQ(c.stime_ns, 222u);
  EXPECT_EQ(c.runtime_ns, 333u);
  EXPECT_EQ(out[0].threads, 2u);
}

}  // namespace
}  // namespace vmscope
