// Root test: a destination that accepts connections but never answers (a hung InfluxDB)
// must not delay ticks or the other outputs, and must not stop the agent from exiting.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "test_env.h"

namespace vmscope::test {
namespace {

// A listening socket on 127.0.0.1 inside `ns` that never accepts: the kernel completes
// handshakes into the backlog and requests are never answered.
int hung_listener(const Netns& ns, uint16_t& port) {
  int fd = -1;
  std::thread t([&] {
    int nsfd = open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) return;
    close(nsfd);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      close(fd);
      fd = -1;
      return;
    }
    port = ntohs(a.sin_port);
  });
  t.join();
  return fd;
}

TEST(Outputs, AHungInfluxDbDelaysNeitherTicksNorOtherOutputsNorExit) {
  Netns ns;
  uint16_t port = 0;
  int listener = hung_listener(ns, port);
  ASSERT_GE(listener, 0);
  Child agent(vmscope_bin(),
              {"run", "--interval", "0.25", "--output",
               "http://127.0.0.1:" + std::to_string(port) + "/write?db=vmscope", "--output", "-"},
              SpawnOptions{ns.name(), "", {}, false});
  // Every HTTP attempt waits its full 2 s timeout; stdout must still see every tick.
  const auto start = std::chrono::steady_clock::now();
  int ticks = 0;
  while (ticks < 10 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    ticks = 0;
    for (const auto& l : agent.lines())
      if (l.rfind("vmscope,", 0) == 0) ++ticks;
    usleep(50000);
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(ticks, 10) << agent.stderr_text();
  EXPECT_LT(took, 4.0) << "10 ticks of 0.25 s took " << took << " s";
  agent.signal(SIGTERM);
  int st = agent.wait(10s);
  ASSERT_TRUE(WIFEXITED(st)) << "agent did not exit within 10 s";
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.stderr_text();
  close(listener);
}

}  // namespace
}  // namespace vmscope::test
