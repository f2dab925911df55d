// VMs and agents in roots of their own (chroots, containers with --pid=host and their own
// /dev): the agent still ties each tap to the VM that holds it. The path a tap fd's link
// reads depends on who reads it (a VM in another root shows as "<root>/dev/net/tun"), so
// discovery must recognise the tun device itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "test_env.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

// An empty directory to mount a root on, removed with rmdir only: were a mount ever left
// on it, a recursive removal would walk into the bound host root.
struct MountPoint {
  MountPoint() {
    char tmpl[] = "/tmp/vmscope-root-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    path = tmpl;
  }
  ~MountPoint() { ::rmdir(path.c_str()); }
  MountPoint(const MountPoint&) = delete;
  MountPoint& operator=(const MountPoint&) = delete;
  std::string path;
};

// `cmd` run in a private mount namespace, chrooted to the host's tree bound on `dir` with
// a /dev of its own (a tmpfs holding its own tun and null nodes) and a fresh /proc: what a
// container with the host's pid namespace sees. Its mounts vanish with the namespace.
std::string in_own_root(const std::string& dir, const std::string& cmd) {
  const std::string r = shq(dir);
  const std::string setup =
      "mount --make-rprivate / && mount --rbind / " + r + " && mount -t tmpfs -o mode=755 devtmp " +
      r + "/dev && mkdir " + r + "/dev/net && mknod -m 666 " + r +
      "/dev/net/tun c 10 200 && mknod -m 666 " + r + "/dev/null c 1 3 && mount -t proc proc " + r +
      "/proc && exec chroot " + r + " " + cmd;
  return "unshare --mount --propagation private sh -c " + shq(setup);
}

// tap_holder posing as a qemu guest `name` on `tap` in `ns`; in its own root when `dir`
// is set. Ready when returned.
std::unique_ptr<Child> qemu_on_tap(const Netns& ns, const std::string& name, const std::string& tap,
                                   const std::string& dir = {}) {
  const std::string holder = "exec -a qemu-system-x86_64 " + shq(helper_bin("tap_holder")) +
                             " -name guest=" + name + " -netdev tap,id=n0,ifname=" + tap;
  const std::string cmd = dir.empty() ? holder : in_own_root(dir, "bash -c " + shq(holder));
  auto c = std::make_unique<Child>("/bin/bash", std::vector<std::string>{"-c", cmd},
                                   SpawnOptions{ns.name(), "", {}, true});
  if (!c->wait_line([](const std::string& l) { return l.rfind("ready", 0) == 0; }, 5s))
    throw std::runtime_error("tap_holder did not start: " + c->stderr_text());
  return c;
}

// The columns of the `vmscope list` line that starts with `first`, or none.
std::vector<std::string> list_row(const std::string& listing, const std::string& first) {
  std::stringstream ls(listing);
  for (std::string line; std::getline(ls, line);) {
    std::stringstream ws(line);
    std::vector<std::string> cols;
    for (std::string w; ws >> w;) cols.push_back(w);
    if (!cols.empty() && cols[0] == first) return cols;
  }
  return {};
}

// VM PID LAUNCHER ... TAPS BRIDGE: the VM, named, with its pid, launcher and tap; its tap
// not listed alone as a tap nobody holds.
void expect_named(const std::string& listing, const std::string& vm, const std::string& tap,
                  pid_t pid) {
  EXPECT_NE(listing.find("exit status 0\n"), std::string::npos) << listing;
  const std::vector<std::string> row = list_row(listing, vm);
  ASSERT_GE(row.size(), 4u) << vm << " not listed:\n" << listing;
  EXPECT_EQ(row[1], std::to_string(pid)) << listing;
  EXPECT_EQ(row[2], "qemu") << listing;
  EXPECT_EQ(std::count(row.begin(), row.end(), tap), 1) << listing;
  EXPECT_TRUE(list_row(listing, tap).empty()) << "listed as a bare tap:\n" << listing;
}

// `vmscope list` and its exit status, as one shell command.
std::string list_cmd() {
  return "sh -c " + shq(vmscope_bin() + " list 2>&1; echo \"exit status $?\"");
}

// The agent in a container of its own: its /proc/<pid>/fd links of host VMs read as paths
// outside its root.
TEST(OwnRoot, AgentInItsOwnRootNamesHostVms) {
  Netns ns;
  MountPoint root;
  auto vm = qemu_on_tap(ns, "hostvm1", "tapown0");
  const std::string listing = ns.capture(in_own_root(root.path, list_cmd()));
  expect_named(listing, "hostvm1", "tapown0", vm->pid());
}

// A VM in a container (or chroot) of its own, the agent on the host: the VM's tap fd link
// reads "<root>/dev/net/tun", the tun node of its own /dev.
TEST(OwnRoot, AgentNamesVmsInOtherRoots) {
  Netns ns;
  MountPoint vm_root, agent_root;
  auto vm = qemu_on_tap(ns, "boxvm1", "tapown1", vm_root.path);
  const std::string link =
      capture("readlink /proc/" + std::to_string(vm->pid()) + "/fd/* | grep tun$");
  EXPECT_NE(link, "/dev/net/tun\n") << "the VM's tun fd should read as a path in its own root";
  expect_named(ns.capture(list_cmd()), "boxvm1", "tapown1", vm->pid());
  // Both in roots of their own.
  expect_named(ns.capture(in_own_root(agent_root.path, list_cmd())), "boxvm1", "tapown1",
               vm->pid());
}

}  // namespace
}  // namespace vmscope::test
