// How `vmscope top` reads a running `vmscope run` instead of attaching a second set of
// programs: the agent pins its counter maps under /sys/fs/bpf/vmscope/net-<netns>/ and
// holds a lock (an open-file-description write lock) on /run/vmscope/net-<netns>.lock
// while it runs; top tests for that lock without taking one, checks that the pins hold
// the layout it reads, opens them read-only and reads the same counters.
//
// Everything is per network namespace (the inode of /proc/self/ns/net): taps and their
// ifindexes only mean something inside one, and an agent per namespace is normal in
// tests and on hosts that split VMs by namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "drain/vm_resources.h"

namespace vmscope {

// One VM event in the recent_events map: the agent writes what it emitted, top shows
// them. Written by user space only (no BPF program touches it), so it lives here and
// not in bpf/vmscope.h.
struct SharedVmEvent {
  uint64_t seq;  // 1, 2, ...; 0 = empty slot. Slot = seq % kSharedEventSlots.
  int64_t timestamp_ns;
  uint32_t kind;  // VmEvent::Kind
  uint32_t pid, ppid;
  int32_t exit_code, signal;
  uint32_t exit_known;
  uint64_t lifetime_us;
  char vm[96];
  char launcher[32];
};
constexpr uint32_t kSharedEventSlots = 64;

// Version of what an agent shares (the structs of bpf/vmscope.h in the pinned maps and
// SharedVmEvent), written into the lock file. Bump it whenever any of them changes
// meaning, also without a size change: a top of another layout refuses to read.
// 2: vs_tracked's dead_run_*, I/O counters; 3: service_stats (vs_service_counters)
constexpr uint32_t kSharedLayoutVersion = 3;

struct SharedMapPaths {
  std::string pin_dir;    // /sys/fs/bpf/vmscope/net-<ino>
  std::string lock_file;  // /run/vmscope/net-<ino>.lock
};
// Paths for the calling thread's network namespace, under the given roots.
Result<SharedMapPaths> shared_map_paths(const std::string& bpffs_root = "/sys/fs/bpf/vmscope",
                                        const std::string& run_root = "/run/vmscope");

// The agent's side: holds the namespace's lock for as long as it lives. Only the holder
// keeps kernel state in the pin directory (attach/kept_state.h: the counter maps top also
// reads, the tcx links) and pins its per-run maps (tracked, recent_events) for top; at
// exit it removes the per-run pins and the lock file, and leaves the kept state.
class SharedMapPublisher {
 public:
  // nullopt (with the reason logged) when publishing is impossible or another agent of
  // this namespace already holds the lock: the agent runs on either way, keeping nothing.
  static std::optional<SharedMapPublisher> acquire(const SharedMapPaths& paths);
  SharedMapPublisher(SharedMapPublisher&&) noexcept;
  SharedMapPublisher& operator=(SharedMapPublisher&&) = delete;
  ~SharedMapPublisher();

  // Where this agent keeps its kernel state (the pin directory).
  const std::string& keep_dir() const { return paths_.pin_dir; }
  // Pins the per-run maps for top; tracked may be -1 (no process programs).
  void publish_maps(int tracked);
  // Records VM events for top (the last kSharedEventSlots are kept).
  void publish(const std::vector<VmEvent>& events);

 private:
  SharedMapPublisher() = default;
  void unpin_per_run();
  SharedMapPaths paths_;
  UniqueFd lock_;
  UniqueFd events_;
  uint64_t seq_ = 0;
  bool owner_ = false;  // holds the lock: the pins and the lock file are ours to remove
};

// Whether an agent holds the lock of these paths now (what `vmscope cleanup` refuses),
// with its pid; nullopt when none does.
Result<std::optional<int>> running_agent(const SharedMapPaths& paths);

// A path naming the network namespace with inode ino (its /run/netns entry, or a
// process's /proc/<pid>/ns/net), or nullopt when it exists no more.
std::optional<std::string> netns_path(ino_t ino);

// Pin directories of namespaces that are gone (no process, no /run/netns entry) and that
// no agent holds: nobody would ever remove them otherwise.
void remove_stale_pin_dirs(const std::string& bpffs_root, const std::string& run_root);

// top's side: the maps of the agent running in this namespace, read-only.
struct SharedMaps {
  int agent_pid = 0;
  UniqueFd net_stats, if_slot, if_slot_far, service_stats, tracked,
      events;                         // tracked may be invalid
  UniqueFd net_carry, service_carry;  // attach/kept_state.h; invalid if the agent has none

  // nullopt when no agent runs here (the lock is free); an error when one runs but its
  // maps cannot be opened.
  static Result<std::optional<SharedMaps>> open(const SharedMapPaths& paths);
  // Events with seq > last_seq, oldest first; advances last_seq.
  std::vector<VmEvent> new_events(uint64_t& last_seq) const;
};

}  // namespace vmscope
