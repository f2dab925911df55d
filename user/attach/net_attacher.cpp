#include "attach/net_attacher.h"

#include <spdlog/spdlog.h>

#include "drain/slot_capacity.h"

namespace vmscope {

NetAttacher::~NetAttacher() {
  detach_all();
}

void NetAttacher::detach(int ifindex, Hooks& hooks) {
  // Egress first, as at attach in reverse; remove() also takes a kept one off.
  if (hooks.egress) hooks.egress->remove();
  if (hooks.ingress) hooks.ingress->remove();
  hooks.ingress.reset();
  hooks.egress.reset();
  programs_.release_slot(ifindex);
}

void NetAttacher::detach_all() {
  if (owner_.keep_dir.empty()) {
    for (auto& [ifindex, hooks] : hooks_) detach(ifindex, hooks);
  }
  hooks_.clear();  // kept attachments stay on their devices, their slots in if_slot
  devices_.clear();
}

void NetAttacher::drop_unclaimed_kept() {
  for (int ifindex : programs_.unclaimed_kept()) {
    spdlog::debug("dropping the counters kept for ifindex {} (no longer a monitored device)",
                  ifindex);
    TcAttachment::remove_left(ifindex, VS_DIR_EGRESS, owner_);
    TcAttachment::remove_left(ifindex, VS_DIR_INGRESS, owner_);
    programs_.release_slot(ifindex);
  }
}

Result<NetAttacher::Hooks> NetAttacher::attach_one(int ifindex, const std::string& ifname) {
  auto in = TcAttachment::attach(ifindex, ifname, VS_DIR_INGRESS, programs_.ingress_prog_fd(),
                                 mode_, owner_);
  if (!in) return in.error();
  auto out = TcAttachment::attach(ifindex, ifname, VS_DIR_EGRESS, programs_.egress_prog_fd(),
                                  in->mode(), owner_);  // both directions the same way
  if (!out) return out.error();
  if (!mode_logged_) {
    mode_logged_ = true;
    spdlog::info("attaching network programs with {}", attach_mode_name(in->mode()));
  }
  Hooks hooks;
  hooks.ingress.emplace(std::move(*in));
  hooks.egress.emplace(std::move(*out));
  return hooks;
}

// One line when devices go unmonitored for want of slots (not one per device: at 10,000
// VMs that would be thousands), again only after all fitted once more.
void NetAttacher::report_capacity(uint32_t unmonitored, size_t wanted) {
  if (unmonitored == 0) {
    if (capacity_reported_) spdlog::info("every VM tap and bridge is monitored again");
    capacity_reported_ = false;
    return;
  }
  if (capacity_reported_) return;
  capacity_reported_ = true;
  spdlog::error(
      "{} of {} VM taps and bridges are not monitored: all {} network counter slots are in use; "
      "restart vmscope with net_slots = {} (or --net-slots) or more",
      unmonitored, wanted, programs_.capacity(), default_slot_capacity(wanted, 1));
}

std::vector<Error> NetAttacher::sync(
    const std::map<int, std::string>& wanted,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  // Detach what is no longer wanted, or was renamed (a new device on a reused ifindex).
  for (auto it = devices_.begin(); it != devices_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second != it->second.ifname) {
      spdlog::debug("detaching {}", it->second.ifname);
      auto hooks = hooks_.find(it->first);
      detach(it->first, hooks->second);
      hooks_.erase(hooks);
      it = devices_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<Error> errors;
  uint32_t unmonitored = 0;  // for want of a slot
  pending_ = false;
  for (const auto& [ifindex, ifname] : wanted) {
    if (devices_.count(ifindex)) continue;
    if (deadline && std::chrono::steady_clock::now() > *deadline) {
      pending_ = true;  // the rest on the next call
      return errors;
    }
    if (!programs_.has_kept_slot(ifindex) && programs_.slots_used() >= programs_.capacity()) {
      ++unmonitored;
      continue;
    }
    // The previous run's counts go on where its program stayed on the device all along;
    // a device without it (say, a new one on a reused ifindex) starts from zero.
    const bool continues =
        programs_.has_kept_slot(ifindex) && TcAttachment::present(ifindex, VS_DIR_INGRESS, owner_);
    auto slot = programs_.assign_slot(ifindex, continues);
    if (!slot) {
      errors.push_back(slot.error());
      continue;
    }
    auto hooks = attach_one(ifindex, ifname);
    if (!hooks) {
      programs_.release_slot(ifindex);
      errors.push_back(hooks.error());
      continue;
    }
    spdlog::debug("attached {} (ifindex {}, slot {}{})", ifname, ifindex, *slot,
                  continues ? ", counts continued" : "");
    if (continues) ++continued_;
    hooks_.emplace(ifindex, std::move(*hooks));
    devices_.emplace(ifindex, CountedDevice{ifname, *slot});
  }
  report_capacity(unmonitored, wanted.size());
  if (!synced_) {
    synced_ = true;
    drop_unclaimed_kept();
  }
  return errors;
}

}  // namespace vmscope
