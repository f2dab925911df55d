// Root tests of how `vmscope top` finds a running agent's maps: the start race between
// an agent and a top probing for it, and the layout check that keeps a top of another
// build from misreading an agent's pins. No network namespace is needed: the paths are
// the test's own, on the real bpffs.
#include "attach/shared_maps.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "test_env.h"
#include "vmscope.h"

namespace vmscope::test {
namespace {

// A private pin root and lock directory, removed afterwards.
struct TestPaths {
  std::string root = "/sys/fs/bpf/vmscope-test-" + std::to_string(getpid());
  std::string run = "/tmp/vmscope-test-run-" + std::to_string(getpid());
  SharedMapPaths paths{root + "/net-1", run + "/net-1.lock"};
  TestPaths() {
    mkdir(root.c_str(), 0700);
    mkdir(run.c_str(), 0700);
  }
  ~TestPaths() { sh("rm -rf " + root + " " + run); }
};

// Holds the lock file the way an agent does, with the given contents.
struct FakeAgent {
  UniqueFd fd;
  FakeAgent(const std::string& path, const std::string& text) {
    fd.reset(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    struct flock l {};
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    if (!fd.valid() || fcntl(fd.get(), F_OFD_SETLK, &l) != 0 ||
        pwrite(fd.get(), text.data(), text.size(), 0) < 0)
      throw std::runtime_error("fake agent lock " + path);
  }
};

UniqueFd array_map(uint32_t value_size) {
  return UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vs_test", 4, value_size, 4, nullptr));
}

// A top that probes for the agent at the very moment one starts must never keep that
// agent from publishing. Forced: a thread probes in a tight loop while agents start
// and stop 300 times.
TEST(SharedMapsRace, AnAgentStartingWhileTopProbesAlwaysPublishes) {
  TestPaths t;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> probes{0};
  std::thread top([&] {
    while (!stop) {
      (void)SharedMaps::open(t.paths);
      probes++;
    }
  });
  int published = 0;
  constexpr int kStarts = 300;
  for (int i = 0; i < kStarts; ++i) {
    auto pub = SharedMapPublisher::acquire(t.paths);
    if (pub) {
      pub->publish_maps(-1);
      ++published;
    }
  }
  stop = true;
  top.join();
  EXPECT_GT(probes.load(), 1000u) << "the probing thread hardly ran: the race was not forced";
  EXPECT_EQ(published, kStarts);
}

TEST(SharedMapsLayout, TopRefusesAnAgentOfAnotherLayoutWithOneLine) {
  TestPaths t;
  {
    FakeAgent old(t.paths.lock_file, "4242\n");  // an agent from before layouts were written
    auto r = SharedMaps::open(t.paths);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("(pid 4242) shares maps of layout 0"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  {
    FakeAgent newer(t.paths.lock_file, "4242 " + std::to_string(kSharedLayoutVersion + 1) + "\n");
    auto r = SharedMaps::open(t.paths);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("layout " + std::to_string(kSharedLayoutVersion + 1)),
              std::string::npos)
        << r.error().message;
  }
}

TEST(SharedMapsLayout, TopRefusesPinsWhoseStructsDiffer) {
  TestPaths t;
  FakeAgent agent(t.paths.lock_file, "4242 " + std::to_string(kSharedLayoutVersion) + "\n");
  mkdir(t.paths.pin_dir.c_str(), 0700);
  // net_stats with a value one u64 shorter than this build's struct vs_dev_counters.
  auto net_stats = UniqueFd(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "vs_test", 4,
                                           sizeof(vs_dev_counters) - 8, 4, nullptr));
  auto slot = array_map(4);
  auto far = UniqueFd(bpf_map_create(BPF_MAP_TYPE_HASH, "vs_test", 4, 4, 4, nullptr));
  auto events = array_map(sizeof(SharedVmEvent));
  auto service = UniqueFd(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "vs_test", 4,
                                         sizeof(vs_service_counters), 4, nullptr));
  ASSERT_TRUE(net_stats.valid() && slot.valid() && far.valid() && events.valid() &&
              service.valid());
  ASSERT_EQ(bpf_obj_pin(service.get(), (t.paths.pin_dir + "/service_stats").c_str()), 0);
  ASSERT_EQ(bpf_obj_pin(net_stats.get(), (t.paths.pin_dir + "/net_stats").c_str()), 0);
  ASSERT_EQ(bpf_obj_pin(slot.get(), (t.paths.pin_dir + "/if_slot").c_str()), 0);
  ASSERT_EQ(bpf_obj_pin(far.get(), (t.paths.pin_dir + "/if_slot_far").c_str()), 0);
  ASSERT_EQ(bpf_obj_pin(events.get(), (t.paths.pin_dir + "/recent_events").c_str()), 0);

  auto r = SharedMaps::open(t.paths);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("net_stats of the running vmscope agent (pid 4242) holds other "
                                   "structs"),
            std::string::npos)
      << r.error().message;

  // The same pins with this build's struct: top opens them.
  unlink((t.paths.pin_dir + "/net_stats").c_str());
  auto good = UniqueFd(
      bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "vs_test", 4, sizeof(vs_dev_counters), 4, nullptr));
  ASSERT_EQ(bpf_obj_pin(good.get(), (t.paths.pin_dir + "/net_stats").c_str()), 0);
  auto ok = SharedMaps::open(t.paths);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_TRUE(ok->has_value());
  EXPECT_EQ((*ok)->agent_pid, 4242);
}

}  // namespace
}  // namespace vmscope::test
