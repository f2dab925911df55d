// Goal 2: one agent tick at 1000 VMs (drain + kernel link stats + samples + line protocol)
// vs the per-VM polling albatross-stats does on Linux, both in the same run.
//
// vmscope side, exactly the agent's tick (agent.cpp Agent::tick) minus the sink write:
//   Inventory::resolve_owners()  (nothing dirty: a scan of flags)
//   NetCollector::collect()      = NetDrain::read(slot_limit) (CPU sums by net_sum.bpf.c)
//                                  + Netlink::dump_stats()
//                                  + 1000 TapSamples (+ the bridge's sample)
//   encode_net() in the agent's chunks (TickOutput).
// Baseline, per VM: read /proc/<pid>/stat, /proc/<pid>/statm, /proc/<pid>/status of a real
// process (one sleeper per VM) and one RTM_GETLINK request for its tap over libmnl (one
// socket kept open; replies parsed only for IFLA_STATS64 and IFLA_MTU). That is a lower
// bound of the real method: no per-request socket, C parsing instead of OCaml.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_env.h"
#include "drain/net_drain.h"
#include "output/net_lines.h"

namespace vmscope::bench {
namespace {

constexpr int kRepetitions = 5;
constexpr double kMinTime = 0.3;

int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// ---- vmscope ----

// One untimed tick first: the agent's snapshot starts each tick with the last tick's
// capacity (the engine collects into its previous snapshot) and its chunks are recycled
// buffers, so growing them from empty is no part of a steady-state tick. Without it the
// few iterations a 10,000-VM repetition runs each paid a share of growing a 5 MB vector
// from nothing.
void vmscope_tick(benchmark::State& state, bool cold) {
  Env& e = env();
  std::string batch;
  TickOutput output;
  NetSnapshot snap;
  size_t lines = 0, taps = 0, bytes = 0;
  auto tick = [&] {
    e.inventory->resolve_owners();
    auto st = e.collector->collect(*e.inventory, e.attacher->devices(), *e.nl,
                                   e.programs->slot_limit(), realtime_ns(), snap);
    if (!st) {
      state.SkipWithError(st.error().message.c_str());
      return false;
    }
    output.begin_tick(batch);
    lines = encode_net(snap, batch, &output);
    bytes = output.end_tick(batch);
    taps = snap.taps.size();
    return true;
  };
  if (!tick()) return;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      evict_caches();
      state.ResumeTiming();
    }
    if (!tick()) return;
  }
  state.counters["taps"] = static_cast<double>(taps);
  state.counters["lines"] = static_cast<double>(lines);
  state.counters["out_bytes"] = static_cast<double>(bytes);
}

void part_drain_read(benchmark::State& state) {
  Env& e = env();
  NetDrain drain(NetMapFds{e.programs->net_stats_fd(), e.programs->service_stats_fd(),
                           e.programs->service_pending_fd()});
  for (auto _ : state) {
    if (auto st = drain.read(e.programs->slot_limit()); !st) {
      state.SkipWithError(st.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(drain.counters(0, VS_DIR_INGRESS));
  }
  state.counters["slots"] = e.programs->slot_limit();
}

void part_dump_stats(benchmark::State& state) {
  Env& e = env();
  size_t n = 0;
  LinkStatsList stats;
  for (auto _ : state) {
    if (auto st = e.nl->dump_stats(stats); !st) {
      state.SkipWithError(st.error().message.c_str());
      return;
    }
    n = stats.size();
    benchmark::DoNotOptimize(n);
  }
  state.counters["links"] = static_cast<double>(n);
}

void part_collect(benchmark::State& state) {
  Env& e = env();
  NetSnapshot snap;  // reused, as the engine's
  for (auto _ : state) {
    auto st = e.collector->collect(*e.inventory, e.attacher->devices(), *e.nl,
                                   e.programs->slot_limit(), realtime_ns(), snap);
    if (!st) {
      state.SkipWithError(st.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(snap.taps.data());
  }
}

void part_encode(benchmark::State& state) {
  Env& e = env();
  auto snap = e.collector->collect(*e.inventory, e.attacher->devices(), *e.nl,
                                   e.programs->slot_limit(), realtime_ns());
  if (!snap) {
    state.SkipWithError(snap.error().message.c_str());
    return;
  }
  std::string batch;
  TickOutput output;
  for (auto _ : state) {
    output.begin_tick(batch);
    encode_net(*snap, batch, &output);
    benchmark::DoNotOptimize(output.end_tick(batch));
  }
}

// ---- albatross-stats style polling ----

struct ProcSample {
  unsigned long long utime = 0, stime = 0, vsize = 0, rss = 0, minflt = 0, majflt = 0;
  unsigned long long statm[7] = {};
  unsigned long long vmhwm = 0, vmrss = 0, vcsw = 0, nvcsw = 0;
};

// Whole procfs file, as a reader that does not know its size does: open, read to EOF, close.
bool read_proc_file(const char* path, char* buf, size_t cap, size_t& len) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  len = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return true;
}

unsigned long long status_field(const char* text, const char* key) {
  const char* p = std::strstr(text, key);
  return p ? std::strtoull(p + std::strlen(key), nullptr, 10) : 0;
}

bool poll_proc(int pid, ProcSample& s) {
  char path[64];
  char buf[8192];
  size_t len;
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  if (!read_proc_file(path, buf, sizeof(buf), len)) return false;
  // Fields after "(comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
  // cmajflt utime stime ... vsize(23) rss(24).
  const char* p = std::strrchr(buf, ')');
  if (!p) return false;
  char* q = const_cast<char*>(p + 2);
  unsigned long long f[23] = {};
  ++q;  // state
  for (int i = 0; i < 23; ++i) f[i] = std::strtoull(q, &q, 10);
  s.minflt = f[6];
  s.majflt = f[8];
  s.utime = f[10];
  s.stime = f[11];
  s.vsize = f[19];
  s.rss = f[20];
  std::snprintf(path, sizeof(path), "/proc/%d/statm", pid);
  if (!read_proc_file(path, buf, sizeof(buf), len)) return false;
  q = buf;
  for (auto& v : s.statm) v = std::strtoull(q, &q, 10);
  std::snprintf(path, sizeof(path), "/proc/%d/status", pid);
  if (!read_proc_file(path, buf, sizeof(buf), len)) return false;
  s.vmhwm = status_field(buf, "VmHWM:");
  s.vmrss = status_field(buf, "VmRSS:");
  s.vcsw = status_field(buf, "voluntary_ctxt_switches:");
  s.nvcsw = status_field(buf, "nonvoluntary_ctxt_switches:");
  return true;
}

class LinkPoller {
 public:
  LinkPoller() : sock_(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)), buf_(32 * 1024) {
    if (sock_ && mnl_socket_bind(sock_, 0, MNL_SOCKET_AUTOPID) < 0) {
      mnl_socket_close(sock_);
      sock_ = nullptr;
    }
  }
  ~LinkPoller() {
    if (sock_) mnl_socket_close(sock_);
  }
  bool ok() const { return sock_ != nullptr; }

  // One RTM_GETLINK for one device; its 64-bit counters and MTU.
  bool get(int ifindex, rtnl_link_stats64& stats, uint32_t& mtu) {
    char req[256];
    nlmsghdr* nlh = mnl_nlmsg_put_header(req);
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    nlh->nlmsg_seq = ++seq_;
    auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) return false;
    ssize_t n = mnl_socket_recvfrom(sock_, buf_.data(), buf_.size());
    if (n < 0) return false;
    Out out{&stats, &mtu, false};
    int ret = mnl_cb_run(buf_.data(), static_cast<size_t>(n), seq_, mnl_socket_get_portid(sock_),
                         on_msg, &out);
    return ret != MNL_CB_ERROR && out.found;
  }

 private:
  struct Out {
    rtnl_link_stats64* stats;
    uint32_t* mtu;
    bool found;
  };
  static int on_attr(const nlattr* attr, void* data) {
    auto* out = static_cast<Out*>(data);
    switch (mnl_attr_get_type(attr)) {
      case IFLA_STATS64:
        std::memcpy(out->stats, mnl_attr_get_payload(attr),
                    std::min<size_t>(mnl_attr_get_payload_len(attr), sizeof(rtnl_link_stats64)));
        out->found = true;
        break;
      case IFLA_MTU:
        *out->mtu = mnl_attr_get_u32(attr);
        break;
    }
    return MNL_CB_OK;
  }
  static int on_msg(const nlmsghdr* nlh, void* data) {
    if (nlh->nlmsg_type != RTM_NEWLINK) return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof(ifinfomsg), on_attr, data);
    return MNL_CB_OK;
  }

  mnl_socket* sock_;
  std::vector<char> buf_;
  unsigned seq_ = 0;
};

// vms: how many VMs one tick polls (the number of taps); VM i is sleeper i and tap i.
void albatross_tick(benchmark::State& state, bool do_proc, bool do_link) {
  Env& e = env();
  LinkPoller links;
  if (!links.ok()) {
    state.SkipWithError("open rtnetlink socket");
    return;
  }
  const size_t vms = e.taps.size();
  ProcSample ps;
  rtnl_link_stats64 ls;
  uint32_t mtu = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < vms; ++i) {
      if (do_proc && !poll_proc(e.sleepers[i % e.sleepers.size()], ps)) {
        state.SkipWithError("read /proc of a sleeper");
        return;
      }
      if (do_link && !links.get(e.taps[i].ifindex, ls, mtu)) {
        state.SkipWithError("RTM_GETLINK");
        return;
      }
      benchmark::DoNotOptimize(ps);
      benchmark::DoNotOptimize(ls);
    }
  }
  state.counters["vms"] = static_cast<double>(vms);
  state.counters["distinct_pids"] = static_cast<double>(std::min(vms, e.sleepers.size()));
}

void add(const char* name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name, fn)
      ->MinTime(kMinTime)
      ->Repetitions(kRepetitions)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime()
      ->DisplayAggregatesOnly(true);
}

}  // namespace

void register_tick_benchmarks() {
  add(kTickVmscope, [](benchmark::State& s) { vmscope_tick(s, false); });
  add(kTickVmscopeCold, [](benchmark::State& s) { vmscope_tick(s, true); });
  add("tick_part/net_drain_read", part_drain_read);
  add("tick_part/netlink_dump_stats", part_dump_stats);
  add("tick_part/net_collector_collect", part_collect);
  add("tick_part/encode_net", part_encode);
  add(kTickAlbatross, [](benchmark::State& s) { albatross_tick(s, true, true); });
  add("tick_part/albatross_proc_only", [](benchmark::State& s) { albatross_tick(s, true, false); });
  add("tick_part/albatross_rtm_getlink_only",
      [](benchmark::State& s) { albatross_tick(s, false, true); });
}

}  // namespace vmscope::bench
