// Shared state of vmscope_bench: the process joins a network namespace that holds the VM
// taps (bench/run.sh creates it), loads vmscope's real BPF object and attaches it to every
// tap the way the agent does, and starts one sleeper process per VM for the /proc baseline.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attach/net_attacher.h"
#include "attach/net_programs.h"
#include "common/result.h"
#include "discover/inventory.h"
#include "discover/links.h"
#include "drain/net_snapshot.h"
#include "output/line_protocol.h"

namespace vmscope::bench {

// Benchmark names the summary (main.cpp) looks up.
inline constexpr const char* kTcEmpty = "tc_per_packet/empty";
inline constexpr const char* kTcVmscope = "tc_per_packet/vs_tc_ingress";
inline constexpr const char* kTcUntracked = "tc_per_packet/vs_tc_ingress_untracked_ifindex";
inline constexpr const char* kTickVmscope = "tick/vmscope_collect_encode";
inline constexpr const char* kTickAlbatross = "tick/albatross_poll";
inline constexpr const char* kProcTickVmscope = "proc_tick/vmscope_collect_encode";
inline constexpr const char* kTickAlbatrossProc = "tick_part/albatross_proc_only";
// The same whole-tick parts with cold caches: as the agent's tick runs, once per interval
// on a host whose VMs have used the caches since the last one.
inline constexpr const char* kTickVmscopeCold = "tick_cold/vmscope_collect_encode";
inline constexpr const char* kProcTickVmscopeCold = "proc_tick_cold/vmscope_collect_encode";

struct EnvOptions {
  std::string netns;    // /run/netns/<netns> is joined before anything else
  int sleepers = 1000;  // real processes whose /proc files the baseline reads
  // The drain cost does not depend on how programs are attached; clsact attaches 2000
  // programs in seconds where tcx takes ~17 ms per link here (see RESULTS.md).
  AttachMode attach_mode = AttachMode::kClsact;
};

struct Env {
  EnvOptions opts;
  std::vector<LinkInfo> taps;  // VM taps in the namespace, by ifindex
  int bridges = 0;
  std::vector<pid_t> sleepers;
  std::optional<NetPrograms> programs;
  std::optional<Netlink> nl;  // request socket, as the agent's
  std::unique_ptr<Inventory> inventory;
  std::unique_ptr<NetAttacher> attacher;
  std::unique_ptr<NetCollector> collector;
  int tracked_ifindex = 0;  // a tap with a counter slot (per-packet benchmark)
  double attach_seconds = 0, detach_seconds = 0;
};

// Where a benchmarked tick's lines go, as in the agent: cut at kChunkBytes between taps or
// VMs (ChunkPoint), each chunk handed on and the encoding carried on in a recycled buffer.
// The chunks rotate through as many buffers as the agent lets its sinks hold
// (OutputWriter::kMaxLentBytes), the most memory its encoding cycles through; what the
// sinks do with them is no part of the tick.
class TickOutput final : public ChunkPoint {
 public:
  TickOutput();
  void between(std::string& out) override;
  void begin_tick(std::string& out);
  // The tick's bytes; out's lines are its last chunk.
  size_t end_tick(std::string& out);

 private:
  void hand_on(std::string& out);
  std::vector<std::string> handed_;
  size_t next_ = 0;
  size_t bytes_ = 0;
};

Env& env();
// Reads a buffer three times the last-level cache (untimed, between iterations of the
// cold benchmarks): whatever the tick touched before is out of the caches.
void evict_caches();
Status setup(const EnvOptions& opts);
// Detaches everything and kills the sleepers; safe to call twice.
void teardown();

void register_tc_benchmarks();
void register_tick_benchmarks();
void register_proc_benchmarks();

}  // namespace vmscope::bench
