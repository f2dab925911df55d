#include "attach/tc_attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace vmscope {
namespace {

// Debian 12's uapi headers predate tcx; the values are fixed kernel ABI.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

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

}  // namespace

Result<TcAttachment> TcAttachment::attach(int ifindex, const std::string& ifname, vs_dir dir,
                                          int prog_fd, AttachMode mode) {
  TcAttachment a;
  a.ifindex_ = ifindex;
  a.ifname_ = ifname;
  a.dir_ = dir;
  auto what = [&](const char* how) {
    return fmt::format("attach {} {} on {}", how, dir_name(dir), ifname);
  };

  if (mode != AttachMode::kClsact) {
    int type = dir == VS_DIR_INGRESS ? kBpfTcxIngress : kBpfTcxEgress;
    int fd = bpf_link_create(prog_fd, ifindex, static_cast<bpf_attach_type>(type), nullptr);
    if (fd >= 0) {
      a.link_.reset(fd);
      a.mode_ = AttachMode::kTcx;
      return a;
    }
    int err = errno;
    if (mode == AttachMode::kTcx || !tcx_unsupported(err))
      return Error::from_errno(what("tcx"), err);
  }

  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = tc_point(dir);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return Error::from_errno(what("clsact hook"), -err);

  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.prog_fd = prog_fd;
  opts.handle = kClsactHandle;
  opts.priority = kClsactPriority;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err) return Error::from_errno(what("tc filter"), -err);
  a.clsact_ = true;
  a.mode_ = AttachMode::kClsact;
  return a;
}

TcAttachment::TcAttachment(TcAttachment&& o) noexcept
    : mode_(o.mode_),
      ifindex_(o.ifindex_),
      ifname_(std::move(o.ifname_)),
      dir_(o.dir_),
      link_(std::move(o.link_)),
      clsact_(std::exchange(o.clsact_, false)) {}

TcAttachment& TcAttachment::operator=(TcAttachment&& o) noexcept {
  if (this != &o) {
    detach();
    mode_ = o.mode_;
    ifindex_ = o.ifindex_;
    ifname_ = std::move(o.ifname_);
    dir_ = o.dir_;
    link_ = std::move(o.link_);
    clsact_ = std::exchange(o.clsact_, false);
  }
  return *this;
}

TcAttachment::~TcAttachment() {
  detach();
}

void TcAttachment::detach() noexcept {
  link_.reset();
  if (!clsact_) return;
  clsact_ = false;
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex_;
  hook.attach_point = tc_point(dir_);
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kClsactHandle;
  opts.priority = kClsactPriority;
  int err = bpf_tc_detach(&hook, &opts);
  // A removed device took its filters with it.
  if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
    spdlog::warn("detach tc filter {} on {}: {}", dir_name(dir_), ifname_, std::strerror(-err));
}

}  // namespace vmscope
