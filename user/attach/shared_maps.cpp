#include "attach/shared_maps.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstring>

#include "common/dir.h"

namespace vmscope {
namespace {

constexpr const char* kMapNames[] = {"net_stats", "if_slot", "if_slot_far", "tracked",
                                     "recent_events"};

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

void remove_pins(const std::string& dir) {
  for (const char* name : kMapNames) unlink((dir + "/" + name).c_str());
  rmdir(dir.c_str());
}

// Pins of agents that were killed in namespaces that are gone by now: nobody else would
// ever remove them, and each holds its maps (megabytes) in the kernel. A pin directory
// whose lock nobody holds belongs to no running agent.
void remove_stale_pins(const std::string& root, const std::string& run_root) {
  DirHandle dir(root);
  while (const dirent* e = dir.next()) {
    std::string_view name = e->d_name;
    if (name.rfind("net-", 0) != 0) continue;
    UniqueFd lock(
        open((run_root + "/" + std::string(name) + ".lock").c_str(), O_RDONLY | O_CLOEXEC));
    if (lock.valid() && flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;  // its agent runs
    spdlog::debug("removing stale pins {}/{}", root, name);
    remove_pins(root + "/" + std::string(name));
  }
}

}  // namespace

Result<SharedMapPaths> shared_map_paths(const std::string& bpffs_root,
                                        const std::string& run_root) {
  struct stat ns;
  if (stat("/proc/self/ns/net", &ns) != 0)
    return Error::from_errno("identify the network namespace (/proc/self/ns/net)", errno);
  std::string id = "net-" + std::to_string(ns.st_ino);
  return SharedMapPaths{bpffs_root + "/" + id, run_root + "/" + id + ".lock"};
}

std::optional<SharedMapPublisher> SharedMapPublisher::create(const SharedMapPaths& paths,
                                                             const Maps& maps) {
  SharedMapPublisher p;
  p.paths_ = paths;
  mkdir(parent_of(paths.lock_file).c_str(), 0755);
  p.lock_.reset(open(paths.lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!p.lock_.valid()) {
    spdlog::info("maps not shared with vmscope top: open {}: {}", paths.lock_file, strerror(errno));
    return std::nullopt;
  }
  if (flock(p.lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    spdlog::warn(
        "another vmscope run publishes its maps for this network namespace ({}); vmscope top "
        "will read that one",
        paths.lock_file);
    return std::nullopt;
  }
  p.owner_ = true;
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(p.lock_.get(), 0) != 0 || pwrite(p.lock_.get(), pid.data(), pid.size(), 0) < 0)
    spdlog::debug("write pid to {}: {}", paths.lock_file, strerror(errno));

  const std::string root = parent_of(paths.pin_dir);
  if (!is_bpffs(parent_of(root)) && !is_bpffs(root)) {
    spdlog::info("maps not shared with vmscope top: {} is not a BPF filesystem", parent_of(root));
    return std::nullopt;
  }
  mkdir(root.c_str(), 0700);
  p.unpin();  // pins a killed agent left behind
  remove_stale_pins(root, parent_of(paths.lock_file));
  if (mkdir(paths.pin_dir.c_str(), 0700) != 0) {
    spdlog::warn("maps not shared with vmscope top: create {}: {}", paths.pin_dir, strerror(errno));
    return std::nullopt;
  }

  p.events_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vs_recent_ev", sizeof(uint32_t),
                                 sizeof(SharedVmEvent), kSharedEventSlots, nullptr));
  if (!p.events_.valid()) {
    spdlog::warn("maps not shared with vmscope top: create recent_events map: {}", strerror(errno));
    return std::nullopt;
  }
  const int fds[] = {maps.net_stats, maps.if_slot, maps.if_slot_far, maps.tracked, p.events_.get()};
  for (size_t i = 0; i < std::size(fds); ++i) {
    if (fds[i] < 0) continue;
    std::string path = paths.pin_dir + "/" + kMapNames[i];
    if (bpf_obj_pin(fds[i], path.c_str()) != 0) {
      spdlog::warn("maps not shared with vmscope top: pin {}: {}", path, strerror(errno));
      p.unpin();
      return std::nullopt;
    }
  }
  spdlog::debug("maps pinned in {} for vmscope top", paths.pin_dir);
  return p;
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
  unpin();
  unlink(paths_.lock_file.c_str());
}

void SharedMapPublisher::unpin() {
  remove_pins(paths_.pin_dir);
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
  if (flock(lock.get(), LOCK_SH | LOCK_NB) == 0) return std::optional<SharedMaps>();  // none now
  if (errno != EWOULDBLOCK) return Error::from_errno("check " + paths.lock_file, errno);

  SharedMaps m;
  char buf[32] = {};
  if (pread(lock.get(), buf, sizeof(buf) - 1, 0) > 0) m.agent_pid = std::atoi(buf);
  struct bpf_obj_get_opts ro {};
  ro.sz = sizeof(ro);
  ro.file_flags = BPF_F_RDONLY;
  UniqueFd* fds[] = {&m.net_stats, &m.if_slot, &m.if_slot_far, &m.tracked, &m.events};
  for (size_t i = 0; i < std::size(fds); ++i) {
    std::string path = paths.pin_dir + "/" + kMapNames[i];
    fds[i]->reset(bpf_obj_get_opts(path.c_str(), &ro));
    bool optional = std::string_view(kMapNames[i]) == "tracked";
    if (!fds[i]->valid() && !optional)
      return Error::from_errno(
          fmt::format("open {} of the running vmscope agent (pid {})", path, m.agent_pid), errno);
  }
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
