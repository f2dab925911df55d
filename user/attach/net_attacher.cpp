#include "attach/net_attacher.h"

#include <spdlog/spdlog.h>

namespace vmscope {

NetAttacher::~NetAttacher() {
  detach_all();
}

void NetAttacher::detach_all() {
  for (auto& [ifindex, dev] : devices_) {
    dev.ingress.reset();
    dev.egress.reset();
    programs_.release_slot(ifindex);
  }
  devices_.clear();
}

Result<AttachedDevice> NetAttacher::attach_one(int ifindex, const std::string& ifname) {
  auto slot = programs_.assign_slot(ifindex);
  if (!slot) return slot.error();
  AttachedDevice dev;
  dev.ifname = ifname;
  dev.slot = *slot;
  auto in =
      TcAttachment::attach(ifindex, ifname, VS_DIR_INGRESS, programs_.ingress_prog_fd(), mode_);
  if (!in) {
    programs_.release_slot(ifindex);
    return in.error();
  }
  auto out = TcAttachment::attach(ifindex, ifname, VS_DIR_EGRESS, programs_.egress_prog_fd(),
                                  in->mode());  // both directions the same way
  if (!out) {
    programs_.release_slot(ifindex);
    return out.error();
  }
  if (!mode_logged_) {
    mode_logged_ = true;
    spdlog::info("attaching network programs with {}", attach_mode_name(in->mode()));
  }
  dev.ingress.emplace(std::move(*in));
  dev.egress.emplace(std::move(*out));
  return dev;
}

std::vector<Error> NetAttacher::sync(const std::map<int, std::string>& wanted) {
  // Detach what is no longer wanted, or was renamed (a new device on a reused ifindex).
  for (auto it = devices_.begin(); it != devices_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second != it->second.ifname) {
      spdlog::debug("detaching {}", it->second.ifname);
      it->second.ingress.reset();
      it->second.egress.reset();
      programs_.release_slot(it->first);
      it = devices_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<Error> errors;
  for (const auto& [ifindex, ifname] : wanted) {
    if (devices_.count(ifindex)) continue;
    auto dev = attach_one(ifindex, ifname);
    if (!dev) {
      errors.push_back(dev.error());
      continue;
    }
    spdlog::debug("attached {} (ifindex {}, slot {})", ifname, ifindex, dev->slot);
    devices_.emplace(ifindex, std::move(*dev));
  }
  return errors;
}

}  // namespace vmscope
