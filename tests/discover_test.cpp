// Discovery without root: a fake /proc tree (fd symlinks to /dev/net/tun, fdinfo with
// "iff:") drives tap ownership, naming and the bridge tag through Inventory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/dir.h"
#include "discover/inventory.h"
#include "discover/tap_owners.h"

namespace vmscope {
namespace {

namespace fs = std::filesystem;

class FakeProc {
 public:
  FakeProc() {
    char tmpl[] = "/tmp/vmscope-proc-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~FakeProc() { fs::remove_all(root_); }
  const std::string& root() const { return root_; }

  // A process holding `tap` on fd 5 (and an unrelated fd 3).
  void add(int pid, const std::vector<std::string>& argv, const std::string& tap,
           const std::string& cgroup = "0::/user.slice\n") {
    fs::path p = fs::path(root_) / std::to_string(pid);
    fs::create_directories(p / "fd");
    fs::create_directories(p / "fdinfo");
    std::string cmdline;
    for (const auto& a : argv) cmdline += a + '\0';
    std::ofstream(p / "cmdline") << cmdline;
    std::ofstream(p / "cgroup") << cgroup;
    fs::create_symlink("/dev/null", p / "fd" / "3");
    std::ofstream(p / "fdinfo" / "3") << "pos:\t0\nflags:\t02\n";
    if (!tap.empty()) {
      fs::create_symlink("/dev/net/tun", p / "fd" / "5");
      std::ofstream(p / "fdinfo" / "5")
          << "pos:\t0\nflags:\t02004002\nmnt_id:\t25\nino:\t1\niff:\t" << tap << "\n";
    }
  }

  // Points the process's tap fd (fd 5) at `target` instead of /dev/net/tun.
  void point_tap_fd_at(int pid, const fs::path& target) {
    fs::path fd = fs::path(root_) / std::to_string(pid) / "fd" / "5";
    fs::remove(fd);
    fs::create_symlink(target, fd);
  }

 private:
  std::string root_;
};

TEST(DirHandle, ListsEntriesAndClosesOnce) {
  FakeProc proc;
  proc.add(100, {"bash"}, "");
  proc.add(200, {"bash"}, "");
  std::set<std::string> names;
  DirHandle dir(proc.root());
  ASSERT_TRUE(dir.valid());
  DirHandle moved = std::move(dir);  // the moved-from handle owns nothing
  EXPECT_FALSE(dir.valid());
  EXPECT_EQ(dir.next(), nullptr);
  while (const dirent* e = moved.next()) names.insert(e->d_name);
  EXPECT_EQ(names, (std::set<std::string>{".", "..", "100", "200"}));
  DirHandle missing(proc.root() + "/nonexistent");
  EXPECT_FALSE(missing.valid());
  EXPECT_EQ(missing.next(), nullptr);
}

TEST(TapOwners, OtherNamespacesDoNotCount) {
  FakeProc proc;
  proc.add(100, {"solo5-hvt", "--net:service=vmmtap0"}, "vmmtap0");
  // No ns/net link in the fake tree: the process cannot be shown to share our namespace.
  EXPECT_TRUE(scan_tap_owners(proc.root(), true).empty());
  fs::create_directories(fs::path(proc.root()) / "100" / "ns");
  fs::create_symlink("/proc/self/ns/net", fs::path(proc.root()) / "100" / "ns" / "net");
  EXPECT_EQ(scan_tap_owners(proc.root(), true).size(), 1u);
}

// A tap fd is the tun device, whatever path the reader is shown: in a chroot or a
// container the fd link reads "<root>/dev/net/tun", not "/dev/net/tun".
TEST(TapOwners, RecognisesTheTunDeviceNotItsPath) {
  struct stat tun {};
  if (::stat("/dev/net/tun", &tun) != 0 || !S_ISCHR(tun.st_mode))
    GTEST_SKIP() << "no /dev/net/tun character device here";
  FakeProc proc;
  const fs::path root(proc.root());
  // Another path to the same device, as a reader in a chroot sees it.
  fs::create_directories(root / "chroot" / "dev" / "net");
  fs::create_symlink("/dev/net/tun", root / "chroot" / "dev" / "net" / "tun");
  // A regular file at such a path is not a tap, whatever its fdinfo says.
  fs::create_directories(root / "fake" / "dev" / "net");
  std::ofstream(root / "fake" / "dev" / "net" / "tun") << "";
  proc.add(100, {"qemu-system-x86_64", "-name", "guest=a"}, "vmmtap0");
  proc.add(200, {"qemu-system-x86_64", "-name", "guest=b"}, "vmmtap1");
  proc.point_tap_fd_at(200, root / "chroot" / "dev" / "net" / "tun");
  proc.add(300, {"qemu-system-x86_64", "-name", "guest=c"}, "vmmtap2");
  proc.point_tap_fd_at(300, root / "fake" / "dev" / "net" / "tun");

  TapOwners owners = scan_tap_owners(proc.root(), /*same_netns_only=*/false);
  EXPECT_EQ(owners["vmmtap0"], std::vector<int>{100});
  EXPECT_EQ(owners["vmmtap1"], std::vector<int>{200});
  EXPECT_FALSE(owners.contains("vmmtap2"));
}

TEST(TapOwners, FdinfoParsing) {
  EXPECT_EQ(tap_from_fdinfo("pos:\t0\nflags:\t02\niff:\tvmmtap3\n"), "vmmtap3");
  EXPECT_EQ(tap_from_fdinfo("iff:\tx"), "x");
  EXPECT_EQ(tap_from_fdinfo("pos:\t0\nflags:\t02\n"), "");
  EXPECT_EQ(tap_from_fdinfo(""), "");
}

TEST(TapOwners, ScanFindsHolders) {
  FakeProc proc;
  proc.add(100, {"solo5-hvt", "--net:service=vmmtap0"}, "vmmtap0");
  proc.add(200, {"bash"}, "");
  proc.add(300, {"qemu-system-x86_64", "-name", "guest=a"}, "vmmtap1");
  TapOwners owners = scan_tap_owners(proc.root(), /*same_netns_only=*/false);
  ASSERT_EQ(owners.size(), 2u);
  EXPECT_EQ(owners["vmmtap0"], std::vector<int>{100});
  EXPECT_EQ(owners["vmmtap1"], std::vector<int>{300});
  auto p = read_process(300, proc.root());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->argv, (std::vector<std::string>{"qemu-system-x86_64", "-name", "guest=a"}));
  EXPECT_FALSE(read_process(999, proc.root()));
}

LinkInfo tap(int ifindex, const std::string& name, int master) {
  LinkInfo l;
  l.ifindex = ifindex;
  l.name = name;
  l.kind = "tun";
  l.is_tap = true;
  l.master = master;
  l.carrier = true;
  return l;
}

LinkInfo bridge(int ifindex, const std::string& name) {
  LinkInfo l;
  l.ifindex = ifindex;
  l.name = name;
  l.kind = "bridge";
  return l;
}

TEST(Inventory, NamesTapsAndTagsBridges) {
  FakeProc proc;
  proc.add(100,
           {"/var/lib/albatross/solo5-hvt.3", "--net:service=vmmtap0", "--",
            "/run/albatross/alice:web.img", "--name=web"},
           "vmmtap0");
  proc.add(300, {"qemu-system-x86_64", "-name", "guest=db,debug-threads=on"}, "vmmtap1");
  InventoryOptions opts;
  opts.proc_root = proc.root();
  opts.same_netns_only = false;  // the fake tree has no ns/net links
  opts.overrides.push_back(NameOverride{"vmmtap5", "", "legacy", "lan"});
  Inventory inv(opts);
  LinkInfo tun_not_tap = tap(9, "tun0", 0);
  tun_not_tap.is_tap = false;
  inv.reset({bridge(2, "br0"), tap(3, "vmmtap0", 2), tap(4, "vmmtap1", 2), tap(5, "vmmtap5", 0),
             tap(6, "vmmtap6", 0), tun_not_tap});
  inv.resolve_owners();
  const auto& taps = inv.taps();
  ASSERT_EQ(taps.size(), 4u);  // tun0 is not a tap
  EXPECT_EQ(taps.at(3).vm.name, "web");
  EXPECT_EQ(taps.at(3).vm.launcher, "solo5-hvt");
  EXPECT_EQ(taps.at(3).bridge, "service");  // solo5's NET, as albatross reports it
  EXPECT_EQ(taps.at(3).pid, 100);
  EXPECT_EQ(taps.at(4).vm.name, "db");
  EXPECT_EQ(taps.at(4).bridge, "br0");  // the master bridge
  EXPECT_EQ(taps.at(5).vm.name, "legacy");
  EXPECT_EQ(taps.at(5).bridge, "lan");
  EXPECT_EQ(taps.at(6).vm.name, "vmmtap6");  // nobody holds it: named after itself
  EXPECT_FALSE(taps.at(6).named);
  auto bridges = inv.vm_bridges();
  ASSERT_EQ(bridges.size(), 1u);
  EXPECT_EQ(bridges.begin()->second.name, "br0");

  // The VM restarts under another name on the same tap: the carrier flip re-resolves it.
  fs::remove_all(fs::path(proc.root()) / "300");
  proc.add(301, {"qemu-system-x86_64", "-name", "guest=db2"}, "vmmtap1");
  LinkInfo down = tap(4, "vmmtap1", 2);
  down.carrier = false;
  inv.apply(LinkEvent{false, down});
  inv.apply(LinkEvent{false, tap(4, "vmmtap1", 2)});
  inv.resolve_owners();
  EXPECT_EQ(inv.taps().at(4).vm.name, "db2");
  EXPECT_EQ(inv.taps().at(4).pid, 301);

  // Leaving the bridge drops the bridge tag and the bridge itself.
  inv.apply(LinkEvent{false, tap(4, "vmmtap1", 0)});
  EXPECT_EQ(inv.taps().at(4).bridge, "");
  inv.apply(LinkEvent{true, tap(3, "vmmtap0", 2)});
  EXPECT_EQ(inv.taps().count(3), 0u);
  EXPECT_TRUE(inv.vm_bridges().empty());
}

}  // namespace
}  // namespace vmscope
