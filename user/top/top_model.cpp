#include "top/top_model.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "drain/counter_sums.h"

namespace vmscope {
namespace {

// A counter that went down belongs to a new owner of the slot (or a restarted process):
// no rate for that interval rather than a huge one.
uint64_t delta(uint64_t now, uint64_t before) {
  return now >= before ? now - before : 0;
}

vs_service_counters service_delta(const vs_service_counters& now,
                                  const vs_service_counters& before) {
  vs_service_counters d{};
#define VS_DELTA_(f) d.f = delta(now.f, before.f);
  VS_SERVICE_COUNTERS(VS_DELTA_)
#undef VS_DELTA_
  return d;
}

// Bytes written to storage, net of those cancelled (truncated before writeback).
uint64_t written(const vs_task_counters& c) {
  return c.write_bytes >= c.cancelled_write_bytes ? c.write_bytes - c.cancelled_write_bytes : 0;
}

uint64_t drops_of(const LinkCounters& e) {
  return e.rx_errors + e.rx_dropped + e.tx_errors + e.tx_dropped;
}

double sort_value(const TopRow& r, SortKey k) {
  switch (k) {
    case SortKey::kCpu:
      return r.cpu_pct;
    case SortKey::kMem:
      return static_cast<double>(r.rss_bytes);
    case SortKey::kNet:
      return r.rx_bps + r.tx_bps;
    case SortKey::kWait:
      return r.wait_pct;
    case SortKey::kFaults:
      return r.faults_per_s;
    case SortKey::kDisk:
      return r.disk_read_Bps + r.disk_write_Bps;
    case SortKey::kPid:
      return r.pid;
    case SortKey::kRx:
      return r.rx_bps;
    case SortKey::kTx:
      return r.tx_bps;
    case SortKey::kPkts:
      return r.pps;
    case SortKey::kConns:
      return r.conns_per_s;
    case SortKey::kDrops:
      return r.drops_per_s;
    case SortKey::kUptime:
      return r.uptime_s;
    case SortKey::kName:
      return 0;
  }
  return 0;
}

bool contains_nocase(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

}  // namespace

void TopModel::add_events(const std::vector<VmEvent>& events) {
  for (const VmEvent& e : events) {
    events_.push_back(e);
    if (events_.size() > kMaxEvents) events_.pop_front();
  }
}

const TopFrame& TopModel::update(const TickSample& s) {
  add_events(s.events);
  // Each side divides by the time since its own last good sample: after a failed
  // drain, the counts since then span more than one interval.
  auto seconds_since = [&](std::optional<int64_t> before) {
    return before ? static_cast<double>(s.boottime_ns - *before) / 1e9 : 0.0;
  };
  const double dt = seconds_since(prev_boottime_ns_);
  const double net_dt = seconds_since(prev_net_boottime_ns_);
  const double proc_dt = seconds_since(prev_proc_boottime_ns_);

  TopFrame f;
  f.timestamp_ns = s.timestamp_ns;
  f.interval_s = dt;
  f.net_ok = s.net.has_value();
  f.procs_ok = s.vms.has_value();
  std::map<std::string, size_t, std::less<>> index;  // VM name -> row
  auto row_of = [&](std::string_view vm) -> TopRow& {
    auto [it, fresh] = index.try_emplace(std::string(vm), f.rows.size());
    if (fresh) f.rows.emplace_back().vm = std::string(vm);
    return f.rows[it->second];
  };

  const long page = sysconf(_SC_PAGESIZE);
  std::map<std::string, VmPrev, std::less<>> vms_now;
  if (s.vms) {
    for (const VmResources& v : *s.vms) {
      TopRow& r = row_of(v.vm);
      r.launcher = std::string(v.launcher);
      r.pid = v.pid;
      r.has_process = true;
      r.processes = v.processes;
      r.threads = v.threads;
      r.rss_bytes = v.rss_pages * static_cast<uint64_t>(page);
      r.vsize_bytes = v.vsize_bytes;
      const vs_task_counters& c = v.counters;
      r.min_flt = c.min_flt;
      r.maj_flt = c.maj_flt;
      r.nvcsw = c.nvcsw;
      r.nivcsw = c.nivcsw;
      r.utime_s = static_cast<double>(c.utime_ns) / 1e9;
      r.stime_s = static_cast<double>(c.stime_ns) / 1e9;
      r.uptime_s = v.uptime_s;
      r.run_delay_s = static_cast<double>(c.run_delay_ns) / 1e9;
      r.run_count = c.run_count;
      r.read_bytes = c.read_bytes;
      r.write_bytes = c.write_bytes;
      r.cancelled_write_bytes = c.cancelled_write_bytes;
      r.rchar = c.rchar;
      r.wchar = c.wchar;
      r.syscr = c.syscr;
      r.syscw = c.syscw;
      VmPrev now{c.runtime_ns, c.min_flt + c.maj_flt,
                 c.maj_flt,    c.run_delay_ns,
                 c.read_bytes, written(c),
                 c.syscr,      c.syscw};
      const bool rates = proc_dt > 0;
      auto rate = [&](uint64_t d) { return static_cast<double>(d) / proc_dt; };
      if (auto p = prev_vms_.find(v.vm); p != prev_vms_.end() && rates) {
        r.rates_known = true;
        r.cpu_pct = rate(delta(now.runtime_ns, p->second.runtime_ns)) / 1e9 * 100;
        r.faults_per_s = rate(delta(now.faults, p->second.faults));
        r.maj_faults_per_s = rate(delta(now.maj_faults, p->second.maj_faults));
        const VmPrev& b = p->second;
        r.wait_pct = rate(delta(now.run_delay_ns, b.run_delay_ns)) / 1e9 * 100;
        r.disk_read_Bps = rate(delta(now.read_bytes, b.read_bytes));
        r.disk_write_Bps = rate(delta(now.written_bytes, b.written_bytes));
        r.syscr_per_s = rate(delta(now.syscr, b.syscr));
        r.syscw_per_s = rate(delta(now.syscw, b.syscw));
      }
      vms_now[std::string(v.vm)] = now;
    }
  } else {
    vms_now = prev_vms_;  // keep the baseline through a failed tick
  }

  std::map<int, TapPrev> taps_now;
  if (s.net) {
    const bool rates = net_dt > 0;
    auto rate = [&](uint64_t d) { return static_cast<double>(d) / net_dt; };
    for (const TapSample& t : s.net->taps) {
      TopRow& r = row_of(t.vm);
      if (r.launcher.empty()) r.launcher = std::string(t.launcher);
      if (r.pid == 0 && t.pid > 0) r.pid = static_cast<uint32_t>(t.pid);
      TopTap& tap = r.taps.emplace_back();
      tap.name = std::string(t.ifname);
      tap.bridge = std::string(t.bridge);
      tap.ifindex = t.ifindex;
      tap.mtu = t.mtu;
      tap.rx = t.host_to_vm;
      tap.tx = t.vm_to_host;
      tap.errors = t.kernel;
      add_counters(r.service, t.service);
      TapPrev now{t.host_to_vm, t.vm_to_host, drops_of(t.kernel), t.service};
      if (auto p = prev_taps_.find(t.ifindex); p != prev_taps_.end() && rates) {
        const TapPrev& b = p->second;
        tap.rx_bps = rate(delta(now.rx.bytes, b.rx.bytes)) * 8;
        tap.tx_bps = rate(delta(now.tx.bytes, b.tx.bytes)) * 8;
        tap.rx_pps = rate(delta(now.rx.packets, b.rx.packets));
        tap.tx_pps = rate(delta(now.tx.packets, b.tx.packets));
        tap.drops_per_s = rate(delta(now.drops, b.drops));
        r.rx_bps += tap.rx_bps;
        r.tx_bps += tap.tx_bps;
        r.pps += tap.rx_pps + tap.tx_pps;
        r.drops_per_s += tap.drops_per_s;
        r.conns_per_s += rate(delta(now.rx.tcp_syns, b.rx.tcp_syns)) +
                         rate(delta(now.tx.tcp_syns, b.tx.tcp_syns));
        add_counters(r.service_last, service_delta(now.service, b.service));
        r.service_interval_s = net_dt;
        r.rates_known = true;
      }
      taps_now[t.ifindex] = now;
    }
    decltype(prev_bridges_) bridges_now;
    for (const BridgeSample& b : s.net->bridges) {
      TopBridge& tb = f.bridges.emplace_back();
      tb.name = std::string(b.name);
      tb.taps = b.taps;
      if (auto p = prev_bridges_.find(b.name); p != prev_bridges_.end() && rates) {
        tb.rx_bps = rate(delta(b.host_to_vm.bytes, p->second.first.bytes)) * 8;
        tb.tx_bps = rate(delta(b.vm_to_host.bytes, p->second.second.bytes)) * 8;
      }
      bridges_now[std::string(b.name)] = {b.host_to_vm, b.vm_to_host};
    }
    prev_bridges_ = std::move(bridges_now);
  } else {
    taps_now = prev_taps_;
  }
  for (const TopRow& r : f.rows) {
    f.rx_bps += r.rx_bps;
    f.tx_bps += r.tx_bps;
  }

  prev_taps_ = std::move(taps_now);
  prev_vms_ = std::move(vms_now);
  prev_boottime_ns_ = s.boottime_ns;
  if (s.net) prev_net_boottime_ns_ = s.boottime_ns;
  if (s.vms) prev_proc_boottime_ns_ = s.boottime_ns;
  frame_ = std::move(f);
  return frame_;
}

std::optional<uint64_t> handshake_percentile_bound_us(const vs_service_counters& c,
                                                      unsigned percent) {
  if (c.handshake_count == 0) return std::nullopt;
  // The rank of the percentile among the handshakes (1-based, rounded up): the first
  // bucket holding at least that many has it.
  const uint64_t rank = std::max<uint64_t>(1, (c.handshake_count * percent + 99) / 100);
  const std::pair<uint64_t, uint64_t> buckets[] = {{100, c.handshake_le_100us},
                                                   {1'000, c.handshake_le_1ms},
                                                   {10'000, c.handshake_le_10ms},
                                                   {100'000, c.handshake_le_100ms},
                                                   {1'000'000, c.handshake_le_1s}};
  for (const auto& [bound_us, count] : buckets)
    if (count >= rank) return bound_us;
  return kAboveLastBucket;
}

std::vector<const TopRow*> select_rows(const TopFrame& f, SortKey key, bool reverse,
                                       std::string_view filter) {
  std::vector<const TopRow*> rows;
  for (const TopRow& r : f.rows)
    if (filter.empty() || contains_nocase(r.vm, filter)) rows.push_back(&r);
  const bool ascending = (key == SortKey::kName || key == SortKey::kPid) != reverse;
  std::stable_sort(rows.begin(), rows.end(), [&](const TopRow* a, const TopRow* b) {
    if (key != SortKey::kName) {
      double va = sort_value(*a, key), vb = sort_value(*b, key);
      if (va != vb) return ascending ? va < vb : va > vb;
    }
    return ascending || key != SortKey::kName ? a->vm < b->vm : a->vm > b->vm;
  });
  return rows;
}

}  // namespace vmscope
