// Keeps the network programs attached to exactly the wanted devices: attaches new ones,
// detaches and frees the slots of those no longer wanted or gone.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "attach/net_programs.h"
#include "attach/tc_attachment.h"
#include "drain/slot_table.h"

namespace vmscope {

class NetAttacher {
 public:
  // owner.keep_dir set: attachments and counter slots outlive this object for the next
  // run (attach/kept_state.h), and the previous run's are adopted.
  NetAttacher(NetPrograms& programs, AttachMode mode, TcOwner owner = {})
      : programs_(programs), mode_(mode), owner_(std::move(owner)) {}
  ~NetAttacher();

  // wanted: ifindex -> name. Returns the devices that failed to attach this time
  // (each logged once by the caller is enough; they are retried on the next sync).
  // deadline: attaches no new device after it; pending() then says more are wanted. (A
  // new tcx link or clsact filter costs the kernel an RCU grace period under the RTNL
  // lock, ~10 ms: a cold start on 1,000 VMs takes many seconds, and ticks must not wait.)
  std::vector<Error> sync(const std::map<int, std::string>& wanted,
                          std::optional<std::chrono::steady_clock::time_point> deadline = {});
  bool pending() const { return pending_; }
  // What is counted, and in which slot: what the collector reads.
  const SlotTable& devices() const { return devices_; }
  // Whether ifindex was attached by the last sync (false until then).
  bool attached(int ifindex) const { return devices_.count(ifindex) != 0; }
  // Stops managing every device: removes the attachments and frees the slots, except
  // kept ones, which stay attached and counting for the next run.
  void detach_all();
  // Devices whose counts went on from the previous run (adopted at the first sync).
  size_t continued() const { return continued_; }

 private:
  // Both directions of one device; reset in that order before its slot is released.
  struct Hooks {
    std::optional<TcAttachment> ingress, egress;
  };
  Result<Hooks> attach_one(int ifindex, const std::string& ifname);
  void detach(int ifindex, Hooks& hooks);
  void report_capacity(uint32_t unmonitored, size_t wanted);
  // After the first sync: what the previous run kept for devices that are not wanted now.
  void drop_unclaimed_kept();

  NetPrograms& programs_;
  AttachMode mode_;
  TcOwner owner_;
  bool synced_ = false;   // a sync attached everything wanted once
  bool pending_ = false;  // the last sync stopped at its deadline
  size_t continued_ = 0;
  bool mode_logged_ = false;
  bool capacity_reported_ = false;  // the "not monitored" line is out
  SlotTable devices_;               // by ifindex
  std::map<int, Hooks> hooks_;      // the same keys
};

}  // namespace vmscope
