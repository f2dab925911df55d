// Owner of the process programs, which share the `tracked` map of VM processes:
// - the lifecycle tracepoints (bpf/proc.bpf.c): exec, fork (a tracked process's children
//   are tracked from birth) and exit, reported through the proc_events ring buffer;
// - the sampler, run once per tick: the task-list walk (bpf/tasks_walk.bpf.c, one record
//   per tracked process, kernel 6.7+), else the iter/task pass (bpf/tasks.bpf.c, one
//   record per thread).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/mapping.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmscope.h"

struct proc_bpf;
struct tasks_bpf;
struct tasks_walk_bpf;
struct ring_buffer;
struct bpf_link;

namespace vmscope {

class ProcPrograms {
 public:
  using EventFn = std::function<void(const vs_proc_event&)>;

  // Loads and attaches the lifecycle programs and the sampler; on_event receives ring
  // buffer records (from poll()).
  static Result<std::unique_ptr<ProcPrograms>> load(EventFn on_event);
  // Only the sampler, over another agent's `tracked` map (see attach/shared_maps.h): no
  // lifecycle programs, no events, and the map is never written.
  static Result<std::unique_ptr<ProcPrograms>> load_reader(int tracked_fd);
  // Only load() and load_reader() construct: the object must not move (the ring buffer
  // points at it).
  struct Key {
   private:
    Key() = default;
    friend class ProcPrograms;
  };
  explicit ProcPrograms(Key) {}
  ~ProcPrograms();
  ProcPrograms(const ProcPrograms&) = delete;
  ProcPrograms& operator=(const ProcPrograms&) = delete;

  // The ring buffer's epoll fd: readable when events wait (-1 for a reader).
  int events_fd() const;
  // Delivers every waiting event to on_event, without blocking.
  Status poll();

  Status track(uint32_t tgid, uint64_t start_boottime_ns);
  void untrack(uint32_t tgid);
  uint64_t lost_events() const;

  // One pass over the tasks: records of every tracked process (one per process from the
  // task-list walk, one per thread from the task iterator where the walk cannot load),
  // valid until the next call. The walk's records are read where the kernel wrote them
  // (at 10,000 VMs a copy is 3.5 MB more to read, write and keep resident per tick).
  Result<std::span<const vs_task_sample>> sample();

  // Appends the fd of every loaded program (lifecycle hooks and sampler), for run-time
  // statistics.
  void program_fds(std::vector<int>& out) const;
  int tracked_fd() const;
  // Whether the sampler is the task-list walk (kernel 6.7+), not the task iterator.
  bool walks_task_list() const { return walk_ != nullptr; }

 private:
  struct Deleters {
    void operator()(proc_bpf* s) const;
    void operator()(tasks_bpf* s) const;
    void operator()(tasks_walk_bpf* s) const;
    void operator()(ring_buffer* r) const;
    void operator()(bpf_link* l) const;
  };
  static int on_ring_record(void* ctx, void* data, size_t size);

  EventFn on_event_;
  std::unique_ptr<proc_bpf, Deleters> proc_;
  // Sampling: the task-list walk (kernel 6.7+), else the task iterator.
  Status load_sampler(int tracked_fd);
  Status load_walk(int tracked_fd);
  Status load_iterator(int tracked_fd);
  std::unique_ptr<tasks_walk_bpf, Deleters> walk_;
  Mapping<vs_task_sample> walk_records_;  // the walk's output array, read-only,
  uint32_t mapped_records_ = 0;           // its first mapped_records_ entries
  std::unique_ptr<tasks_bpf, Deleters> tasks_;
  std::unique_ptr<bpf_link, Deleters> iter_link_;
  std::unique_ptr<ring_buffer, Deleters> ring_;
  std::vector<char> read_buf_;
  std::vector<vs_task_sample> iter_records_;  // the task iterator's, copied out of read()
};

}  // namespace vmscope
