// Least privilege (issue 11): `vmscope run` as a user of its own with exactly the
// capabilities deploy/vmscope.service grants (read from the unit, so the two cannot drift),
// in the sandbox the unit gives it (a pin directory and /run/vmscope owned by that user, no
// new privileges, umask 077), gets every measurement of VMs owned by two other users; each
// capability is needed (without it something is lost); and without --listen the agent
// listens on no socket.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "bridge_env.h"
#include "test_env.h"

namespace vmscope::test {
namespace {

// Numeric ids no account uses: the agent, the tap holder ("qemu" of one user), and a
// process-only VM of a third user.
constexpr int kAgentUid = 61711, kHolderUid = 61712, kVmUid = 61713;

// A copy of a built binary that the other uids can run: the build tree may lie under a
// directory only root may enter (a clone in /root, as CI and the minimal-root check make).
// The copies live in one directory per test process, removed at its exit.
std::string runnable_by_all(const std::string& bin) {
  struct Dir {
    std::string path;
    Dir() {
      char tmpl[] = "/var/tmp/vmscope-priv-bin-XXXXXX";
      if (!mkdtemp(tmpl) || chmod(tmpl, 0755) != 0)
        throw std::runtime_error("make a directory for binaries other uids run");
      path = tmpl;
    }
    ~Dir() { std::filesystem::remove_all(path); }
  };
  static const Dir dir;
  const std::string copy = dir.path + "/" + std::filesystem::path(bin).filename().string();
  if (access(copy.c_str(), X_OK) != 0) must("install -m 0755 " + bin + " " + copy);
  return copy;
}

// The capabilities of one `Key=CAP_A CAP_B` line of the unit, as setpriv names them ("bpf").
std::vector<std::string> unit_capabilities(const std::string& key) {
  std::ifstream unit(source_dir() + "/deploy/vmscope.service");
  std::vector<std::string> caps;
  for (std::string line; std::getline(unit, line);) {
    if (line.rfind(key + "=", 0) != 0) continue;
    std::istringstream words(line.substr(key.size() + 1));
    for (std::string w; words >> w;) {
      if (w.rfind("CAP_", 0) == 0) w = w.substr(4);
      std::transform(w.begin(), w.end(), w.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      caps.push_back(w);
    }
  }
  return caps;
}

// "-all,+bpf,+perfmon": setpriv's list of exactly `caps`.
std::string setpriv_caps(const std::vector<std::string>& caps) {
  std::string out = "-all";
  for (const std::string& c : caps) out += ",+" + c;
  return out;
}

std::vector<std::string> without(std::vector<std::string> caps, const std::string& drop) {
  caps.erase(std::remove(caps.begin(), caps.end(), drop), caps.end());
  return caps;
}

std::vector<std::string> as_user(int uid, const std::vector<std::string>& caps) {
  const std::string id = std::to_string(uid), list = setpriv_caps(caps);
  return {"--reuid=" + id,      "--regid=" + id,          "--clear-groups",
          "--inh-caps=" + list, "--ambient-caps=" + list, "--bounding-set=" + list,
          "--no-new-privs"};
}

// `vmscope run` in ns as kAgentUid with only `caps`, as the unit starts it: in a mount
// namespace of its own with a fresh bpffs (mode 0700, as systemd mounts it) holding
// vmscope/ owned by the user (the unit's ExecStartPre=+), and /run/vmscope owned by it
// (RuntimeDirectory=). The child's pid is the agent's: every step execs the next.
std::unique_ptr<Child> unit_agent(const Netns& ns, const std::vector<std::string>& caps) {
  const std::string id = std::to_string(kAgentUid);
  const std::string script =
      "mount -t bpf bpf /sys/fs/bpf && chmod 0700 /sys/fs/bpf && "
      "install -d -o " +
      id + " -g " + id +
      " -m 0700 /sys/fs/bpf/vmscope && "
      "mkdir -p /run/vmscope && "
      "mount -t tmpfs -o mode=0755,uid=" +
      id + ",gid=" + id +
      " tmpfs /run/vmscope && "
      "umask 077 && exec setpriv \"$@\"";
  std::vector<std::string> args = {"-m", "--propagation", "private", "sh", "-c", script, "sh"};
  for (std::string& a : as_user(kAgentUid, caps)) args.push_back(std::move(a));
  for (std::string a :
       {runnable_by_all(vmscope_bin()), std::string("run"), std::string("--interval"),
        std::string("0.3"), std::string("--log-level"), std::string("debug")})
    args.push_back(std::move(a));
  return std::make_unique<Child>("/usr/bin/unshare", args, SpawnOptions{ns.name(), "", {}, false});
}

// A process of `uid` with argv[0] "qemu-system-x86_64" (what the qemu naming rule reads).
std::unique_ptr<Child> qemu_of(int uid, const Netns& ns, const std::string& helper,
                               const std::vector<std::string>& qemu_args,
                               std::vector<std::string> env, bool pipe_stdin) {
  std::vector<std::string> args = as_user(uid, {});
  for (const char* a : {"bash", "-c", "exec -a qemu-system-x86_64 \"$0\" \"$@\""})
    args.push_back(a);
  args.push_back(runnable_by_all(helper_bin(helper)));
  args.insert(args.end(), qemu_args.begin(), qemu_args.end());
  return std::make_unique<Child>("/usr/bin/setpriv", args,
                                 SpawnOptions{ns.name(), "", std::move(env), pipe_stdin});
}

// A bridge with vmmtap0 owned by kHolderUid (`ip tuntap ... user`, as libvirt gives qemu
// its tap), held by that user's "qemu" named web1.
struct OtherUsersTap {
  Bridge br;
  std::unique_ptr<Child> holder;
  OtherUsersTap() {
    br.ns.must("ip tuntap add vmmtap0 mode tap user " + std::to_string(kHolderUid));
    br.ns.must("ip link set vmmtap0 master br0 up");
    br.ns.must("ip neigh add 10.99.0.2 lladdr 02:00:00:00:00:02 dev br0 nud permanent");
    holder = qemu_of(kHolderUid, br.ns, "tap_holder",
                     {"-name", "guest=web1", "-netdev", "tap,id=n0,ifname=vmmtap0"}, {}, true);
    if (!holder->wait_line([](const std::string& l) { return l == "ready vmmtap0"; }, 5s))
      throw std::runtime_error("tap_holder did not start: " + holder->stderr_text());
  }
};

// /proc/<pid>/io as a map (read as root).
std::map<std::string, int64_t> proc_io(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::map<std::string, int64_t> out;
  std::string key;
  int64_t v;
  while (in >> key >> v) out[key.substr(0, key.size() - 1)] = v;
  return out;
}

// Inodes of the sockets `pid` holds.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) out.insert(target.substr(8, target.size() - 9));
  }
  return out;
}

// Inodes of the sockets in /proc/<pid>/net/<table> (the namespace `pid` is in) that take
// connections or datagrams from the network: every tcp, udp, raw and packet socket, and
// unix sockets in the listening state (flag __SO_ACCEPTCON).
std::set<std::string> network_socket_inodes(pid_t pid) {
  std::set<std::string> out;
  const std::string net = "/proc/" + std::to_string(pid) + "/net/";
  for (const char* table : {"tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6"}) {
    std::ifstream in(net + table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string col;
      for (int i = 0; i < 10 && f >> col; ++i) {
      }
      out.insert(col);  // the 10th column: inode
    }
  }
  std::ifstream packet(net + "packet");
  std::string line;
  std::getline(packet, line);
  while (std::getline(packet, line)) {
    std::istringstream f(line);
    std::string col;
    for (int i = 0; i < 9 && f >> col; ++i) {
    }
    out.insert(col);  // sk RefCnt Type Proto Iface R Rmem User Inode
  }
  std::ifstream unix_sockets(net + "unix");
  std::getline(unix_sockets, line);
  while (std::getline(unix_sockets, line)) {
    std::istringstream f(line);
    std::string num, refs, proto, flags, type, state, inode;
    if (f >> num >> refs >> proto >> flags >> type >> state >> inode &&
        (std::stoul(flags, nullptr, 16) & 0x10000))
      out.insert(inode);
  }
  return out;
}

TEST(LeastPrivilege, UnitGrantsTheSameCapabilitiesItBounds) {
  const auto ambient = unit_capabilities("AmbientCapabilities");
  ASSERT_FALSE(ambient.empty());
  EXPECT_EQ(ambient, unit_capabilities("CapabilityBoundingSet"));
  std::ifstream unit(source_dir() + "/deploy/vmscope.service");
  const std::string text((std::istreambuf_iterator<char>(unit)), {});
  for (const char* line : {"\nUser=vmscope\n", "\nNoNewPrivileges=yes\n",
                           "\nRuntimeDirectory=vmscope\n", "\nStateDirectory=vmscope\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line;
}

TEST(LeastPrivilege, EveryMeasurementOfOtherUsersVmsWithTheUnitsCapabilities) {
  const auto caps = unit_capabilities("AmbientCapabilities");
  ASSERT_FALSE(caps.empty());
  OtherUsersTap vm;
  const Netns& ns = vm.br.ns;
  auto agent = unit_agent(ns, caps);
  ASSERT_TRUE(wait_point(*agent, "interface", "vm", "web1", 0, 10s)) << agent->stderr_text();
  EXPECT_EQ(capture("awk '/^Uid:/ {print $2}' /proc/" + std::to_string(agent->pid()) + "/status"),
            std::to_string(kAgentUid) + "\n");
  EXPECT_EQ(agent->stderr_text().find("counters not kept"), std::string::npos)
      << agent->stderr_text();

  // Traffic both ways: the "VM" sends 10 UDP frames, the host 20 datagrams to it.
  const Mac br_mac = mac_of(ns, "br0");
  uint64_t udp = 0;
  for (int i = 0; i < 10; ++i) {
    auto f = ipv4_frame(br_mac, kVmMac, ip("10.99.0.2"), ip("10.99.0.1"), 17, 200);
    udp += f.size();
    inject(*vm.holder, f);
  }
  ns.must("bash -c 'for i in $(seq 20); do printf %0300d 0 > /dev/udp/10.99.0.2/9; done'");
  ASSERT_TRUE(wait_stat(ns, "vmmtap0", "rx_packets", 10));
  ASSERT_TRUE(wait_stat(ns, "vmmtap0", "tx_packets", 20));
  usleep(100000);
  const uint64_t rx = ns.stat("vmmtap0", "rx_bytes"), tx = ns.stat("vmmtap0", "tx_bytes");
  const uint64_t rxp = ns.stat("vmmtap0", "rx_packets"), txp = ns.stat("vmmtap0", "tx_packets");
  const int64_t t1 = now_ns();
  auto iface = wait_point(*agent, "interface", "vm", "web1", t1);
  ASSERT_TRUE(iface) << agent->stderr_text();
  EXPECT_EQ(iface->i("vm_to_host_bytes"), int64_t(rx));
  EXPECT_EQ(iface->i("vm_to_host_packets"), int64_t(rxp));
  EXPECT_EQ(iface->i("host_to_vm_bytes"), int64_t(tx));
  EXPECT_EQ(iface->i("host_to_vm_packets"), int64_t(txp));
  auto net = wait_point(*agent, "vm_net", "vm", "web1", t1);
  ASSERT_TRUE(net);
  EXPECT_EQ(net->i("vm_to_host_udp_bytes"), int64_t(udp));
  EXPECT_GT(net->i("host_to_vm_udp_bytes"), 20 * 300);
  for (const char* m : {"resource_usage", "kinfo_mem", "vm_cpu", "vm_io"})
    EXPECT_TRUE(wait_point(*agent, m, "vm", "web1", t1)) << m;
  std::printf(
      "[ figures ] tap of uid %d: rx %llu B / %llu pkts, tx %llu B / %llu pkts; agent "
      "(uid %d) the same\n",
      kHolderUid, (unsigned long long)rx, (unsigned long long)rxp, (unsigned long long)tx,
      (unsigned long long)txp, kAgentUid);

  // A VM process of a third user, started and exiting while the agent runs: CPU, memory,
  // faults, CPU wait, disk I/O, and both events.
  char tmpl[] = "/var/tmp/vmscope-priv-XXXXXX";  // tmpfs counts no write_bytes
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  must("chown " + std::to_string(kVmUid) + " " + dir);
  const int64_t t2 = now_ns();
  auto db = qemu_of(kVmUid, ns, "busy_vm", {"-name", "guest=db1"},
                    {"BUSY_MB=16", "BUSY_THREADS=1", "BUSY_WRITE_MB=2", "BUSY_WRITE_DIR=" + dir,
                     "BUSY_EXIT_MS=4000", "BUSY_EXIT_CODE=3"},
                    false);
  const bool ready =
      db->wait_line([](const std::string& l) { return l == "ready"; }, 5s).has_value();
  const std::map<std::string, int64_t> io = proc_io(db->pid());
  const int64_t t3 = now_ns();
  auto start = wait_point(*agent, "vm_event", {{"vm", "db1"}, {"event", "start"}}, t2);
  auto ru = wait_point(*agent, "resource_usage", "vm", "db1", t3);
  auto mem = wait_point(*agent, "kinfo_mem", "vm", "db1", t3);
  auto cpu = wait_point(*agent, "vm_cpu", "vm", "db1", t3);
  auto disk = wait_point(*agent, "vm_io", "vm", "db1", t3);
  auto gone = wait_point(*agent, "vm_event", {{"vm", "db1"}, {"event", "exit"}}, t2, 8s);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(ready) << db->stderr_text();
  ASSERT_TRUE(start && ru && mem && cpu && disk && gone) << agent->stderr_text();
  EXPECT_EQ(start->i("pid"), db->pid());
  EXPECT_EQ(gone->i("exit_code"), 3);
  EXPECT_GE(ru->i("minflt"), 16 * 256) << "16 MiB touched page by page";
  EXPECT_GE(mem->i("rss"), 16 * 256);
  EXPECT_GT(std::stod(ru->fields.at("utime")) + std::stod(ru->fields.at("stime")), 0.0);
  EXPECT_GT(cpu->i("run_count"), 0);
  EXPECT_GE(std::stod(cpu->fields.at("run_delay")), 0.0);
  EXPECT_GE(disk->i("write_bytes"), 2 << 20) << "2 MiB written and synced";
  EXPECT_EQ(disk->i("write_bytes"), io.at("write_bytes"));
  std::printf(
      "[ figures ] VM of uid %d: minflt %lld, rss %lld pages, run_count %lld, "
      "write_bytes %lld (/proc: %lld), exit code %lld\n",
      kVmUid, (long long)ru->i("minflt"), (long long)mem->i("rss"), (long long)cpu->i("run_count"),
      (long long)disk->i("write_bytes"), (long long)io.at("write_bytes"),
      (long long)gone->i("exit_code"));

  // Without --listen: sockets for netlink only, none reachable from the network.
  const std::set<std::string> own = socket_inodes(agent->pid());
  EXPECT_FALSE(own.empty()) << "the agent holds its netlink sockets";
  const std::set<std::string> listening = network_socket_inodes(agent->pid());
  for (const std::string& inode : own) EXPECT_EQ(listening.count(inode), 0u) << "socket " << inode;
}

// Each capability of the unit is needed: without one of the first three the network
// programs do not load (`vmscope check` loads them for real, it does not only read the
// capability mask); without either of the other two another user's tap is not tied to
// its VM (the tap is reported under its own name), and without CAP_DAC_READ_SEARCH the
// pins cannot be made either.
TEST(LeastPrivilege, EachCapabilityOfTheUnitIsNeeded) {
  const auto caps = unit_capabilities("AmbientCapabilities");
  ASSERT_FALSE(caps.empty());
  OtherUsersTap vm;
  for (const std::string& drop : caps) {
    SCOPED_TRACE("without CAP_" + drop);
    const auto fewer = without(caps, drop);
    if (drop == "bpf" || drop == "perfmon" || drop == "net_admin") {
      std::string cmd = "setpriv";
      for (const std::string& a : as_user(kAgentUid, fewer)) cmd += " " + a;
      int status = 0;
      const std::string out = [&] {
        FILE* p = popen((cmd + " " + runnable_by_all(vmscope_bin()) + " check 2>&1").c_str(), "r");
        std::string text;
        char buf[4096];
        for (size_t n; p && (n = fread(buf, 1, sizeof(buf), p)) > 0;) text.append(buf, n);
        status = p ? pclose(p) : -1;
        return text;
      }();
      EXPECT_EQ(WEXITSTATUS(status), 1) << out;
      EXPECT_NE(out.find("✗ network programs: load BPF network programs (net.bpf.o)"),
                std::string::npos)
          << out;
      continue;
    }
    auto agent = unit_agent(vm.br.ns, fewer);
    auto p = wait_point(*agent, "interface", {{"bridge", "br0"}}, 0, 10s);
    ASSERT_TRUE(p) << agent->stderr_text();
    EXPECT_EQ(p->tags.at("vm"), "vmmtap0") << "the tap is not tied to web1";
    EXPECT_FALSE(wait_point(*agent, "interface", "vm", "web1", 0, 2s)) << "nor later";
    // And /sys/fs/bpf (mode 0700, root's) is out of reach: nothing kept for the next start.
    if (drop == "dac_read_search") {
      EXPECT_NE(agent->stderr_text().find("counters not kept for the next run nor shared with "
                                          "vmscope top: create /sys/fs/bpf/vmscope/net-"),
                std::string::npos)
          << agent->stderr_text();
    }
    EXPECT_NE(agent->stderr_text().find(
                  "✗ CAP_" + std::string(drop == "sys_ptrace" ? "SYS_PTRACE" : "DAC_READ_SEARCH")),
              std::string::npos)
        << agent->stderr_text();
  }
}

}  // namespace
}  // namespace vmscope::test
