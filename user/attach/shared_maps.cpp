#include "attach/shared_maps.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "attach/kept_state.h"
#include "attach/tc_attachment.h"
#include "common/dir.h"
#include "vmscope.h"

namespace vmscope {
namespace {

// What top opens: the first four are kept state (attach/kept_state.h), pinned for the
// next agent as much as for top; tracked and recent_events are per run.
constexpr const char* kMapNames[] = {"net_stats",     "if_slot", "if_slot_far",
                                     "service_stats", "tracked", "recent_events"};
constexpr const char* kPerRunPins[] = {"tracked", "recent_events"};
// How long the pins of a namespace that looks gone stay (remove_stale_pin_dirs).
constexpr std::chrono::seconds kStalePinAge{3600};

std::string parent_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

bool is_bpffs(const std::string& path) {
  struct statfs fs;
  return statfs(path.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

void copy_name(char* dst, size_t cap, std::string_view src) {
  size_t n = std::min(cap - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

// The agent holds an open-file-description write lock on the lock file; everyone else
// only *tests* for it (F_OFD_GETLK) and never takes a lock. A reader that took even a
// brief shared lock (flock LOCK_SH) could make an agent starting at that moment fail its
// exclusive lock and run without publishing; a test places no lock, so that cannot happen.
bool try_lock_exclusive(int fd) {
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  return fcntl(fd, F_OFD_SETLK, &l) == 0;
}

// true: a running agent holds the lock; false: free; an error when the test itself fails.
Result<bool> lock_held(int fd, const std::string& path) {
  struct flock l {};
  l.l_type = F_RDLCK;
  l.l_whence = SEEK_SET;
  if (fcntl(fd, F_OFD_GETLK, &l) != 0) return Error::from_errno("check " + path, errno);
  return l.l_type != F_UNLCK;
}

// The lock file's contents: "<pid> <layout>\n". The layout tells a top started next to
// an agent of another build whether the pinned maps hold the structs it expects.
std::string lock_file_text() {
  return fmt::format("{} {}\n", getpid(), kSharedLayoutVersion);
}

struct LockFileText {
  int pid = 0;
  uint32_t layout = 0;  // 0: an agent from before layouts were written
};
LockFileText parse_lock_file(int fd) {
  char buf[64] = {};
  LockFileText t;
  if (pread(fd, buf, sizeof(buf) - 1, 0) > 0) std::sscanf(buf, "%d %u", &t.pid, &t.layout);
  return t;
}

// What top expects of each pinned map: a pin whose type or sizes differ was made by a
// build with other structs, and reading it would misread every counter.
struct MapShape {
  uint32_t type, key_size, value_size;
};
constexpr MapShape kMapShapes[] = {
    {BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t), sizeof(struct vs_dev_counters)},  // net_stats
    {BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(uint32_t)},                       // if_slot
    {BPF_MAP_TYPE_HASH, sizeof(uint32_t), sizeof(uint32_t)},                        // if_slot_far
    {BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t),
     sizeof(struct vs_service_counters)},                                  // service_stats
    {BPF_MAP_TYPE_LRU_HASH, sizeof(uint32_t), sizeof(struct vs_tracked)},  // tracked
    {BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(SharedVmEvent)},         // recent_events
};
static_assert(std::size(kMapShapes) == std::size(kMapNames));

Result<bool> shape_matches(int fd, const MapShape& want, const std::string& path) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return Error::from_errno("inspect " + path, errno);
  return info.type == want.type && info.key_size == want.key_size &&
         info.value_size == want.value_size;
}

// An agent run as a user of its own (vmscope.service) finds both directories made for it;
// run by hand, it needs the same.
const char* not_root_hint(int err) {
  return err == EACCES ? " (as a user other than root, the agent needs /run/vmscope and "
                         "/sys/fs/bpf/vmscope of its own, as vmscope.service makes them)"
                       : "";
}

}  // namespace

Result<SharedMapPaths> shared_map_paths(const std::string& bpffs_root,
                                        const std::string& run_root) {
  struct stat ns;
  if (stat("/proc/thread-self/ns/net", &ns) != 0)
    return Error::from_errno("identify the network namespace (/proc/thread-self/ns/net)", errno);
  std::string id = "net-" + std::to_string(ns.st_ino);
  return SharedMapPaths{bpffs_root + "/" + id, run_root + "/" + id + ".lock"};
}

std::optional<SharedMapPublisher> SharedMapPublisher::acquire(const SharedMapPaths& paths) {
  SharedMapPublisher p;
  p.paths_ = paths;
  mkdir(parent_of(paths.lock_file).c_str(), 0755);
  p.lock_.reset(open(paths.lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!p.lock_.valid()) {
    spdlog::warn("counters not kept for the next run nor shared with vmscope top: open {}: {}{}",
                 paths.lock_file, strerror(errno), not_root_hint(errno));
    return std::nullopt;
  }
  if (!try_lock_exclusive(p.lock_.get())) {
    spdlog::warn(
        "another vmscope run holds this network namespace ({}): this one keeps nothing for the "
        "next run, and vmscope top reads the other one",
        paths.lock_file);
    return std::nullopt;
  }
  p.owner_ = true;
  std::string text = lock_file_text();
  if (ftruncate(p.lock_.get(), 0) != 0 || pwrite(p.lock_.get(), text.data(), text.size(), 0) < 0)
    spdlog::debug("write pid to {}: {}", paths.lock_file, strerror(errno));

  const std::string root = parent_of(paths.pin_dir);
  if (!is_bpffs(parent_of(root)) && !is_bpffs(root)) {
    spdlog::warn(
        "counters not kept for the next run nor shared with vmscope top: {} is not a BPF "
        "filesystem",
        parent_of(root));
    return std::nullopt;
  }
  mkdir(root.c_str(), 0700);
  p.unpin_per_run();  // pins a killed agent left behind
  remove_stale_pin_dirs(root, parent_of(paths.lock_file));
  if (mkdir(paths.pin_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    spdlog::warn("counters not kept for the next run nor shared with vmscope top: create {}: {}{}",
                 paths.pin_dir, strerror(errno), not_root_hint(errno));
    return std::nullopt;
  }
  return p;
}

void SharedMapPublisher::publish_maps(int tracked) {
  events_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vs_recent_ev", sizeof(uint32_t),
                               sizeof(SharedVmEvent), kSharedEventSlots, nullptr));
  if (!events_.valid()) {
    spdlog::warn("VM events not shared with vmscope top: create recent_events map: {}",
                 strerror(errno));
    return;
  }
  const std::pair<const char*, int> pins[] = {{"tracked", tracked},
                                              {"recent_events", events_.get()}};
  for (const auto& [name, fd] : pins) {
    if (fd < 0) continue;
    std::string path = paths_.pin_dir + "/" + name;
    if (bpf_obj_pin(fd, path.c_str()) != 0)
      spdlog::warn("not shared with vmscope top: pin {}: {}", path, strerror(errno));
  }
  spdlog::debug("maps pinned in {} for vmscope top", paths_.pin_dir);
}

std::optional<std::string> netns_path(ino_t ino) {
  struct stat st;
  auto is_it = [&](const std::string& path) {
    return stat(path.c_str(), &st) == 0 && st.st_ino == ino;
  };
  for (const char* dir : {"/run/netns", "/var/run/netns"}) {
    DirHandle d(dir);
    while (const dirent* e = d.next())
      if (e->d_name[0] != '.')
        if (std::string path = std::string(dir) + "/" + e->d_name; is_it(path)) return path;
  }
  DirHandle proc("/proc");
  while (const dirent* e = proc.next())
    if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
      if (std::string path = std::string("/proc/") + e->d_name + "/ns/net"; is_it(path))
        return path;
  return std::nullopt;
}

Result<std::optional<int>> running_agent(const SharedMapPaths& paths) {
  UniqueFd lock(::open(paths.lock_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!lock.valid()) return std::optional<int>();
  auto held = lock_held(lock.get(), paths.lock_file);
  if (!held) return held.error();
  if (!*held) return std::optional<int>();
  return std::optional<int>(parse_lock_file(lock.get()).pid);
}

void remove_stale_pin_dirs(const std::string& root, const std::string& run_root) {
  DirHandle dir(root);
  while (const dirent* e = dir.next()) {
    std::string_view name = e->d_name;
    if (name.rfind("net-", 0) != 0) continue;
    const std::string lock_path = run_root + "/" + std::string(name) + ".lock";
    UniqueFd lock(open(lock_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (lock.valid()) {
      auto held = lock_held(lock.get(), lock_path);
      if (!held || *held) continue;  // its agent runs (or we cannot tell: leave it)
    }
    const auto ino = static_cast<ino_t>(std::strtoull(name.data() + 4, nullptr, 10));
    if (netns_path(ino)) continue;  // kept for the namespace's next agent
    // A namespace named only in another mount namespace (a container's or chroot's
    // /run/netns) looks gone from here: its pins stay while a kept tcx link is still on a
    // device, or while they are recent (its agent may just be restarting).
    const std::string pin_dir = root + "/" + std::string(name);
    struct stat st;
    if (stat(pin_dir.c_str(), &st) != 0 || time(nullptr) - st.st_mtime < kStalePinAge.count() ||
        kept_links_attached(pin_dir))
      continue;
    spdlog::debug("removing pins of a network namespace that is gone: {}/{}", root, name);
    remove_pin_dir(pin_dir);
    unlink(lock_path.c_str());
  }
}

SharedMapPublisher::SharedMapPublisher(SharedMapPublisher&& o) noexcept
    : paths_(std::move(o.paths_)),
      lock_(std::move(o.lock_)),
      events_(std::move(o.events_)),
      seq_(o.seq_),
      owner_(std::exchange(o.owner_, false)) {}

SharedMapPublisher::~SharedMapPublisher() {
  if (!owner_) return;  // moved from, or another agent's lock
  // Pins first, then the lock file, still locked: an agent starting now locks a new
  // file only after the old pins are gone, and a reader of the old file finds it free.
  // The kept state stays for the next agent.
  unpin_per_run();
  unlink(paths_.lock_file.c_str());
}

void SharedMapPublisher::unpin_per_run() {
  for (const char* name : kPerRunPins) unlink((paths_.pin_dir + "/" + name).c_str());
}

void SharedMapPublisher::publish(const std::vector<VmEvent>& events) {
  if (!events_.valid()) return;
  for (const VmEvent& e : events) {
    SharedVmEvent r{};
    r.seq = ++seq_;
    r.timestamp_ns = e.timestamp_ns;
    r.kind = static_cast<uint32_t>(e.kind);
    r.pid = e.pid;
    r.ppid = e.ppid;
    r.exit_code = e.exit_code;
    r.signal = e.signal;
    r.exit_known = e.exit_known;
    r.lifetime_us = static_cast<uint64_t>(e.lifetime_s * 1e6);
    copy_name(r.vm, sizeof(r.vm), e.vm);
    copy_name(r.launcher, sizeof(r.launcher), e.launcher);
    uint32_t slot = static_cast<uint32_t>(r.seq % kSharedEventSlots);
    bpf_map_update_elem(events_.get(), &slot, &r, BPF_ANY);
  }
}

Result<std::optional<SharedMaps>> SharedMaps::open(const SharedMapPaths& paths) {
  UniqueFd lock(::open(paths.lock_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!lock.valid()) return std::optional<SharedMaps>();  // no agent ever ran here
  auto held = lock_held(lock.get(), paths.lock_file);
  if (!held) return held.error();
  if (!*held) return std::optional<SharedMaps>();  // none runs now

  SharedMaps m;
  LockFileText text = parse_lock_file(lock.get());
  m.agent_pid = text.pid;
  if (text.layout != kSharedLayoutVersion)
    return Error::msg(fmt::format(
        "the running vmscope agent (pid {}) shares maps of layout {}, this vmscope top reads "
        "layout {}: run the top of the agent's build, or restart the agent with this build",
        m.agent_pid, text.layout, kSharedLayoutVersion));
  struct bpf_obj_get_opts ro {};
  ro.sz = sizeof(ro);
  ro.file_flags = BPF_F_RDONLY;
  UniqueFd* fds[] = {&m.net_stats,     &m.if_slot, &m.if_slot_far,
                     &m.service_stats, &m.tracked, &m.events};
  for (size_t i = 0; i < std::size(fds); ++i) {
    std::string path = paths.pin_dir + "/" + kMapNames[i];
    fds[i]->reset(bpf_obj_get_opts(path.c_str(), &ro));
    bool optional = std::string_view(kMapNames[i]) == "tracked";
    if (!fds[i]->valid()) {
      if (optional) continue;
      return Error::from_errno(
          fmt::format("open {} of the running vmscope agent (pid {})", path, m.agent_pid), errno);
    }
    auto same = shape_matches(fds[i]->get(), kMapShapes[i], path);
    if (!same) return same.error();
    if (!*same)
      return Error::msg(fmt::format(
          "{} of the running vmscope agent (pid {}) holds other structs than this vmscope top "
          "reads: run the top of the agent's build, or restart the agent with this build",
          path, m.agent_pid));
  }
  UniqueFd* carry[] = {&m.net_carry, &m.service_carry};
  for (size_t i = 0; i < std::size(kCarryMapNames); ++i)
    carry[i]->reset(bpf_obj_get_opts((paths.pin_dir + "/" + kCarryMapNames[i]).c_str(), &ro));
  return std::optional<SharedMaps>(std::move(m));
}

std::vector<VmEvent> SharedMaps::new_events(uint64_t& last_seq) const {
  std::vector<SharedVmEvent> recs;
  for (uint32_t slot = 0; slot < kSharedEventSlots; ++slot) {
    SharedVmEvent r{};
    if (bpf_map_lookup_elem(events.get(), &slot, &r) == 0 && r.seq > last_seq) recs.push_back(r);
  }
  std::sort(recs.begin(), recs.end(),
            [](const SharedVmEvent& a, const SharedVmEvent& b) { return a.seq < b.seq; });
  std::vector<VmEvent> out;
  for (const SharedVmEvent& r : recs) {
    VmEvent& e = out.emplace_back();
    e.kind = static_cast<VmEvent::Kind>(r.kind);
    e.timestamp_ns = r.timestamp_ns;
    e.vm.assign(r.vm, strnlen(r.vm, sizeof(r.vm)));
    e.launcher.assign(r.launcher, strnlen(r.launcher, sizeof(r.launcher)));
    e.pid = r.pid;
    e.ppid = r.ppid;
    e.exit_known = r.exit_known != 0;
    e.exit_code = r.exit_code;
    e.signal = r.signal;
    e.lifetime_s = static_cast<double>(r.lifetime_us) / 1e6;
    last_seq = r.seq;
  }
  return out;
}

}  // namespace vmscope
