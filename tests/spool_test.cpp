// Spool: records come back in order across a reopen, the bound drops the oldest and counts
// them, and what a crash leaves (a .tmp file, a short or damaged record) never spoils the
// rest; a SIGKILL in the middle of appends loses nothing that was appended.
#include "output/spool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vmscope {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/vmscope-spool-test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

std::string batch(int i, int lines = 3) {
  std::string s;
  for (int l = 0; l < lines; ++l)
    s += "vm_net,vm=web" + std::to_string(l) + " rx_bytes=" + std::to_string(i * 1000 + l) + "i " +
         std::to_string(1700000000000000000 + i) + "\n";
  return s;
}

std::unique_ptr<Spool> open_spool(const std::string& dir, uint64_t max = 1 << 20) {
  auto s = Spool::open(dir, max, "test://");
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

std::vector<std::string> records(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".rec") names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Spool, RecordsComeBackInOrderAfterAReopen) {
  TempDir d;
  {
    auto s = open_spool(d.path + "/out");
    for (int i = 0; i < 5; ++i) s->append(batch(i));
    EXPECT_EQ(s->stats().batches, 5u);
    EXPECT_GT(s->stats().bytes, 0u);
  }
  auto s = open_spool(d.path + "/out");
  EXPECT_EQ(s->stats().batches, 5u);
  s->append(batch(5));  // after the reopen: behind the old ones
  for (int i = 0; i < 6; ++i) {
    auto lines = s->front();
    ASSERT_TRUE(lines) << i;
    EXPECT_EQ(*lines, batch(i));
    s->pop_front();
  }
  EXPECT_TRUE(s->empty());
  EXPECT_FALSE(s->front());
  EXPECT_EQ(s->stats().bytes, 0u);
  EXPECT_EQ(s->stats().dropped_batches, 0u);
  EXPECT_TRUE(records(d.path + "/out").empty());
}

TEST(Spool, RecordsAreCompressed) {
  TempDir d;
  auto s = open_spool(d.path);
  const std::string lines = batch(1, 1000);
  s->append(lines);
  EXPECT_LT(s->stats().bytes, lines.size() / 4) << "line protocol should shrink >4x";
}

TEST(Spool, ReplaceFrontKeepsOnlyTheUndeliveredRest) {
  TempDir d;
  auto s = open_spool(d.path);
  s->append(batch(0));
  s->append(batch(1));
  const std::string first = batch(0);
  const std::string rest = first.substr(first.find('\n') + 1);
  s->replace_front(rest);
  EXPECT_EQ(*s->front(), rest);
  s->pop_front();
  EXPECT_EQ(*s->front(), batch(1));
}

TEST(Spool, OverTheBoundTheOldestGoAndAreCounted) {
  TempDir d;
  auto s = open_spool(d.path, 1 << 20);
  // ~100 KiB of poorly compressible lines per batch: the bound holds ~10 of them.
  auto noisy = [](int i) {
    std::string s;
    uint64_t x = 88172645463325252ull + static_cast<uint64_t>(i);
    for (int l = 0; l < 2000; ++l) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      s += "m v=" + std::to_string(x) + "i " + std::to_string(x >> 3) + "\n";
    }
    return s;
  };
  for (int i = 0; i < 40; ++i) s->append(noisy(i));
  const SpoolStats st = s->stats();
  EXPECT_LE(st.bytes, 1u << 20);
  EXPECT_GT(st.dropped_batches, 0u);
  EXPECT_EQ(st.batches + st.dropped_batches, 40u);
  EXPECT_EQ(st.dropped_lines, st.dropped_batches * 2000);
  // What is left is the newest, in order, ending with the last batch.
  const int first_kept = static_cast<int>(st.dropped_batches);
  for (int i = first_kept; i < 40; ++i) {
    auto lines = s->front();
    ASSERT_TRUE(lines);
    EXPECT_EQ(*lines, noisy(i)) << i;
    s->pop_front();
  }
}

TEST(Spool, WhatACrashLeavesIsRemovedAndTheRestReplays) {
  TempDir d;
  {
    auto s = open_spool(d.path);
    for (int i = 0; i < 4; ++i) s->append(batch(i));
  }
  auto names = records(d.path);
  ASSERT_EQ(names.size(), 4u);
  // A write killed before its rename: a .tmp with half a record.
  std::ofstream(d.path + "/00000000000000000005.tmp") << "vmspool1\x10\x00";
  // Power loss after the rename of record 2: a short file.
  fs::resize_file(d.path + "/" + names[1], 20);
  // A flipped byte in record 3's payload.
  {
    std::fstream f(d.path + "/" + names[2], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x55');
  }
  auto s = open_spool(d.path);
  EXPECT_FALSE(fs::exists(d.path + "/00000000000000000005.tmp"));
  EXPECT_EQ(s->stats().batches, 3u);  // the short one is dropped at open
  EXPECT_EQ(*s->front(), batch(0));
  s->pop_front();
  // Record 3 fails its checksum when read: dropped, counted, and record 4 follows.
  EXPECT_EQ(*s->front(), batch(3));
  EXPECT_EQ(s->stats().dropped_batches, 2u);
  s->pop_front();
  EXPECT_TRUE(s->empty());
  // The next record number is past every one seen: a new record sorts last.
  s->append(batch(9));
  EXPECT_EQ(records(d.path).back(), "00000000000000000005.rec");
}

TEST(Spool, ASigkillDuringAppendsLosesNoAppendedRecord) {
  TempDir d;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    auto s = Spool::open(d.path, uint64_t{1} << 30, "test://");
    if (!s) _exit(1);
    for (int i = 0;; ++i) {
      (*s)->append(batch(i, 500));
      if (i == 20) (void)!write(pipefd[1], "x", 1);  // enough made: the parent may kill
    }
  }
  close(pipefd[1]);
  char c;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  close(pipefd[0]);
  usleep(20000);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto s = open_spool(d.path);
  const uint64_t n = s->stats().batches;
  EXPECT_GT(n, 20u);
  for (uint64_t i = 0; i < n; ++i) {
    auto lines = s->front();
    ASSERT_TRUE(lines) << i;
    EXPECT_EQ(*lines, batch(static_cast<int>(i), 500)) << i;
    s->pop_front();
  }
  EXPECT_EQ(s->stats().dropped_batches, 0u);
}

TEST(Spool, ASecondOpenOfTheSameDirectoryIsRefused) {
  TempDir d;
  auto s = open_spool(d.path);
  auto again = Spool::open(d.path, 1 << 20, "test://");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("in use by another vmscope"), std::string::npos);
}

TEST(Spool, IdIsStablePerUrl) {
  EXPECT_EQ(spool_id("http://127.0.0.1:8086/write?db=vmscope"),
            spool_id("http://127.0.0.1:8086/write?db=vmscope"));
  EXPECT_NE(spool_id("tcp://a:8094"), spool_id("tcp://b:8094"));
  EXPECT_EQ(spool_id("x").size(), 16u);
}

}  // namespace
}  // namespace vmscope
