// Issue 3's per-tick cost: CPU, faults and memory of every VM process from one task
// iterator pass (ProcTracker::collect, exactly what the agent runs each tick) plus the
// resource_usage/kinfo_mem lines, for one tracked process per VM (the sleepers, named
// vm0000...). Baseline in the same run: tick_part/albatross_proc_only (3 /proc files per
// VM), and the whole agent tick (network + processes) against tick/albatross_poll.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "agent/proc_tracker.h"
#include "bench_env.h"
#include "output/proc_lines.h"

namespace vmscope::bench {
namespace {

ProcTracker* tracker() {
  static std::unique_ptr<ProcTracker> t = [] {
    auto r = ProcTracker::create(VmProcessOptions{});
    if (!r) {
      spdlog::error("{}", r.error().message);
      return std::unique_ptr<ProcTracker>();
    }
    for (size_t i = 0; i < env().sleepers.size(); ++i) {
      VmIdentity id;
      id.name = fmt::format("vm{:04}", i);
      id.launcher = "qemu";
      (*r)->ensure_tracked(static_cast<uint32_t>(env().sleepers[i]), id, true);
    }
    return std::move(*r);
  }();
  return t.get();
}

void proc_collect_encode(benchmark::State& state, bool cold) {
  ProcTracker* t = tracker();
  if (!t) {
    state.SkipWithError("load process programs");
    return;
  }
  std::string batch;
  TickOutput output;
  std::vector<VmEvent> gone;
  size_t vms = 0, bytes = 0;
  // One untimed tick first: the agent's chunks are recycled buffers, sized already.
  std::vector<VmResources> rows;  // reused, as the engine's
  auto tick = [&] {
    gone.clear();
    if (auto st = t->collect(gone, rows); !st) {
      state.SkipWithError(st.error().message.c_str());
      return false;
    }
    output.begin_tick(batch);
    encode_resources(rows, realtime_ns(), batch, {}, &output);
    bytes = output.end_tick(batch);
    vms = rows.size();
    return true;
  };
  if (!tick()) return;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      evict_caches();
      state.ResumeTiming();
    }
    if (!tick()) return;
  }
  state.counters["vms"] = static_cast<double>(vms);
  state.counters["out_bytes"] = static_cast<double>(bytes);
}

// Breakdown: one sampling pass alone (ProcPrograms::sample, a second set of programs
// tracking the same processes), collect alone, and the encoding of one collect's result.
void part_task_iter(benchmark::State& state) {
  static std::unique_ptr<ProcPrograms> programs = [] {
    auto r = ProcPrograms::load([](const vs_proc_event&) {});
    if (!r) return std::unique_ptr<ProcPrograms>();
    for (pid_t pid : env().sleepers) (void)(*r)->track(static_cast<uint32_t>(pid), 0);
    return std::move(*r);
  }();
  if (!programs) {
    state.SkipWithError("load process programs");
    return;
  }
  size_t records = 0;
  for (auto _ : state) {
    auto samples = programs->sample();
    if (!samples) {
      state.SkipWithError(samples.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(samples->data());
    records = samples->size();
  }
  state.counters["records"] = static_cast<double>(records);
}

void part_proc_collect(benchmark::State& state) {
  ProcTracker* t = tracker();
  if (!t) {
    state.SkipWithError("load process programs");
    return;
  }
  std::vector<VmEvent> gone;
  std::vector<VmResources> rows;  // reused, as the engine's
  for (auto _ : state) {
    gone.clear();
    if (auto st = t->collect(gone, rows); !st) {
      state.SkipWithError(st.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(rows.data());
  }
}

void part_encode_resources(benchmark::State& state) {
  ProcTracker* t = tracker();
  if (!t) {
    state.SkipWithError("load process programs");
    return;
  }
  std::vector<VmEvent> gone;
  auto r = t->collect(gone);
  if (!r) {
    state.SkipWithError(r.error().message.c_str());
    return;
  }
  std::string batch;
  TickOutput output;
  size_t bytes = 0;
  for (auto _ : state) {
    output.begin_tick(batch);
    encode_resources(*r, realtime_ns(), batch, {}, &output);
    bytes = output.end_tick(batch);
  }
  state.counters["out_bytes"] = static_cast<double>(bytes);
}

// The sleepers' counters are small (no CPU time, a few hundred pages); the same encoding
// with the magnitudes of VMs up for days (10-13 digit counters, CPU times of hours), as a
// check that the digit count does not change the picture.
void part_encode_resources_realistic(benchmark::State& state) {
  std::vector<std::string> names;
  std::vector<VmResources> vms;
  for (size_t i = 0; i < env().sleepers.size(); ++i) names.push_back(fmt::format("vm{:04}", i));
  for (size_t i = 0; i < names.size(); ++i) {
    const uint64_t r = (i + 1) * 0x9e3779b97f4a7c15ULL;
    VmResources& v = vms.emplace_back();
    v.vm = names[i];
    v.launcher = "qemu";
    v.pid = static_cast<uint32_t>(1000 + i);
    v.processes = 1;
    v.threads = 4;
    v.counters.utime_ns = r % 5'000'000'000'000ULL;
    v.counters.stime_ns = (r >> 7) % 900'000'000'000ULL;
    v.counters.runtime_ns = v.counters.utime_ns + v.counters.stime_ns;
    v.counters.min_flt = r % 100'000'000;
    v.counters.maj_flt = r % 10'000;
    v.counters.nvcsw = (r >> 3) % 1'000'000'000;
    v.counters.nivcsw = (r >> 5) % 100'000'000;
    v.rss_pages = 100'000 + r % 1'000'000;
    v.vsize_bytes = 1'000'000'000 + r % 10'000'000'000ULL;
    v.text_pages = 2000 + r % 1000;
    v.data_pages = 50'000 + r % 500'000;
    v.stack_pages = 33;
    v.uptime_s = 86400.0 * 3 + static_cast<double>(r % 1'000'000'000) / 1e6;
  }
  std::string batch;
  TickOutput output;
  size_t bytes = 0;
  for (auto _ : state) {
    output.begin_tick(batch);
    encode_resources(vms, realtime_ns(), batch, {}, &output);
    bytes = output.end_tick(batch);
  }
  state.counters["out_bytes"] = static_cast<double>(bytes);
}

void add(const char* name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name, fn)
      ->MinTime(0.3)
      ->Repetitions(5)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime()
      ->DisplayAggregatesOnly(true);
}

}  // namespace

void register_proc_benchmarks() {
  add(kProcTickVmscope, [](benchmark::State& s) { proc_collect_encode(s, false); });
  add(kProcTickVmscopeCold, [](benchmark::State& s) { proc_collect_encode(s, true); });
  add("proc_part/task_iter_sample", part_task_iter);
  add("proc_part/proc_tracker_collect", part_proc_collect);
  add("proc_part/encode_resources", part_encode_resources);
  add("proc_part/encode_resources_realistic", part_encode_resources_realistic);
}

}  // namespace vmscope::bench
