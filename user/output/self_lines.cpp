#include "output/self_lines.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "discover/proc_stat.h"
#include "output/line_protocol.h"

namespace vmscope {

void encode_self(const SelfMetrics& m, int64_t ts, std::string& out) {
  LineWriter w(out);
  // No host tag of its own: outputs that need one add it to every line (output/output_tags.h).
  w.begin("vmscope")
      .field_uint("tick_ns", m.tick_ns)
      .field_uint("lines", m.lines)
      .field_uint("lines_written", m.lines_written)
      .field_uint("lines_dropped", m.lines_dropped)
      .field_uint("spool_bytes", m.spool_bytes)
      .field_uint("spool_batches", m.spool_batches)
      .field_uint("spool_dropped_batches", m.spool_dropped_batches)
      .field_uint("vms", m.vms)
      .field_uint("taps", m.taps)
      .field_uint("net_slots", m.net_slots)
      .field_uint("net_slots_max", m.net_slots_max)
      .field_uint("net_far_slots", m.net_far_slots)
      .field_uint("net_far_slots_max", m.net_far_slots_max)
      .field_uint("net_continued", m.net_continued)
      .field_uint("kept_state_resets", m.kept_state_resets)
      .field_uint("kept_state_migrations", m.kept_state_migrations)
      .field_uint("tracked_procs", m.tracked_procs)
      .field_uint("tracked_procs_max", m.tracked_procs_max)
      .field_uint("service_pending", m.service_pending)
      .field_uint("service_pending_max", m.service_pending_max)
      .field_uint("proc_events_lost", m.proc_events_lost)
      .field_uint("rss_bytes", m.rss_bytes);
  if (m.bpf_stats)
    for (const ProgramStats& p : m.programs)
      w.field_uint(p.name + "_run_count", p.run_count)
          .field_uint(p.name + "_run_time_ns", p.run_time_ns);
  w.end(ts);
}

ProgramStats program_stats(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  ProgramStats s;
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0) {
    s.name = info.name;
    s.run_count = info.run_cnt;
    s.run_time_ns = info.run_time_ns;
  }
  return s;
}

bool bpf_stats_enabled() {
  std::ifstream in("/proc/sys/kernel/bpf_stats_enabled");
  int v = 0;
  return (in >> v) && v != 0;
}

uint64_t own_rss_bytes() {
  std::ifstream in("/proc/self/statm");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto statm = parse_statm(text);
  return statm ? statm->resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace vmscope
