#include "top/top_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <functional>

#include "common/units.h"

namespace vmscope {

struct TopColumn {
  std::string_view header;
  int width;       // minimum; the name column takes what is left
  bool left;       // left-aligned text
  int drop_order;  // 0: always shown; higher go first when narrow (the detail view
                   // shows them all)
  SortKey key;
  std::function<std::string(const TopRow&)> cell;
};

namespace {

std::string rate_or_dash(const TopRow& r, double v) {
  return r.rates_known ? human_si(v) : "-";
}

std::string proc_or_dash(const TopRow& r, const std::string& s) {
  return r.has_process ? s : "-";
}

// CPU% and WAIT%: 100 per CPU (or per waiting thread); one decimal below 1000.
std::string proc_percent(const TopRow& r, double pct) {
  if (!r.has_process || !r.rates_known) return "-";
  return pct < 1000 ? fmt::format("{:.1f}", pct) : fmt::format("{:.0f}", pct);
}

// Disk rates: bytes per second in 1024-based units, like RSS.
std::string proc_bytes_rate(const TopRow& r, double bytes_per_s) {
  return r.has_process && r.rates_known ? human_bytes(bytes_per_s) : "-";
}

// Column order is the display order; `<` and `>` walk the sort keys in this order.
const std::vector<TopColumn>& all_columns() {
  // Narrow terminals drop LAUNCHER, DROP/s, CONN/s, UPTIME, PKT/s, PID in this order (at
  // 80 columns all of them, at 90 all but PID): what a VM uses and how long it waits
  // for a CPU stay. Columns of one drop order go together (the disk pair).
  static const std::vector<TopColumn> cols = {
      {"VM", 12, true, 0, SortKey::kName, [](const TopRow& r) { return r.vm; }},
      {"LAUNCHER", 11, true, 9, SortKey::kName,
       [](const TopRow& r) { return r.launcher.empty() ? std::string("-") : r.launcher; }},
      {"PID", 7, false, 4, SortKey::kPid,
       [](const TopRow& r) { return r.pid ? std::to_string(r.pid) : std::string("-"); }},
      {"CPU%", 6, false, 0, SortKey::kCpu,
       [](const TopRow& r) { return proc_percent(r, r.cpu_pct); }},
      {"WAIT%", 6, false, 1, SortKey::kWait,
       [](const TopRow& r) { return proc_percent(r, r.wait_pct); }},
      {"RSS", 6, false, 0, SortKey::kMem,
       [](const TopRow& r) {
         return proc_or_dash(r, human_bytes(static_cast<double>(r.rss_bytes)));
       }},
      {"FLT/s", 6, false, 0, SortKey::kFaults,
       [](const TopRow& r) {
         return r.has_process ? rate_or_dash(r, r.faults_per_s) : std::string("-");
       }},
      {"DISKR/s", 8, false, 2, SortKey::kDisk,
       [](const TopRow& r) { return proc_bytes_rate(r, r.disk_read_Bps); }},
      {"DISKW/s", 8, false, 2, SortKey::kDisk,
       [](const TopRow& r) { return proc_bytes_rate(r, r.disk_write_Bps); }},
      {"RXbit/s", 8, false, 0, SortKey::kRx,
       [](const TopRow& r) { return rate_or_dash(r, r.rx_bps); }},
      {"TXbit/s", 8, false, 0, SortKey::kTx,
       [](const TopRow& r) { return rate_or_dash(r, r.tx_bps); }},
      {"PKT/s", 6, false, 5, SortKey::kPkts,
       [](const TopRow& r) { return rate_or_dash(r, r.pps); }},
      {"CONN/s", 7, false, 7, SortKey::kConns,
       [](const TopRow& r) { return rate_or_dash(r, r.conns_per_s); }},
      {"DROP/s", 7, false, 8, SortKey::kDrops,
       [](const TopRow& r) { return rate_or_dash(r, r.drops_per_s); }},
      {"UPTIME", 7, false, 6, SortKey::kUptime,
       [](const TopRow& r) { return proc_or_dash(r, human_duration(r.uptime_s)); }},
  };
  return cols;
}

int fixed_width(const std::vector<const TopColumn*>& cols) {
  int w = 0;
  for (const TopColumn* c : cols) w += c->width + 1;
  return w - 1;
}

// The name column gets every character the others leave (at least its minimum).
int name_width(const std::vector<const TopColumn*>& cols, int width) {
  return std::max(cols.front()->width, cols.front()->width + width - fixed_width(cols));
}

std::string fit(std::string_view s, int width, bool left, bool keep_end = false) {
  if (static_cast<int>(s.size()) > width) {
    // Keep the end of long VM names: they differ at the end more often (vm-web-01/02).
    if (keep_end && width > 1) {
      // Appended, not `"~" + std::string(...)`: GCC 12 at -O2 reports a false -Wrestrict
      // in the inlined operator+ (GCC bug 105329).
      std::string out(1, '~');
      out.append(s.substr(s.size() - static_cast<size_t>(width - 1)));
      return out;
    }
    return std::string(s.substr(0, static_cast<size_t>(width)));
  }
  return left ? fmt::format("{:<{}}", s, width) : fmt::format("{:>{}}", s, width);
}

std::string clock_time(int64_t realtime_ns) {
  time_t t = static_cast<time_t>(realtime_ns / 1'000'000'000);
  tm local{};
  localtime_r(&t, &local);
  char buf[16];
  strftime(buf, sizeof(buf), "%H:%M:%S", &local);
  return buf;
}

std::string bits(double bps) {
  return human_si(bps) + "bit/s";
}

// 3 significant digits: 1.20, 12.0, 120.
std::string sig3(double v) {
  return v < 9.995   ? fmt::format("{:.2f}", v)
         : v < 99.95 ? fmt::format("{:.1f}", v)
                     : fmt::format("{:.0f}", v);
}

// A latency from microseconds: 420us, 1.20ms, 2.50s.
std::string latency(double us) {
  if (us < 999.5) return fmt::format("{:.0f}us", us);
  if (us < 999'500) return sig3(us / 1e3) + "ms";
  return sig3(us / 1e6) + "s";
}

std::string mean_latency(uint64_t sum_us, uint64_t count) {
  return count ? latency(static_cast<double>(sum_us) / static_cast<double>(count)) : "-";
}

// The handshake bucket of a percentile, said as the bucket's bound: "<=1ms", ">1s".
std::string percentile_text(const vs_service_counters& c, unsigned percent) {
  auto bound = handshake_percentile_bound_us(c, percent);
  if (!bound) return "-";
  if (*bound == kAboveLastBucket) return ">1s";
  return "<=" + (*bound >= 1'000'000 ? std::to_string(*bound / 1'000'000) + "s"
                 : *bound >= 1'000   ? std::to_string(*bound / 1'000) + "ms"
                                     : std::to_string(*bound) + "us");
}

bool any_service(const vs_service_counters& c) {
  bool any = false;
#define VS_ANY_(f) any |= c.f != 0;
  VS_SERVICE_COUNTERS(VS_ANY_)
#undef VS_ANY_
  return any;
}

// The service figures as small tables: a header, then the last interval's counts and the
// totals since counting started (counts, not rates; latencies as bucket bounds or means).
void service_lines(const TopRow& r, std::vector<std::string>& out) {
  if (!any_service(r.service)) {
    out.push_back("  services: nothing seen on its taps yet (TCP to and from it, DNS, HTTP)");
    return;
  }
  out.push_back("  services seen on its taps (last interval; total since counting started)");
  const bool last_known = r.service_interval_s > 0;
  const std::string last_label =
      last_known ? fmt::format("    last {:.2f}s", r.service_interval_s) : "    last -";
  auto line = [](std::string_view label, const std::vector<std::string>& cells) {
    std::string l = fmt::format("{:<16}", label);
    for (const std::string& c : cells) l += fmt::format("{:>9}", c);
    return l;
  };
  // One table: its header cells, and the cells of one set of counters.
  auto table =
      [&](std::string_view title, const std::vector<std::string>& header,
          const std::function<std::vector<std::string>(const vs_service_counters&)>& cells) {
        out.push_back(line(fmt::format("  {}", title), header));
        out.push_back(line(last_label, last_known ? cells(r.service_last)
                                                  : std::vector<std::string>(header.size(), "-")));
        out.push_back(line("    total", cells(r.service)));
      };
  auto n = [](uint64_t v) { return human_si(static_cast<double>(v)); };
  table("TCP to it", {"attempts", "accepted", "refused", "no reply", "RSTs out"},
        [&](const vs_service_counters& c) -> std::vector<std::string> {
          return {n(c.tcp_syn_in), n(c.tcp_accepted), n(c.tcp_refused), n(c.tcp_unanswered),
                  n(c.tcp_rst_out)};
        });
  table("handshake", {"timed", "p50", "p99", "mean"},
        [&](const vs_service_counters& c) -> std::vector<std::string> {
          return {n(c.handshake_count), percentile_text(c, 50), percentile_text(c, 99),
                  mean_latency(c.handshake_sum_us, c.handshake_count)};
        });
  table("TCP from it", {"connects", "ok", "refused", "timed", "mean"},
        [&](const vs_service_counters& c) -> std::vector<std::string> {
          return {n(c.tcp_connect_out), n(c.tcp_connect_ok), n(c.tcp_connect_refused),
                  n(c.connect_count), mean_latency(c.connect_sum_us, c.connect_count)};
        });
  table("DNS answers", {"all", "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "other", "mean"},
        [&](const vs_service_counters& c) -> std::vector<std::string> {
          return {n(c.dns_responses),
                  n(c.dns_noerror),
                  n(c.dns_nxdomain),
                  n(c.dns_servfail),
                  n(c.dns_refused),
                  n(c.dns_other),
                  mean_latency(c.dns_latency_sum_us, c.dns_latency_count)};
        });
  table("HTTP answers", {"1xx", "2xx", "3xx", "4xx", "5xx"},
        [&](const vs_service_counters& c) -> std::vector<std::string> {
          return {n(c.http_1xx), n(c.http_2xx), n(c.http_3xx), n(c.http_4xx), n(c.http_5xx)};
        });
}

}  // namespace

std::vector<const TopColumn*> columns_for_width(int width) {
  std::vector<const TopColumn*> cols;
  for (const TopColumn& c : all_columns()) cols.push_back(&c);
  while (fixed_width(cols) > width) {
    auto worst = std::max_element(
        cols.begin(), cols.end(),
        [](const TopColumn* a, const TopColumn* b) { return a->drop_order < b->drop_order; });
    const int order = (*worst)->drop_order;
    if (order == 0) break;
    std::erase_if(cols, [&](const TopColumn* c) { return c->drop_order == order; });
  }
  return cols;
}

std::string table_header(const std::vector<const TopColumn*>& cols, int width, SortKey sort) {
  std::string line;
  for (size_t i = 0; i < cols.size(); ++i) {
    int w = i == 0 ? name_width(cols, width) : cols[i]->width;
    // The sort column is marked with a star right before its header (after it for the
    // left-aligned ones), in a space of its own, so that no column gets wider. Network sorts
    // by RX + TX: both are marked; disk by read + write (its two columns
    // share the key).
    const SortKey key = cols[i]->key;
    bool marked = (key == sort && (i == 0 || sort != SortKey::kName)) ||
                  (sort == SortKey::kNet && (key == SortKey::kRx || key == SortKey::kTx));
    std::string h(cols[i]->header);
    if (marked && cols[i]->left) h += '*';
    std::string cell = fit(h, w, cols[i]->left);
    size_t text = cell.find_first_not_of(' ');
    bool star_inside = marked && !cols[i]->left && text != std::string::npos && text > 0;
    if (star_inside) cell[text - 1] = '*';
    if (i) line += marked && !cols[i]->left && !star_inside ? '*' : ' ';
    line += cell;
  }
  return line;
}

std::string table_row(const TopRow& r, const std::vector<const TopColumn*>& cols, int width) {
  std::string line;
  for (size_t i = 0; i < cols.size(); ++i) {
    int w = i == 0 ? name_width(cols, width) : cols[i]->width;
    if (i) line += ' ';
    line += fit(cols[i]->cell(r), w, cols[i]->left, /*keep_end=*/i == 0);
  }
  return line;
}

std::string sort_filter_line(const TopView& v) {
  return fmt::format("Sort: {}{}  Filter: {}", sort_key_name(v.sort),
                     v.reverse ? " (reversed)" : "", v.filter.empty() ? "-" : v.filter);
}

std::vector<std::string> summary_lines(const TopFrame& f, size_t shown, const TopView& v,
                                       const std::deque<VmEvent>& events) {
  size_t running = 0;
  for (const TopRow& r : f.rows)
    if (r.has_process) ++running;
  std::vector<std::string> out;
  out.push_back(fmt::format("vmscope top - {}  VMs: {} ({} running, {} shown)  delay {:g}s{}  {}",
                            clock_time(f.timestamp_ns), f.rows.size(), running, shown, v.delay_s,
                            v.paused ? "  PAUSED" : "", v.mode));
  out.push_back(fmt::format("Net: RX {}  TX {}  (VMs' view; interval {:.2f}s){}{}", bits(f.rx_bps),
                            bits(f.tx_bps), f.interval_s,
                            f.net_ok ? "" : "  [network drain failing]",
                            f.procs_ok ? "" : "  [process metrics unavailable]"));
  std::string br = "Bridges:";
  if (f.bridges.empty()) br += " none";
  for (const TopBridge& b : f.bridges)
    br += fmt::format("  {} ({} tap{}) RX {} TX {}", b.name, b.taps, b.taps == 1 ? "" : "s",
                      human_si(b.rx_bps), human_si(b.tx_bps));
  out.push_back(br);
  out.push_back(sort_filter_line(v));
  out.push_back("Last event: " + (events.empty() ? std::string("-") : event_line(events.back())));
  return out;
}

std::string event_line(const VmEvent& e) {
  std::string what;
  if (e.kind == VmEvent::Kind::kStart) {
    what = fmt::format("start  pid {} ({})", e.pid, e.launcher.empty() ? "-" : e.launcher);
  } else if (!e.exit_known) {
    what = fmt::format("exit   pid {} after {}", e.pid, human_duration(e.lifetime_s));
  } else if (e.signal) {
    what = fmt::format("exit   pid {} killed by signal {} after {}", e.pid, e.signal,
                       human_duration(e.lifetime_s));
  } else {
    what = fmt::format("exit   pid {} status {} after {}", e.pid, e.exit_code,
                       human_duration(e.lifetime_s));
  }
  return fmt::format("{} {} {}", clock_time(e.timestamp_ns), e.vm, what);
}

std::vector<std::string> detail_lines(const TopRow& r, const std::deque<VmEvent>& events) {
  std::vector<std::string> out;
  out.push_back(fmt::format("VM {}  launcher {}  pid {}", r.vm,
                            r.launcher.empty() ? "-" : r.launcher,
                            r.pid ? std::to_string(r.pid) : "-"));
  if (r.has_process) {
    out.push_back(fmt::format("  processes {}  threads {}  uptime {}", r.processes, r.threads,
                              human_duration(r.uptime_s)));
    out.push_back(
        fmt::format("  CPU {:.1f}%  user {:.2f}s  system {:.2f}s  ctxsw {} vol / {} invol",
                    r.cpu_pct, r.utime_s, r.stime_s, r.nvcsw, r.nivcsw));
    out.push_back(fmt::format(
        "  memory RSS {}  virtual {}  faults {:.0f}/s (major {:.0f}/s)  total {} minor / {} major",
        human_bytes(static_cast<double>(r.rss_bytes)),
        human_bytes(static_cast<double>(r.vsize_bytes)), r.faults_per_s, r.maj_faults_per_s,
        r.min_flt, r.maj_flt));
    out.push_back(fmt::format("  CPU wait {:.1f}%  ({:.3f}s waited in all, {} timeslices)",
                              r.wait_pct, r.run_delay_s, r.run_count));
    out.push_back(
        fmt::format("  disk read {}/s  write {}/s  (totals: read {}, written {}, cancelled {})",
                    human_bytes(r.disk_read_Bps), human_bytes(r.disk_write_Bps),
                    human_bytes(static_cast<double>(r.read_bytes)),
                    human_bytes(static_cast<double>(r.write_bytes)),
                    human_bytes(static_cast<double>(r.cancelled_write_bytes))));
    out.push_back(fmt::format(
        "  I/O syscalls read {:.0f}/s  write {:.0f}/s  (totals: {} reads of {}, {} writes of {})",
        r.syscr_per_s, r.syscw_per_s, r.syscr, human_bytes(static_cast<double>(r.rchar)), r.syscw,
        human_bytes(static_cast<double>(r.wchar))));
  } else {
    out.push_back("  no process (a tap nobody holds, or process metrics unavailable)");
  }
  for (const TopTap& t : r.taps) {
    out.push_back("");
    out.push_back(fmt::format("  tap {} (ifindex {}, mtu {}, bridge {})", t.name, t.ifindex, t.mtu,
                              t.bridge.empty() ? "-" : t.bridge));
    out.push_back(fmt::format("    {:<3} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>5}", "",
                              "bit/s", "pkt/s", "bytes", "TCP", "UDP", "ICMP", "other", "mcast",
                              "SYNs"));
    auto dir = [&](const char* name, double bps, double pps, const vs_net_counters& c) {
      out.push_back(fmt::format("    {:<3} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>5}",
                                name, human_si(bps), human_si(pps),
                                human_bytes(static_cast<double>(c.bytes)),
                                human_bytes(static_cast<double>(c.l4_bytes[VS_L4_TCP])),
                                human_bytes(static_cast<double>(c.l4_bytes[VS_L4_UDP])),
                                human_bytes(static_cast<double>(c.l4_bytes[VS_L4_ICMP])),
                                human_bytes(static_cast<double>(c.l4_bytes[VS_L4_OTHER])),
                                c.mcast_packets + c.bcast_packets, c.tcp_syns));
    };
    dir("RX", t.rx_bps, t.rx_pps, t.rx);
    dir("TX", t.tx_bps, t.tx_pps, t.tx);
    out.push_back(fmt::format("    errors rx {} tx {}  dropped rx {} tx {}  ({:.0f}/s)",
                              t.errors.rx_errors, t.errors.tx_errors, t.errors.rx_dropped,
                              t.errors.tx_dropped, t.drops_per_s));
  }
  if (!r.taps.empty()) {
    out.push_back("");
    service_lines(r, out);
  }
  out.push_back("");
  out.push_back("  recent events:");
  size_t n = 0;
  for (auto it = events.rbegin(); it != events.rend() && n < 10; ++it)
    if (it->vm == r.vm) {
      out.push_back("    " + event_line(*it));
      ++n;
    }
  if (n == 0) out.push_back("    none recorded");
  return out;
}

std::string batch_snapshot(const TopFrame& f, const TopView& v, const std::deque<VmEvent>& events) {
  auto rows = select_rows(f, v.sort, v.reverse, v.filter);
  auto cols = columns_for_width(1 << 20);
  // Batch output is for scripts: every column, the name column as wide as the longest.
  size_t name_w = 12;
  for (const TopRow* r : rows) name_w = std::max(name_w, r->vm.size());
  int width = fixed_width(cols) + static_cast<int>(name_w) - cols.front()->width;
  std::string out;
  for (const std::string& l : summary_lines(f, rows.size(), v, events)) out += l + '\n';
  out += '\n';
  out += table_header(cols, width, v.sort) + '\n';
  for (const TopRow* r : rows) out += table_row(*r, cols, width) + '\n';
  return out;
}

}  // namespace vmscope
