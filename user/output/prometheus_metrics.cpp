#include "output/prometheus_metrics.h"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <vector>

namespace vmscope {

void TickHistogram::observe(double seconds) {
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (seconds <= kBounds[i]) ++buckets[i];
  ++count;
  sum += seconds;
}

namespace {

// Bytes the names of a sample need, and their copy into one string reserved for them (so
// that views into it stay valid while it is filled).
size_t name_bytes(const TickSample& s) {
  size_t n = 0;
  if (s.net) {
    for (const TapSample& t : s.net->taps)
      n += t.ifname.size() + t.vm.size() + t.launcher.size() + t.bridge.size();
    for (const BridgeSample& b : s.net->bridges) n += b.name.size();
  }
  if (s.vms)
    for (const VmResources& v : *s.vms) n += v.vm.size() + v.launcher.size();
  return n;
}

std::string_view keep(std::string& names, std::string_view name) {
  const size_t at = names.size();
  names.append(name);
  return std::string_view(names).substr(at, name.size());
}

}  // namespace

std::shared_ptr<MetricsSnapshot> retain_snapshot(const TickSample& sample, const SelfMetrics& self,
                                                 const TaskCounterSupport& kept,
                                                 const TickHistogram& ticks) {
  auto s = std::make_shared<MetricsSnapshot>();
  s->self = self;
  s->kept = kept;
  s->ticks = ticks;
  s->sample.timestamp_ns = sample.timestamp_ns;
  s->sample.boottime_ns = sample.boottime_ns;
  s->sample.net = sample.net;
  s->sample.vms = sample.vms;
  std::string& names = s->names;
  names.reserve(name_bytes(sample));
  if (s->sample.net) {
    for (TapSample& t : s->sample.net->taps) {
      t.ifname = keep(names, t.ifname);
      t.vm = keep(names, t.vm);
      t.launcher = keep(names, t.launcher);
      t.bridge = keep(names, t.bridge);
    }
    for (BridgeSample& b : s->sample.net->bridges) b.name = keep(names, b.name);
  }
  if (s->sample.vms)
    for (VmResources& v : *s->sample.vms) {
      v.vm = keep(names, v.vm);
      v.launcher = keep(names, v.launcher);
    }
  return s;
}

namespace {

double tick_start_s(const MetricsSnapshot& s, const VmResources& v) {
  return static_cast<double>(s.sample.timestamp_ns) / 1e9 - v.uptime_s;
}

}  // namespace

void StartTimes::settle(MetricsSnapshot& s) {
  s.vm_start_s.clear();
  if (!s.sample.vms) {
    start_s_.clear();
    return;
  }
  std::map<std::string, double, std::less<>> next;
  for (const VmResources& v : *s.sample.vms) {
    double start = tick_start_s(s, v);
    if (auto it = start_s_.find(v.vm); it != start_s_.end() && std::abs(it->second - start) < 1)
      start = it->second;
    next.emplace(std::string(v.vm), start);
    s.vm_start_s.push_back(start);
  }
  start_s_ = std::move(next);
}

namespace {

double seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

LabelSet tap_labels(const TapSample& t) {
  return {{"vm", t.vm}, {"bridge", t.bridge}, {"tap", t.ifname}};
}

// ---- the agent itself ------------------------------------------------------------------

void self_families(Exposition& e, const MetricsSnapshot& s) {
  const BuildInfo b = build_info();
  e.family("vmscope_build", MetricType::kInfo,
           "vmscope's version, git revision and the kernel its BPF types (vmlinux.h) came from")
      .value({{"version", b.version},
              {"revision", b.revision},
              {"bpf_types_kernel", b.bpf_types_kernel}},
             uint64_t{1});
  e.family("vmscope_sample_timestamp_seconds", MetricType::kGauge,
           "When the tick this scrape shows was taken (Unix time): /metrics serves the last tick")
      .value({}, static_cast<double>(s.sample.timestamp_ns) / 1e9);
  std::array<Bucket, TickHistogram::kBounds.size()> buckets;
  for (size_t i = 0; i < buckets.size(); ++i)
    buckets[i] = {TickHistogram::kBounds[i], s.ticks.buckets[i]};
  e.family("vmscope_tick_duration_seconds", MetricType::kHistogram,
           "Duration of the agent's ticks (drain, sample and encode), since it started")
      .histogram({}, buckets, s.ticks.count, s.ticks.sum);

  const SelfMetrics& m = s.self;
  struct Figure {
    std::string_view name;
    MetricType type;
    std::string_view help;
    uint64_t value;
  };
  // The `vmscope` line's fields (output/self_lines), by hand: their names are the schema's.
  const Figure figures[] = {
      {"vmscope_tick_lines", MetricType::kGauge, "Line-protocol lines of the last tick", m.lines},
      {"vmscope_output_lines_written", MetricType::kCounter,
       "Lines delivered by all line-protocol outputs", m.lines_written},
      {"vmscope_output_lines_dropped", MetricType::kCounter,
       "Lines dropped by all line-protocol outputs", m.lines_dropped},
      {"vmscope_spool_bytes", MetricType::kGauge, "Bytes held by all outputs' on-disk spools",
       m.spool_bytes},
      {"vmscope_spool_batches", MetricType::kGauge, "Batches held by all outputs' on-disk spools",
       m.spool_batches},
      {"vmscope_spool_dropped_batches", MetricType::kCounter, "Batches dropped from full spools",
       m.spool_dropped_batches},
      {"vmscope_vms", MetricType::kGauge, "VMs of the last tick", m.vms},
      {"vmscope_taps", MetricType::kGauge, "VM taps of the last tick", m.taps},
      {"vmscope_net_slots", MetricType::kGauge, "Network counter slots in use", m.net_slots},
      {"vmscope_net_slots_max", MetricType::kGauge, "Network counter slots (net_slots)",
       m.net_slots_max},
      {"vmscope_net_far_slots", MetricType::kGauge,
       "Entries of if_slot_far in use (ifindexes beyond the direct table)", m.net_far_slots},
      {"vmscope_net_far_slots_max", MetricType::kGauge, "Entries if_slot_far can hold",
       m.net_far_slots_max},
      {"vmscope_tracked_processes", MetricType::kGauge, "VM processes tracked in BPF",
       m.tracked_procs},
      {"vmscope_tracked_processes_max", MetricType::kGauge, "VM processes BPF can track",
       m.tracked_procs_max},
      {"vmscope_service_pending_entries", MetricType::kGauge,
       "Open handshakes and DNS queries after the last sweep", m.service_pending},
      {"vmscope_service_pending_entries_max", MetricType::kGauge,
       "Open handshakes and DNS queries the table can hold", m.service_pending_max},
      {"vmscope_proc_events_lost", MetricType::kCounter,
       "Process events the ring buffer could not hold", m.proc_events_lost},
      {"vmscope_resident_memory_bytes", MetricType::kGauge, "The agent's resident memory",
       m.rss_bytes},
  };
  for (const Figure& f : figures) e.family(f.name, f.type, f.help).value({}, f.value);
  if (m.bpf_stats) {
    e.family("vmscope_bpf_program_runs", MetricType::kCounter,
             "Runs of vmscope's BPF programs (kernel.bpf_stats_enabled=1)");
    for (const ProgramStats& p : m.programs) e.value({{"program", p.name}}, p.run_count);
    e.family("vmscope_bpf_program_run_seconds", MetricType::kCounter,
             "Time spent in vmscope's BPF programs (kernel.bpf_stats_enabled=1)");
    for (const ProgramStats& p : m.programs) e.value({{"program", p.name}}, seconds(p.run_time_ns));
  }
}

// ---- network: the taps' own counters (interface) ---------------------------------------

struct KernelCounter {
  std::string_view name, help;
  uint64_t LinkCounters::*member;
};
// From the VM's point of view, as `top`: it receives what the tap transmits.
constexpr KernelCounter kKernelCounters[] = {
    {"vmscope_vm_network_receive_bytes", "Bytes the VM received (its tap's TX, host to VM)",
     &LinkCounters::tx_bytes},
    {"vmscope_vm_network_receive_packets", "Packets the VM received (its tap's TX)",
     &LinkCounters::tx_packets},
    {"vmscope_vm_network_receive_errors", "Errors sending to the VM (its tap's TX errors)",
     &LinkCounters::tx_errors},
    {"vmscope_vm_network_receive_drops", "Packets to the VM dropped (its tap's TX drops)",
     &LinkCounters::tx_dropped},
    {"vmscope_vm_network_transmit_bytes", "Bytes the VM sent (its tap's RX, VM to host)",
     &LinkCounters::rx_bytes},
    {"vmscope_vm_network_transmit_packets", "Packets the VM sent (its tap's RX)",
     &LinkCounters::rx_packets},
    {"vmscope_vm_network_transmit_errors", "Errors receiving from the VM (its tap's RX errors)",
     &LinkCounters::rx_errors},
    {"vmscope_vm_network_transmit_drops", "Packets from the VM dropped (its tap's RX drops)",
     &LinkCounters::rx_dropped},
    {"vmscope_vm_network_transmit_multicast_packets",
     "Multicast packets the VM sent (its tap's RX multicast)", &LinkCounters::rx_multicast},
    {"vmscope_vm_network_collisions", "Collisions on the VM's tap", &LinkCounters::collisions},
};

void kernel_families(Exposition& e, const std::vector<TapSample>& taps) {
  for (const KernelCounter& k : kKernelCounters) {
    e.family(k.name, MetricType::kCounter,
             fmt::format("{}: the kernel's own counter since the tap was created", k.help));
    for (const TapSample& t : taps)
      if (t.kernel_known) e.value(tap_labels(t), t.kernel.*k.member);
  }
  e.family("vmscope_vm_network_mtu_bytes", MetricType::kGauge, "MTU of the VM's tap");
  for (const TapSample& t : taps)
    if (t.kernel_known) e.value(tap_labels(t), uint64_t{t.mtu});
}

// ---- network: vmscope's own counters (VS_NET_COUNTERS), per tap and per bridge ---------

// The index of an XA entry's array: enum vs_l4 is the only one.
constexpr std::string_view kL4Names[VS_L4_COUNT] = {"tcp", "udp", "icmp", "other"};

std::string net_help(std::string_view field, std::string_view where) {
  return fmt::format(
      "{} counted by vmscope's tc programs (VS_NET_COUNTERS in bpf/vmscope.h) {}, since the "
      "agent attached",
      field, where);
}

template <typename Get>
void tap_net_counter(Exposition& e, std::string_view name, std::string_view field,
                     const std::vector<TapSample>& taps, Get get) {
  e.family(name, MetricType::kCounter,
           net_help(field, "on the VM's tap, by direction as the VM sees it"));
  for (const TapSample& t : taps) {
    const LabelSet l = tap_labels(t);
    e.value(l.with("direction", "receive"), get(t.host_to_vm));
    e.value(l.with("direction", "transmit"), get(t.vm_to_host));
  }
}

template <typename Get>
void tap_net_array(Exposition& e, std::string_view name, std::string_view field,
                   const std::vector<TapSample>& taps, Get get) {
  e.family(name, MetricType::kCounter,
           net_help(field, "on the VM's tap, by direction as the VM sees it and L4 protocol"));
  for (const TapSample& t : taps) {
    const LabelSet l = tap_labels(t);
    for (int p = 0; p < VS_L4_COUNT; ++p)
      e.value(l.with("direction", "receive").with("protocol", kL4Names[p]), get(t.host_to_vm)[p]);
    for (int p = 0; p < VS_L4_COUNT; ++p)
      e.value(l.with("direction", "transmit").with("protocol", kL4Names[p]), get(t.vm_to_host)[p]);
  }
}

// A bridge's four views, named as the `bridge` line names them.
template <typename Each>
void bridge_paths(const BridgeSample& b, Each each) {
  each("vm_to_host", b.vm_to_host);
  each("host_to_vm", b.host_to_vm);
  each("host_rx", b.host_rx);
  each("host_tx", b.host_tx);
}

constexpr std::string_view kBridgeWhere =
    "on a bridge: path vm_to_host/host_to_vm sums its VM taps, host_rx/host_tx is the bridge "
    "device's own traffic to and from the host";

template <typename Get>
void bridge_net_counter(Exposition& e, std::string_view name, std::string_view field,
                        const std::vector<BridgeSample>& bridges, Get get) {
  e.family(name, MetricType::kCounter, net_help(field, kBridgeWhere));
  for (const BridgeSample& b : bridges)
    bridge_paths(b, [&](std::string_view path, const vs_net_counters& c) {
      e.value({{"bridge", b.name}, {"path", path}}, get(c));
    });
}

template <typename Get>
void bridge_net_array(Exposition& e, std::string_view name, std::string_view field,
                      const std::vector<BridgeSample>& bridges, Get get) {
  e.family(name, MetricType::kCounter, net_help(field, kBridgeWhere));
  for (const BridgeSample& b : bridges)
    bridge_paths(b, [&](std::string_view path, const vs_net_counters& c) {
      for (int p = 0; p < VS_L4_COUNT; ++p)
        e.value({{"bridge", b.name}, {"path", path}, {"protocol", kL4Names[p]}}, get(c)[p]);
    });
}

void net_families(Exposition& e, const NetSnapshot& net) {
  kernel_families(e, net.taps);
#define VS_PROM_TAP_(field)                                      \
  tap_net_counter(e, "vmscope_vm_net_" #field, #field, net.taps, \
                  [](const vs_net_counters& c) { return c.field; });
#define VS_PROM_TAP_ARRAY_(field, n)                                                         \
  static_assert((n) == VS_L4_COUNT, "an array counter other than by L4 protocol: label it"); \
  tap_net_array(e, "vmscope_vm_net_" #field, #field, net.taps,                               \
                [](const vs_net_counters& c) { return c.field; });
  VS_NET_COUNTERS(VS_PROM_TAP_, VS_PROM_TAP_ARRAY_)
#undef VS_PROM_TAP_
#undef VS_PROM_TAP_ARRAY_

  e.family("vmscope_bridge_taps", MetricType::kGauge, "VM taps enslaved to the bridge");
  for (const BridgeSample& b : net.bridges) e.value({{"bridge", b.name}}, uint64_t{b.taps});
#define VS_PROM_BRIDGE_(field)                                             \
  bridge_net_counter(e, "vmscope_bridge_net_" #field, #field, net.bridges, \
                     [](const vs_net_counters& c) { return c.field; });
#define VS_PROM_BRIDGE_ARRAY_(field, n)                                  \
  bridge_net_array(e, "vmscope_bridge_net_" #field, #field, net.bridges, \
                   [](const vs_net_counters& c) { return c.field; });
  VS_NET_COUNTERS(VS_PROM_BRIDGE_, VS_PROM_BRIDGE_ARRAY_)
#undef VS_PROM_BRIDGE_
#undef VS_PROM_BRIDGE_ARRAY_
}

// ---- service health (VS_SERVICE_COUNTERS) -----------------------------------------------

// The list's fields, read by name: <x>_count with <x>_sum_us is a latency, a histogram
// `vmscope_vm_service_<x>_seconds` when <x>_le_<bound> fields exist (cumulative, as
// Prometheus counts), a summary without quantiles otherwise; every other field is a
// counter `vmscope_vm_service_<field>_total`.
using ServiceMember = __u64 vs_service_counters::*;
struct ServiceField {
  std::string_view name;
  ServiceMember member;
};
constexpr ServiceField kServiceFields[] = {
#define VS_PROM_SERVICE_FIELD_(field) {#field, &vs_service_counters::field},
    VS_SERVICE_COUNTERS(VS_PROM_SERVICE_FIELD_)
#undef VS_PROM_SERVICE_FIELD_
};

struct ServiceFamily {
  std::string name, help;
  MetricType type = MetricType::kCounter;
  ServiceMember value = nullptr;  // a counter
  ServiceMember count = nullptr, sum_us = nullptr;
  std::vector<std::pair<double, ServiceMember>> buckets;  // le in seconds
};

const ServiceField* find_service_field(std::string_view name) {
  for (const ServiceField& f : kServiceFields)
    if (f.name == name) return &f;
  return nullptr;
}

// "100us", "1ms", "1s" in seconds; 0 if it is not a bound.
double bound_seconds(std::string_view text) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end == text.data()) return 0;
  const std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  if (unit == "us") return v / 1e6;
  if (unit == "ms") return v / 1e3;
  if (unit == "s") return v;
  return 0;
}

std::vector<ServiceFamily> make_service_families() {
  std::vector<ServiceFamily> out;
  std::vector<std::string_view> used;
  const auto is_used = [&](std::string_view n) {
    for (std::string_view u : used)
      if (u == n) return true;
    return false;
  };
  for (const ServiceField& f : kServiceFields) {
    if (is_used(f.name)) continue;
    constexpr std::string_view kCount = "_count";
    if (f.name.size() > kCount.size() && f.name.ends_with(kCount)) {
      const std::string stem(f.name.substr(0, f.name.size() - kCount.size()));
      if (const ServiceField* sum = find_service_field(stem + "_sum_us")) {
        ServiceFamily fam;
        fam.name = "vmscope_vm_service_" + stem + "_seconds";
        fam.count = f.member;
        fam.sum_us = sum->member;
        used.push_back(sum->name);
        const std::string le_prefix = stem + "_le_";
        for (const ServiceField& b : kServiceFields)
          if (b.name.starts_with(le_prefix))
            if (double le = bound_seconds(b.name.substr(le_prefix.size())); le > 0) {
              fam.buckets.emplace_back(le, b.member);
              used.push_back(b.name);
            }
        fam.type = fam.buckets.empty() ? MetricType::kSummary : MetricType::kHistogram;
        fam.help = fmt::format(
            "{} latency seen on the VM's tap, from vm_service's {}_count, {}_sum_us{} "
            "(VS_SERVICE_COUNTERS in bpf/vmscope.h)",
            stem, stem, stem, fam.buckets.empty() ? "" : " and " + stem + "_le_*");
        out.push_back(std::move(fam));
        continue;
      }
    }
    ServiceFamily fam;
    fam.name = fmt::format("vmscope_vm_service_{}", f.name);
    fam.value = f.member;
    fam.help = fmt::format(
        "vm_service's {} on the VM's tap (VS_SERVICE_COUNTERS in bpf/vmscope.h), since the "
        "agent attached",
        f.name);
    out.push_back(std::move(fam));
  }
  return out;
}

void service_families(Exposition& e, const std::vector<TapSample>& taps) {
  static const std::vector<ServiceFamily> families = make_service_families();
  std::vector<Bucket> buckets;
  for (const ServiceFamily& f : families) {
    e.family(f.name, f.type, f.help);
    for (const TapSample& t : taps) {
      const vs_service_counters& c = t.service;
      if (f.value) {
        e.value(tap_labels(t), c.*f.value);
        continue;
      }
      const double sum = static_cast<double>(c.*f.sum_us) / 1e6;
      if (f.type == MetricType::kSummary) {
        e.summary(tap_labels(t), c.*f.count, sum);
        continue;
      }
      buckets.clear();
      for (const auto& [le, member] : f.buckets) buckets.push_back({le, c.*member});
      e.histogram(tap_labels(t), buckets, c.*f.count, sum);
    }
  }
}

// ---- per VM (resource_usage, kinfo_mem, vm_cpu, vm_io) ---------------------------------

// By hand, as proc_lines: a new task counter outside the I/O list stops the build here
// until it has its family, or is decided to have none (runtime_ns has none: the adjusted
// user and system times add up to it).
static_assert(int{VS_TASK_COUNTER_COUNT} - int{VS_TASK_IO_COUNTER_COUNT} == 9,
              "a new VS_TASK_COUNTERS entry: expose it (or note why not), then update this count");

void vm_families(Exposition& e, const std::vector<VmResources>& vms, const MetricsSnapshot& s) {
  const auto vm = [](const VmResources& v) { return LabelSet{{"vm", v.vm}}; };
  e.family("vmscope_vm_cpu_seconds", MetricType::kCounter,
           "CPU time of the VM's processes by mode, as /proc/<pid>/stat (resource_usage)");
  for (const VmResources& v : vms) {
    e.value(vm(v).with("mode", "user"), seconds(v.counters.utime_ns));
    e.value(vm(v).with("mode", "system"), seconds(v.counters.stime_ns));
  }
  e.family("vmscope_vm_page_faults", MetricType::kCounter,
           "Page faults of the VM's processes by type (resource_usage minflt, maxflt)");
  for (const VmResources& v : vms) {
    e.value(vm(v).with("type", "minor"), v.counters.min_flt);
    e.value(vm(v).with("type", "major"), v.counters.maj_flt);
  }
  e.family("vmscope_vm_context_switches", MetricType::kCounter,
           "Context switches of the VM's threads by type (resource_usage nvcsw, nivcsw)");
  for (const VmResources& v : vms) {
    e.value(vm(v).with("type", "voluntary"), v.counters.nvcsw);
    e.value(vm(v).with("type", "involuntary"), v.counters.nivcsw);
  }
  if (s.kept.cpu_wait) {
    e.family("vmscope_vm_cpu_run_delay_seconds", MetricType::kCounter,
             "Time the VM's threads were runnable but waiting for a CPU (vm_cpu run_delay)");
    for (const VmResources& v : vms) e.value(vm(v), seconds(v.counters.run_delay_ns));
    e.family("vmscope_vm_cpu_timeslices", MetricType::kCounter,
             "Timeslices the VM's threads ran (vm_cpu run_count)");
    for (const VmResources& v : vms) e.value(vm(v), v.counters.run_count);
  }
  if (s.kept.io) {
#define VS_PROM_IO_(field, own, dead)                     \
  e.family("vmscope_vm_io_" #field, MetricType::kCounter, \
           "/proc/<pid>/io's " #field                     \
           " summed over the VM's processes (vm_io, "     \
           "VS_TASK_IO_COUNTERS in bpf/vmscope.h)");      \
  for (const VmResources& v : vms) e.value(vm(v), v.counters.field);
    VS_TASK_IO_COUNTERS(VS_PROM_IO_)
#undef VS_PROM_IO_
  }
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  e.family("vmscope_vm_memory_rss_bytes", MetricType::kGauge,
           "Resident memory of the VM's processes (kinfo_mem rss)");
  for (const VmResources& v : vms) e.value(vm(v), v.rss_pages * page);
  e.family("vmscope_vm_memory_virtual_bytes", MetricType::kGauge,
           "Virtual memory size of the VM's processes (kinfo_mem vsize)");
  for (const VmResources& v : vms) e.value(vm(v), v.vsize_bytes);
  e.family("vmscope_vm_memory_text_bytes", MetricType::kGauge,
           "Text (code) of the VM's processes (kinfo_mem tsize)");
  for (const VmResources& v : vms) e.value(vm(v), v.text_pages * page);
  e.family("vmscope_vm_memory_data_bytes", MetricType::kGauge,
           "Data segment of the VM's processes (kinfo_mem dsize)");
  for (const VmResources& v : vms) e.value(vm(v), v.data_pages * page);
  e.family("vmscope_vm_memory_stack_bytes", MetricType::kGauge,
           "Stack of the VM's processes (kinfo_mem ssize)");
  for (const VmResources& v : vms) e.value(vm(v), v.stack_pages * page);
  e.family("vmscope_vm_start_time_seconds", MetricType::kGauge,
           "When the VM's oldest process started (Unix time)");
  const bool settled = s.vm_start_s.size() == vms.size();
  for (size_t i = 0; i < vms.size(); ++i)
    e.value(vm(vms[i]), settled ? s.vm_start_s[i] : tick_start_s(s, vms[i]));
  e.family("vmscope_vm_processes", MetricType::kGauge, "Processes of the VM");
  for (const VmResources& v : vms) e.value(vm(v), uint64_t{v.processes});
  e.family("vmscope_vm_threads", MetricType::kGauge, "Threads of the VM's processes");
  for (const VmResources& v : vms) e.value(vm(v), uint64_t{v.threads});
}

}  // namespace

void render_metrics(const MetricsSnapshot& s, ExpositionFormat format, std::string& out) {
  Exposition e(format, out, s.const_labels);
  self_families(e, s);
  if (s.sample.net) {
    net_families(e, *s.sample.net);
    service_families(e, s.sample.net->taps);
  }
  if (s.sample.vms) vm_families(e, *s.sample.vms, s);
  e.finish();
}

}  // namespace vmscope
