#include "attach/layout_migration.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace vmscope {
namespace {

// Waits for an RCU grace period: every BPF program run that began before has ended
// (MEMBARRIER_CMD_GLOBAL is synchronize_rcu()). Where the kernel refuses (nohz_full), the
// tick between a swap and its harvest (at least one interval) is the wait.
void wait_for_program_runs() {
  (void)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
}

}  // namespace

LayoutMigration::LayoutMigration(UniqueFd old_net_stats, UniqueFd old_service_stats,
                                 KeptFieldConverter from, const std::vector<uint32_t>& slots)
    : net_stats_(std::move(old_net_stats)),
      service_stats_(std::move(old_service_stats)),
      from_(std::move(from)),
      ncpus_(static_cast<size_t>(std::max(libbpf_num_possible_cpus(), 1))) {
  for (uint32_t slot : slots) waiting_.emplace(slot, kUnclaimed);
}

void LayoutMigration::claimed(uint32_t slot, uint64_t tick) {
  if (auto it = waiting_.find(slot); it != waiting_.end()) it->second = tick;
}

Result<CarriedCounts> LayoutMigration::read_old(uint32_t slot) {
  CarriedCounts out;
  auto sum_of = [&](int fd, size_t words, const char* what) -> Status {
    percpu_.resize(words * ncpus_);
    if (bpf_map_lookup_elem(fd, &slot, percpu_.data()) != 0)
      return Error::from_errno(fmt::format("read slot {} of the previous layout's {}", slot, what),
                               errno);
    sum_.assign(words, 0);
    for (size_t c = 0; c < ncpus_; ++c)
      for (size_t w = 0; w < words; ++w) sum_[w] += percpu_[c * words + w];
    return {};
  };
  if (auto st = sum_of(net_stats_.get(), from_.old_dev_words(), "net_stats"); !st)
    return st.error();
  from_.convert(sum_.data(), out.net);
  if (auto st = sum_of(service_stats_.get(), from_.old_service_words(), "service_stats"); !st)
    return st.error();
  from_.convert(sum_.data(), out.service);
  return out;
}

Status LayoutMigration::advance(uint64_t tick,
                                const std::function<void(uint32_t, const CarriedCounts&)>& final,
                                CarryTable& live) {
  live.clear();
  bool waited = false;
  Status result;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const auto [slot, swapped] = *it;
    if (swapped == kUnclaimed) {
      ++it;
      continue;
    }
    const bool is_final = swapped < tick;
    if (is_final && !waited) {
      wait_for_program_runs();
      waited = true;
    }
    auto counts = read_old(slot);
    if (!counts) {
      result = counts.error();  // the slot's old counts are lost; the rest go on
      it = waiting_.erase(it);
      continue;
    }
    if (!is_final) {
      live.emplace(slot, *counts);
      ++it;
      continue;
    }
    final(slot, *counts);
    ++moved_;
    it = waiting_.erase(it);
  }
  return result;
}

}  // namespace vmscope
