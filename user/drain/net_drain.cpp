#include "drain/net_drain.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "common/bpf_programs.h"
#include "drain/contract_check.h"
#include "drain/cpu_limit.h"
#include "drain/slot_capacity.h"
#include "net_sum.skel.h"

namespace vmscope {

void NetDrain::Deleter::operator()(net_sum_bpf* s) const {
  net_sum_bpf__destroy(s);
}

NetDrain::NetDrain(int net_stats_fd) : fd_(net_stats_fd) {
  if (auto cpus = possible_cpus(); cpus)
    ncpus_ = *cpus;
  else
    cpu_error_ = cpus.error().context("drain net_stats");
  // net_sums and the reads follow net_stats' size, whoever created it (own or the agent's).
  if (auto cap = slot_capacity_of(fd_); cap)
    capacity_ = *cap;
  else
    cpu_error_ = cap.error();
}
NetDrain::~NetDrain() = default;
NetDrain::NetDrain(NetDrain&&) noexcept = default;
NetDrain& NetDrain::operator=(NetDrain&&) noexcept = default;

bool NetDrain::load_summer() {
  tried_summer_ = true;
  std::unique_ptr<net_sum_bpf, Deleter> skel(net_sum_bpf__open());
  if (!skel) {
    spdlog::info("net drain by batch lookup (open net_sum.bpf.o: {})", std::strerror(errno));
    return false;
  }
  skel->rodata->nr_cpus = static_cast<uint32_t>(ncpus_);
  if (bpf_map__reuse_fd(skel->maps.net_stats, fd_) || !size_slot_maps(skel->obj, capacity_) ||
      net_sum_bpf__load(skel.get())) {
    spdlog::info("net drain by batch lookup (load net_sum.bpf.o, kernel 5.19+: {})",
                 std::strerror(errno));
    return false;
  }
  summer_ = std::move(skel);
  return true;
}

void NetDrain::program_fds(std::vector<int>& out) const {
  if (summer_) append_program_fds(summer_->obj, out);
}

Status NetDrain::read(uint32_t slot_limit) {
  if (cpu_error_) return *cpu_error_;
  if (slot_limit > capacity_) slot_limit = capacity_;
  if (!tried_summer_) load_summer();
  return summer_ ? read_summed(slot_limit) : read_batch(slot_limit);
}

Status NetDrain::read_summed(uint32_t slot_limit) {
  summer_->bss->sum_slots = slot_limit;
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  if (bpf_prog_test_run_opts(bpf_program__fd(summer_->progs.vs_net_sum), &opts))
    return Error::from_errno("run the net_stats summing program", errno);
  // Mapped as far as used (a mapping of a BPF array is resident as a whole): grows by
  // doubling with the slots in use.
  if (slot_limit > mapped_) {
    uint32_t want = std::max<uint32_t>(mapped_ * 2, 256);
    while (want < slot_limit) want *= 2;
    want = std::min<uint32_t>(want, capacity_);
    sums_map_.reset();
    auto m = map_readonly<vs_dev_counters>(bpf_map__fd(summer_->maps.net_sums), want, "net_sums");
    if (!m) {
      mapped_ = 0;
      return m.error();
    }
    sums_map_ = std::move(*m);
    mapped_ = want;
  }
  sums_ = sums_map_.get();
  return {};
}

Status NetDrain::read_batch(uint32_t slot_limit) {
  uint32_t entries = slot_limit;
  keys_.resize(entries);
  percpu_.resize(static_cast<size_t>(entries) * ncpus_);
  batch_sums_.assign(entries, vs_dev_counters{});
  sums_ = batch_sums_.data();
  uint32_t done = 0;
  uint32_t next = 0;
  while (done < entries) {
    uint32_t count = entries - done;
    DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err =
        bpf_map_lookup_batch(fd_, done == 0 ? nullptr : &next, &next, keys_.data() + done,
                             percpu_.data() + static_cast<size_t>(done) * ncpus_, &count, &opts);
    if (err && errno != ENOENT) return Error::from_errno("batch lookup of net_stats", errno);
    done += count;
    if (err || count == 0) break;  // ENOENT: reached the end of the map
  }
  for (uint32_t i = 0; i < done; ++i) {
    if (keys_[i] >= entries) continue;
    const vs_dev_counters* cpu = percpu_.data() + static_cast<size_t>(i) * ncpus_;
    vs_dev_counters& sum = batch_sums_[keys_[i]];
    for (size_t c = 0; c < ncpus_; ++c)
      for (int d = 0; d < VS_DIR_COUNT; ++d) add_counters(sum.dir[d], cpu[c].dir[d]);
  }
  return {};
}

}  // namespace vmscope
