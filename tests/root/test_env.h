// Root test toolkit: network namespaces, child processes (optionally inside a netns and
// with a chosen argv[0]), the agent as a child, and a line-protocol reader. Everything
// is RAII: a failing test leaves no namespace or process behind.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vmscope::test {

using namespace std::chrono_literals;

// Clocks in ns: realtime is what line protocol timestamps use.
int64_t clock_ns(clockid_t id);
inline int64_t now_ns() {
  return clock_ns(CLOCK_REALTIME);
}

// Runs a shell command; returns its exit status (0 = success).
int sh(const std::string& cmd);
// Runs a shell command that must succeed; throws std::runtime_error otherwise.
void must(const std::string& cmd);
// stdout of a shell command (throws if it fails).
std::string capture(const std::string& cmd);

class Netns {
 public:
  enum class Ipv6 { off, on };
  // Unique name, lo up; IPv6 off unless asked for (no stray router/neighbour traffic).
  explicit Netns(Ipv6 ipv6 = Ipv6::off);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  const std::string& name() const { return name_; }
  std::string exec(const std::string& cmd) const;  // "ip netns exec NAME cmd"
  void must(const std::string& cmd) const;         // command run inside the netns
  std::string capture(const std::string& cmd) const;
  uint64_t stat(const std::string& dev, const std::string& counter) const;  // sysfs statistics
  // socket(2) created inside the namespace (it stays there); -1 with errno on failure.
  int socket(int domain, int type, int protocol = 0) const;

 private:
  std::string name_;
};

struct SpawnOptions {
  std::string netns;             // empty: current one
  std::string argv0;             // empty: argv[0] = path
  std::vector<std::string> env;  // extra "K=V"
  bool pipe_stdin = false;
};

// A child process with its stdout read line by line in the background.
class Child {
 public:
  Child(const std::string& path, const std::vector<std::string>& args, SpawnOptions opts = {});
  ~Child();  // SIGKILL if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void write_stdin(const void* data, size_t n);
  void close_stdin();
  void signal(int sig);
  // Exit status as from waitpid (-1 on timeout).
  int wait(std::chrono::milliseconds timeout);
  // Waits for a stdout line for which pred is true; returns it.
  std::optional<std::string> wait_line(const std::function<bool(const std::string&)>& pred,
                                       std::chrono::milliseconds timeout);
  std::vector<std::string> lines();
  std::string stderr_text() const;

 private:
  void reader();
  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1;
  std::string stderr_path_;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
  bool reaped_ = false;
  int status_ = 0;
};

struct Point {
  std::string measurement;
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> fields;  // raw text: 12i, 1.5, "s"
  int64_t timestamp = 0;
  int64_t i(const std::string& field) const;  // integer field (throws if missing)
};
std::optional<Point> parse_point(const std::string& line);  // simple: no escapes in our names

// The built binaries.
// s without trailing white space (a command's output without its newline).
std::string trim(std::string s);
std::string vmscope_bin();
// A vmscope whose network program differs (tests/CMakeLists.txt: the upgrade test's).
std::string vmscope_variant_bin();
// A vmscope whose kept maps have another layout (the layout-migration test's).
std::string vmscope_layout_variant_bin();
// `vmscope cleanup` run in ns: what the agents kept there goes. Its output.
std::string vmscope_cleanup(const Netns& ns);
std::string helper_bin(const std::string& name);
std::string source_dir();

// Ethernet frames for the tap holder to inject.
struct Mac {
  uint8_t b[6];
};
constexpr Mac kVmMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr Mac kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
std::vector<uint8_t> ipv4_frame(Mac dst, Mac src, uint32_t saddr, uint32_t daddr, uint8_t proto,
                                size_t l4_len, uint8_t tcp_flags = 0);
std::vector<uint8_t> arp_frame(Mac src, uint32_t sender_ip, uint32_t target_ip);
uint32_t ip(const char* dotted);  // host order
Mac mac_of(const Netns& ns, const std::string& dev);

// Sends frames into a tap_holder's stdin (2-byte length prefix each).
void inject(Child& holder, const std::vector<uint8_t>& frame);

// Tally line of tap_holder: "rx frames=.. bytes=.. tcp=.. udp=.. icmp=.. other=.. syns=.."
std::map<std::string, uint64_t> parse_tally(const std::string& line);

// The BPF programs a vmscope process holds (prog_id of its program and link fds), read
// while it runs, as "12 34 ": a tcx link that outlived it would keep them loaded, and
// bpftool 7.1 cannot list tcx links per device.
std::string held_programs(pid_t pid);
// vmscope's clsact filters in the namespace, and which of `programs` are still loaded.
std::string vmscope_attachments(const Netns& ns, const std::string& programs);
// The same after an exit, allowing for the RCU grace period before programs are freed.
std::string attachments_after_exit(const Netns& ns, const std::string& programs);

// A bridge with an address and a tap enslaved to it, in `ns` (no host-side multicast:
// IGMP reports would reach the tap at random moments).
void add_bridge_with_tap(const Netns& ns, const std::string& bridge, const std::string& cidr,
                         const std::string& tap);

// tests/helpers/busy_vm posing as a qemu guest named `name` (argv "-name guest=NAME"),
// ready when returned; env sets its BUSY_* knobs; extra_args follow the name on its argv.
std::unique_ptr<Child> busy_vm(const std::string& name, std::vector<std::string> env = {},
                               const std::vector<std::string>& extra_args = {});

// `vmscope run` in `ns`, line protocol on its stdout every `interval` seconds.
std::unique_ptr<Child> agent_in(const Netns& ns, const std::string& interval = "0.5");
// The agent's first point of `measurement` carrying `tags`, stamped after `after_ns`.
std::optional<Point> wait_point(Child& agent, const std::string& measurement,
                                const std::map<std::string, std::string>& tags, int64_t after_ns,
                                std::chrono::milliseconds timeout = 5s);

}  // namespace vmscope::test
