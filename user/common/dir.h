// DirHandle: the one owner of an open directory stream (/proc, /proc/<pid>/fd, the pin
// root); closes it exactly once.
#pragma once

#include <dirent.h>

#include <string>
#include <utility>

namespace vmscope {

class DirHandle {
 public:
  // Opens path; valid() says whether that worked (errno tells why not).
  explicit DirHandle(const std::string& path) : dir_(opendir(path.c_str())) {}
  DirHandle(DirHandle&& o) noexcept : dir_(std::exchange(o.dir_, nullptr)) {}
  DirHandle& operator=(DirHandle&& o) noexcept {
    if (this != &o) {
      close();
      dir_ = std::exchange(o.dir_, nullptr);
    }
    return *this;
  }
  DirHandle(const DirHandle&) = delete;
  DirHandle& operator=(const DirHandle&) = delete;
  ~DirHandle() { close(); }

  bool valid() const { return dir_ != nullptr; }
  // The next entry ("." and ".." included), or null at the end and for a directory that
  // did not open. Valid until the next call.
  const dirent* next() { return dir_ ? readdir(dir_) : nullptr; }

 private:
  void close() {
    if (dir_) closedir(dir_);
    dir_ = nullptr;
  }
  DIR* dir_;
};

}  // namespace vmscope
