#include "attach/net_attacher.h"

#include <spdlog/spdlog.h>

namespace vmscope {

NetAttacher::~NetAttacher() {
  detach_all();
}

void NetAttacher::detach(int ifindex, Hooks& hooks) {
  hooks.ingress.reset();
  hooks.egress.reset();
  programs_.release_slot(ifindex);
}

void NetAttacher::detach_all() {
  for (auto& [ifindex, hooks] : hooks_) detach(ifindex, hooks);
  hooks_.clear();
  devices_.clear();
}

Result<NetAttacher::Hooks> NetAttacher::attach_one(int ifindex, const std::string& ifname) {
  auto in =
      TcAttachment::attach(ifindex, ifname, VS_DIR_INGRESS, programs_.ingress_prog_fd(), mode_);
  if (!in) return in.error();
  auto out = TcAttachment::attach(ifindex, ifname, VS_DIR_EGRESS, programs_.egress_prog_fd(),
                                  in->mode());  // both directions the same way
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

std::vector<Error> NetAttacher::sync(const std::map<int, std::string>& wanted) {
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
  for (const auto& [ifindex, ifname] : wanted) {
    if (devices_.count(ifindex)) continue;
    auto slot = programs_.assign_slot(ifindex);
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
    spdlog::debug("attached {} (ifindex {}, slot {})", ifname, ifindex, *slot);
    hooks_.emplace(ifindex, std::move(*hooks));
    devices_.emplace(ifindex, CountedDevice{ifname, *slot});
  }
  return errors;
}

}  // namespace vmscope
