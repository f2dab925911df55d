// What an agent leaves in the kernel when it stops, so that the next one continues the
// counts with no gap (issue 9): the network counter maps (pinned by name in the namespace's
// pin directory, /sys/fs/bpf/vmscope/net-<netns>/), the tcx links (pinned there as
// tcx-<ifindex>-<direction>) or clsact filters (they stay on their devices by themselves),
// and a "layout" record that says which structs the maps hold.
//
// The next agent of the namespace adopts all of it: it loads its programs against the
// kept maps (bpf_map__reuse_fd) and swaps its programs in atomically (link update, filter
// replace), so no packet is counted twice or missed. Maps of another layout (a build whose
// kept structs differ) cannot be read by this build: they are dropped with one warning,
// and counting restarts from zero. `vmscope cleanup` removes everything.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmscope.h"

struct bpf_object;

namespace vmscope {

// The maps of net.bpf.o that outlive an agent, by their names in the object and the pin
// directory. Everything else of the object (its programs' .rodata/.bss) is per run.
inline constexpr const char* kKeptMapNames[] = {
    "net_stats", "if_slot", "if_slot_far", "service_stats", "service_slots", "service_pending"};

// The kept maps found in a pin directory, opened; or why there are none to adopt.
struct KeptMaps {
  bool adopted = false;  // maps of this layout: load against them
  bool reset = false;    // maps of another layout were dropped (one warning is logged)
  uint32_t slots = 0;    // their slot capacity (when adopted)
  std::vector<std::pair<std::string, UniqueFd>> fds;  // name -> fd (when adopted)
};

// Opens the kept maps under dir. None (a fresh start) when there is no layout record;
// a reset when the record or a map's shape differs from this build's.
KeptMaps open_kept_maps(const std::string& dir);

// Before obj loads: makes its kept maps the adopted ones. An error when a map of the
// object does not match (obj must be sized with kept.slots first).
Status reuse_kept_maps(bpf_object* obj, const KeptMaps& kept);

// After obj loaded with fresh maps: pins them and then the layout record (last: a
// directory without one holds nothing adoptable).
Status pin_kept_maps(bpf_object* obj, const std::string& dir, uint32_t slots);

// The devices the kept if_slot/if_slot_far maps count: ifindex -> slot.
Result<std::vector<std::pair<int, uint32_t>>> read_kept_slots(int if_slot_fd, int if_slot_far_fd);

// Where the tcx link of one device and direction is pinned.
std::string tcx_pin_path(const std::string& dir, int ifindex, vs_dir dir_);
// The ifindex a tcx pin name names, or 0 for other names.
int ifindex_of_tcx_pin(const std::string& name);

// Removes every pin in dir (maps, tcx links: the links detach) and the directory.
void remove_pin_dir(const std::string& dir);

}  // namespace vmscope
