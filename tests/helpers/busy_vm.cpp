// Test helper: a process that looks like a VM to vmscope (start it with a launcher's
// argv, e.g. argv[0] "qemu-system-x86_64" "-name" "guest=cpu1") and uses CPU and memory
// like one: $BUSY_MB MiB touched page by page (minor faults) once at start, then
// $BUSY_THREADS threads spinning (0: idle until killed). Prints "ready" once the memory is in
// place. $BUSY_EXIT_MS / $BUSY_EXIT_CODE: exit(code) after that many ms (default: run until
// killed). $BUSY_CHILDREN: fork that many child processes first (like crosvm's device processes),
// each printing "child <pid>" and doing the same work; they die with the parent.
// Health knobs (issue 12): $BUSY_CPU=n pins the process (all its threads) to CPU n;
// $BUSY_WRITE_MB=N writes N MiB into a file under $BUSY_WRITE_DIR with fdatasync before
// "ready" (the file stays); $BUSY_THREAD_EXIT_MS=ms: the spinning threads exit after that long,
// each printing "thread done", while the process lives on; $BUSY_NO_NAPS=1: the spinning
// threads never sleep (CPU-bound: they always want the CPU). $BUSY_DISK_EVERY_MS=ms: after
// "ready", every ms a thread rewrites that file in place (fdatasync) and reads it back from
// storage (dropped from the page cache first): steady disk writes and reads, as a database.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

long env_or(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : fallback;
}

// N MiB into dir/busy_vm.data, fdatasync'ed: write_bytes of /proc/<pid>/io grows by N MiB.
void write_file(const char* dir, long mib) {
  std::string path = std::string(dir ? dir : ".") + "/busy_vm.data";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::perror("busy_vm: open");
    std::exit(2);
  }
  std::vector<char> block(1 << 20, 'v');
  for (long i = 0; i < mib; ++i)
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
      std::perror("busy_vm: write");
      std::exit(2);
    }
  if (fdatasync(fd) != 0) std::perror("busy_vm: fdatasync");
  close(fd);
}

// One round of the disk loop: dir/busy_vm.data rewritten (fdatasync), then read back. The
// clean pages are dropped first, so the reads go to storage (read_bytes), not the cache.
void rewrite_and_read(const std::string& path, long mib) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0) {
    std::perror("busy_vm: open");
    return;
  }
  std::vector<char> block(1 << 20, 'w');
  for (long i = 0; i < mib; ++i)
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
  if (fdatasync(fd) != 0) std::perror("busy_vm: fdatasync");
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  lseek(fd, 0, SEEK_SET);
  while (read(fd, block.data(), block.size()) > 0) {
  }
  close(fd);
}

}  // namespace

int main() {
  const long mb = env_or("BUSY_MB", 32);
  const long threads = env_or("BUSY_THREADS", 2);
  const long exit_ms = env_or("BUSY_EXIT_MS", -1);
  const long page = sysconf(_SC_PAGESIZE);
  const long thread_exit_ms = env_or("BUSY_THREAD_EXIT_MS", -1);
  const bool naps = env_or("BUSY_NO_NAPS", 0) == 0;
  if (const long cpu = env_or("BUSY_CPU", -1); cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<int>(cpu), &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) std::perror("busy_vm: sched_setaffinity");
  }
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
  if (const long w = env_or("BUSY_WRITE_MB", 0); w > 0)
    write_file(std::getenv("BUSY_WRITE_DIR"), w);
  std::printf("ready\n");
  std::fflush(stdout);

  if (const long every_ms = env_or("BUSY_DISK_EVERY_MS", -1); every_ms >= 0) {
    const std::string dir = std::getenv("BUSY_WRITE_DIR") ? std::getenv("BUSY_WRITE_DIR") : ".";
    const long mib = std::max(1L, env_or("BUSY_WRITE_MB", 1));
    std::thread([path = dir + "/busy_vm.data", mib, every_ms] {
      for (;;) {
        rewrite_and_read(path, mib);
        std::this_thread::sleep_for(std::chrono::milliseconds(every_ms));
      }
    }).detach();
  }

  std::atomic<unsigned long> sink{0};
  std::vector<std::thread> spinners;
  for (long t = 0; t < threads; ++t)
    spinners.emplace_back([&sink, thread_exit_ms, naps] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(thread_exit_ms);
      for (;;) {
        if (thread_exit_ms >= 0 && std::chrono::steady_clock::now() >= end) {
          std::printf("thread done\n");
          std::fflush(stdout);
          return;
        }
        for (int i = 0; i < 1000000; ++i) sink.fetch_add(1, std::memory_order_relaxed);
        if (naps) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // voluntary switches
      }
    });
  if (exit_ms >= 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(exit_ms));
    std::_Exit(static_cast<int>(env_or("BUSY_EXIT_CODE", 0)));
  }
  if (spinners.empty())
    for (;;) pause();  // an idle VM: holds its memory, uses no CPU
  for (auto& t : spinners) t.join();
  for (;;) pause();  // threads gone ($BUSY_THREAD_EXIT_MS), the process stays
}
