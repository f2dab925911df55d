// Keeps the network programs attached to exactly the wanted devices: attaches new ones,
// detaches and frees the slots of those no longer wanted or gone.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "attach/net_programs.h"
#include "attach/tc_attachment.h"
#include "drain/slot_table.h"

namespace vmscope {

class NetAttacher {
 public:
  NetAttacher(NetPrograms& programs, AttachMode mode) : programs_(programs), mode_(mode) {}
  ~NetAttacher();

  // wanted: ifindex -> name. Returns the devices that failed to attach this time
  // (each logged once by the caller is enough; they are retried on the next sync).
  std::vector<Error> sync(const std::map<int, std::string>& wanted);
  // What is counted, and in which slot: what the collector reads.
  const SlotTable& devices() const { return devices_; }
  // Whether ifindex was attached by the last sync (false until then).
  bool attached(int ifindex) const { return devices_.count(ifindex) != 0; }
  void detach_all();

 private:
  // Both directions of one device; reset in that order before its slot is released.
  struct Hooks {
    std::optional<TcAttachment> ingress, egress;
  };
  Result<Hooks> attach_one(int ifindex, const std::string& ifname);
  void detach(int ifindex, Hooks& hooks);
  void report_capacity(uint32_t unmonitored, size_t wanted);

  NetPrograms& programs_;
  AttachMode mode_;
  bool mode_logged_ = false;
  bool capacity_reported_ = false;  // the "not monitored" line is out
  SlotTable devices_;               // by ifindex
  std::map<int, Hooks> hooks_;      // the same keys
};

}  // namespace vmscope
