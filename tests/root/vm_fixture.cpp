#include "vm_fixture.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vmscope::test {
namespace fs = std::filesystem;

std::string shq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Packed into the guest (tests/helpers/dns_responder.cpp, built static with the tests).
std::string dns_responder() {
  return helper_bin("dns_responder");
}

bool image_fresh(const fs::path& initrd) {
  std::error_code ec;
  if (!fs::exists(initrd, ec) || !fs::exists(initrd.string() + ".kernel", ec)) return false;
  const std::string kernel = trimmed(read_text(initrd.string() + ".kernel"));
  if (kernel.empty() || !fs::exists(kernel, ec)) return false;
  const auto built = fs::last_write_time(initrd, ec);
  if (ec) return false;
  if (fs::last_write_time(dns_responder(), ec) >= built || ec) return false;
  for (const auto& e : fs::directory_iterator(fs::path(source_dir()) / "tests/vm", ec))
    if (e.path().extension() == ".sh" && fs::last_write_time(e.path(), ec) >= built) return false;
  for (const auto& e : fs::directory_iterator("/boot", ec))
    if (e.path().filename().string().rfind("vmlinuz-", 0) == 0 &&
        fs::last_write_time(e.path(), ec) >= built)
      return false;
  return true;
}

}  // namespace

const VmImage& vm_image() {
  static const VmImage image = [] {
    const fs::path dir = fs::path(helper_bin("")) / "vm-image";
    const fs::path initrd = dir / "initrd.cpio.gz";
    if (!image_fresh(initrd)) {
      fs::create_directories(dir);
      const std::string log = (dir / "build.log").string();
      const auto t0 = std::chrono::steady_clock::now();
      if (sh(source_dir() + "/tests/vm/build-initramfs.sh " + shq(initrd.string()) + " " +
             shq(dns_responder()) + " >" + shq(log) + " 2>&1") != 0)
        throw std::runtime_error("build-initramfs.sh failed:\n" + read_text(log));
      std::printf("[ vm ] built %s in %.1f s\n", initrd.c_str(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } else {
      std::printf("[ vm ] reusing %s\n", initrd.c_str());
    }
    return VmImage{initrd.string(), trimmed(read_text(initrd.string() + ".kernel"))};
  }();
  return image;
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl);
  path = tmpl;
}

TempDir::~TempDir() {
  sh("rm -rf " + shq(path));
}

Vm::Vm(const Netns& ns, const std::string& dir, const std::string& tap, const std::string& name,
       const std::string& cidr, const std::string& cidr6)
    : log_(dir + "/vm.log"), pidfile_(dir + "/vm.pid") {
  const VmImage& img = vm_image();
  const std::string out = dir + "/run-vm.out";
  const int rc =
      sh(source_dir() + "/tests/vm/run-vm.sh --netns " + ns.name() + " --tap " + tap + " --name " +
         name + " --ip " + cidr + (cidr6.empty() ? "" : " --ip6 " + cidr6) + " --initrd " +
         shq(img.initrd) + " --kernel " + shq(img.kernel) + " --log " + shq(log_) + " --pidfile " +
         shq(pidfile_) + " --timeout 30 >" + shq(out) + " 2>&1");
  if (rc != 0) throw std::runtime_error("run-vm.sh failed:\n" + read_text(out));
  std::printf("%s", read_text(out).c_str());
  pid_ = std::stoi(read_text(pidfile_));
}

Vm::~Vm() {
  sh(source_dir() + "/tests/vm/stop-vm.sh --timeout 5 --pidfile " + shq(pidfile_) +
     " >/dev/null 2>&1");
}

InfluxServer::InfluxServer(const Netns& ns, const std::string& dir, int port,
                           const std::string& http_bind)
    : ns_(ns), dir_(dir), port_(port) {
  const std::string out = dir + ".start.out";
  const int rc = sh(source_dir() + "/tests/influx/start-influxdb.sh --dir " + shq(dir_) +
                    " --port " + std::to_string(port) + " --netns " + ns.name() + " --http-bind " +
                    shq(http_bind) + " --timeout 20 >" + shq(out) + " 2>&1");
  if (rc != 0) throw std::runtime_error("start-influxdb.sh failed:\n" + read_text(out));
  std::printf("%s", read_text(out).c_str());
}

InfluxServer::~InfluxServer() {
  sh(source_dir() + "/tests/influx/stop-influxdb.sh --timeout 5 --purge --dir " + shq(dir_) +
     " >/dev/null 2>&1");
}

std::string InfluxServer::post_query(const std::string& q) const {
  return ns_.capture("curl -sS -m 5 -XPOST " + base() + "/query --data-urlencode " + shq("q=" + q));
}

std::string InfluxServer::get_query(const std::string& db, const std::string& q, int timeout_s,
                                    const std::string& extra) const {
  return ns_.capture("curl -sS -m " + std::to_string(timeout_s) + " -G " + base() +
                     "/query --data-urlencode " + shq("db=" + db) + " " + extra +
                     " --data-urlencode " + shq("q=" + q));
}

std::string InfluxServer::write_file(const std::string& db, const std::string& path) const {
  return ns_.capture("curl -sS -m 5 -o /dev/null -w '%{http_code}' -XPOST " +
                     shq(base() + "/write?db=" + db + "&precision=s") + " --data-binary @" +
                     shq(path));
}

}  // namespace vmscope::test
