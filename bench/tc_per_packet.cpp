// Goal 1: per-packet cost of vs_tc_ingress vs an empty tc program, both run by
// bpf_prog_test_run on the same frame, 10M repetitions per measurement.
//
// One benchmark "iteration" is one bpf_prog_test_run call of kRepeat packets; the reported
// time is the thread CPU time of that call divided by kRepeat, i.e. ns per packet (thread
// CPU time excludes time the test run spends rescheduled; the kernel's own per-run
// `duration`, an integer ns, is shown as the counter kernel_ns for cross-checking).
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bench_env.h"
#include "empty_tc.skel.h"

namespace vmscope::bench {
namespace {

constexpr int kRepeat = 10'000'000;
constexpr int kRepetitions = 5;

using Frame = std::vector<uint8_t>;

void put16(Frame& f, size_t off, uint16_t v) {
  f[off] = static_cast<uint8_t>(v >> 8);
  f[off + 1] = static_cast<uint8_t>(v);
}

void put32(Frame& f, size_t off, uint32_t v) {
  put16(f, off, static_cast<uint16_t>(v >> 16));
  put16(f, off + 2, static_cast<uint16_t>(v));
}

constexpr std::array<uint8_t, 6> kHostMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr std::array<uint8_t, 6> kVmMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr uint32_t kVmIp = 0x0a000002;    // 10.0.0.2
constexpr uint32_t kHostIp = 0x0a000001;  // 10.0.0.1

Frame ethernet(size_t len, const std::array<uint8_t, 6>& dst, uint16_t type) {
  Frame f(len, 0);
  std::memcpy(&f[0], dst.data(), 6);
  std::memcpy(&f[6], kVmMac.data(), 6);
  put16(f, 12, type);
  return f;
}

void ipv4(Frame& f, uint8_t proto) {
  const size_t ip = 14;
  f[ip] = 0x45;
  put16(f, ip + 2, static_cast<uint16_t>(f.size() - ip));  // total length
  put16(f, ip + 4, 0x1c46);                                // id
  put16(f, ip + 6, 0x4000);                                // DF, offset 0
  f[ip + 8] = 64;
  f[ip + 9] = proto;
  put32(f, ip + 12, kVmIp);
  put32(f, ip + 16, kHostIp);
  uint32_t sum = 0;
  for (size_t i = 0; i < 20; i += 2) sum += (uint32_t{f[ip + i]} << 8) | f[ip + i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(f, ip + 10, static_cast<uint16_t>(~sum));
}

// 106 bytes: Ethernet 14 + IPv4 20 + TCP 32 (timestamps option) + 40 bytes of payload:
// an ordinary data segment of an established connection (PSH|ACK).
Frame tcp_frame() {
  Frame f = ethernet(106, kHostMac, 0x0800);
  ipv4(f, 6);
  const size_t t = 34;
  put16(f, t, 43210);
  put16(f, t + 2, 80);
  put32(f, t + 4, 0x12345678);
  put32(f, t + 8, 0x9abcdef0);
  f[t + 12] = 8 << 4;  // data offset: 32 bytes
  f[t + 13] = 0x18;    // PSH|ACK
  put16(f, t + 14, 502);
  f[t + 20] = 1;  // NOP
  f[t + 21] = 1;  // NOP
  f[t + 22] = 8;  // timestamps
  f[t + 23] = 10;
  const char* payload = "GET / HTTP/1.1\r\nHost: 10.0.0.1\r\nAccept:";
  std::memcpy(&f[t + 32], payload, 40);
  return f;
}

// 106 bytes: Ethernet 14 + IPv4 20 + UDP 8 + 64 bytes of payload.
Frame udp_frame() {
  Frame f = ethernet(106, kHostMac, 0x0800);
  ipv4(f, 17);
  const size_t u = 34;
  put16(f, u, 53001);
  put16(f, u + 2, 53);
  put16(f, u + 4, 72);
  for (size_t i = u + 8; i < f.size(); ++i) f[i] = static_cast<uint8_t>(i);
  return f;
}

// 42 bytes: a broadcast ARP request as a guest sends it (virtio does not pad to 60).
Frame arp_frame() {
  Frame f = ethernet(42, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x0806);
  put16(f, 14, 1);       // Ethernet
  put16(f, 16, 0x0800);  // IPv4
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, 1);  // request
  std::memcpy(&f[22], kVmMac.data(), 6);
  put32(f, 28, kVmIp);
  put32(f, 38, kHostIp);
  return f;
}

// The slow path's classes (classify_slow in bpf/net.bpf.c), built from the TCP data
// segment above so that only the headers differ.

// tcp_frame() behind VLAN tags (TPIDs in order, VID 100): 110 B with one, 114 B with two.
Frame tagged(Frame f, std::initializer_list<uint16_t> tpids) {
  std::vector<uint8_t> tags;
  for (uint16_t tpid : tpids)
    tags.insert(tags.end(), {static_cast<uint8_t>(tpid >> 8), static_cast<uint8_t>(tpid), 0, 100});
  f.insert(f.begin() + 12, tags.begin(), tags.end());
  return f;
}

// tcp_frame() with 4 bytes of IPv4 options (NOP NOP NOP EOL): 110 B, IHL 6.
Frame ipv4_options_frame() {
  Frame f = tcp_frame();
  const size_t ip = 14;
  f.insert(f.begin() + ip + 20, {1, 1, 1, 0});
  f[ip] = 0x46;
  put16(f, ip + 2, static_cast<uint16_t>(f.size() - ip));
  put16(f, ip + 10, 0);
  uint32_t sum = 0;
  for (size_t i = 0; i < 24; i += 2) sum += (uint32_t{f[ip + i]} << 8) | f[ip + i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(f, ip + 10, static_cast<uint16_t>(~sum));
  return f;
}

// The same TCP segment over IPv6 (fd00::2 -> fd00::1): 126 B.
Frame ipv6_tcp_frame() {
  Frame v4 = tcp_frame();
  Frame f = ethernet(v4.size() + 20, kHostMac, 0x86dd);
  const size_t ip = 14;
  f[ip] = 0x60;
  put16(f, ip + 4, static_cast<uint16_t>(f.size() - ip - 40));  // payload length
  f[ip + 6] = 6;                                                // next header: TCP
  f[ip + 7] = 64;
  f[ip + 8] = 0xfd;
  f[ip + 23] = 2;
  f[ip + 24] = 0xfd;
  f[ip + 39] = 1;
  std::copy(v4.begin() + 34, v4.end(), f.begin() + 54);
  return f;
}

// The service classes (bpf/service.h): the frames that do more than count. The VM is
// 10.0.0.2, serving on port 80; "to the VM" frames run through vs_tc_egress (the tap's
// egress), "from the VM" ones through vs_tc_ingress. Repeated 10M times, a SYN finds its
// entry after the first run (a retransmit: one failed BPF_NOEXIST insert), a SYN-ACK, RST
// or DNS response finds none to match after the first (one hash lookup miss).

// A TCP segment without payload: 74 B with a SYN's 20 bytes of options, else 54 B.
Frame tcp_control_frame(uint8_t flags, bool to_vm) {
  const bool syn = flags & 0x02;
  Frame f = ethernet(syn ? 74 : 54, kHostMac, 0x0800);
  ipv4(f, 6);
  const size_t t = 34;
  put16(f, t, to_vm ? 43210 : 80);
  put16(f, t + 2, to_vm ? 80 : 43210);
  put32(f, t + 4, 0x12345678);
  f[t + 12] = static_cast<uint8_t>((syn ? 40 : 20) / 4 << 4);
  f[t + 13] = flags;
  put16(f, t + 14, 64240);
  if (to_vm) {  // swap the addresses: peer -> VM
    put32(f, 26, kHostIp);
    put32(f, 30, kVmIp);
  }
  return f;
}

// A DNS query for www.example.com to the VM (71 B), or its response from the VM with one
// A record (87 B).
Frame dns_frame(bool response) {
  const uint8_t question[] = {3,   'w', 'w', 'w', 7,   'e', 'x', 'a', 'm', 'p', 'l',
                              'e', 3,   'c', 'o', 'm', 0,   0,   1,   0,   1};
  const uint8_t answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34};
  const size_t len = 42 + 12 + sizeof(question) + (response ? sizeof(answer) : 0);
  Frame f = ethernet(len, kHostMac, 0x0800);
  ipv4(f, 17);
  const size_t u = 34;
  put16(f, u, response ? 53 : 53001);
  put16(f, u + 2, response ? 53001 : 53);
  put16(f, u + 4, static_cast<uint16_t>(len - u));
  put16(f, u + 8, 0x4242);                       // id
  put16(f, u + 10, response ? 0x8180 : 0x0100);  // QR RD RA / RD
  put16(f, u + 12, 1);                           // one question
  put16(f, u + 14, response ? 1 : 0);            // answers
  std::memcpy(&f[u + 20], question, sizeof(question));
  if (response) std::memcpy(&f[u + 20 + sizeof(question)], answer, sizeof(answer));
  if (!response) {
    put32(f, 26, kHostIp);
    put32(f, 30, kVmIp);
  }
  return f;
}

// tcp_frame() from the VM's port 80 carrying the start of an HTTP response (106 B).
Frame http_response_frame() {
  Frame f = tcp_frame();
  put16(f, 34, 80);
  put16(f, 36, 43210);
  std::memcpy(&f[34 + 32], "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n", 40);
  return f;
}

double thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct EmptyDeleter {
  void operator()(empty_tc_bpf* s) const { empty_tc_bpf__destroy(s); }
};
std::unique_ptr<empty_tc_bpf, EmptyDeleter> g_empty;

// One bpf_prog_test_run of `repeat` packets: thread CPU ns per packet and the kernel's own
// per-run duration, or an error.
struct TestRun {
  double ns = 0;
  uint32_t kernel_ns = 0;
  std::string error;
};

TestRun test_run(int prog_fd, const Frame& frame, int ifindex, int repeat) {
  __sk_buff ctx{};
  ctx.ifindex = static_cast<uint32_t>(ifindex);  // the device the program sees (1: lo)
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = repeat);
  double t0 = thread_cpu_ns();
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  double t1 = thread_cpu_ns();
  if (err) return {0, 0, "bpf_prog_test_run_opts: " + std::string(strerror(errno))};
  if (static_cast<int32_t>(opts.retval) != -1)
    return {0, 0, "program did not return -1 (TCX_NEXT)"};
  return {(t1 - t0) / repeat, opts.duration, {}};
}

void run_packets(benchmark::State& state, int prog_fd, const Frame& frame, int ifindex) {
  uint64_t kernel_ns = 0;
  for (auto _ : state) {
    TestRun r = test_run(prog_fd, frame, ifindex, kRepeat);
    if (!r.error.empty()) {
      state.SkipWithError(r.error.c_str());
      return;
    }
    state.SetIterationTime(r.ns * 1e-9);
    kernel_ns += r.kernel_ns;
  }
  state.counters["kernel_ns"] =
      benchmark::Counter(static_cast<double>(kernel_ns), benchmark::Counter::kAvgIterations);
  state.counters["frame_bytes"] = static_cast<double>(frame.size());
}

// The ratio to the empty program, measured in pairs: on a shared machine the load changes
// between two separate benchmarks (seconds apart) by more than the difference measured.
// Each pair runs both programs on the frame, kPairRepeat packets each, back to back (the
// order swapped every pair); the reported ratio is the median of the kPairs pairs' ratios,
// vmscope_ns and empty_ns the medians of each program's times.
constexpr int kPairRepeat = 1'000'000;
constexpr int kPairs = 31;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void run_pairs(benchmark::State& state, int prog_fd, int empty_fd, const Frame& frame,
               int ifindex) {
  std::vector<double> ratios, vs, empty;
  for (auto _ : state) {
    for (int i = 0; i < kPairs; ++i) {
      TestRun a, b;
      if (i % 2 == 0) {
        a = test_run(prog_fd, frame, ifindex, kPairRepeat);
        b = test_run(empty_fd, frame, ifindex, kPairRepeat);
      } else {
        b = test_run(empty_fd, frame, ifindex, kPairRepeat);
        a = test_run(prog_fd, frame, ifindex, kPairRepeat);
      }
      if (!a.error.empty() || !b.error.empty()) {
        state.SkipWithError((a.error.empty() ? b.error : a.error).c_str());
        return;
      }
      ratios.push_back(a.ns / b.ns);
      vs.push_back(a.ns);
      empty.push_back(b.ns);
    }
    state.SetIterationTime(median(vs) * 1e-9);
  }
  state.counters["ratio"] = median(ratios);
  state.counters["vmscope_ns"] = median(vs);
  state.counters["empty_ns"] = median(empty);
  state.counters["frame_bytes"] = static_cast<double>(frame.size());
}

void add(const std::string& name, int prog_fd, Frame frame, int ifindex) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [prog_fd, frame = std::move(frame), ifindex](benchmark::State& s) {
                                 run_packets(s, prog_fd, frame, ifindex);
                               })
      ->Iterations(1)
      ->Repetitions(kRepetitions)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond)
      ->DisplayAggregatesOnly(true);
}

// tc_ratio/<program>/<frame>: the paired ratio (run_pairs), one run.
void add_pairs(const std::string& name, int prog_fd, int empty_fd, Frame frame, int ifindex) {
  benchmark::RegisterBenchmark(
      name.c_str(), [prog_fd, empty_fd, frame = std::move(frame), ifindex](
                        benchmark::State& s) { run_pairs(s, prog_fd, empty_fd, frame, ifindex); })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kNanosecond);
}

}  // namespace

void register_tc_benchmarks() {
  g_empty.reset(empty_tc_bpf__open_and_load());
  if (!g_empty) {
    std::fprintf(stderr, "vmscope_bench: load empty_tc.bpf.o: %s\n", strerror(errno));
    return;
  }
  int empty_fd = bpf_program__fd(g_empty->progs.empty_tc);
  int vs_fd = env().programs->ingress_prog_fd();
  int tracked = env().tracked_ifindex;  // a tap with a slot: the full counting path
  const std::pair<const char*, Frame> frames[] = {
      {"tcp106", tcp_frame()},
      {"udp106", udp_frame()},
      {"arp42", arp_frame()},
      {"ipv4opt_tcp110", ipv4_options_frame()},
      {"vlan_tcp110", tagged(tcp_frame(), {0x8100})},
      {"qinq_tcp114", tagged(tcp_frame(), {0x88a8, 0x8100})},
      {"ipv6_tcp126", ipv6_tcp_frame()}};
  for (const auto& [fname, frame] : frames) {
    add(std::string(kTcEmpty) + "/" + fname, empty_fd, frame, tracked);
    add(std::string(kTcVmscope) + "/" + fname, vs_fd, frame, tracked);
    add_pairs(std::string("tc_ratio/vs_tc_ingress/") + fname, vs_fd, empty_fd, frame, tracked);
  }
  // The service classes, to the VM through the egress program, from it through ingress.
  const std::string egress_name = "tc_per_packet/vs_tc_egress";
  int vs_egress_fd = env().programs->egress_prog_fd();
  const std::tuple<const char*, Frame, bool> service_frames[] = {
      {"syn74_to_vm", tcp_control_frame(0x02, true), true},
      {"synack74_from_vm", tcp_control_frame(0x12, false), false},
      {"rst54_from_vm", tcp_control_frame(0x14, false), false},
      {"dns_query71_to_vm", dns_frame(false), true},
      {"dns_response87_from_vm", dns_frame(true), false},
      {"http_response106_from_vm", http_response_frame(), false},
      {"tcp106_to_vm", tcp_frame(), true},
  };
  for (const auto& [fname, frame, to_vm] : service_frames) {
    add(std::string(kTcEmpty) + "/" + fname, empty_fd, frame, tracked);
    add((to_vm ? egress_name : std::string(kTcVmscope)) + "/" + fname, to_vm ? vs_egress_fd : vs_fd,
        frame, tracked);
    add_pairs(std::string("tc_ratio/") + (to_vm ? "vs_tc_egress/" : "vs_tc_ingress/") + fname,
              to_vm ? vs_egress_fd : vs_fd, empty_fd, frame, tracked);
  }
  // Not monitored (if_slot[lo] == 0): lookup and early exit.
  add(std::string(kTcUntracked) + "/tcp106", vs_fd, tcp_frame(), 1);
  add_pairs("tc_ratio/vs_tc_ingress_untracked_ifindex/tcp106", vs_fd, empty_fd, tcp_frame(), 1);
}

}  // namespace vmscope::bench
