// Root test: bpf/net.bpf.c's fast paths (one-word tests on the linear data, constant
// offsets per tag count and IP version) count every frame as its general path does
// (classify_slow: each header copied, tags and IPv6 extension headers walked). The same
// source built with VS_TEST_GENERAL_PATH (tests/CMakeLists.txt) sends every frame to
// the general path; both objects run the same frames in both directions (a base set
// of every combination the fast paths tell apart, every cut of them, and seeded random
// mutations of their header bytes), and their net_stats and service_stats must agree
// after every frame. The Frames/* table says what the counts are; this says that a
// faster path changes none of them, on far more frames than a table can list.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "frame_builder.h"
#include "loopback_run.h"
#include "vmscope.h"

namespace vmscope::test {
namespace {

using F = FrameBuilder;
using Bytes = FrameBuilder::Bytes;

constexpr uint16_t kCtag = 0x8100, kStag = 0x88a8;
constexpr uint8_t kSyn = 0x02, kSynAck = 0x12, kRst = 0x04, kRstAck = 0x14, kPshAck = 0x18;
constexpr int kMutated = 20000;  // frames beyond the base set and its cuts

struct ObjectDeleter {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};
using Object = std::unique_ptr<bpf_object, ObjectDeleter>;

// One net.bpf.o loaded as built, lo (the test run's device) a VM tap in slot 0.
struct Loaded {
  Object obj;
  int ingress = -1, egress = -1, net_stats = -1, service_stats = -1, pending = -1;
};

int map_fd(bpf_object* o, const char* name) {
  bpf_map* m = bpf_object__find_map_by_name(o, name);
  return m ? bpf_map__fd(m) : -1;
}

void load(const char* path, Loaded& out) {
  Object o(bpf_object__open_file(path, nullptr));
  ASSERT_TRUE(o) << path << ": " << strerror(errno);
  // Slot-indexed maps at a test's size: a handful of slots is all this needs.
  bpf_map* m;
  bpf_object__for_each_map(m, o.get()) {
    if (bpf_map__max_entries(m) == VS_MAX_SLOTS) {
      ASSERT_EQ(bpf_map__set_max_entries(m, 64), 0);
    }
  }
  ASSERT_EQ(bpf_object__load(o.get()), 0) << path;
  out.ingress = bpf_program__fd(bpf_object__find_program_by_name(o.get(), "vs_tc_ingress"));
  out.egress = bpf_program__fd(bpf_object__find_program_by_name(o.get(), "vs_tc_egress"));
  out.net_stats = map_fd(o.get(), "net_stats");
  out.service_stats = map_fd(o.get(), "service_stats");
  out.pending = map_fd(o.get(), "service_pending");
  uint32_t ifindex = kLoopback, slot = 0, slot_plus_one = 1, tap = 1;
  ASSERT_EQ(bpf_map_update_elem(map_fd(o.get(), "if_slot"), &ifindex, &slot_plus_one, BPF_ANY), 0);
  ASSERT_EQ(bpf_map_update_elem(map_fd(o.get(), "service_slots"), &slot, &tap, BPF_ANY), 0);
  out.obj = std::move(o);
}

// Slot 0 of a per-CPU map, summed over the CPUs, as 64-bit words.
std::vector<uint64_t> slot0(int fd, size_t words) {
  static const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> all(static_cast<size_t>(cpus) * words), sum(words);
  uint32_t key = 0;
  EXPECT_EQ(bpf_map_lookup_elem(fd, &key, all.data()), 0);
  for (int c = 0; c < cpus; ++c)
    for (size_t w = 0; w < words; ++w) sum[w] += all[static_cast<size_t>(c) * words + w];
  return sum;
}

size_t entries(int fd) {
  vs_pending_key key{}, next{};
  size_t n = 0;
  for (void* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
    key = next;
    ++n;
  }
  return n;
}

constexpr const char* kServiceNames[] = {
#define VS_NAME_(f) #f,
    VS_SERVICE_COUNTERS(VS_NAME_)
#undef VS_NAME_
};

// Latencies depend on when each object saw the request and its answer (microseconds
// apart): their sums and histogram buckets are not compared, their counts are.
bool timing_dependent(std::string_view name) {
  return name.find("sum_us") != std::string_view::npos ||
         name.find("_le_") != std::string_view::npos;
}

std::string hex(const Bytes& f) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < f.size() && i < 96; ++i) {
    std::snprintf(b, sizeof(b), "%02x ", f[i]);
    s += b;
  }
  return s;
}

// Every combination the fast paths tell apart, and the service classes.
std::vector<Bytes> base_frames() {
  auto tcp_data = [](F f) { return f.tcp(kPshAck, 32).payload(40).build(); };
  auto http = [](F f) { return f.tcp(kPshAck).ports(80, 43210).text("HTTP/1.1 404 Not").build(); };
  std::vector<Bytes> v = {
      tcp_data(F(kUnicast).ipv4()),
      tcp_data(F(kUnicast).ipv4(6)),
      tcp_data(F(kUnicast).ipv4(15)),
      tcp_data(F(kUnicast).vlan(kCtag, 100).ipv4()),
      tcp_data(F(kUnicast).vlan(kStag, 100).ipv4()),
      tcp_data(F(kUnicast).vlan(kStag, 100).vlan(kCtag, 7).ipv4()),
      tcp_data(F(kUnicast).vlan(kCtag, 100).vlan(kCtag, 7).ipv4()),
      tcp_data(F(kUnicast).vlan(kCtag, 100).vlan(kCtag, 7).vlan(kCtag, 3).ipv4()),
      tcp_data(F(kUnicast).vlan(kCtag, 100).ipv4(6)),
      tcp_data(F(kUnicast).vlan(kStag, 100).vlan(kCtag, 7).ipv4(7)),
      tcp_data(F(kUnicast).ipv6()),
      tcp_data(F(kUnicast).vlan(kCtag, 100).ipv6()),
      tcp_data(F(kUnicast).vlan(kStag, 100).vlan(kCtag, 7).ipv6()),
      tcp_data(F(kUnicast).ipv6().ipv6_ext(0)),
      tcp_data(F(kUnicast).ipv6().ipv6_fragment(0, true)),
      F(kUnicast).ipv6().ipv6_fragment(5, false).proto(6, 40).build(),
      F(kUnicast).ipv4(5, 0x2000).tcp(kSyn).payload(20).build(),
      F(kUnicast).ipv4(5, 0x00b9).proto(6, 40).build(),
      F(kUnicast).ipv4().udp().payload(64).build(),
      F(kUnicast).vlan(kCtag, 100).ipv4().udp().payload(64).build(),
      F(kUnicast).ipv6().udp().payload(64).build(),
      F(kUnicast).ipv4().icmp().payload(56).build(),
      F(kUnicast).ipv6().icmp(128).payload(56).build(),
      F(kUnicast).ipv4().proto(47, 40).build(),
      F(kBroadcast).ethertype(0x0806).payload(28).build(),
      F(kBroadcast).vlan(kCtag, 100).ethertype(0x0806).payload(28).build(),
      F(kBroadcast).ipv4().udp().payload(300).build(),
      F(Mac{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}}).ipv4().udp().payload(40).build(),
      F(kUnicast).ipv4().tcp(kSyn, 40).swap_addrs().ports(43210, 80).build(),
      F(kUnicast).ipv4().tcp(kSynAck, 40).ports(80, 43210).build(),
      F(kUnicast).ipv4().tcp(kRst).ports(80, 43210).build(),
      F(kUnicast).ipv4().tcp(kRstAck).swap_addrs().ports(43210, 80).build(),
      F(kUnicast).ipv6().tcp(kSyn, 40).swap_addrs().ports(43210, 80).build(),
      F(kUnicast).ipv6().tcp(kSynAck, 40).ports(80, 43210).build(),
      F(kUnicast).ipv4().udp().ports(53001, 53).swap_addrs().dns(0x4242, 0x0100).build(),
      F(kUnicast).ipv4().udp().ports(53, 53001).dns(0x4242, 0x8183).build(),
      F(kUnicast).vlan(kCtag, 100).ipv4().udp().ports(53, 53001).dns(0x4242, 0x8180).build(),
      http(F(kUnicast).ipv4()),
      http(F(kUnicast).ipv4(6)),
      http(F(kUnicast).vlan(kCtag, 100).ipv4()),
      http(F(kUnicast).vlan(kStag, 100).vlan(kCtag, 7).ipv4()),
      http(F(kUnicast).ipv6()),
  };
  return v;
}

std::vector<Bytes> frames() {
  std::vector<Bytes> base = base_frames(), all = base;
  for (const Bytes& f : base)
    for (size_t len = 0; len < f.size(); ++len) all.emplace_back(f.begin(), f.begin() + len);
  // Bytes a classifier tests: EtherTypes and TPIDs, version/IHL, protocols, flags, ports.
  constexpr std::array<uint8_t, 27> kTelling = {
      0x00, 0x01, 0x02, 0x04, 0x06, 0x08, 0x11, 0x12, 0x14, 0x18, 0x20, 0x2b, 0x2c, 0x33,
      0x35, 0x3a, 0x3c, 0x40, 0x45, 0x46, 0x4f, 0x60, 0x81, 0x86, 0x88, 0xa8, 0xdd};
  std::mt19937 rng(20261202);
  for (int i = 0; i < kMutated; ++i) {
    Bytes f = base[rng() % base.size()];
    for (int m = 1 + static_cast<int>(rng() % 3); m > 0; --m) {
      size_t at = rng() % std::min<size_t>(f.size(), 96);
      f[at] = rng() % 2 ? kTelling[rng() % kTelling.size()] : static_cast<uint8_t>(rng());
    }
    if (rng() % 4 == 0) f.resize(rng() % (f.size() + 1));
    all.push_back(std::move(f));
  }
  return all;
}

TEST(ClassifyDifferential, FastPathsCountAsTheGeneralPath) {
  Loaded fast, general;
  ASSERT_NO_FATAL_FAILURE(load(VMSCOPE_NET_OBJ, fast));
  ASSERT_NO_FATAL_FAILURE(load(VMSCOPE_NET_GENERAL_OBJ, general));
  constexpr size_t kNetWords = sizeof(vs_dev_counters) / 8;
  constexpr size_t kServiceWords = sizeof(vs_service_counters) / 8;
  static_assert(kServiceWords == std::size(kServiceNames));
  const std::vector<Bytes> all = frames();
  for (size_t i = 0; i < all.size(); ++i) {
    for (bool egress : {false, true}) {
      LoopbackRun a = run_on_loopback(egress ? fast.egress : fast.ingress, all[i]);
      LoopbackRun b = run_on_loopback(egress ? general.egress : general.ingress, all[i]);
      // A frame shorter than an Ethernet header is refused by the test run itself.
      ASSERT_EQ(a.err, b.err) << "frame " << i << ": " << hex(all[i]);
      if (a.err) continue;
      ASSERT_EQ(a.retval, -1);
      ASSERT_EQ(b.retval, -1);
      ASSERT_EQ(slot0(fast.net_stats, kNetWords), slot0(general.net_stats, kNetWords))
          << "frame " << i << (egress ? " (egress)" : " (ingress)") << ", " << all[i].size()
          << " B: " << hex(all[i]);
      std::vector<uint64_t> sa = slot0(fast.service_stats, kServiceWords),
                            sb = slot0(general.service_stats, kServiceWords);
      for (size_t w = 0; w < kServiceWords; ++w) {
        if (timing_dependent(kServiceNames[w])) continue;
        ASSERT_EQ(sa[w], sb[w]) << kServiceNames[w] << ", frame " << i
                                << (egress ? " (egress)" : " (ingress)") << ": " << hex(all[i]);
      }
    }
  }
  EXPECT_EQ(entries(fast.pending), entries(general.pending));
  // The frames reached every counter the fast paths feed.
  std::vector<uint64_t> net = slot0(fast.net_stats, kNetWords);
  const auto& d = *reinterpret_cast<const vs_dev_counters*>(net.data());
  for (const vs_net_counters& c : d.dir) {
    EXPECT_GT(c.tcp_syns, 0u);
    EXPECT_GT(c.bcast_packets, 0u);
    EXPECT_GT(c.mcast_packets, 0u);
    for (uint64_t b : c.l4_bytes) EXPECT_GT(b, 0u);
  }
  std::vector<uint64_t> svc = slot0(fast.service_stats, kServiceWords);
  const auto& s = *reinterpret_cast<const vs_service_counters*>(svc.data());
  EXPECT_GT(s.tcp_syn_in, 0u);
  EXPECT_GT(s.tcp_accepted, 0u);
  EXPECT_GT(s.dns_responses, 0u);
  EXPECT_GT(s.http_4xx, 0u);
}

}  // namespace
}  // namespace vmscope::test
