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
namespace {

// One batch lookup of slots [0, entries) of the per-CPU array fd: per_slot(slot, cpus)
// for each slot read (cpus: ncpus values).
template <typename V, typename F>
Status batch_read(int fd, uint32_t entries, size_t ncpus, std::vector<uint32_t>& keys,
                  std::vector<V>& percpu, const char* what, F per_slot) {
  keys.resize(entries);
  percpu.resize(static_cast<size_t>(entries) * ncpus);
  uint32_t done = 0;
  uint32_t next = 0;
  while (done < entries) {
    uint32_t count = entries - done;
    DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err =
        bpf_map_lookup_batch(fd, done == 0 ? nullptr : &next, &next, keys.data() + done,
                             percpu.data() + static_cast<size_t>(done) * ncpus, &count, &opts);
    if (err && errno != ENOENT)
      return Error::from_errno(fmt::format("batch lookup of {}", what), errno);
    done += count;
    if (err || count == 0) break;  // ENOENT: reached the end of the map
  }
  for (uint32_t i = 0; i < done; ++i)
    if (keys[i] < entries) per_slot(keys[i], percpu.data() + static_cast<size_t>(i) * ncpus);
  return {};
}

}  // namespace

void NetDrain::Deleter::operator()(net_sum_bpf* s) const {
  net_sum_bpf__destroy(s);
}

NetDrain::NetDrain(const NetMapFds& maps) : maps_(maps) {
  if (auto cpus = possible_cpus(); cpus)
    ncpus_ = *cpus;
  else
    cpu_error_ = cpus.error().context("drain net_stats");
  // net_sums and the reads follow net_stats' size, whoever created it (own or the agent's).
  if (auto cap = slot_capacity_of(maps_.net_stats); cap)
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
  skel->rodata->sweep_age_ns = maps_.sweep_age_ns;
  const bool sweep = maps_.service_pending >= 0;
  if (!sweep) {
    // top: the agent sweeps; no table of our own either
    bpf_program__set_autoload(skel->progs.vs_service_sweep, false);
    bpf_map__set_autocreate(skel->maps.service_pending, false);
  }
  if (bpf_map__reuse_fd(skel->maps.net_stats, maps_.net_stats) ||
      !size_slot_maps(skel->obj, capacity_) ||
      bpf_map__reuse_fd(skel->maps.service_stats, maps_.service_stats) ||
      (sweep && bpf_map__reuse_fd(skel->maps.service_pending, maps_.service_pending)) ||
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
  auto st = summer_ ? read_summed(slot_limit) : read_batch(slot_limit);
  if (st) add_carry(slot_limit);
  return st;
}

void NetDrain::add_carry(uint32_t slot_limit) {
  carried_.clear();
  carried_at_.clear();
  if (!carry_ || carry_->empty()) return;
  carried_at_.assign(slot_limit, 0);
  for (const auto& [slot, c] : *carry_) {
    if (slot >= slot_limit) continue;
    CarriedCounts& sum = carried_.emplace_back(c);
    add_counters(sum.net, sums_[slot]);
    add_counters(sum.service, service_sums_[slot]);
    carried_at_[slot] = static_cast<uint32_t>(carried_.size());
  }
}

std::optional<uint32_t> NetDrain::pending_entries() const {
  if (!summer_ || maps_.service_pending < 0) return std::nullopt;
  return summer_->bss->pending_entries;
}

Status NetDrain::read_summed(uint32_t slot_limit) {
  // Sweep first: what expires now is counted in this tick's sums. The sweep visits every
  // bucket of the table (16,384), whatever it holds: ~0.15 ms a tick. When the last
  // sweep left nothing and nothing came since (the kernel finds no first key: a plain
  // scan of the bucket heads, several times cheaper), there is nothing to sweep.
  vs_pending_key first;
  if (maps_.service_pending >= 0 &&
      (summer_->bss->pending_entries > 0 ||
       bpf_map_get_next_key(maps_.service_pending, nullptr, &first) == 0)) {
    LIBBPF_OPTS(bpf_test_run_opts, sweep);
    if (bpf_prog_test_run_opts(bpf_program__fd(summer_->progs.vs_service_sweep), &sweep))
      return Error::from_errno("run the service_pending sweep", errno);
  }
  summer_->bss->sum_slots = slot_limit;
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  if (bpf_prog_test_run_opts(bpf_program__fd(summer_->progs.vs_net_sum), &opts))
    return Error::from_errno("run the net_stats summing program", errno);
  // Mapped as far as used (common/mapping.h), growing with the slots in use.
  if (slot_limit > mapped_) {
    const auto want = static_cast<uint32_t>(mapping_size(slot_limit, capacity_));
    sums_map_.reset();
    service_map_.reset();
    mapped_ = 0;
    auto m = map_readonly<vs_dev_counters>(bpf_map__fd(summer_->maps.net_sums), want, "net_sums");
    if (!m) return m.error();
    auto sm = map_readonly<vs_service_counters>(bpf_map__fd(summer_->maps.service_sums), want,
                                                "service_sums");
    if (!sm) return sm.error();
    sums_map_ = std::move(*m);
    service_map_ = std::move(*sm);
    mapped_ = want;
  }
  sums_ = sums_map_.get();
  service_sums_ = service_map_.get();
  return {};
}

Status NetDrain::read_batch(uint32_t slot_limit) {
  batch_sums_.assign(slot_limit, vs_dev_counters{});
  batch_service_.assign(slot_limit, vs_service_counters{});
  sums_ = batch_sums_.data();
  service_sums_ = batch_service_.data();
  const size_t ncpus = ncpus_;
  auto st = batch_read(maps_.net_stats, slot_limit, ncpus, keys_, percpu_, "net_stats",
                       [&](uint32_t slot, const vs_dev_counters* cpu) {
                         for (size_t c = 0; c < ncpus; ++c)
                           for (int d = 0; d < VS_DIR_COUNT; ++d)
                             add_counters(batch_sums_[slot].dir[d], cpu[c].dir[d]);
                       });
  if (!st) return st;
  return batch_read(maps_.service_stats, slot_limit, ncpus, keys_, percpu_service_, "service_stats",
                    [&](uint32_t slot, const vs_service_counters* cpu) {
                      for (size_t c = 0; c < ncpus; ++c) add_counters(batch_service_[slot], cpu[c]);
                    });
}

}  // namespace vmscope
