// `vmscope top`'s figures: rates are counter deltas over the boottime between two engine
// samples, rows join a VM's processes and taps by name, counters that go down never give
// huge rates, and the view's sort/filter order is what the operator asked for.
#include "top/top_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <set>

namespace vmscope {
namespace {

constexpr int64_t kSec = 1'000'000'000;

vs_net_counters counters(uint64_t bytes, uint64_t packets, uint64_t syns = 0) {
  vs_net_counters c{};
  c.bytes = bytes;
  c.packets = packets;
  c.tcp_syns = syns;
  return c;
}

TapSample tap(int ifindex, std::string_view ifname, std::string_view vm, vs_net_counters to_vm,
              vs_net_counters from_vm) {
  TapSample t;
  t.ifindex = ifindex;
  t.ifname = ifname;
  t.vm = vm;
  t.launcher = "solo5-hvt";
  t.bridge = "br0";
  t.mtu = 1500;
  t.host_to_vm = to_vm;
  t.vm_to_host = from_vm;
  return t;
}

VmResources resources(std::string_view vm, uint32_t pid, uint64_t runtime_ns, uint64_t min_flt,
                      uint64_t maj_flt) {
  VmResources v;
  v.vm = vm;
  v.launcher = "qemu";
  v.pid = pid;
  v.processes = 1;
  v.threads = 4;
  v.counters.runtime_ns = runtime_ns;
  v.counters.min_flt = min_flt;
  v.counters.maj_flt = maj_flt;
  v.rss_pages = 256;
  v.vsize_bytes = 1 << 30;
  v.uptime_s = 42;
  return v;
}

// A sample taken at boottime `boot_s`; realtime deliberately moves differently (a clock
// step) so that a rate computed from the realtime stamps would be wrong.
TickSample sample(double boot_s, std::vector<TapSample> taps, std::vector<VmResources> vms,
                  std::vector<BridgeSample> bridges = {}) {
  TickSample s;
  s.boottime_ns = static_cast<int64_t>(boot_s * kSec);
  s.timestamp_ns = 1'700'000'000 * kSec + static_cast<int64_t>(boot_s * 10 * kSec);
  s.net.emplace();
  s.net->taps = std::move(taps);
  s.net->bridges = std::move(bridges);
  s.vms = std::move(vms);
  return s;
}

const TopRow* find_row(const TopFrame& f, std::string_view vm) {
  for (const TopRow& r : f.rows)
    if (r.vm == vm) return &r;
  return nullptr;
}

VmEvent event(std::string vm, uint32_t pid) {
  VmEvent e;
  e.vm = std::move(vm);
  e.pid = pid;
  e.launcher = "qemu";
  return e;
}

TEST(TopModel, FirstSampleHasNoRates) {
  TopModel m;
  TapSample t = tap(5, "vmmtap0", "web", counters(1000, 10, 1), counters(500, 5, 2));
  t.kernel = {.rx_errors = 1, .rx_dropped = 2, .tx_errors = 3, .tx_dropped = 4};
  const TopFrame& f = m.update(sample(10, {t}, {resources("web", 1234, 7 * kSec, 100, 10)}));
  EXPECT_EQ(f.interval_s, 0);
  EXPECT_TRUE(f.net_ok);
  EXPECT_TRUE(f.procs_ok);
  ASSERT_EQ(f.rows.size(), 1u);
  const TopRow& r = f.rows[0];
  EXPECT_EQ(r.vm, "web");
  EXPECT_FALSE(r.rates_known);
  EXPECT_EQ(r.rx_bps, 0);
  EXPECT_EQ(r.tx_bps, 0);
  EXPECT_EQ(r.pps, 0);
  EXPECT_EQ(r.conns_per_s, 0);
  EXPECT_EQ(r.drops_per_s, 0);
  EXPECT_EQ(r.cpu_pct, 0);
  EXPECT_EQ(r.faults_per_s, 0);
  EXPECT_EQ(f.rx_bps, 0);
  EXPECT_EQ(f.tx_bps, 0);
  // The non-rate figures are there from the first sample.
  EXPECT_TRUE(r.has_process);
  EXPECT_EQ(r.pid, 1234u);
  EXPECT_EQ(r.launcher, "qemu");
  EXPECT_EQ(r.threads, 4u);
  EXPECT_EQ(r.rss_bytes, 256u * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(r.vsize_bytes, 1u << 30);
  EXPECT_EQ(r.min_flt, 100u);
  EXPECT_EQ(r.maj_flt, 10u);
  EXPECT_DOUBLE_EQ(r.uptime_s, 42);
  ASSERT_EQ(r.taps.size(), 1u);
  EXPECT_EQ(r.taps[0].name, "vmmtap0");
  EXPECT_EQ(r.taps[0].bridge, "br0");
  EXPECT_EQ(r.taps[0].ifindex, 5);
  EXPECT_EQ(r.taps[0].mtu, 1500u);
  EXPECT_EQ(r.taps[0].rx.bytes, 1000u);  // rx is the VM's: host -> VM
  EXPECT_EQ(r.taps[0].tx.bytes, 500u);
  EXPECT_EQ(r.taps[0].errors.tx_dropped, 4u);
  EXPECT_EQ(r.taps[0].rx_bps, 0);
}

TEST(TopModel, SecondSampleRatesOverBoottime) {
  TopModel m;
  TapSample t0 = tap(5, "vmmtap0", "web", counters(1000, 10, 0), counters(500, 5, 1));
  m.update(sample(10, {t0}, {resources("web", 1234, 1 * kSec, 100, 10)}));

  // 2 s later (boottime; realtime says 20 s).
  TapSample t1 = tap(5, "vmmtap0", "web", counters(3000, 30, 4), counters(1500, 15, 3));
  t1.kernel = {.rx_dropped = 2, .tx_errors = 2};
  const TopFrame& f =
      m.update(sample(12, {t1}, {resources("web", 1234, 1 * kSec + kSec / 2, 300, 30)}));
  EXPECT_DOUBLE_EQ(f.interval_s, 2.0);
  EXPECT_EQ(f.timestamp_ns, 1'700'000'000 * kSec + 120 * kSec);
  ASSERT_EQ(f.rows.size(), 1u);
  const TopRow& r = f.rows[0];
  EXPECT_TRUE(r.rates_known);
  EXPECT_DOUBLE_EQ(r.rx_bps, 8.0 * 2000 / 2);  // host_to_vm
  EXPECT_DOUBLE_EQ(r.tx_bps, 8.0 * 1000 / 2);  // vm_to_host
  EXPECT_DOUBLE_EQ(r.pps, 20.0 / 2 + 10.0 / 2);
  EXPECT_DOUBLE_EQ(r.conns_per_s, 4.0 / 2 + 2.0 / 2);
  EXPECT_DOUBLE_EQ(r.drops_per_s, 4.0 / 2);
  EXPECT_DOUBLE_EQ(r.cpu_pct, 25.0);  // 0.5 s of CPU in 2 s
  EXPECT_DOUBLE_EQ(r.faults_per_s, (330.0 - 110.0) / 2);
  EXPECT_DOUBLE_EQ(r.maj_faults_per_s, 20.0 / 2);
  ASSERT_EQ(r.taps.size(), 1u);
  const TopTap& tp = r.taps[0];
  EXPECT_DOUBLE_EQ(tp.rx_bps, 8000);
  EXPECT_DOUBLE_EQ(tp.tx_bps, 4000);
  EXPECT_DOUBLE_EQ(tp.rx_pps, 10);
  EXPECT_DOUBLE_EQ(tp.tx_pps, 5);
  EXPECT_DOUBLE_EQ(tp.drops_per_s, 2);
  EXPECT_DOUBLE_EQ(f.rx_bps, 8000);
  EXPECT_DOUBLE_EQ(f.tx_bps, 4000);
}

TEST(TopModel, TwoTapsOfOneVmAreSummed) {
  TopModel m;
  m.update(sample(0,
                  {tap(5, "vmmtap0", "web", counters(0, 0), counters(0, 0)),
                   tap(9, "vmmtap1", "web", counters(100, 1), counters(100, 1))},
                  {resources("web", 1, 0, 0, 0)}));
  const TopFrame& f =
      m.update(sample(2,
                      {tap(5, "vmmtap0", "web", counters(1000, 10, 2), counters(2000, 20)),
                       tap(9, "vmmtap1", "web", counters(600, 7), counters(300, 3, 2))},
                      {resources("web", 1, 0, 0, 0)}));
  ASSERT_EQ(f.rows.size(), 1u);
  const TopRow& r = f.rows[0];
  ASSERT_EQ(r.taps.size(), 2u);
  EXPECT_DOUBLE_EQ(r.rx_bps, 8.0 * (1000 + 500) / 2);
  EXPECT_DOUBLE_EQ(r.tx_bps, 8.0 * (2000 + 200) / 2);
  EXPECT_DOUBLE_EQ(r.pps, (10.0 + 20 + 6 + 2) / 2);
  EXPECT_DOUBLE_EQ(r.conns_per_s, (2.0 + 2) / 2);
  EXPECT_DOUBLE_EQ(r.taps[0].rx_bps + r.taps[1].rx_bps, r.rx_bps);
}

TEST(TopModel, TapWithoutProcess) {
  TopModel m;
  TapSample t = tap(5, "vmmtap0", "orphan", counters(0, 0), counters(0, 0));
  m.update(sample(0, {t}, {}));
  t.host_to_vm = counters(800, 4);
  const TopFrame& f = m.update(sample(2, {t}, {}));
  ASSERT_EQ(f.rows.size(), 1u);
  const TopRow& r = f.rows[0];
  EXPECT_EQ(r.vm, "orphan");
  EXPECT_FALSE(r.has_process);
  EXPECT_EQ(r.pid, 0u);
  EXPECT_EQ(r.launcher, "solo5-hvt");  // from the tap
  EXPECT_EQ(r.cpu_pct, 0);
  EXPECT_TRUE(r.rates_known);  // its network rates are
  EXPECT_DOUBLE_EQ(r.rx_bps, 3200);
}

TEST(TopModel, TapPidIsUsedWhenThereAreNoProcessMetrics) {
  TopModel m;
  TapSample t = tap(5, "vmmtap0", "web", counters(0, 0), counters(0, 0));
  t.pid = 4321;
  const TopFrame& f = m.update(sample(0, {t}, {}));
  ASSERT_EQ(f.rows.size(), 1u);
  EXPECT_EQ(f.rows[0].pid, 4321u);
  EXPECT_FALSE(f.rows[0].has_process);
}

TEST(TopModel, CounterGoingDownGivesZeroNotHuge) {
  TopModel m;
  m.update(sample(0, {tap(5, "vmmtap0", "web", counters(5000, 50, 9), counters(5000, 50, 9))},
                  {resources("web", 1, 10 * kSec, 1000, 100)}));
  // The slot went to a new tap (same ifindex reused) and the process restarted.
  const TopFrame& f =
      m.update(sample(2, {tap(5, "vmmtap0", "web", counters(100, 1), counters(100, 1))},
                      {resources("web", 2, kSec / 10, 10, 1)}));
  ASSERT_EQ(f.rows.size(), 1u);
  const TopRow& r = f.rows[0];
  EXPECT_EQ(r.rx_bps, 0);
  EXPECT_EQ(r.tx_bps, 0);
  EXPECT_EQ(r.pps, 0);
  EXPECT_EQ(r.conns_per_s, 0);
  EXPECT_EQ(r.cpu_pct, 0);
  EXPECT_EQ(r.faults_per_s, 0);
  EXPECT_EQ(r.maj_faults_per_s, 0);
  // And the next interval counts from the new values.
  const TopFrame& g =
      m.update(sample(4, {tap(5, "vmmtap0", "web", counters(300, 3), counters(100, 1))},
                      {resources("web", 2, kSec / 10 + kSec, 10, 1)}));
  EXPECT_DOUBLE_EQ(g.rows[0].rx_bps, 8.0 * 200 / 2);
  EXPECT_DOUBLE_EQ(g.rows[0].cpu_pct, 50.0);
}

TEST(TopModel, BridgeRates) {
  TopModel m;
  BridgeSample b;
  b.ifindex = 3;
  b.name = "br0";
  b.taps = 2;
  b.host_to_vm = counters(1000, 1);
  b.vm_to_host = counters(500, 1);
  const TopFrame& f0 = m.update(sample(0, {}, {}, {b}));
  ASSERT_EQ(f0.bridges.size(), 1u);
  EXPECT_EQ(f0.bridges[0].rx_bps, 0);
  b.host_to_vm = counters(3000, 2);
  b.vm_to_host = counters(4500, 2);
  const TopFrame& f = m.update(sample(2, {}, {}, {b}));
  ASSERT_EQ(f.bridges.size(), 1u);
  EXPECT_EQ(f.bridges[0].name, "br0");
  EXPECT_EQ(f.bridges[0].taps, 2u);
  EXPECT_DOUBLE_EQ(f.bridges[0].rx_bps, 8.0 * 2000 / 2);
  EXPECT_DOUBLE_EQ(f.bridges[0].tx_bps, 8.0 * 4000 / 2);
}

TEST(TopModel, HostTotalsSumEveryVm) {
  TopModel m;
  m.update(sample(0,
                  {tap(5, "vmmtap0", "a", counters(0, 0), counters(0, 0)),
                   tap(6, "vmmtap1", "b", counters(0, 0), counters(0, 0))},
                  {}));
  const TopFrame& f = m.update(sample(2,
                                      {tap(5, "vmmtap0", "a", counters(100, 1), counters(1000, 1)),
                                       tap(6, "vmmtap1", "b", counters(300, 1), counters(3000, 1))},
                                      {}));
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_DOUBLE_EQ(f.rx_bps, 8.0 * 400 / 2);
  EXPECT_DOUBLE_EQ(f.tx_bps, 8.0 * 4000 / 2);
}

TEST(TopModel, RowsJoinedByVmName) {
  // Separate buffers: the join is by name, not by the views' addresses.
  std::string from_procs = "web", from_taps = "web";
  TopModel m;
  TapSample t = tap(5, "vmmtap0", from_taps, counters(0, 0), counters(0, 0));
  t.pid = 999;  // the tap's holder; the process tracker's pid wins
  const TopFrame& f = m.update(
      sample(0, {t}, {resources(from_procs, 1234, 0, 0, 0), resources("db", 77, 0, 0, 0)}));
  ASSERT_EQ(f.rows.size(), 2u);
  const TopRow* web = find_row(f, "web");
  ASSERT_NE(web, nullptr);
  EXPECT_TRUE(web->has_process);
  EXPECT_EQ(web->pid, 1234u);
  EXPECT_EQ(web->launcher, "qemu");
  ASSERT_EQ(web->taps.size(), 1u);
  const TopRow* db = find_row(f, "db");
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->has_process);
  EXPECT_TRUE(db->taps.empty());
}

TEST(TopModel, NewVmInLaterSampleHasNoRatesYet) {
  TopModel m;
  m.update(sample(0, {tap(5, "vmmtap0", "old", counters(0, 0), counters(0, 0))},
                  {resources("old", 1, 0, 0, 0)}));
  const TopFrame& f =
      m.update(sample(2,
                      {tap(5, "vmmtap0", "old", counters(100, 1), counters(0, 0)),
                       tap(6, "vmmtap1", "new", counters(5000, 5), counters(0, 0))},
                      {resources("old", 1, kSec, 0, 0), resources("new", 2, 30 * kSec, 500, 0)}));
  const TopRow* old_vm = find_row(f, "old");
  const TopRow* new_vm = find_row(f, "new");
  ASSERT_TRUE(old_vm && new_vm);
  EXPECT_TRUE(old_vm->rates_known);
  EXPECT_DOUBLE_EQ(old_vm->cpu_pct, 50);
  EXPECT_FALSE(new_vm->rates_known);
  EXPECT_EQ(new_vm->rx_bps, 0);  // not its counters since boot divided by 2 s
  EXPECT_EQ(new_vm->cpu_pct, 0);
  EXPECT_EQ(new_vm->faults_per_s, 0);
}

TEST(TopModel, EventsKeptOldestFirst) {
  TopModel m;
  m.add_events({event("a", 1), event("b", 2)});
  TickSample s = sample(0, {}, {});
  s.events = {event("c", 3)};
  m.update(s);
  ASSERT_EQ(m.events().size(), 3u);
  EXPECT_EQ(m.events()[0].pid, 1u);
  EXPECT_EQ(m.events()[1].pid, 2u);
  EXPECT_EQ(m.events()[2].vm, "c");
  // A later sample without events keeps them.
  m.update(sample(1, {}, {}));
  EXPECT_EQ(m.events().size(), 3u);
}

TEST(TopModel, EventsCappedAtMax) {
  TopModel m;
  std::vector<VmEvent> many;
  for (uint32_t i = 0; i < TopModel::kMaxEvents + 5; ++i) many.push_back(event("vm", i));
  m.add_events(many);
  ASSERT_EQ(m.events().size(), TopModel::kMaxEvents);
  EXPECT_EQ(m.events().front().pid, 5u);  // the oldest ones went
  EXPECT_EQ(m.events().back().pid, TopModel::kMaxEvents + 4);
  TickSample s = sample(0, {}, {});
  s.events = {event("vm", 1000)};
  m.update(s);
  ASSERT_EQ(m.events().size(), TopModel::kMaxEvents);
  EXPECT_EQ(m.events().front().pid, 6u);
  EXPECT_EQ(m.events().back().pid, 1000u);
}

// A tick whose network drain failed must not move the network baseline: the next good
// tick's rate is its delta over the whole time since the last good network sample.
TEST(TopModel, FailedNetTickKeepsBaseline) {
  TopModel m;
  m.update(sample(10, {tap(5, "vmmtap0", "web", counters(0, 0), counters(0, 0))},
                  {resources("web", 1, 0, 0, 0)}));
  TickSample failed = sample(12, {}, {resources("web", 1, kSec, 0, 0)});
  failed.net.reset();
  const TopFrame& f1 = m.update(failed);
  EXPECT_FALSE(f1.net_ok);
  EXPECT_TRUE(f1.procs_ok);
  const TopFrame& f2 =
      m.update(sample(14, {tap(5, "vmmtap0", "web", counters(4000, 40), counters(0, 0))},
                      {resources("web", 1, 2 * kSec, 0, 0)}));
  ASSERT_EQ(f2.rows.size(), 1u);
  // 4000 bytes since boottime 10, i.e. over 4 s: 8000 bit/s, 10 packets/s.
  // Over the 4 s since the last good network sample, not the 2 s since the failed one.
  EXPECT_DOUBLE_EQ(f2.rows[0].rx_bps, 8000);
  EXPECT_DOUBLE_EQ(f2.rows[0].pps, 10);
  EXPECT_DOUBLE_EQ(f2.rows[0].cpu_pct, 50);  // processes sampled at 12 s: 1 s over 2 s
}

// The same for process metrics: a tick without them keeps the CPU baseline.
TEST(TopModel, FailedProcessTickKeepsBaseline) {
  TopModel m;
  m.update(sample(10, {}, {resources("web", 1, 0, 0, 0)}));
  TickSample failed = sample(12, {}, {});
  failed.vms.reset();
  const TopFrame& f1 = m.update(failed);
  EXPECT_FALSE(f1.procs_ok);
  const TopFrame& f2 = m.update(sample(14, {}, {resources("web", 1, 2 * kSec, 400, 0)}));
  ASSERT_EQ(f2.rows.size(), 1u);
  // 2 s of CPU over the 4 s since the last process sample: 50%, 100 faults/s.
  // Over the time since the last good process sample, not since the failed one.
  EXPECT_DOUBLE_EQ(f2.rows[0].cpu_pct, 50);
  EXPECT_DOUBLE_EQ(f2.rows[0].faults_per_s, 100);
}

// CPU wait and disk ------------------------------------------------------------------

VmResources health(std::string_view vm, uint64_t run_delay_ns, uint64_t read, uint64_t write,
                   uint64_t cancelled, uint64_t syscr, uint64_t syscw) {
  VmResources v = resources(vm, 1234, 0, 0, 0);
  v.counters.run_delay_ns = run_delay_ns;
  v.counters.run_count = 1000;
  v.counters.read_bytes = read;
  v.counters.write_bytes = write;
  v.counters.cancelled_write_bytes = cancelled;
  v.counters.rchar = 7 * read;
  v.counters.wchar = 9 * write;
  v.counters.syscr = syscr;
  v.counters.syscw = syscw;
  return v;
}

TEST(TopModel, CpuWaitAndDiskRatesOverBoottime) {
  constexpr uint64_t MiB = 1 << 20;
  TopModel m;
  const TopFrame& f0 = m.update(sample(10, {}, {health("web", kSec, MiB, 3 * MiB, MiB, 10, 20)}));
  EXPECT_EQ(f0.rows[0].wait_pct, 0);
  EXPECT_EQ(f0.rows[0].disk_read_Bps, 0);
  EXPECT_DOUBLE_EQ(f0.rows[0].run_delay_s, 1.0);  // totals from the first sample
  // 2 s later: 1.5 s waited (75%), 4 MiB read, 6 MiB written of which 2 MiB cancelled.
  const TopFrame& f = m.update(
      sample(12, {}, {health("web", 2 * kSec + kSec / 2, 5 * MiB, 9 * MiB, 3 * MiB, 110, 60)}));
  ASSERT_EQ(f.rows.size(), 1u);
  const TopRow& r = f.rows[0];
  EXPECT_DOUBLE_EQ(r.wait_pct, 75.0);
  EXPECT_DOUBLE_EQ(r.disk_read_Bps, 2.0 * MiB);
  EXPECT_DOUBLE_EQ(r.disk_write_Bps, 2.0 * MiB);  // (9-3) - (3-1) MiB over 2 s
  EXPECT_DOUBLE_EQ(r.syscr_per_s, 50);
  EXPECT_DOUBLE_EQ(r.syscw_per_s, 20);
  EXPECT_DOUBLE_EQ(r.run_delay_s, 2.5);
  EXPECT_EQ(r.run_count, 1000u);
  EXPECT_EQ(r.read_bytes, 5 * MiB);
  EXPECT_EQ(r.write_bytes, 9 * MiB);
  EXPECT_EQ(r.cancelled_write_bytes, 3 * MiB);
  EXPECT_EQ(r.rchar, 35 * MiB);
  EXPECT_EQ(r.wchar, 81 * MiB);
  EXPECT_EQ(r.syscr, 110u);
  EXPECT_EQ(r.syscw, 60u);
  // A process of the VM exited (its I/O left with it): no rate rather than a huge one.
  const TopFrame& g = m.update(sample(14, {}, {health("web", 3 * kSec, MiB, MiB, 0, 5, 5)}));
  EXPECT_DOUBLE_EQ(g.rows[0].wait_pct, 25.0);
  EXPECT_EQ(g.rows[0].disk_read_Bps, 0);
  EXPECT_EQ(g.rows[0].disk_write_Bps, 0);
  EXPECT_EQ(g.rows[0].syscr_per_s, 0);
}

// Service health ---------------------------------------------------------------------

vs_service_counters service(uint64_t base) {
  vs_service_counters c{};
  c.tcp_syn_in = base + 10;
  c.tcp_accepted = base + 8;
  c.tcp_refused = base + 1;
  c.tcp_unanswered = base + 1;
  c.handshake_count = base + 8;
  c.handshake_sum_us = base * 100 + 4000;
  c.handshake_le_1s = base + 8;
  c.dns_responses = 2 * base;
  c.dns_nxdomain = base;
  c.http_5xx = base + 3;
  return c;
}

TEST(TopModel, ServiceCountersSummedOverTapsWithTheIntervalsCounts) {
  TopModel m;
  TapSample a = tap(5, "vmmtap0", "web", counters(0, 0), counters(0, 0));
  TapSample b = tap(6, "vmmtap1", "web", counters(0, 0), counters(0, 0));
  a.service = service(0);
  b.service = service(100);
  const TopFrame& f0 = m.update(sample(10, {a, b}, {}));
  ASSERT_EQ(f0.rows.size(), 1u);
  EXPECT_EQ(f0.rows[0].service.tcp_syn_in, 10u + 110u);  // totals from the first sample
  EXPECT_EQ(f0.rows[0].service.http_5xx, 3u + 103u);
  EXPECT_EQ(f0.rows[0].service_interval_s, 0);
  EXPECT_EQ(f0.rows[0].service_last.tcp_syn_in, 0u);

  a.service = service(5);    // +5 on every field based on `base` (+500 us handshake sum)
  b.service = service(120);  // +20 (+2000 us)
  const TopFrame& f = m.update(sample(12, {a, b}, {}));
  const TopRow& r = f.rows[0];
  EXPECT_DOUBLE_EQ(r.service_interval_s, 2.0);
  EXPECT_EQ(r.service.tcp_syn_in, 15u + 130u);
  EXPECT_EQ(r.service_last.tcp_syn_in, 25u);  // counts, not per second
  EXPECT_EQ(r.service_last.tcp_accepted, 25u);
  EXPECT_EQ(r.service_last.handshake_count, 25u);
  EXPECT_EQ(r.service_last.handshake_sum_us, 2500u);
  EXPECT_EQ(r.service_last.dns_responses, 50u);
  EXPECT_EQ(r.service_last.dns_nxdomain, 25u);
  EXPECT_EQ(r.service_last.dns_noerror, 0u);
  EXPECT_EQ(r.service_last.http_5xx, 25u);

  // A tap whose counters went down (a new tap on the slot): it adds nothing.
  a.service = service(0);
  const TopFrame& g = m.update(sample(14, {a, b}, {}));
  EXPECT_EQ(g.rows[0].service_last.tcp_syn_in, 0u);
  EXPECT_EQ(g.rows[0].service.tcp_syn_in, 10u + 130u);
}

struct PercentileCase {
  std::vector<uint64_t> buckets;  // le_100us .. le_1s, cumulative
  uint64_t count;
  unsigned percent;
  std::optional<uint64_t> want;
};

void PrintTo(const PercentileCase& c, std::ostream* os) {
  *os << "p" << c.percent << " of " << c.count;
}

class HandshakePercentile : public ::testing::TestWithParam<PercentileCase> {};

TEST_P(HandshakePercentile, BucketBound) {
  const PercentileCase& p = GetParam();
  vs_service_counters c{};
  c.handshake_count = p.count;
  c.handshake_le_100us = p.buckets[0];
  c.handshake_le_1ms = p.buckets[1];
  c.handshake_le_10ms = p.buckets[2];
  c.handshake_le_100ms = p.buckets[3];
  c.handshake_le_1s = p.buckets[4];
  EXPECT_EQ(handshake_percentile_bound_us(c, p.percent), p.want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HandshakePercentile,
    ::testing::Values(
        PercentileCase{{0, 0, 0, 0, 0}, 0, 50, std::nullopt},  // no handshakes
        PercentileCase{{10, 10, 10, 10, 10}, 10, 50, 100},
        PercentileCase{{10, 10, 10, 10, 10}, 10, 99, 100},
        // 100 handshakes: 50 under 100 us, 49 more under 1 ms, 1 at 50 ms.
        PercentileCase{{50, 99, 99, 100, 100}, 100, 50, 100},  // the 50th is in the first
        PercentileCase{{50, 99, 99, 100, 100}, 100, 51, 1'000},
        PercentileCase{{50, 99, 99, 100, 100}, 100, 99, 1'000},  // the 99th
        PercentileCase{{50, 99, 99, 100, 100}, 100, 100, 100'000},
        // 3 handshakes: p50 is the 2nd, p99 the 3rd (rounded up, never below the 1st).
        PercentileCase{{1, 1, 2, 3, 3}, 3, 50, 10'000},
        PercentileCase{{1, 1, 2, 3, 3}, 3, 99, 100'000}, PercentileCase{{1, 1, 2, 3, 3}, 3, 1, 100},
        // Past the last bound: only "more than 1 s" is known.
        PercentileCase{{0, 0, 0, 0, 1}, 4, 50, kAboveLastBucket},
        PercentileCase{{0, 0, 0, 3, 3}, 4, 99, kAboveLastBucket},
        PercentileCase{{0, 0, 0, 3, 3}, 4, 75, 100'000}));

// select_rows ------------------------------------------------------------------------

TopRow row(std::string vm, uint32_t pid, double cpu, uint64_t rss, double faults, double rx,
           double tx, double pps, double conns, double drops, double uptime, double wait = 0,
           double disk_read = 0, double disk_write = 0) {
  TopRow r;
  r.wait_pct = wait;
  r.disk_read_Bps = disk_read;
  r.disk_write_Bps = disk_write;
  r.vm = std::move(vm);
  r.pid = pid;
  r.cpu_pct = cpu;
  r.rss_bytes = rss;
  r.faults_per_s = faults;
  r.rx_bps = rx;
  r.tx_bps = tx;
  r.pps = pps;
  r.conns_per_s = conns;
  r.drops_per_s = drops;
  r.uptime_s = uptime;
  return r;
}

TopFrame three_rows() {
  TopFrame f;
  // Not in name order, so that a sort that does nothing is noticed.
  f.rows.push_back(row("vm-c", 200, 20, 3000, 20, 200, 400, 10, 2, 2, 20, 5, 100, 900));
  f.rows.push_back(row("vm-a", 300, 10, 2000, 30, 100, 300, 20, 3, 1, 10, 40, 2000, 0));
  f.rows.push_back(row("vm-b", 100, 30, 1000, 10, 300, 100, 30, 1, 3, 30, 0.5, 0, 500));
  return f;
}

std::vector<std::string> names(const std::vector<const TopRow*>& rows) {
  std::vector<std::string> out;
  for (const TopRow* r : rows) out.push_back(r->vm);
  return out;
}

struct SortCase {
  SortKey key;
  std::vector<std::string> order;
};

void PrintTo(const SortCase& c, std::ostream* os) {
  *os << sort_key_name(c.key);
}

class TopSelectRows : public ::testing::TestWithParam<SortCase> {};

TEST_P(TopSelectRows, SortsByKey) {
  TopFrame f = three_rows();
  EXPECT_EQ(names(select_rows(f, GetParam().key, false, "")), GetParam().order)
      << sort_key_name(GetParam().key);
}

TEST_P(TopSelectRows, ReverseFlips) {
  TopFrame f = three_rows();
  std::vector<std::string> want(GetParam().order.rbegin(), GetParam().order.rend());
  if (GetParam().key == SortKey::kNet) want = {"vm-a", "vm-b", "vm-c"};  // tie stays by name
  EXPECT_EQ(names(select_rows(f, GetParam().key, true, "")), want) << sort_key_name(GetParam().key);
}

// One case per sort key (TopSortKeys.NamesRoundTrip checks there are 14).
INSTANTIATE_TEST_SUITE_P(Keys, TopSelectRows,
                         ::testing::Values(SortCase{SortKey::kName, {"vm-a", "vm-b", "vm-c"}},
                                           SortCase{SortKey::kPid,
                                                    {"vm-b", "vm-c", "vm-a"}},  // ascending
                                           SortCase{SortKey::kCpu, {"vm-b", "vm-c", "vm-a"}},
                                           SortCase{SortKey::kWait, {"vm-a", "vm-c", "vm-b"}},
                                           // read + write: a 2000, c 1000, b 500
                                           SortCase{SortKey::kDisk, {"vm-a", "vm-c", "vm-b"}},
                                           SortCase{SortKey::kMem, {"vm-c", "vm-a", "vm-b"}},
                                           SortCase{SortKey::kFaults, {"vm-a", "vm-c", "vm-b"}},
                                           // rx+tx: c 600, a 400, b 400: the tie is broken by name
                                           SortCase{SortKey::kNet, {"vm-c", "vm-a", "vm-b"}},
                                           SortCase{SortKey::kRx, {"vm-b", "vm-c", "vm-a"}},
                                           SortCase{SortKey::kTx, {"vm-c", "vm-a", "vm-b"}},
                                           SortCase{SortKey::kPkts, {"vm-b", "vm-a", "vm-c"}},
                                           SortCase{SortKey::kConns, {"vm-a", "vm-c", "vm-b"}},
                                           SortCase{SortKey::kDrops, {"vm-b", "vm-c", "vm-a"}},
                                           SortCase{SortKey::kUptime, {"vm-b", "vm-c", "vm-a"}}),
                         [](const ::testing::TestParamInfo<SortCase>& i) {
                           return std::string(sort_key_name(i.param.key));
                         });

TEST(TopSelectRowsOrder, TiesBrokenByName) {
  TopFrame f;
  for (const char* n : {"delta", "alpha", "charlie", "bravo"})
    f.rows.push_back(row(n, 1, 5, 100, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_EQ(names(select_rows(f, SortKey::kCpu, false, "")),
            (std::vector<std::string>{"alpha", "bravo", "charlie", "delta"}));
  EXPECT_EQ(names(select_rows(f, SortKey::kPid, false, "")),
            (std::vector<std::string>{"alpha", "bravo", "charlie", "delta"}));
  EXPECT_EQ(names(select_rows(f, SortKey::kName, true, "")),
            (std::vector<std::string>{"delta", "charlie", "bravo", "alpha"}));
}

TEST(TopSelectRowsOrder, FilterIsCaseInsensitiveSubstring) {
  TopFrame f;
  f.rows.push_back(row("web1", 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
  f.rows.push_back(row("db", 2, 2, 0, 0, 0, 0, 0, 0, 0, 0));
  f.rows.push_back(row("MyWebProxy", 3, 3, 0, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_EQ(names(select_rows(f, SortKey::kName, false, "WEB")),
            (std::vector<std::string>{"MyWebProxy", "web1"}));
  EXPECT_EQ(names(select_rows(f, SortKey::kCpu, false, "web")),
            (std::vector<std::string>{"MyWebProxy", "web1"}));
  EXPECT_EQ(names(select_rows(f, SortKey::kCpu, false, "")),
            (std::vector<std::string>{"MyWebProxy", "db", "web1"}));
  EXPECT_TRUE(select_rows(f, SortKey::kCpu, false, "mail").empty());
  EXPECT_EQ(names(select_rows(f, SortKey::kCpu, false, "b1")), std::vector<std::string>{"web1"});
}

// Sort key names ---------------------------------------------------------------------

TEST(TopSortKeys, NamesRoundTrip) {
  std::set<std::string_view> seen;
  std::set<SortKey> keys;
  for (SortKey k : sort_keys()) {
    std::string_view n = sort_key_name(k);
    EXPECT_NE(n, "?");
    EXPECT_TRUE(seen.insert(n).second) << "duplicate name " << n;
    EXPECT_TRUE(keys.insert(k).second) << "duplicate key " << n;
    auto parsed = parse_sort_key(n);
    ASSERT_TRUE(parsed) << n;
    EXPECT_EQ(*parsed, k) << n;
  }
  // Every SortKey is offered.
  EXPECT_EQ(sort_keys().size(), 14u);
  for (SortKey k : {SortKey::kCpu, SortKey::kWait, SortKey::kDisk, SortKey::kMem, SortKey::kNet,
                    SortKey::kFaults, SortKey::kName, SortKey::kPid, SortKey::kRx, SortKey::kTx,
                    SortKey::kPkts, SortKey::kConns, SortKey::kDrops, SortKey::kUptime})
    EXPECT_TRUE(keys.count(k)) << static_cast<int>(k);
}

TEST(TopSortKeys, UnknownNamesRejected) {
  EXPECT_FALSE(parse_sort_key("bogus"));
  EXPECT_FALSE(parse_sort_key(""));
  EXPECT_FALSE(parse_sort_key("cp"));
  EXPECT_FALSE(parse_sort_key("cpux"));
  EXPECT_EQ(parse_sort_key("cpu"), SortKey::kCpu);
  EXPECT_EQ(parse_sort_key("mem"), SortKey::kMem);
  EXPECT_EQ(parse_sort_key("wait"), SortKey::kWait);
  EXPECT_EQ(parse_sort_key("disk"), SortKey::kDisk);
}

// `<` and `>` walk the keys in column order: WAIT% right after CPU%, the disk pair
// between FLT/s and the network.
TEST(TopSortKeys, ColumnOrder) {
  std::vector<std::string_view> order;
  for (SortKey k : sort_keys()) order.push_back(sort_key_name(k));
  EXPECT_EQ(order,
            (std::vector<std::string_view>{"name", "pid", "cpu", "wait", "mem", "faults", "disk",
                                           "net", "rx", "tx", "pkts", "conns", "drops", "uptime"}));
}

}  // namespace
}  // namespace vmscope
