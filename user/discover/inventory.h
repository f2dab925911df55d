// What is on the host right now: VM taps, the bridges that hold them, and the VM each
// tap belongs to. Fed by link dumps and link events; owners are resolved lazily, once
// per tick, only for taps whose state changed. Pure bookkeeping: attaches nothing.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/flat_map.h"
#include "discover/links.h"
#include "discover/naming.h"

namespace vmscope {

struct TapState {
  LinkInfo link;
  int pid = 0;         // owning process, 0 if none holds the tap
  VmIdentity vm;       // vm.name is the tap name when no rule names the owner
  bool named = false;  // a rule (or override) named it
  std::string bridge;  // the `bridge` tag: solo5's NET, else the master bridge's name
  bool owner_dirty = true;
  bool warned_unnamed = false;
};

struct InventoryOptions {
  NamingOptions naming;
  std::vector<NameOverride> overrides;
  std::string proc_root = "/proc";
  bool same_netns_only = true;  // tap holders must share our network namespace
};

class Inventory {
 public:
  explicit Inventory(InventoryOptions opts) : opts_(std::move(opts)) {}

  // Replaces everything known with a fresh dump (start-up, or after an event overrun).
  void reset(const std::vector<LinkInfo>& links);
  void apply(const LinkEvent& ev);
  // Names the owners of taps that changed since the last call (one /proc scan at most).
  void resolve_owners();
  // Marks every tap for re-resolution (slow safety net for missed changes).
  void mark_all_dirty();
  // New naming rules (a reload): every tap is named again by the next resolve_owners.
  void set_naming(const NamingOptions& naming, const std::vector<NameOverride>& overrides);

  const FlatMap<int, TapState>& taps() const { return taps_; }
  // Bridges that hold at least one VM tap, by ifindex.
  std::map<int, LinkInfo> vm_bridges() const;
  const LinkInfo* link(int ifindex) const;  // a tap's too

 private:
  void update_link(const LinkInfo& link);
  void remove_link(int ifindex);
  void refresh_bridge_tag(TapState& tap) const;

  InventoryOptions opts_;
  // By ifindex, ordered: the collector walks the taps once per tick, merged with the
  // devices it counts (also ordered by ifindex).
  // Every link we saw but the taps (whose LinkInfo is their TapState's): bridges and
  // the rest, for masters. At 10,000 VMs a second copy of each tap's would be 1.6 MB.
  FlatMap<int, LinkInfo> links_;
  FlatMap<int, TapState> taps_;
};

}  // namespace vmscope
