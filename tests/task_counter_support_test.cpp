// Which optional task counters a kernel keeps, read from its BTF: a kernel built without
// CONFIG_SCHED_INFO has no task_struct.sched_info, one without CONFIG_TASK_XACCT no ioac.
#include "discover/task_counter_support.h"

#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace vmscope {
namespace {

using BtfPtr = std::unique_ptr<btf, decltype(&btf__free)>;

// A struct of u64 members named `members`; returns its type id.
int add_struct(btf* b, int u64, const char* name, const std::vector<std::string>& members) {
  const int id = btf__add_struct(b, name, static_cast<uint32_t>(8 * members.size()));
  for (size_t i = 0; i < members.size(); ++i)
    btf__add_field(b, members[i].c_str(), u64, static_cast<uint32_t>(64 * i), 0);
  return id;
}

// A toy kernel BTF: task_struct with sched_info and/or ioac, as the config gives them.
BtfPtr kernel(bool sched_info, bool ioac, bool io_bytes = true) {
  BtfPtr b(btf__new_empty(), btf__free);
  const int u64 = btf__add_int(b.get(), "long long unsigned int", 8, 0);
  const int si = add_struct(b.get(), u64, "sched_info", {"pcount", "run_delay", "last_arrival"});
  std::vector<std::string> io = {"rchar", "wchar", "syscr", "syscw"};
  if (io_bytes) io.insert(io.end(), {"read_bytes", "write_bytes", "cancelled_write_bytes"});
  const int ia = add_struct(b.get(), u64, "task_io_accounting", io);
  btf__add_struct(b.get(), "task_struct", 64);
  btf__add_field(b.get(), "pid", u64, 0, 0);
  if (sched_info) btf__add_field(b.get(), "sched_info", si, 64, 0);
  if (ioac) btf__add_field(b.get(), "ioac", ia, 64 * 4, 0);
  return b;
}

TEST(TaskCounterSupport, KernelWithEverything) {
  const TaskCounterSupport k = task_counter_support(kernel(true, true).get());
  EXPECT_TRUE(k.cpu_wait);
  EXPECT_TRUE(k.io);
}

TEST(TaskCounterSupport, KernelWithoutSchedInfo) {
  const TaskCounterSupport k = task_counter_support(kernel(false, true).get());
  EXPECT_FALSE(k.cpu_wait);
  EXPECT_TRUE(k.io);
}

TEST(TaskCounterSupport, KernelWithoutIoAccounting) {
  EXPECT_FALSE(task_counter_support(kernel(true, false).get()).io);
  // CONFIG_TASK_XACCT without CONFIG_TASK_IO_ACCOUNTING: rchar... but no read_bytes.
  const TaskCounterSupport k = task_counter_support(kernel(true, true, false).get());
  EXPECT_FALSE(k.io);
  EXPECT_TRUE(k.cpu_wait);
}

TEST(TaskCounterSupport, NotAKernelsBtfSaysNothingIsMissing) {
  BtfPtr b(btf__new_empty(), btf__free);
  const TaskCounterSupport k = task_counter_support(b.get());
  EXPECT_TRUE(k.cpu_wait);
  EXPECT_TRUE(k.io);
}

}  // namespace
}  // namespace vmscope
