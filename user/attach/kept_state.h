// What an agent leaves in the kernel when it stops, so that the next one continues the
// counts with no gap (issue 9): the network counter maps (pinned by name in the namespace's
// pin directory, /sys/fs/bpf/vmscope/net-<netns>/), the tcx links (pinned there as
// tcx-<ifindex>-<direction>) or clsact filters (they stay on their devices by themselves),
// and a "layout" record that says which structs the maps hold.
//
// The next agent of the namespace adopts all of it: it loads its programs against the
// kept maps (bpf_map__reuse_fd) and swaps its programs in atomically (link update, filter
// replace), so no packet is counted twice or missed. Maps of another layout (a build whose
// kept structs differ) are migrated: the layout record describes their fields
// (attach/kept_layout.h), this build loads fresh maps, and what the old ones counted is
// carried over by name (attach/layout_migration.h) into two carry maps, kept beside the
// others, that the drain adds to the kernel's counts. Kept maps that cannot be read (an
// unknown record, another revision of meaning) are dropped with one warning, and counting
// restarts from zero. `vmscope cleanup` removes everything.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "attach/kept_layout.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "drain/carry.h"
#include "vmscope.h"

struct bpf_object;

namespace vmscope {

// The maps of net.bpf.o that outlive an agent, by their names in the object and the pin
// directory. Everything else of the object (its programs' .rodata/.bss) is per run.
inline constexpr const char* kKeptMapNames[] = {
    "net_stats", "if_slot", "if_slot_far", "service_stats", "service_slots", "service_pending"};

// The carry maps (hash maps by slot, written by user space only): what maps of an earlier
// layout had counted, in this build's structs (vs_dev_counters, vs_service_counters).
inline constexpr const char* kCarryMapNames[] = {"net_carry", "service_carry"};

// The kept maps found in a pin directory, opened; or why there are none to adopt.
struct KeptMaps {
  bool adopted = false;  // maps of this layout: load against them
  bool migrate = false;  // maps of another, readable layout: fds and fields are the old ones
  bool reset = false;    // unreadable kept maps were dropped (one warning is logged)
  uint32_t slots = 0;    // their slot capacity (adopted or migrated)
  std::vector<std::pair<std::string, UniqueFd>> fds;  // kKeptMapNames: name -> fd
  // kCarryMapNames; invalid when the kept maps are of a build that had none (revision 1).
  UniqueFd net_carry, service_carry;
  KeptFieldLayout old_fields;  // migrate: the old maps' fields

  int fd(std::string_view name) const;  // -1 when not opened
};

// Opens the kept maps under dir. None (a fresh start) when there is no layout record;
// a reset when the record cannot be read by this build.
KeptMaps open_kept_maps(const std::string& dir);

// Fresh carry maps for slots slots (when the kept ones are not adopted).
Result<std::pair<UniqueFd, UniqueFd>> create_carry_maps(uint32_t slots);

// The carry maps' entries, converted from the layout their values are in.
Result<CarryTable> read_carry(int net_carry, int service_carry, const KeptFieldConverter& from);
// This build's own layout: what this build writes (and reads back when it adopts).
const KeptFieldConverter& this_layout();

// Before obj loads: makes its kept maps the adopted ones. An error when a map of the
// object does not match (obj must be sized with kept.slots first).
Status reuse_kept_maps(bpf_object* obj, const KeptMaps& kept);

// After obj loaded with fresh maps (or adopted ones of an older revision): pins them and
// the carry maps, and then the layout record (last: a directory without one holds nothing
// adoptable).
Status pin_kept_maps(bpf_object* obj, int net_carry, int service_carry, const std::string& dir,
                     uint32_t slots);

// The devices the kept if_slot/if_slot_far maps count: ifindex -> slot.
Result<std::vector<std::pair<int, uint32_t>>> read_kept_slots(int if_slot_fd, int if_slot_far_fd);

// Where the tcx link of one device and direction is pinned.
std::string tcx_pin_path(const std::string& dir, int ifindex, vs_dir dir_);
// The ifindex a tcx pin name names, or 0 for other names.
int ifindex_of_tcx_pin(const std::string& name);

// Removes every pin in dir (maps, tcx links: the links detach) and the directory.
void remove_pin_dir(const std::string& dir);

}  // namespace vmscope
