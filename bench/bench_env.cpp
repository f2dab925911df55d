#include "bench_env.h"

#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "common/unique_fd.h"
#include "output/output_writer.h"

namespace vmscope::bench {
namespace {

Env g_env;

Status join_netns(const std::string& name) {
  std::string path = "/run/netns/" + name;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::from_errno("open " + path, errno);
  if (setns(fd.get(), CLONE_NEWNET) < 0) return Error::from_errno("setns " + path, errno);
  return {};
}

// 2 tcx links per device: 1000 VMs need more than the default 1024 descriptors.
void raise_fd_limit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Small real processes, one per VM: solo5-hvt is single-threaded, so `sleep` is a fair
// stand-in for the cost of reading its /proc files. They die with us (PDEATHSIG).
Status spawn_sleepers(int n, std::vector<pid_t>& out) {
  pid_t parent = getpid();
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid < 0) return Error::from_errno("fork sleeper", errno);
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
      execl("/bin/sleep", "sleep", "3600", static_cast<char*>(nullptr));
      _exit(127);
    }
    out.push_back(pid);
  }
  return {};
}

// Deterministic spread of plausible values for cumulative counters of a VM that has been up
// for days: bytes 1e9..1e12, packets 1e6..1e9 (the encoding cost depends on digit counts).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Status fill_realistic_counters(int net_stats_fd, uint32_t slot_limit) {
  auto ncpus = static_cast<size_t>(libbpf_num_possible_cpus());
  std::vector<vs_dev_counters> percpu(ncpus);
  for (uint32_t idx = 0; idx < slot_limit; ++idx) {
    for (size_t c = 0; c < ncpus * VS_DIR_COUNT; ++c) {
      uint64_t r = mix(idx * 64 + c);
      vs_net_counters& v = percpu[c / VS_DIR_COUNT].dir[c % VS_DIR_COUNT];
      v.bytes = 1'000'000'000ULL + r % 900'000'000'000ULL;
      v.packets = v.bytes / (200 + r % 1200);
      v.mcast_packets = r % 100'000;
      v.bcast_packets = (r >> 20) % 10'000;
      v.l4_bytes[VS_L4_TCP] = v.bytes / 10 * 8;
      v.l4_bytes[VS_L4_UDP] = v.bytes / 10;
      v.l4_bytes[VS_L4_ICMP] = v.bytes / 1000;
      v.l4_bytes[VS_L4_OTHER] =
          v.bytes - v.l4_bytes[VS_L4_TCP] - v.l4_bytes[VS_L4_UDP] - v.l4_bytes[VS_L4_ICMP];
      v.tcp_syns = (r >> 8) % 1'000'000;
    }
    if (bpf_map_update_elem(net_stats_fd, &idx, percpu.data(), BPF_ANY))
      return Error::from_errno(fmt::format("fill net_stats[{}]", idx), errno);
  }
  return {};
}

}  // namespace

TickOutput::TickOutput() : handed_(OutputWriter::kMaxLentBytes / kChunkBytes) {
  for (std::string& b : handed_) b.reserve(kChunkBytes + kChunkSlack);
}

void TickOutput::between(std::string& out) {
  if (out.size() >= kChunkBytes) hand_on(out);
}

void TickOutput::begin_tick(std::string& out) {
  bytes_ = 0;
  out.clear();
  if (out.capacity() < kChunkBytes + kChunkSlack) out.reserve(kChunkBytes + kChunkSlack);
}

size_t TickOutput::end_tick(std::string& out) {
  hand_on(out);
  return bytes_;
}

void TickOutput::hand_on(std::string& out) {
  bytes_ += out.size();
  benchmark::DoNotOptimize(out.data());
  out.swap(handed_[next_]);  // out continues in the oldest chunk handed on
  next_ = (next_ + 1) % handed_.size();
  out.clear();
}

void evict_caches() {
  // Written once (its pages exist), then only read: clean lines, so the tick that follows
  // pays no write-back of the buffer's lines on top of its own misses.
  static std::vector<uint64_t> buffer = [] {
    std::vector<uint64_t> b((96u << 20) / sizeof(uint64_t));
    for (size_t i = 0; i < b.size(); ++i) b[i] = i;
    return b;
  }();
  uint64_t sum = 0;
  for (size_t i = 0; i < buffer.size(); i += 8) sum += buffer[i];  // one read per line
  benchmark::DoNotOptimize(sum);
}

Env& env() {
  return g_env;
}

Status setup(const EnvOptions& opts) {
  Env& e = g_env;
  e.opts = opts;
  if (auto st = join_netns(opts.netns); !st) return st;
  raise_fd_limit();
  // Fork before the BPF object and 2000 links exist: cheap children, no shared fds.
  if (auto st = spawn_sleepers(opts.sleepers, e.sleepers); !st) return st;

  auto nl = Netlink::open(0);
  if (!nl) return nl.error();
  e.nl.emplace(std::move(*nl));
  auto links = e.nl->dump_links();
  if (!links) return links.error();
  for (const auto& l : *links) {
    if (l.is_tap) e.taps.push_back(l);
    if (l.kind == "bridge") ++e.bridges;
  }
  std::sort(e.taps.begin(), e.taps.end(),
            [](const LinkInfo& a, const LinkInfo& b) { return a.ifindex < b.ifindex; });
  if (e.taps.empty()) return Error::msg("no tap devices in netns " + opts.netns);

  auto programs = NetPrograms::load();
  if (!programs) return programs.error();
  e.programs.emplace(std::move(*programs));

  // Exactly the agent's start-up path (agent.cpp resync + sync_attachments).
  e.inventory = std::make_unique<Inventory>(InventoryOptions{});
  e.inventory->reset(*links);
  e.inventory->resolve_owners();
  e.attacher = std::make_unique<NetAttacher>(*e.programs, opts.attach_mode);
  e.collector = std::make_unique<NetCollector>(NetMapFds{e.programs->net_stats_fd(),
                                                         e.programs->service_stats_fd(),
                                                         e.programs->service_pending_fd()});
  std::map<int, std::string> wanted;
  for (const auto& [ifindex, tap] : e.inventory->taps()) wanted[ifindex] = tap.link.name;
  for (const auto& [ifindex, br] : e.inventory->vm_bridges()) wanted[ifindex] = br.name;
  auto t0 = std::chrono::steady_clock::now();
  auto errors = e.attacher->sync(wanted);
  e.attach_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!errors.empty())
    return errors.front().context(
        fmt::format("attach ({} of {} devices failed)", errors.size(), wanted.size()));
  e.tracked_ifindex = e.taps.front().ifindex;

  return fill_realistic_counters(e.programs->net_stats_fd(), e.programs->slot_limit());
}

void teardown() {
  Env& e = g_env;
  e.collector.reset();
  auto t0 = std::chrono::steady_clock::now();
  e.attacher.reset();  // detaches and releases slots before the programs go
  e.detach_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  e.inventory.reset();
  e.programs.reset();
  e.nl.reset();
  for (pid_t pid : e.sleepers) kill(pid, SIGKILL);
  for (pid_t pid : e.sleepers) waitpid(pid, nullptr, 0);
  e.sleepers.clear();
}

}  // namespace vmscope::bench
