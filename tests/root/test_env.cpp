#include "test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vmscope::test {

int64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

void must(const std::string& cmd) {
  if (int rc = sh(cmd); rc != 0)
    throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd);
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen: " + cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw std::runtime_error("command failed: " + cmd);
  return out;
}

Netns::Netns(Ipv6 ipv6) {
  static std::atomic<int> seq{0};
  name_ = "vst-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
  vmscope::test::must("ip netns add " + name_);
  must("ip link set lo up");
  if (ipv6 == Ipv6::off)
    must("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
}

Netns::~Netns() {
  sh("ip netns pids " + name_ + " 2>/dev/null | xargs -r kill -9");
  for (int i = 0; i < 50 && sh("[ -z \"$(ip netns pids " + name_ + " 2>/dev/null)\" ]") != 0; ++i)
    usleep(20000);
  // What an agent kept for its next run (pins, tcx links) would outlive the namespace.
  (void)vmscope_cleanup(*this);
  sh("ip netns del " + name_);
}

std::string Netns::exec(const std::string& cmd) const {
  return "ip netns exec " + name_ + " " + cmd;
}
void Netns::must(const std::string& cmd) const {
  vmscope::test::must(exec(cmd));
}
std::string Netns::capture(const std::string& cmd) const {
  return vmscope::test::capture(exec(cmd));
}
uint64_t Netns::stat(const std::string& dev, const std::string& counter) const {
  return std::stoull(capture("cat /sys/class/net/" + dev + "/statistics/" + counter));
}

int Netns::socket(int domain, int type, int protocol) const {
  // setns() switches only this thread, and only for the call: a socket keeps the
  // namespace it was created in.
  const int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
  int fd = -1, err = 0;
  if (own >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0) {
    fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    err = errno;
    if (setns(own, CLONE_NEWNET) != 0) throw std::runtime_error("setns back: " + name_);
  } else {
    err = errno;
  }
  if (own >= 0) close(own);
  if (target >= 0) close(target);
  errno = err;
  return fd;
}

Child::Child(const std::string& path, const std::vector<std::string>& args, SpawnOptions opts) {
  int in[2] = {-1, -1}, out[2];
  if (opts.pipe_stdin && pipe2(in, O_CLOEXEC) < 0) throw std::runtime_error("pipe");
  if (pipe2(out, O_CLOEXEC) < 0) throw std::runtime_error("pipe");
  char tmpl[] = "/tmp/vmscope-child-XXXXXX";
  int errfd = mkstemp(tmpl);
  stderr_path_ = tmpl;
  int nsfd = -1;
  if (!opts.netns.empty()) {
    nsfd = open(("/run/netns/" + opts.netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) throw std::runtime_error("open netns " + opts.netns);
  }
  std::vector<std::string> argv_s;
  argv_s.push_back(opts.argv0.empty() ? path : opts.argv0);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);
  env_s.insert(env_s.end(), opts.env.begin(), opts.env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0) _exit(126);
    if (opts.pipe_stdin)
      dup2(in[0], 0);
    else {
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
    }
    dup2(out[1], 1);
    dup2(errfd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(path.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  if (nsfd >= 0) close(nsfd);
  close(errfd);
  close(out[1]);
  stdout_fd_ = out[0];
  if (opts.pipe_stdin) {
    close(in[0]);
    stdin_fd_ = in[1];
  }
  reader_ = std::thread([this] { reader(); });
}

Child::~Child() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    wait(5000ms);
  }
  close_stdin();
  if (reader_.joinable()) reader_.join();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  unlink(stderr_path_.c_str());
}

void Child::reader() {
  std::string partial;
  std::array<char, 65536> buf;
  for (;;) {
    ssize_t n = read(stdout_fd_, buf.data(), buf.size());
    if (n <= 0) break;
    partial.append(buf.data(), static_cast<size_t>(n));
    size_t pos;
    std::lock_guard lk(mu_);
    while ((pos = partial.find('\n')) != std::string::npos) {
      lines_.push_back(partial.substr(0, pos));
      partial.erase(0, pos + 1);
    }
    cv_.notify_all();
  }
  std::lock_guard lk(mu_);
  eof_ = true;
  cv_.notify_all();
}

void Child::write_stdin(const void* data, size_t n) {
  auto* p = static_cast<const char*>(data);
  while (n) {
    ssize_t w = write(stdin_fd_, p, n);
    if (w <= 0) throw std::runtime_error("write to child stdin");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void Child::close_stdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

void Child::signal(int sig) {
  kill(pid_, sig);
}

int Child::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = st;
      return st;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    usleep(10000);
  }
}

std::optional<std::string> Child::wait_line(const std::function<bool(const std::string&)>& pred,
                                            std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  size_t seen = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (; seen < lines_.size(); ++seen)
      if (pred(lines_[seen])) return lines_[seen];
    if (eof_) return std::nullopt;
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
      for (; seen < lines_.size(); ++seen)
        if (pred(lines_[seen])) return lines_[seen];
      return std::nullopt;
    }
  }
}

std::vector<std::string> Child::lines() {
  std::lock_guard lk(mu_);
  return lines_;
}

std::string Child::stderr_text() const {
  std::ifstream in(stderr_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t Point::i(const std::string& field) const {
  auto it = fields.find(field);
  if (it == fields.end()) throw std::runtime_error(measurement + ": no field " + field);
  return std::stoll(it->second);
}

// Splits on `sep` outside double quotes, honouring backslash escapes; unescapes.
static std::vector<std::string> split_lp(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      out.back() += s[++i];
    } else if (c == '"') {
      quoted = !quoted;
      out.back() += c;
    } else if (c == sep && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::optional<Point> parse_point(const std::string& line) {
  // measurement,tags fields [timestamp]; string fields keep their quotes.
  std::vector<std::string> parts = split_lp(line, ' ');
  if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
  Point p;
  std::vector<std::string> head = split_lp(parts[0], ',');
  p.measurement = head[0];
  for (size_t i = 1; i < head.size(); ++i) {
    auto eq = head[i].find('=');
    if (eq == std::string::npos) return std::nullopt;
    p.tags[head[i].substr(0, eq)] = head[i].substr(eq + 1);
  }
  for (const std::string& f : split_lp(parts[1], ',')) {
    auto eq = f.find('=');
    if (eq == std::string::npos) return std::nullopt;
    std::string v = f.substr(eq + 1);
    if (!v.empty() && v.back() == 'i' && v.front() != '"') v.pop_back();
    p.fields[f.substr(0, eq)] = v;
  }
  if (parts.size() == 3) {
    try {
      p.timestamp = std::stoll(parts[2]);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return p;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}
std::string vmscope_bin() {
  return VMSCOPE_BIN;
}
std::string vmscope_variant_bin() {
  return VMSCOPE_VARIANT_BIN;
}
std::string vmscope_layout_variant_bin() {
  return VMSCOPE_LAYOUT_VARIANT_BIN;
}
std::string vmscope_cleanup(const Netns& ns) {
  return capture("nsenter --net=/run/netns/" + ns.name() + " " + vmscope_bin() +
                 " cleanup 2>&1; true");
}
std::string helper_bin(const std::string& name) {
  return std::string(VMSCOPE_TEST_HELPERS_DIR) + "/" + name;
}
std::string source_dir() {
  return VMSCOPE_SOURCE_DIR;
}

uint32_t ip(const char* dotted) {
  in_addr a;
  inet_pton(AF_INET, dotted, &a);
  return ntohl(a.s_addr);
}

namespace {

void put16(std::vector<uint8_t>& f, size_t off, uint16_t v) {
  f[off] = static_cast<uint8_t>(v >> 8);
  f[off + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& f, size_t off, uint32_t v) {
  put16(f, off, static_cast<uint16_t>(v >> 16));
  put16(f, off + 2, static_cast<uint16_t>(v));
}
uint16_t csum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
  if (n & 1) s += p[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

}  // namespace

std::vector<uint8_t> ipv4_frame(Mac dst, Mac src, uint32_t saddr, uint32_t daddr, uint8_t proto,
                                size_t l4_len, uint8_t tcp_flags) {
  std::vector<uint8_t> f(14 + 20 + l4_len, 0);
  std::memcpy(&f[0], dst.b, 6);
  std::memcpy(&f[6], src.b, 6);
  put16(f, 12, 0x0800);
  f[14] = 0x45;
  put16(f, 16, static_cast<uint16_t>(20 + l4_len));
  f[22] = 64;
  f[23] = proto;
  put32(f, 26, saddr);
  put32(f, 30, daddr);
  put16(f, 24, csum(&f[14], 20));
  size_t l4 = 34;
  if (proto == 17 && l4_len >= 8) {  // UDP to the discard port; checksum 0 = none
    put16(f, l4, 40000);
    put16(f, l4 + 2, 9);
    put16(f, l4 + 4, static_cast<uint16_t>(l4_len));
  } else if (proto == 6 && l4_len >= 20) {
    put16(f, l4, 40001);
    put16(f, l4 + 2, 9);
    f[l4 + 12] = 5 << 4;
    f[l4 + 13] = tcp_flags;
  } else if (proto == 1 && l4_len >= 8) {
    f[l4] = 8;  // echo request
  }
  return f;
}

std::vector<uint8_t> arp_frame(Mac src, uint32_t sender_ip, uint32_t target_ip) {
  std::vector<uint8_t> f(42, 0);
  std::memcpy(&f[0], kBroadcast.b, 6);
  std::memcpy(&f[6], src.b, 6);
  put16(f, 12, 0x0806);
  put16(f, 14, 1);
  put16(f, 16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, 1);
  std::memcpy(&f[22], src.b, 6);
  put32(f, 28, sender_ip);
  put32(f, 38, target_ip);
  return f;
}

Mac mac_of(const Netns& ns, const std::string& dev) {
  std::string s = ns.capture("cat /sys/class/net/" + dev + "/address");
  Mac m{};
  unsigned v[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    throw std::runtime_error("bad mac: " + s);
  for (int i = 0; i < 6; ++i) m.b[i] = static_cast<uint8_t>(v[i]);
  return m;
}

void inject(Child& holder, const std::vector<uint8_t>& frame) {
  uint8_t len[2] = {static_cast<uint8_t>(frame.size() >> 8), static_cast<uint8_t>(frame.size())};
  holder.write_stdin(len, 2);
  holder.write_stdin(frame.data(), frame.size());
}

std::map<std::string, uint64_t> parse_tally(const std::string& line) {
  std::map<std::string, uint64_t> out;
  std::stringstream ss(line);
  std::string tok;
  while (ss >> tok) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) out[tok.substr(0, eq)] = std::stoull(tok.substr(eq + 1));
  }
  return out;
}

// The programs an agent holds (prog_id of its program and tcx link fds), read while it
// runs: a tcx link that outlived the agent would keep them loaded, and bpftool 7.1 cannot
// list tcx links per device. Other vmscope instances on the machine do not interfere.
std::string held_programs(pid_t agent) {
  return capture("cat /proc/" + std::to_string(agent) +
                 "/fdinfo/* 2>/dev/null | awk '/^prog_id:/{print $2}' | sort -u | tr '\\n' ' '");
}

// vmscope's clsact filters in the namespace, and which of `programs` are still loaded.
std::string vmscope_attachments(const Netns& ns, const std::string& programs) {
  std::string left = ns.capture("bpftool net show 2>/dev/null | grep vs_tc_ || true");
  if (!programs.empty())
    left += capture("for id in " + programs +
                    "; do bpftool prog show id $id 2>/dev/null | head -1; done; true");
  return left;
}

// Removed clsact filters release their program after an RCU grace period: allow for it.
std::string attachments_after_exit(const Netns& ns, const std::string& programs) {
  std::string left;
  for (int i = 0; i < 100; ++i) {
    left = vmscope_attachments(ns, programs);
    if (left.empty()) break;
    usleep(20000);
  }
  return left;
}

void add_bridge_with_tap(const Netns& ns, const std::string& bridge, const std::string& cidr,
                         const std::string& tap) {
  ns.must("ip link add " + bridge + " type bridge mcast_snooping 0");
  ns.must("ip link set " + bridge + " multicast off");
  ns.must("ip addr add " + cidr + " dev " + bridge);
  ns.must("ip link set " + bridge + " up");
  ns.must("ip tuntap add " + tap + " mode tap");
  ns.must("ip link set " + tap + " master " + bridge + " up");
}

std::unique_ptr<Child> busy_vm(const std::string& name, std::vector<std::string> env,
                               const std::vector<std::string>& extra_args) {
  std::vector<std::string> args{"-name", "guest=" + name, "-m", "64"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto c = std::make_unique<Child>(helper_bin("busy_vm"), args,
                                   SpawnOptions{"", "qemu-system-x86_64", env, false});
  if (!c->wait_line([](const std::string& l) { return l == "ready"; }, 10s))
    throw std::runtime_error("busy_vm did not start: " + c->stderr_text());
  return c;
}

std::unique_ptr<Child> agent_in(const Netns& ns, const std::string& interval) {
  std::vector<std::string> args = {"run", "--interval", interval, "--log-level", "debug"};
  return std::make_unique<Child>(vmscope_bin(), args, SpawnOptions{ns.name(), "", {}, false});
}

std::optional<Point> wait_point(Child& agent, const std::string& measurement,
                                const std::map<std::string, std::string>& tags, int64_t after_ns,
                                std::chrono::milliseconds timeout) {
  auto line = agent.wait_line(
      [&](const std::string& l) {
        auto p = parse_point(l);
        if (!p || p->measurement != measurement || p->timestamp <= after_ns) return false;
        for (const auto& [k, v] : tags)
          if (p->tags[k] != v) return false;
        return true;
      },
      timeout);
  if (!line) return std::nullopt;
  return parse_point(*line);
}

}  // namespace vmscope::test
