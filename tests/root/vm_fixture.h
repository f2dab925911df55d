// The real test VM for root tests: the busybox initramfs (built once, cached in the build
// directory) and a qemu guest started with tests/vm/run-vm.sh inside a namespace, both
// RAII so that a failing assertion leaves nothing running.
#pragma once

#include <string>

#include "test_env.h"

namespace vmscope::test {

std::string shq(const std::string& s);  // single-quoted for /bin/sh
std::string read_text(const std::string& path);
std::string tail(const std::string& text, size_t lines);

struct VmImage {
  std::string initrd, kernel;
};
// Built on first use; reused while newer than tests/vm/*.sh and the installed kernels.
const VmImage& vm_image();

// mkdtemp'd directory, removed with its contents.
struct TempDir {
  explicit TempDir(const std::string& prefix = "vmscope-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

// qemu (TCG) in `ns`, on the existing `tap`, named `name` (-name guest=NAME), guest
// address `cidr` (and `cidr6` if not empty); ready (serving HTTP, and DNS on UDP port
// 53) when constructed, stopped on destruction.
class Vm {
 public:
  Vm(const Netns& ns, const std::string& dir, const std::string& tap, const std::string& name,
     const std::string& cidr, const std::string& cidr6 = "");
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;
  int pid() const { return pid_; }
  std::string console_tail() const { return tail(read_text(log_), 15); }

 private:
  std::string log_, pidfile_;
  int pid_ = 0;
};

// influxd (tests/influx/start-influxdb.sh) in `ns` on 127.0.0.1:port, data under `dir`;
// stopped and its data removed on destruction. Answers are returned as raw bodies.
class InfluxServer {
 public:
  // http_bind: 0.0.0.0 to be reached from another namespace too (over a veth pair).
  InfluxServer(const Netns& ns, const std::string& dir, int port,
               const std::string& http_bind = "127.0.0.1");
  ~InfluxServer();
  InfluxServer(const InfluxServer&) = delete;
  InfluxServer& operator=(const InfluxServer&) = delete;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // POST /query without a database (CREATE DATABASE ...).
  std::string post_query(const std::string& q) const;
  // GET /query?db=...; extra: further curl arguments (e.g. --data-urlencode epoch=ns).
  std::string get_query(const std::string& db, const std::string& q, int timeout_s,
                        const std::string& extra = "") const;
  // Line protocol from a file, seconds precision; returns the HTTP status.
  std::string write_file(const std::string& db, const std::string& path) const;
  std::string log_tail() const { return tail(read_text(dir_ + "/influxd.log"), 15); }

 private:
  const Netns& ns_;
  std::string dir_;
  int port_;
};

}  // namespace vmscope::test
