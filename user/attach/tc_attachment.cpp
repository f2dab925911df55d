#include "attach/tc_attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "attach/kept_state.h"
#include "common/dir.h"

namespace vmscope {
namespace {

// Debian 12's uapi headers predate tcx; the values are fixed kernel ABI.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;
constexpr uint32_t kBpfLinkTypeTcx = 11;

const char* dir_name(vs_dir dir) {
  return dir == VS_DIR_INGRESS ? "ingress" : "egress";
}

bpf_tc_attach_point tc_point(vs_dir dir) {
  return dir == VS_DIR_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

// Errors that mean "this kernel has no tcx", not "this attach failed".
bool tcx_unsupported(int err) {
  return err == EINVAL || err == EOPNOTSUPP || err == 524 /* ENOTSUPP, kernel-internal */;
}

bool tcx_link_on(int link_fd, int ifindex) {
  return tcx_link_ifindex(link_fd) == ifindex;
}

}  // namespace

// A link whose device went is defunct: the kernel reports ifindex 0 for it. (Debian 12's
// struct bpf_link_info has no tcx member; its first word is the ifindex, as xdp's is.)
int tcx_link_ifindex(int link_fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0 || info.type != kBpfLinkTypeTcx) return 0;
  return static_cast<int>(info.xdp.ifindex);
}

bool kept_links_attached(const std::string& dir) {
  DirHandle d(dir);
  while (const dirent* e = d.next()) {
    if (ifindex_of_tcx_pin(e->d_name) == 0) continue;
    UniqueFd link(bpf_obj_get((dir + "/" + e->d_name).c_str()));
    if (link.valid() && tcx_link_ifindex(link.get()) != 0) return true;
  }
  return false;
}

namespace {

bpf_tc_hook hook_of(int ifindex, vs_dir dir) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = tc_point(dir);
  return hook;
}

bpf_tc_opts filter_of(const TcOwner& owner) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kClsactHandle;
  opts.priority = owner.clsact_priority;
  return opts;
}

bool clsact_filter_present(int ifindex, vs_dir dir, const TcOwner& owner) {
  bpf_tc_hook hook = hook_of(ifindex, dir);
  bpf_tc_opts opts = filter_of(owner);
  return bpf_tc_query(&hook, &opts) == 0;
}

// 0, or the negative error; a filter (or device) already gone is success.
int remove_clsact_filter(int ifindex, vs_dir dir, const TcOwner& owner) {
  bpf_tc_hook hook = hook_of(ifindex, dir);
  bpf_tc_opts opts = filter_of(owner);
  int err = bpf_tc_detach(&hook, &opts);
  return (err == -ENOENT || err == -ENODEV || err == -EINVAL) ? 0 : err;
}

// The pinned tcx link of a kept attachment, if it is still attached to this device; a
// pin of a defunct link (its device went, the ifindex may have been reused) is removed.
UniqueFd kept_tcx_link(int ifindex, vs_dir dir, const TcOwner& owner) {
  if (owner.keep_dir.empty()) return {};
  const std::string pin = tcx_pin_path(owner.keep_dir, ifindex, dir);
  UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd.valid()) return {};
  if (tcx_link_on(fd.get(), ifindex)) return fd;
  unlink(pin.c_str());
  return {};
}

}  // namespace

bool TcAttachment::present(int ifindex, vs_dir dir, const TcOwner& owner) {
  return kept_tcx_link(ifindex, dir, owner).valid() || clsact_filter_present(ifindex, dir, owner);
}

void TcAttachment::remove_left(int ifindex, vs_dir dir, const TcOwner& owner) {
  if (!owner.keep_dir.empty()) unlink(tcx_pin_path(owner.keep_dir, ifindex, dir).c_str());
  (void)remove_clsact_filter(ifindex, dir, owner);
}

Result<TcAttachment> TcAttachment::attach(int ifindex, const std::string& ifname, vs_dir dir,
                                          int prog_fd, AttachMode mode, const TcOwner& owner) {
  TcAttachment a;
  a.ifindex_ = ifindex;
  a.ifname_ = ifname;
  a.dir_ = dir;
  a.owner_ = owner;
  const bool keep = !owner.keep_dir.empty();
  auto what = [&](const char* how) {
    return fmt::format("attach {} {} on {}", how, dir_name(dir), ifname);
  };
  UniqueFd kept_link = kept_tcx_link(ifindex, dir, owner);

  if (mode != AttachMode::kClsact) {
    if (kept_link.valid()) {
      // The previous run's link: swap the program in place, no moment without one.
      if (bpf_link_update(kept_link.get(), prog_fd, nullptr) != 0)
        return Error::from_errno(what("(replace the kept program of) tcx"), errno);
      a.link_ = std::move(kept_link);
      a.mode_ = AttachMode::kTcx;
      a.kept_ = true;
      a.adopted_ = true;
      return a;
    }
    // A filter the previous run left in clsact mode goes before the link comes: a moment
    // uncounted rather than every packet counted twice (only when the mode changes).
    const bool had_filter = keep && clsact_filter_present(ifindex, dir, owner);
    if (had_filter) (void)remove_clsact_filter(ifindex, dir, owner);
    int fd = bpf_link_create(
        prog_fd, ifindex,
        static_cast<bpf_attach_type>(dir == VS_DIR_INGRESS ? kBpfTcxIngress : kBpfTcxEgress),
        nullptr);
    if (fd >= 0) {
      a.link_.reset(fd);
      a.mode_ = AttachMode::kTcx;
      if (keep) {
        const std::string pin = tcx_pin_path(owner.keep_dir, ifindex, dir);
        if (bpf_obj_pin(fd, pin.c_str()) == 0)
          a.kept_ = true;
        else
          spdlog::warn("{}: pin {}: {}; it goes when this agent stops", what("tcx"), pin,
                       strerror(errno));
      }
      return a;
    }
    int err = errno;
    if (mode == AttachMode::kTcx || !tcx_unsupported(err))
      return Error::from_errno(what("tcx"), err);
  } else if (kept_link.valid()) {
    // The previous run used tcx, this one clsact: as above, remove before attaching.
    unlink(tcx_pin_path(owner.keep_dir, ifindex, dir).c_str());
    kept_link.reset();
  }

  bpf_tc_hook hook = hook_of(ifindex, dir);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return Error::from_errno(what("clsact hook"), -err);
  a.adopted_ = keep && clsact_filter_present(ifindex, dir, owner);
  bpf_tc_opts opts = filter_of(owner);
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;  // a kept filter gets the new program atomically
  err = bpf_tc_attach(&hook, &opts);
  if (err) return Error::from_errno(what("tc filter"), -err);
  a.clsact_ = true;
  a.kept_ = keep;
  a.mode_ = AttachMode::kClsact;
  return a;
}

TcAttachment::TcAttachment(TcAttachment&& o) noexcept
    : mode_(o.mode_),
      ifindex_(o.ifindex_),
      ifname_(std::move(o.ifname_)),
      dir_(o.dir_),
      owner_(std::move(o.owner_)),
      link_(std::move(o.link_)),
      clsact_(std::exchange(o.clsact_, false)),
      kept_(std::exchange(o.kept_, false)),
      adopted_(o.adopted_) {}

TcAttachment& TcAttachment::operator=(TcAttachment&& o) noexcept {
  if (this != &o) {
    release();
    mode_ = o.mode_;
    ifindex_ = o.ifindex_;
    ifname_ = std::move(o.ifname_);
    dir_ = o.dir_;
    owner_ = std::move(o.owner_);
    link_ = std::move(o.link_);
    clsact_ = std::exchange(o.clsact_, false);
    kept_ = std::exchange(o.kept_, false);
    adopted_ = o.adopted_;
  }
  return *this;
}

TcAttachment::~TcAttachment() {
  release();
}

// A kept attachment stays (its link pinned, its filter on the device); others go.
void TcAttachment::release() noexcept {
  if (kept_) {
    link_.reset();
    clsact_ = false;
    kept_ = false;
    return;
  }
  remove();
}

void TcAttachment::remove() noexcept {
  if (link_.valid() && kept_) unlink(tcx_pin_path(owner_.keep_dir, ifindex_, dir_).c_str());
  link_.reset();
  kept_ = false;
  if (!clsact_) return;
  clsact_ = false;
  // A removed device took its filters with it.
  if (int err = remove_clsact_filter(ifindex_, dir_, owner_); err)
    spdlog::warn("detach tc filter {} on {}: {}", dir_name(dir_), ifname_, std::strerror(-err));
}

}  // namespace vmscope
