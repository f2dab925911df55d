#include "discover/inventory.h"

#include <spdlog/spdlog.h>

#include "discover/tap_owners.h"

namespace vmscope {

void Inventory::reset(const std::vector<LinkInfo>& links) {
  FlatMap<int, TapState> old = std::move(taps_);
  links_.clear();
  taps_.clear();
  for (const auto& l : links) update_link(l);
  // Keep what we learnt about taps that survived, but look at their owners again.
  for (auto& [ifindex, tap] : taps_) {
    if (auto it = old.find(ifindex); it != old.end() && it->second.link.name == tap.link.name) {
      LinkInfo fresh = tap.link;
      tap = it->second;
      tap.link = fresh;
    }
    tap.owner_dirty = true;
  }
}

void Inventory::apply(const LinkEvent& ev) {
  if (ev.removed)
    remove_link(ev.link.ifindex);
  else
    update_link(ev.link);
}

void Inventory::update_link(const LinkInfo& link) {
  if (!link.is_tap) {
    links_.insert_or_assign(link.ifindex, link);
    // A bridge renamed: the tags of its taps follow.
    if (link.kind == "bridge")
      for (auto& [_, tap] : taps_)
        if (tap.link.master == link.ifindex) refresh_bridge_tag(tap);
    return;
  }
  links_.erase(link.ifindex);  // a tap's link lives in its TapState only
  auto [it, inserted] = taps_.try_emplace(link.ifindex);
  TapState& tap = it->second;
  bool changed = inserted || tap.link.name != link.name || tap.link.carrier != link.carrier;
  tap.link = link;
  if (inserted) tap.vm.name = link.name;
  // Carrier flips when a process opens or closes the tap: the owner may have changed.
  if (changed) tap.owner_dirty = true;
  refresh_bridge_tag(tap);
}

void Inventory::remove_link(int ifindex) {
  links_.erase(ifindex);
  taps_.erase(ifindex);
}

void Inventory::mark_all_dirty() {
  for (auto& [_, tap] : taps_) tap.owner_dirty = true;
}

void Inventory::set_naming(const NamingOptions& naming,
                           const std::vector<NameOverride>& overrides) {
  opts_.naming = naming;
  opts_.overrides = overrides;
  for (auto& [_, tap] : taps_) tap.warned_unnamed = false;
  mark_all_dirty();
}

void Inventory::refresh_bridge_tag(TapState& tap) const {
  if (auto it = tap.vm.tap_nets.find(tap.link.name); it != tap.vm.tap_nets.end()) {
    tap.bridge = it->second;
    return;
  }
  tap.bridge.clear();
  if (auto it = links_.find(tap.link.master); it != links_.end() && it->second.kind == "bridge")
    tap.bridge = it->second.name;
}

void Inventory::resolve_owners() {
  bool any = false;
  for (const auto& [_, tap] : taps_) any |= tap.owner_dirty;
  if (!any) return;
  TapOwners owners = scan_tap_owners(opts_.proc_root, opts_.same_netns_only);
  for (auto& [_, tap] : taps_) {
    if (!tap.owner_dirty) continue;
    tap.owner_dirty = false;
    const std::string& ifname = tap.link.name;
    tap.pid = 0;
    tap.named = false;
    tap.vm = VmIdentity{};
    std::optional<ProcessInfo> proc;
    if (auto it = owners.find(ifname); it != owners.end()) {
      // Several holders (fd passed or inherited): the first one a rule can name wins.
      for (int pid : it->second) {
        auto p = read_process(pid, opts_.proc_root);
        if (!p) continue;
        if (!proc) proc = *p;
        if (name_vm(*p, opts_.naming)) {
          proc = std::move(*p);
          break;
        }
      }
    }
    if (proc) tap.pid = proc->pid;
    std::optional<VmIdentity> id = match_override(opts_.overrides, ifname, proc ? &*proc : nullptr);
    if (!id && proc) id = name_vm(*proc, opts_.naming);
    if (id) {
      tap.vm = std::move(*id);
      tap.named = true;
      tap.warned_unnamed = false;
    } else {
      tap.vm.name = ifname;
      if (!tap.warned_unnamed) {
        tap.warned_unnamed = true;
        if (proc)
          spdlog::info(
              "tap {}: no naming rule matches its owner pid {} ({}); reporting it as vm={}", ifname,
              proc->pid, proc->argv.empty() ? "?" : proc->argv[0], ifname);
        else
          spdlog::info("tap {}: no process holds it; reporting it as vm={}", ifname, ifname);
      }
    }
    refresh_bridge_tag(tap);
  }
}

std::map<int, LinkInfo> Inventory::vm_bridges() const {
  std::map<int, LinkInfo> out;
  for (const auto& [_, tap] : taps_) {
    auto it = links_.find(tap.link.master);
    if (it != links_.end() && it->second.kind == "bridge") out.emplace(it->first, it->second);
  }
  return out;
}

const LinkInfo* Inventory::link(int ifindex) const {
  if (auto it = links_.find(ifindex); it != links_.end()) return &it->second;
  auto tap = taps_.find(ifindex);
  return tap == taps_.end() ? nullptr : &tap->second.link;
}

}  // namespace vmscope
