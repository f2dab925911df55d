#include "attach/cleanup.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "attach/kept_state.h"
#include "attach/shared_maps.h"
#include "attach/tc_attachment.h"
#include "common/dir.h"
#include "common/unique_fd.h"

namespace vmscope {
namespace {

constexpr const char* kPinRoot = "/sys/fs/bpf/vmscope";
constexpr const char* kRunRoot = "/run/vmscope";

unsigned count_pins(const std::string& dir) {
  unsigned n = 0;
  DirHandle d(dir);
  while (const dirent* e = d.next())
    if (e->d_name[0] != '.') ++n;
  return n;
}

// Our filters (the agent's priority, and that of an attacher killed without a lock) on
// every device of the calling thread's namespace. Not the clsact hooks: they may be shared.
unsigned remove_filters() {
  unsigned n = 0;
  struct if_nameindex* list = ::if_nameindex();
  if (!list) return 0;
  for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
    for (uint32_t prio : {kClsactPriority, kTransientClsactPriority}) {
      const TcOwner owner{prio, {}};
      for (vs_dir dir : {VS_DIR_INGRESS, VS_DIR_EGRESS}) {
        if (!TcAttachment::present(static_cast<int>(i->if_index), dir, owner)) continue;
        TcAttachment::remove_left(static_cast<int>(i->if_index), dir, owner);
        ++n;
      }
    }
  }
  if_freenameindex(list);
  return n;
}

// Cleans the calling thread's namespace; an error when an agent runs in it.
Result<CleanupCounts> cleanup_here() {
  auto paths = shared_map_paths(kPinRoot, kRunRoot);
  if (!paths) return paths.error();
  auto agent = running_agent(*paths);
  if (!agent) return agent.error();
  if (*agent)
    return Error::msg(fmt::format(
        "a vmscope agent (pid {}) runs in this network namespace: stop it first (systemctl stop "
        "vmscope)",
        **agent));
  CleanupCounts c;
  c.filters = remove_filters();
  c.pins = count_pins(paths->pin_dir);
  remove_pin_dir(paths->pin_dir);
  unlink(paths->lock_file.c_str());
  c.namespaces = 1;
  return c;
}

// cleanup_here() inside another namespace, on a thread of its own (setns moves only the
// calling thread).
Result<CleanupCounts> cleanup_in(int netns_fd) {
  Result<CleanupCounts> result = Error::msg("not run");
  std::thread t([&] {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      result = Error::from_errno("enter the network namespace", errno);
      return;
    }
    result = cleanup_here();
  });
  t.join();
  return result;
}

void report(std::FILE* out, const std::string& where, const CleanupCounts& c) {
  std::fprintf(out, "%s: removed %u tc filter(s) and %u pin(s)\n", where.c_str(), c.filters,
               c.pins);
}

}  // namespace

Result<CleanupCounts> cleanup_kept_state(bool all_namespaces, std::FILE* out) {
  auto here = cleanup_here();
  if (!here) return here.error().context("vmscope cleanup of this network namespace");
  report(out, "this network namespace", *here);
  CleanupCounts total = *here;
  if (!all_namespaces) return total;

  std::map<std::string, ino_t> others;  // pin directory -> namespace inode
  DirHandle root(kPinRoot);
  while (const dirent* e = root.next()) {
    std::string_view name = e->d_name;
    if (name.rfind("net-", 0) == 0)
      others.emplace(std::string(name),
                     static_cast<ino_t>(std::strtoull(e->d_name + 4, nullptr, 10)));
  }
  bool refused = false;
  for (const auto& [name, ino] : others) {
    const std::string dir = std::string(kPinRoot) + "/" + name;
    const auto path = netns_path(ino);
    UniqueFd ns(path ? open(path->c_str(), O_RDONLY | O_CLOEXEC) : -1);
    if (ns.valid()) {
      auto c = cleanup_in(ns.get());
      if (!c) {
        std::fprintf(out, "network namespace %s: %s\n", name.c_str(), c.error().message.c_str());
        refused = true;
        continue;
      }
      report(out, "network namespace " + name, *c);
      total.filters += c->filters;
      total.pins += c->pins;
      total.namespaces += c->namespaces;
    } else {  // the namespace is gone, and its devices and filters with it
      CleanupCounts c;
      c.pins = count_pins(dir);
      remove_pin_dir(dir);
      unlink((std::string(kRunRoot) + "/" + name + ".lock").c_str());
      report(out, "network namespace " + name + " (gone)", c);
      total.pins += c.pins;
    }
  }
  // Lock files of agents that were killed (a running agent's stays).
  DirHandle run(kRunRoot);
  while (const dirent* e = run.next()) {
    std::string_view name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 5) != ".lock") continue;
    const std::string path = std::string(kRunRoot) + "/" + std::string(name);
    auto agent = running_agent(SharedMapPaths{"", path});
    if (agent && !*agent) unlink(path.c_str());
  }
  rmdir(kPinRoot);  // only when empty
  if (refused) return Error::msg("vmscope cleanup: agents run in some network namespaces");
  return total;
}

}  // namespace vmscope
