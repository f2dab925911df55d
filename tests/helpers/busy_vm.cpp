// Test helper: a process that looks like a VM to vmscope (start it with a launcher's
// argv, e.g. argv[0] "qemu-system-x86_64" "-name" "guest=cpu1") and uses CPU and memory
// like one: $BUSY_MB MiB touched page by page (minor faults) once at start, then
// $BUSY_THREADS threads spinning (0: idle until killed). Prints "ready" once the memory is in
// place. $BUSY_EXIT_MS / $BUSY_EXIT_CODE: exit(code) after that many ms (default: run until
// killed). $BUSY_CHILDREN: fork that many child processes first (like crosvm's device processes),
// each printing "child <pid>" and doing the same work; they die with the parent.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

long env_or(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : fallback;
}

}  // namespace

int main() {
  const long mb = env_or("BUSY_MB", 32);
  const long threads = env_or("BUSY_THREADS", 2);
  const long exit_ms = env_or("BUSY_EXIT_MS", -1);
  const long page = sysconf(_SC_PAGESIZE);
  for (long c = env_or("BUSY_CHILDREN", 0); c > 0; --c) {
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      break;  // the child does the same work below, without forking again
    }
    std::printf("child %d\n", static_cast<int>(pid));
    std::fflush(stdout);  // before the next fork copies the buffer
  }

  std::vector<char> memory(static_cast<size_t>(mb) << 20);
  for (size_t i = 0; i < memory.size(); i += static_cast<size_t>(page)) memory[i] = 1;
  std::printf("ready\n");
  std::fflush(stdout);

  std::atomic<unsigned long> sink{0};
  std::vector<std::thread> spinners;
  for (long t = 0; t < threads; ++t)
    spinners.emplace_back([&sink] {
      for (;;) {
        for (int i = 0; i < 1000000; ++i) sink.fetch_add(1, std::memory_order_relaxed);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // some voluntary switches
      }
    });
  if (exit_ms >= 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(exit_ms));
    std::_Exit(static_cast<int>(env_or("BUSY_EXIT_CODE", 0)));
  }
  if (spinners.empty())
    for (;;) pause();  // an idle VM: holds its memory, uses no CPU
  for (auto& t : spinners) t.join();
  return 0;
}
