// One BPF program attached to one direction of one device, owned RAII-style.
// tcx links where the kernel has them (6.6+), classic clsact filters otherwise. Either way
// only what vmscope attached is ever removed: a clsact hook may be shared with other
// tools, so it is created if missing but never destroyed.
//
// A kept attachment (the agent's, see attach/kept_state.h) outlives its owner: its tcx
// link is pinned, its clsact filter stays, and the next agent swaps its own program in.
#pragma once

#include <string>

#include "attach/attach_mode.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmscope.h"

namespace vmscope {

// Our clsact filters' identity: fixed so that a restarted agent replaces, not duplicates,
// the filter its predecessor left. An attacher that does not hold the namespace's lock
// (`vmscope top` with programs of its own, a second agent) uses the next priority, so that
// it never replaces or removes the filters an agent keeps.
inline constexpr uint32_t kClsactHandle = 0x7673;  // "vs"
inline constexpr uint32_t kClsactPriority = 0xc0de;
inline constexpr uint32_t kTransientClsactPriority = kClsactPriority + 1;

// Who attaches: the clsact priority it uses, and where its tcx links are pinned when its
// attachments are kept beyond its life (empty: removed with their owner).
struct TcOwner {
  uint32_t clsact_priority = kClsactPriority;
  std::string keep_dir;
};

// The device a tcx link is attached to; 0 when it is no tcx link or its device went.
int tcx_link_ifindex(int link_fd);
// Whether a tcx link pinned in dir (a kept state directory) is still attached to a
// device: its network namespace lives (perhaps visible only from another mount
// namespace), whatever else says.
bool kept_links_attached(const std::string& dir);

class TcAttachment {
 public:
  // mode kAuto: tcx, or clsact when the kernel lacks tcx. The mode actually used is
  // reported by mode(). An attachment of this owner already on the device (kept by a
  // previous run) gets prog_fd atomically, in place; one left in the other mode is
  // removed first (never both: that would count twice).
  static Result<TcAttachment> attach(int ifindex, const std::string& ifname, vs_dir dir,
                                     int prog_fd, AttachMode mode, const TcOwner& owner);
  // Whether the device carries this owner's attachment in that direction now (a kept one:
  // a live pinned tcx link on this very ifindex, or our clsact filter).
  static bool present(int ifindex, vs_dir dir, const TcOwner& owner);
  // Removes this owner's attachments of a device it no longer holds objects for (a kept
  // one whose device is no longer wanted); what is already gone is no error.
  static void remove_left(int ifindex, vs_dir dir, const TcOwner& owner);

  TcAttachment(TcAttachment&&) noexcept;
  TcAttachment& operator=(TcAttachment&&) noexcept;
  // Detaches, unless kept: then the attachment stays for the next run.
  ~TcAttachment();
  // Detaches now, also a kept attachment (its device is no longer wanted).
  void remove() noexcept;

  AttachMode mode() const { return mode_; }
  bool adopted() const { return adopted_; }  // was on the device already, program swapped

 private:
  TcAttachment() = default;
  void release() noexcept;

  AttachMode mode_ = AttachMode::kAuto;
  int ifindex_ = 0;
  std::string ifname_;
  vs_dir dir_ = VS_DIR_INGRESS;
  TcOwner owner_;
  UniqueFd link_;        // tcx: detaching is closing the link (and removing its pin)
  bool clsact_ = false;  // clsact: our filter is installed
  bool kept_ = false;    // stays when this object goes
  bool adopted_ = false;
};

}  // namespace vmscope
