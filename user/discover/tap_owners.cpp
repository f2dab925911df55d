#include "discover/tap_owners.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

#include "common/dir.h"
#include "common/unique_fd.h"

namespace vmscope {
namespace {

// /dev/net/tun: the misc device (major 10) with the minor TUN_MINOR of linux/miscdevice.h.
constexpr unsigned kTunMajor = 10;
constexpr unsigned kTunMinor = 200;

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

// Whole small file (procfs files report size 0, so read until EOF).
bool read_small_file(const std::string& path, std::string& out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  out.clear();
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf.data(), static_cast<size_t>(n));
  }
}

}  // namespace

// The device itself, not its path: readlink of the fd gives the path as the reader's root
// sees it, which differs in a chroot or container ("<root>/dev/net/tun") or is absent
// when /dev is a private tmpfs with its own node. stat follows the fd link to the open
// file, which for a tap is the misc character device 10:200 wherever it was opened.
bool is_tun_device(const std::string& fd_link) {
  struct stat st {};
  return ::stat(fd_link.c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
         st.st_rdev == makedev(kTunMajor, kTunMinor);
}

std::string tap_from_fdinfo(std::string_view fdinfo) {
  constexpr std::string_view key = "iff:";
  size_t pos = 0;
  while (pos < fdinfo.size()) {
    size_t eol = fdinfo.find('\n', pos);
    if (eol == std::string_view::npos) eol = fdinfo.size();
    std::string_view line = fdinfo.substr(pos, eol - pos);
    if (line.substr(0, key.size()) == key) {
      line.remove_prefix(key.size());
      while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) line.remove_prefix(1);
      return std::string(line);
    }
    pos = eol + 1;
  }
  return {};
}

TapOwners scan_tap_owners(const std::string& proc_root, bool same_netns_only) {
  TapOwners owners;
  DirHandle proc(proc_root);
  if (!proc.valid()) return owners;
  struct stat own_ns {};
  if (same_netns_only && ::stat("/proc/self/ns/net", &own_ns) != 0) same_netns_only = false;
  std::string path, text;
  while (const dirent* pe = proc.next()) {
    if (!all_digits(pe->d_name)) continue;
    std::string fd_dir = proc_root + "/" + pe->d_name + "/fd";
    DirHandle fds(fd_dir);
    if (!fds.valid()) continue;  // gone, or a kernel thread we may not read
    while (const dirent* fe = fds.next()) {
      if (!all_digits(fe->d_name)) continue;
      path = fd_dir + "/" + fe->d_name;
      if (!is_tun_device(path)) continue;
      if (!read_small_file(proc_root + "/" + pe->d_name + "/fdinfo/" + fe->d_name, text)) continue;
      std::string tap = tap_from_fdinfo(text);
      if (tap.empty()) continue;
      if (same_netns_only) {
        struct stat ns {};
        std::string ns_path = proc_root + "/" + pe->d_name + "/ns/net";
        if (::stat(ns_path.c_str(), &ns) != 0 || ns.st_ino != own_ns.st_ino ||
            ns.st_dev != own_ns.st_dev)
          break;  // this process's taps live in another namespace
      }
      auto& pids = owners[tap];
      int pid = std::atoi(pe->d_name);
      if (pids.empty() || pids.back() != pid) pids.push_back(pid);
    }
  }
  return owners;
}

Result<ProcessInfo> read_process(int pid, const std::string& proc_root) {
  ProcessInfo info;
  info.pid = pid;
  std::string base = proc_root + "/" + std::to_string(pid);
  std::string cmdline;
  if (!read_small_file(base + "/cmdline", cmdline))
    return Error::from_errno(fmt::format("read {}/cmdline", base), errno);
  info.argv = split_argv(cmdline);
  read_small_file(base + "/cgroup", info.cgroup);  // optional: naming falls back to argv
  return info;
}

}  // namespace vmscope
