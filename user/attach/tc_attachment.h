// One BPF program attached to one direction of one device, owned RAII-style.
// tcx links where the kernel has them (6.6+), classic clsact filters otherwise. Either way
// only what vmscope attached is ever removed: a clsact hook may be shared with other
// tools, so it is created if missing but never destroyed.
#pragma once

#include <string>

#include "attach/attach_mode.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmscope.h"

namespace vmscope {

// Our clsact filter's identity: fixed so that a restarted agent replaces, not duplicates,
// a filter left behind by a killed one.
inline constexpr uint32_t kClsactHandle = 0x7673;  // "vs"
inline constexpr uint32_t kClsactPriority = 0xc0de;

class TcAttachment {
 public:
  // mode kAuto: tcx, or clsact when the kernel lacks tcx. The mode actually used is
  // reported by mode().
  static Result<TcAttachment> attach(int ifindex, const std::string& ifname, vs_dir dir,
                                     int prog_fd, AttachMode mode);
  TcAttachment(TcAttachment&&) noexcept;
  TcAttachment& operator=(TcAttachment&&) noexcept;
  ~TcAttachment();

  AttachMode mode() const { return mode_; }

 private:
  TcAttachment() = default;
  void detach() noexcept;

  AttachMode mode_ = AttachMode::kAuto;
  int ifindex_ = 0;
  std::string ifname_;
  vs_dir dir_ = VS_DIR_INGRESS;
  UniqueFd link_;        // tcx: detaching is closing the link
  bool clsact_ = false;  // clsact: our filter is installed
};

}  // namespace vmscope
