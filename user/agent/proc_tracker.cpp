#include "agent/proc_tracker.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include "discover/proc_stat.h"
#include "drain/counter_sums.h"

namespace vmscope {
namespace {

int64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t to_realtime(uint64_t boottime) {
  return clock_ns(CLOCK_REALTIME) - (clock_ns(CLOCK_BOOTTIME) - static_cast<int64_t>(boottime));
}

// Start time of a live process (field 22 of /proc/<pid>/stat, in clock ticks); 0 when
// it is gone, exiting (PF_EXITING in field 9: its exit may already have been reported)
// or a zombie: nothing left to track.
uint64_t proc_start_boottime_ns(const std::string& proc_root, uint32_t tgid) {
  std::vector<std::string> f = read_proc_stat(proc_root, tgid);
  if (f.size() <= 22 || f[3] == "Z" || f[3] == "X") return 0;
  if (std::stoull(f[9]) & 0x4 /* PF_EXITING */) return 0;
  return std::stoull(f[22]) * (1'000'000'000 / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
}

// Field 4 of /proc/<pid>/stat; 0 when gone.
uint32_t proc_parent(const std::string& proc_root, uint32_t tgid) {
  std::vector<std::string> f = read_proc_stat(proc_root, tgid);
  return f.size() > 4 ? static_cast<uint32_t>(std::stoul(f[4])) : 0;
}

bool process_exists(const std::string& proc_root, uint32_t tgid) {
  struct stat st;
  return ::stat((proc_root + "/" + std::to_string(tgid)).c_str(), &st) == 0;
}

}  // namespace

int64_t boottime_ns() {
  return clock_ns(CLOCK_BOOTTIME);
}
int64_t realtime_ns() {
  return clock_ns(CLOCK_REALTIME);
}

Result<std::unique_ptr<ProcTracker>> ProcTracker::create(VmProcessOptions opts) {
  auto t = std::make_unique<ProcTracker>(Key{}, std::move(opts));
  ProcTracker* self = t.get();
  auto programs = ProcPrograms::load([self](const vs_proc_event& ev) { self->on_event(ev); });
  if (!programs) return programs.error();
  t->programs_ = std::move(*programs);
  // Programs first, then the scan: a VM started in between is seen by its exec event.
  t->scan_existing();
  return t;
}

Result<std::unique_ptr<ProcTracker>> ProcTracker::create_reader(VmProcessOptions opts,
                                                                int tracked_fd) {
  auto t = std::make_unique<ProcTracker>(Key{}, std::move(opts));
  auto programs = ProcPrograms::load_reader(tracked_fd);
  if (!programs) return programs.error();
  t->programs_ = std::move(*programs);
  t->reader_ = true;
  t->scan_existing();
  return t;
}

void ProcTracker::scan_existing() {
  for (VmProcess& p : scan_vm_processes(opts_)) {
    uint64_t start = proc_start_boottime_ns(opts_.proc_root, p.tgid);
    uint32_t tgid = p.tgid;
    if (procs_.count(tgid)) continue;  // adopted as a child of a VM scanned before
    track(std::move(p), start);
    adopt_children(tgid);
  }
}

void ProcTracker::set_naming(VmProcessOptions opts) {
  opts_ = std::move(opts);
  std::map<std::string, std::string> renamed;  // old VM name -> new, for the VMs' children
  for (auto& [tgid, t] : procs_) {
    if (t.child || !t.proc.named) continue;
    std::optional<VmProcess> now = classify_process(tgid, opts_);
    if (!now || now->vm.name == t.proc.vm.name) continue;
    spdlog::info("VM {} (pid {}) is named {} from now", t.proc.vm.name, tgid, now->vm.name);
    renamed[t.proc.vm.name] = now->vm.name;
    t.proc.vm = std::move(now->vm);
  }
  for (auto& [_, t] : procs_)
    if (auto r = renamed.find(t.proc.vm.name); t.child && r != renamed.end())
      t.proc.vm.name = r->second;
  scan_existing();
}

void ProcTracker::follow(std::span<const vs_task_sample> samples) {
  for (const vs_task_sample& s : samples) {
    if (!s.is_leader || procs_.count(s.tgid)) continue;
    auto u = unnamed_.find(s.tgid);
    if (u != unnamed_.end() && u->second == s.start_boottime_ns) continue;  // looked already
    if (auto vm = classify_process(s.tgid, opts_)) {
      track(std::move(*vm), s.start_boottime_ns);
      adopt_children(s.tgid);
      continue;
    }
    // A child of a VM process is part of that VM (the agent tracks it for that reason).
    uint32_t ppid = proc_parent(opts_.proc_root, s.tgid);
    if (auto parent = procs_.find(ppid); parent != procs_.end()) {
      VmProcess child = parent->second.proc;
      child.tgid = s.tgid;
      track(std::move(child), s.start_boottime_ns, /*child=*/true);
      continue;
    }
    unnamed_[s.tgid] = s.start_boottime_ns;  // a tap owner gets its name from ensure_tracked
  }
  if (unnamed_.size() > 4 * VS_MAX_PROCS) unnamed_.clear();
}

void ProcTracker::track(VmProcess p, uint64_t start_boottime_ns, bool child) {
  uint32_t tgid = p.tgid;
  // Without its map entry the process is still sampled-for and its exit still found
  // (as "gone"), just without exit code.
  if (auto st = programs_->track(tgid, start_boottime_ns); !st)
    spdlog::warn("{}", st.error().message);
  procs_[tgid] = Tracked{std::move(p), start_boottime_ns, child};
}

void ProcTracker::adopt_children(uint32_t tgid, int depth) {
  if (depth > 4) return;  // a VM's process tree is shallow; bound the walk anyway
  std::error_code ec;
  std::filesystem::path tasks = opts_.proc_root + "/" + std::to_string(tgid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "children");
    for (uint32_t child; in >> child;) {
      if (procs_.count(child)) continue;
      uint64_t start = proc_start_boottime_ns(opts_.proc_root, child);
      if (start == 0) continue;
      VmProcess p = procs_.at(tgid).proc;
      p.tgid = child;
      track(std::move(p), start, /*child=*/true);
      adopt_children(child, depth + 1);
    }
  }
}

void ProcTracker::ensure_tracked(uint32_t tgid, const VmIdentity& vm, bool named) {
  auto it = procs_.find(tgid);
  if (it != procs_.end()) {
    if (!it->second.proc.named && named) it->second.proc.vm = vm;
    return;
  }
  // The tap owner may be stale (it exited since the tap was resolved): never re-track
  // a dead process, or it would "exit" twice.
  uint64_t start = proc_start_boottime_ns(opts_.proc_root, tgid);
  if (start == 0) return;
  track(VmProcess{tgid, vm, named}, start);
}

VmEvent ProcTracker::make_event(VmEvent::Kind kind, const VmProcess& p,
                                uint64_t when_boottime_ns) const {
  VmEvent ev;
  ev.kind = kind;
  ev.timestamp_ns = to_realtime(when_boottime_ns);
  ev.vm = p.vm.name;
  ev.launcher = p.vm.launcher;
  ev.pid = p.tgid;
  return ev;
}

void ProcTracker::on_event(const vs_proc_event& ev) {
  if (ev.type == VS_EV_FORK) {
    auto parent = procs_.find(ev.ppid);
    if (parent == procs_.end()) {
      programs_->untrack(ev.tgid);  // its parent is no VM of ours (any more)
      return;
    }
    VmProcess child = parent->second.proc;
    child.tgid = ev.tgid;
    procs_[ev.tgid] = Tracked{std::move(child), ev.start_boottime_ns, true};  // BPF tracks it
    return;
  }
  if (ev.type == VS_EV_EXEC) {
    std::string_view args(ev.args, std::min<size_t>(ev.args_len, sizeof(ev.args)));
    auto vm = classify_exec(ev.tgid, args, ev.args_truncated != 0, opts_);
    auto it = procs_.find(ev.tgid);
    if (!vm) {
      // A named VM process that exec'd into something else is no VM any more.
      if (it != procs_.end() && it->second.proc.named) {
        programs_->untrack(ev.tgid);
        aggregator_.forget(ev.tgid);
        procs_.erase(it);
      }
      return;
    }
    if (it != procs_.end() && !it->second.child) {
      it->second.proc = std::move(*vm);  // re-exec (e.g. a wrapper exec'ing the tender)
      return;
    }
    // A VM's child that execs a VM of its own (a launcher forking tenders) is a new VM.
    VmEvent start = make_event(VmEvent::Kind::kStart, *vm, ev.time_boottime_ns);
    start.ppid = ev.ppid;
    // Reported even if it is gone already: the next sample then reports its exit.
    track(std::move(*vm), ev.start_boottime_ns);
    adopt_children(ev.tgid);
    spdlog::info("VM {} started (pid {}, {})", start.vm, start.pid, start.launcher);
    pending_.push_back(std::move(start));
    return;
  }
  if (ev.type == VS_EV_EXIT) {
    auto it = procs_.find(ev.tgid);
    if (it == procs_.end()) return;
    if (it->second.child) {
      DepartedWait& d = departed_[it->second.proc.vm.name];
      d.run_delay_ns += ev.final.run_delay_ns;
      d.run_count += ev.final.run_count;
      aggregator_.forget(ev.tgid);
      procs_.erase(it);
      return;
    }
    VmEvent exit = make_event(VmEvent::Kind::kExit, it->second.proc, ev.time_boottime_ns);
    exit.ppid = ev.ppid;
    exit.exit_known = true;
    exit.signal = ev.exit_code & 0x7f;
    exit.exit_code = exit.signal ? 0 : (ev.exit_code >> 8) & 0xff;
    exit.lifetime_s = static_cast<double>(ev.time_boottime_ns - ev.start_boottime_ns) / 1e9;
    exit.final = ev.final;
    PrevCputime prev;
    cputime_adjust(exit.final, prev);
    spdlog::info("{}", exit.signal ? fmt::format("VM {} (pid {}) killed by signal {}", exit.vm,
                                                 exit.pid, exit.signal)
                                   : fmt::format("VM {} (pid {}) exited with status {}", exit.vm,
                                                 exit.pid, exit.exit_code));
    aggregator_.forget(ev.tgid);
    procs_.erase(it);  // BPF already deleted its map entry
    pending_.push_back(std::move(exit));
  }
}

std::vector<VmEvent> ProcTracker::poll_events() {
  if (auto st = programs_->poll(); !st) spdlog::warn("{}", st.error().message);
  return std::exchange(pending_, {});
}

Result<std::vector<VmResources>> ProcTracker::collect(std::vector<VmEvent>& gone) {
  std::vector<VmResources> out;
  if (auto st = collect(gone, out); !st) return st.error();
  return out;
}

Status ProcTracker::collect(std::vector<VmEvent>& gone, std::vector<VmResources>& out) {
  // Events first: an exit must not look like a vanished process.
  for (VmEvent& ev : poll_events()) gone.push_back(std::move(ev));
  out.clear();
  auto samples = programs_->sample();
  if (!samples) return samples.error();
  if (reader_) follow(*samples);
  const std::vector<ProcSample>& per_proc = aggregator_.aggregate(*samples);  // by tgid

  const int64_t now_boot = boottime_ns();
  out.reserve(procs_.size());
  size_t slots = 16;
  while (slots < 2 * procs_.size()) slots *= 2;
  vm_slots_.assign(slots, VmSlot{});
  auto s = per_proc.begin();
  for (auto it = procs_.begin(); it != procs_.end();) {  // both ordered by tgid: merge
    const uint32_t tgid = it->first;
    while (s != per_proc.end() && s->tgid < tgid) ++s;
    if (s == per_proc.end() || s->tgid != tgid) {
      // Exited before it was tracked (no exit event will come), or the iterator raced it.
      if (process_exists(opts_.proc_root, tgid)) {
        ++it;
        continue;
      }
      if (!it->second.child && !reader_) {
        VmEvent ev =
            make_event(VmEvent::Kind::kExit, it->second.proc, static_cast<uint64_t>(now_boot));
        if (it->second.start_boottime_ns)
          ev.lifetime_s =
              static_cast<double>(now_boot - static_cast<int64_t>(it->second.start_boottime_ns)) /
              1e9;
        gone.push_back(std::move(ev));
      }
      programs_->untrack(tgid);
      aggregator_.forget(tgid);
      it = procs_.erase(it);
      continue;
    }
    const ProcSample& p = *s;
    const VmProcess& proc = it->second.proc;
    const std::string_view name = proc.vm.name;
    VmSlot& slot = slot_of(name);
    if (slot.row == UINT32_MAX) {
      slot = VmSlot{name, static_cast<uint32_t>(out.size())};
      VmResources& fresh = out.emplace_back();
      fresh.vm = name;
      fresh.launcher = proc.vm.launcher;
      fresh.pid = tgid;
    }
    VmResources& r = out[slot.row];
    r.processes++;
    r.threads += p.threads;
    add_counters(r.counters, p.counters);
    r.rss_pages += p.rss_pages;
    r.vsize_bytes += p.vsize_bytes;
    r.text_pages += p.text_pages;
    r.data_pages += p.data_pages;
    r.stack_pages += p.stack_pages;
    if (p.start_boottime_ns)
      r.uptime_s =
          std::max(r.uptime_s,
                   static_cast<double>(now_boot - static_cast<int64_t>(p.start_boottime_ns)) / 1e9);
    ++it;
  }
  if (!departed_.empty()) add_departed(out);
  return {};
}

ProcTracker::VmSlot& ProcTracker::slot_of(std::string_view vm) {
  const size_t mask = vm_slots_.size() - 1;
  size_t slot = std::hash<std::string_view>{}(vm)&mask;
  while (vm_slots_[slot].row != UINT32_MAX && vm_slots_[slot].name != vm) slot = (slot + 1) & mask;
  return vm_slots_[slot];
}

void ProcTracker::add_departed(std::vector<VmResources>& out) {
  for (auto d = departed_.begin(); d != departed_.end();) {
    if (uint32_t row = slot_of(d->first).row; row != UINT32_MAX) {
      out[row].counters.run_delay_ns += d->second.run_delay_ns;
      out[row].counters.run_count += d->second.run_count;
      ++d;
      continue;
    }
    // No row this tick: keep it while the VM still has a process (one not sampled now).
    bool alive = false;
    for (const auto& [tgid, t] : procs_) alive = alive || t.proc.vm.name == d->first;
    d = alive ? std::next(d) : departed_.erase(d);
  }
}

}  // namespace vmscope
