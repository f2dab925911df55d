#include "attach/proc_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/bpf_programs.h"
#include "drain/cpu_limit.h"
#include "proc.skel.h"
#include "tasks.skel.h"
#include "tasks_walk.skel.h"

namespace vmscope {

void ProcPrograms::Deleters::operator()(proc_bpf* s) const {
  proc_bpf__destroy(s);
}
void ProcPrograms::Deleters::operator()(tasks_bpf* s) const {
  tasks_bpf__destroy(s);
}
void ProcPrograms::Deleters::operator()(tasks_walk_bpf* s) const {
  tasks_walk_bpf__destroy(s);
}
void ProcPrograms::Deleters::operator()(ring_buffer* r) const {
  ring_buffer__free(r);
}
void ProcPrograms::Deleters::operator()(bpf_link* l) const {
  bpf_link__destroy(l);
}

ProcPrograms::~ProcPrograms() = default;

int ProcPrograms::on_ring_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<ProcPrograms*>(ctx);
  // A record is the head and args_len bytes of args (bpf/vmscope.h); a shorter one is no
  // event of ours.
  if (size < VS_PROC_EVENT_HEAD_LEN) return 0;
  vs_proc_event ev{};
  const size_t copied = std::min(size, sizeof(ev));
  std::memcpy(&ev, data, copied);
  ev.args_len =
      static_cast<uint32_t>(std::min<size_t>(ev.args_len, copied - VS_PROC_EVENT_HEAD_LEN));
  self->on_event_(ev);
  return 0;
}

Result<std::unique_ptr<ProcPrograms>> ProcPrograms::load(EventFn on_event) {
  auto p = std::make_unique<ProcPrograms>(Key{});
  p->on_event_ = std::move(on_event);

  p->proc_.reset(proc_bpf__open_and_load());
  if (!p->proc_)
    return Error::from_errno("load BPF process lifecycle programs (proc.bpf.o)", errno);
  if (proc_bpf__attach(p->proc_.get()))
    return Error::from_errno("attach sched_process_exec/fork/exit tracepoints", errno);

  if (auto st = p->load_sampler(bpf_map__fd(p->proc_->maps.tracked)); !st) return st.error();

  p->ring_.reset(
      ring_buffer__new(bpf_map__fd(p->proc_->maps.proc_events), on_ring_record, p.get(), nullptr));
  if (!p->ring_) return Error::from_errno("open proc_events ring buffer", errno);
  return p;
}

Result<std::unique_ptr<ProcPrograms>> ProcPrograms::load_reader(int tracked_fd) {
  auto p = std::make_unique<ProcPrograms>(Key{});
  if (auto st = p->load_sampler(tracked_fd); !st) return st.error();
  return p;
}

// The task-list walk where the kernel has it, else the task iterator; both read the
// given `tracked` map (ours, or the running agent's for a reader).
Status ProcPrograms::load_sampler(int tracked_fd) {
  // Either sums the rss percpu_counters over the CPUs up to VS_MAX_CPUS.
  if (auto cpus = possible_cpus(); !cpus) return cpus.error().context("load BPF task sampler");
  if (auto walk = load_walk(tracked_fd); !walk) {
    spdlog::info("process sampling by task iterator ({})", walk.error().message);
    return load_iterator(tracked_fd);
  }
  return {};
}

Status ProcPrograms::load_walk(int tracked_fd) {
  walk_.reset(tasks_walk_bpf__open());
  if (!walk_) return Error::from_errno("open BPF task-list walk (tasks_walk.bpf.o)", errno);
  walk_->rodata->nr_cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());
  if (bpf_map__reuse_fd(walk_->maps.tracked, tracked_fd) || tasks_walk_bpf__load(walk_.get())) {
    int err = errno;
    walk_.reset();
    return Error::from_errno("load BPF task-list walk (tasks_walk.bpf.o, kernel 6.7+)", err);
  }
  return {};
}

Status ProcPrograms::load_iterator(int tracked_fd) {
  tasks_.reset(tasks_bpf__open());
  if (!tasks_) return Error::from_errno("open BPF task iterator (tasks.bpf.o)", errno);
  tasks_->rodata->nr_cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());
  if (bpf_map__reuse_fd(tasks_->maps.tracked, tracked_fd))
    return Error::from_errno("share the tracked map with the task iterator", errno);
  if (tasks_bpf__load(tasks_.get()))
    return Error::from_errno("load BPF task iterator (tasks.bpf.o)", errno);
  iter_link_.reset(bpf_program__attach_iter(tasks_->progs.vs_tasks, nullptr));
  if (!iter_link_) return Error::from_errno("attach task iterator", errno);
  return {};
}

int ProcPrograms::tracked_fd() const {
  return walk_ ? bpf_map__fd(walk_->maps.tracked) : bpf_map__fd(tasks_->maps.tracked);
}

int ProcPrograms::events_fd() const {
  return ring_ ? ring_buffer__epoll_fd(ring_.get()) : -1;
}

Status ProcPrograms::poll() {
  if (!ring_) return {};
  int n = ring_buffer__consume(ring_.get());
  if (n < 0) return Error::from_errno("read proc_events", -n);
  return {};
}

Status ProcPrograms::track(uint32_t tgid, uint64_t start_boottime_ns) {
  if (!proc_) return {};  // a reader never writes the agent's map
  const int fd = bpf_map__fd(proc_->maps.tracked);
  // An entry of this very process (BPF tracks forks from birth) already collects what its
  // exiting threads leave (dead_run_*): keep it. Start times from /proc are whole clock
  // ticks, BPF's are ns: the same process when within one tick.
  static const uint64_t tick_ns = 1'000'000'000 / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  vs_tracked v{};
  if (bpf_map_lookup_elem(fd, &tgid, &v) == 0 &&
      std::max<uint64_t>(v.start_boottime_ns, start_boottime_ns) -
              std::min<uint64_t>(v.start_boottime_ns, start_boottime_ns) <
          tick_ns)
    return {};
  v = vs_tracked{start_boottime_ns, 0, 0};
  if (bpf_map_update_elem(fd, &tgid, &v, BPF_ANY))
    return Error::from_errno(fmt::format("track pid {}", tgid), errno);
  return {};
}

void ProcPrograms::untrack(uint32_t tgid) {
  if (!proc_) return;
  bpf_map_delete_elem(bpf_map__fd(proc_->maps.tracked), &tgid);  // gone already is fine
}

uint64_t ProcPrograms::lost_events() const {
  if (!proc_) return 0;
  int ncpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(proc_->maps.proc_events_lost), &zero, per_cpu.data()))
    return 0;
  uint64_t sum = 0;
  for (uint64_t v : per_cpu) sum += v;
  return sum;
}

Result<std::span<const vs_task_sample>> ProcPrograms::sample() {
  if (walk_) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    if (bpf_prog_test_run_opts(bpf_program__fd(walk_->progs.vs_tasks), &opts))
      return Error::from_errno("run the task-list walk", errno);
    const auto* bss = walk_->bss;
    if (bss->walk_truncated)
      return Error::msg(
          fmt::format("task-list walk: more than {} records (tracked processes)", VS_WALK_MAX));
    const uint32_t n = std::min<uint32_t>(bss->walk_records, VS_WALK_MAX);
    // Mapped as far as used (common/mapping.h), growing with the VM processes.
    if (n > mapped_records_) {
      const auto want = static_cast<uint32_t>(mapping_size(n, VS_WALK_MAX));
      walk_records_.reset();
      mapped_records_ = 0;
      auto m = map_readonly<vs_task_sample>(bpf_map__fd(walk_->maps.walk), want,
                                            "task-list walk records");
      if (!m) return m.error();
      walk_records_ = std::move(*m);
      mapped_records_ = want;
    }
    return std::span<const vs_task_sample>(walk_records_.get(), n);
  }
  std::vector<vs_task_sample>& out = iter_records_;
  out.clear();
  UniqueFd fd(bpf_iter_create(bpf_link__fd(iter_link_.get())));
  if (!fd.valid()) return Error::from_errno("start task iterator", errno);
  // Large reads: the kernel fills its whole seq buffer (32 KiB) per read() and restarts
  // the task walk once per read, so a small buffer means many restarts.
  constexpr size_t kReadBytes = 256 * 1024;
  if (read_buf_.size() < kReadBytes) read_buf_.resize(kReadBytes);
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd.get(), read_buf_.data() + have, read_buf_.size() - have);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Error::from_errno("read task iterator", errno);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
    const size_t whole = have / sizeof(vs_task_sample);
    const size_t first = out.size();
    out.resize(first + whole);
    std::memcpy(static_cast<void*>(out.data() + first), read_buf_.data(),
                whole * sizeof(vs_task_sample));
    const size_t rest = have - whole * sizeof(vs_task_sample);
    std::memmove(read_buf_.data(), read_buf_.data() + whole * sizeof(vs_task_sample), rest);
    have = rest;
  }
  return std::span<const vs_task_sample>(out);
}

void ProcPrograms::program_fds(std::vector<int>& out) const {
  if (proc_) append_program_fds(proc_->obj, out);
  if (walk_) append_program_fds(walk_->obj, out);
  if (tasks_) append_program_fds(tasks_->obj, out);
}

}  // namespace vmscope
