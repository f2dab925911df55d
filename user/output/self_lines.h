// vmscope's own health, one `vmscope` line per tick (host=HOSTNAME where the output adds it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmscope {

struct ProgramStats {
  std::string name;
  uint64_t run_count = 0, run_time_ns = 0;
};

struct SelfMetrics {
  uint64_t tick_ns = 0;                           // drain + encode of this tick, until this line
  uint64_t lines = 0;                             // lines of this tick, before this one
  uint64_t lines_written = 0, lines_dropped = 0;  // all sinks, since start
  // All outputs' on-disk spools: now, and batches dropped from them since start.
  uint64_t spool_bytes = 0, spool_batches = 0, spool_dropped_batches = 0;
  uint64_t vms = 0, taps = 0;
  uint64_t net_slots = 0, net_slots_max = 0;          // net_stats (and if_slot) entries in use
  uint64_t net_far_slots = 0, net_far_slots_max = 0;  // if_slot_far hash
  uint64_t tracked_procs = 0, tracked_procs_max = 0;
  // service_pending (open handshakes and DNS queries) after the tick's sweep; 0/0 where
  // this process does not sweep (top reading an agent)
  uint64_t service_pending = 0, service_pending_max = 0;
  uint64_t proc_events_lost = 0;
  // Network devices whose counters went on from the previous run's kept state; whether
  // that state could not be read and was dropped (1: counters restarted at 0), and whether
  // it was of another layout and carried over (1: counters went on).
  uint64_t net_continued = 0, kept_state_resets = 0, kept_state_migrations = 0;
  uint64_t rss_bytes = 0;
  bool bpf_stats = false;  // kernel.bpf_stats_enabled: run counts/times are real
  std::vector<ProgramStats> programs;
};

void encode_self(const SelfMetrics& m, int64_t timestamp_ns, std::string& out);

// Run count and time of a loaded program (zero unless kernel.bpf_stats_enabled=1).
ProgramStats program_stats(int prog_fd);
bool bpf_stats_enabled();
uint64_t own_rss_bytes();

}  // namespace vmscope
