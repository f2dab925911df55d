// Keeps the network programs attached to exactly the wanted devices: attaches new ones,
// detaches and frees the slots of those no longer wanted or gone.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "attach/net_programs.h"
#include "attach/tc_attachment.h"

namespace vmscope {

struct AttachedDevice {
  std::string ifname;
  uint32_t slot = 0;
  std::optional<TcAttachment> ingress, egress;
};

class NetAttacher {
 public:
  NetAttacher(NetPrograms& programs, AttachMode mode) : programs_(programs), mode_(mode) {}
  ~NetAttacher();

  // wanted: ifindex -> name. Returns the devices that failed to attach this time
  // (each logged once by the caller is enough; they are retried on the next sync).
  std::vector<Error> sync(const std::map<int, std::string>& wanted);
  const std::map<int, AttachedDevice>& devices() const { return devices_; }
  // Whether ifindex was attached by the last sync (false until then).
  bool attached(int ifindex) const { return devices_.count(ifindex) != 0; }
  void detach_all();

 private:
  Result<AttachedDevice> attach_one(int ifindex, const std::string& ifname);

  NetPrograms& programs_;
  AttachMode mode_;
  bool mode_logged_ = false;
  std::map<int, AttachedDevice> devices_;
};

}  // namespace vmscope
