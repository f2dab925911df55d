// A kernel built without CONFIG_SCHED_INFO or the task I/O accounting lacks fields vmscope's
// process programs read (task_struct.sched_info, task_io_accounting's counters). Such a
// kernel must lose only those figures: the programs still load. Simulated with the running
// kernel's own BTF, the fields renamed away, given to libbpf as the target BTF
// (btf_custom_path); the programs then run on the real kernel with the same offsets.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "discover/task_counter_support.h"
#include "proc.skel.h"
#include "tasks.skel.h"
#include "tasks_walk.skel.h"
#include "vm_fixture.h"

namespace vmscope::test {
namespace {

using BtfPtr = std::unique_ptr<btf, decltype(&btf__free)>;

// Renames the members `names` of struct `type` in b to "vs_absent_<name>".
void rename_members(btf* b, const char* type, std::initializer_list<const char*> names) {
  const int id = btf__find_by_name_kind(b, type, BTF_KIND_STRUCT);
  ASSERT_GT(id, 0) << type;
  for (const char* name : names) {
    // Adding the string first: it makes the BTF writable, which moves its types.
    const int off = btf__add_str(b, (std::string("vs_absent_") + name).c_str());
    ASSERT_GT(off, 0);
    auto* t = const_cast<btf_type*>(btf__type_by_id(b, id));
    btf_member* m = btf_members(t);
    bool found = false;
    for (int i = 0; i < btf_vlen(t); ++i, ++m) {
      if (std::strcmp(btf__name_by_offset(b, m->name_off), name) == 0) {
        m->name_off = static_cast<uint32_t>(off);
        found = true;
      }
    }
    ASSERT_TRUE(found) << type << "." << name;
  }
}

// The running kernel's BTF without sched_info and the I/O accounting counters, as a file.
std::string kernel_btf_without_optional_fields(const std::string& dir) {
  BtfPtr b(btf__load_vmlinux_btf(), btf__free);
  if (!b) throw std::runtime_error("load /sys/kernel/btf/vmlinux");
  rename_members(b.get(), "task_struct", {"sched_info"});
  rename_members(
      b.get(), "task_io_accounting",
      {"rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes"});
  EXPECT_FALSE(task_counter_support(b.get()).cpu_wait);
  EXPECT_FALSE(task_counter_support(b.get()).io);
  uint32_t size = 0;
  const void* raw = btf__raw_data(b.get(), &size);
  if (!raw) throw std::runtime_error("serialize the BTF");
  const std::string path = dir + "/vmlinux-without-optional-fields.btf";
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(raw), size);
  return path;
}

template <typename Skel>
using SkelPtr = std::unique_ptr<Skel, void (*)(Skel*)>;

TEST(KernelConfig, ProcessProgramsLoadWithoutSchedInfoAndIoAccounting) {
  EXPECT_TRUE(running_kernel_task_counter_support().cpu_wait) << "Debian's kernel keeps both";
  EXPECT_TRUE(running_kernel_task_counter_support().io);
  TempDir tmp("vmscope-kernel-config");
  const std::string path = kernel_btf_without_optional_fields(tmp.path);
  LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = path.c_str());
  const auto cpus = static_cast<uint32_t>(libbpf_num_possible_cpus());

  SkelPtr<proc_bpf> proc(proc_bpf__open_opts(&opts), proc_bpf__destroy);
  ASSERT_TRUE(proc);
  EXPECT_EQ(proc_bpf__load(proc.get()), 0) << "proc.bpf.o: " << std::strerror(errno);

  SkelPtr<tasks_bpf> iter(tasks_bpf__open_opts(&opts), tasks_bpf__destroy);
  ASSERT_TRUE(iter);
  iter->rodata->nr_cpus = cpus;
  EXPECT_EQ(tasks_bpf__load(iter.get()), 0) << "tasks.bpf.o: " << std::strerror(errno);

  // The task-list walk needs kernel 6.7; where the real kernel cannot load it, there is
  // nothing to compare.
  SkelPtr<tasks_walk_bpf> real(tasks_walk_bpf__open(), tasks_walk_bpf__destroy);
  ASSERT_TRUE(real);
  real->rodata->nr_cpus = cpus;
  if (tasks_walk_bpf__load(real.get()) != 0) GTEST_SKIP() << "no task-list walk on this kernel";
  SkelPtr<tasks_walk_bpf> walk(tasks_walk_bpf__open_opts(&opts), tasks_walk_bpf__destroy);
  ASSERT_TRUE(walk);
  walk->rodata->nr_cpus = cpus;
  EXPECT_EQ(tasks_walk_bpf__load(walk.get()), 0) << "tasks_walk.bpf.o: " << std::strerror(errno);
}

}  // namespace
}  // namespace vmscope::test
