// What `vmscope top` shows, computed from two consecutive engine samples: one row per
// VM with rates (counter deltas divided by the real time between the samples), host
// totals, per-bridge rates and the recent VM events. Pure computation: no kernel, no
// terminal, so it is unit-tested with made-up samples.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/sort_key.h"
#include "drain/tick_sample.h"

namespace vmscope {

// Network of one tap as shown in the detail view. rx/tx are from the VM's point of view
// (as virt-top and libvirt show them): rx = host -> VM (the tap's TX), tx = VM -> host.
struct TopTap {
  std::string name, bridge;
  int ifindex = 0;
  uint32_t mtu = 0;
  double rx_bps = 0, tx_bps = 0, rx_pps = 0, tx_pps = 0;
  vs_net_counters rx{}, tx{};  // totals since counting started
  LinkCounters errors;         // the tap's own totals (errors, drops), since its creation
  double drops_per_s = 0;
};

struct TopRow {
  std::string vm, launcher;
  uint32_t pid = 0;  // lowest pid of its processes; 0 when only its tap is known
  bool has_process = false;
  uint32_t processes = 0, threads = 0;
  double cpu_pct = 0;  // 100 = one CPU
  uint64_t rss_bytes = 0, vsize_bytes = 0;
  double faults_per_s = 0, maj_faults_per_s = 0;
  uint64_t min_flt = 0, maj_flt = 0, nvcsw = 0, nivcsw = 0;
  double utime_s = 0, stime_s = 0;
  // CPU wait (vm_cpu): seconds its threads were runnable but waited for a CPU, per
  // second, as a percent like CPU% (100 = one thread waiting all the time).
  double wait_pct = 0;
  double run_delay_s = 0;  // totals (all threads, exited ones included)
  uint64_t run_count = 0;
  // Disk (vm_io): bytes/s read from and written to storage (writes net of cancelled
  // ones, as getrusage's outblock), read/write-like syscalls per second, and the totals.
  double disk_read_Bps = 0, disk_write_Bps = 0, syscr_per_s = 0, syscw_per_s = 0;
  uint64_t read_bytes = 0, write_bytes = 0, cancelled_write_bytes = 0, rchar = 0, wchar = 0,
           syscr = 0, syscw = 0;
  double rx_bps = 0, tx_bps = 0;  // bit/s, VM's point of view
  double pps = 0;                 // packets/s, both directions
  double conns_per_s = 0;         // TCP SYNs (without ACK) per second, both directions
  double drops_per_s = 0;         // kernel drops and errors on its taps, per second
  double uptime_s = 0;
  bool rates_known = false;  // false in the first sample that shows it
  std::vector<TopTap> taps;
  // How its services answer (vm_service), summed over its taps: totals since counting
  // started, and what happened in the last network interval (counts, not rates: a
  // handful of refusals or 5xx is clearer as "3" than as "1.5/s").
  vs_service_counters service{};
  vs_service_counters service_last{};
  double service_interval_s = 0;  // 0: no interval yet (service_last unknown)
};

struct TopBridge {
  std::string name;
  uint32_t taps = 0;
  double rx_bps = 0, tx_bps = 0;  // VMs' point of view: to and from its VMs
};

struct TopFrame {
  int64_t timestamp_ns = 0;  // realtime of the newer sample
  double interval_s = 0;     // real time between the two samples (0: first sample)
  std::vector<TopRow> rows;  // every VM, unsorted
  std::vector<TopBridge> bridges;
  double rx_bps = 0, tx_bps = 0;  // all VMs
  bool net_ok = true, procs_ok = true;
};

// Keeps the previous sample's cumulative counters and the recent events.
class TopModel {
 public:
  static constexpr size_t kMaxEvents = 200;

  // Builds the frame for `s`, against the previous call's sample.
  const TopFrame& update(const TickSample& s);
  // Events that arrived between samples.
  void add_events(const std::vector<VmEvent>& events);
  const TopFrame& frame() const { return frame_; }
  const std::deque<VmEvent>& events() const { return events_; }  // oldest first

 private:
  struct TapPrev {
    vs_net_counters rx{}, tx{};
    uint64_t drops = 0;
    vs_service_counters service{};
  };
  struct VmPrev {
    uint64_t runtime_ns = 0, faults = 0, maj_faults = 0, run_delay_ns = 0, read_bytes = 0,
             written_bytes = 0, syscr = 0, syscw = 0;
  };
  TopFrame frame_;
  std::optional<int64_t> prev_boottime_ns_;       // the last sample
  std::optional<int64_t> prev_net_boottime_ns_;   // the last one with network counters
  std::optional<int64_t> prev_proc_boottime_ns_;  // the last one with process counters
  std::map<int, TapPrev> prev_taps_;              // by ifindex
  std::map<std::string, VmPrev, std::less<>> prev_vms_;
  std::map<std::string, std::pair<vs_net_counters, vs_net_counters>, std::less<>> prev_bridges_;
  std::deque<VmEvent> events_;
};

// The handshake-latency bucket that holds the given percentile (1-100) of the handshakes
// in `c`, from its cumulative buckets: the bucket's upper bound in microseconds (100,
// 1000, ..., 1000000), kAboveLastBucket when it lies past 1 s, nullopt without
// handshakes. Only the bound is known, not where in the bucket the percentile lies.
inline constexpr uint64_t kAboveLastBucket = UINT64_MAX;
std::optional<uint64_t> handshake_percentile_bound_us(const vs_service_counters& c,
                                                      unsigned percent);

// Rows matching the filter (case-insensitive substring of the VM name; empty: all),
// ordered by key (descending for figures, ascending for name and pid; `reverse` flips).
std::vector<const TopRow*> select_rows(const TopFrame& f, SortKey key, bool reverse,
                                       std::string_view filter);

}  // namespace vmscope
