// Which task counters this kernel keeps, of those whose kernel fields exist only with a
// config option (VS_KEPT_ in bpf/vmscope.h). The BPF programs read 0 for a field the kernel
// lacks; vmscope then leaves it out of what it writes, because a CPU wait or a disk
// traffic of 0 would read as a healthy VM instead of an unknown one.
#pragma once

struct btf;

namespace vmscope {

struct TaskCounterSupport {
  // task_struct.sched_info (CONFIG_SCHED_INFO): run_delay, run_count, the vm_cpu line.
  bool cpu_wait = true;
  // task_struct.ioac with every /proc/<pid>/io field (CONFIG_TASK_XACCT,
  // CONFIG_TASK_IO_ACCOUNTING): the vm_io line, resource_usage's inblock/outblock.
  bool io = true;
};

// What the kernel described by `kernel` (its BTF) keeps.
TaskCounterSupport task_counter_support(const btf* kernel);

// What the running kernel keeps, from /sys/kernel/btf/vmlinux. Everything is assumed kept
// when its BTF cannot be read: vmscope's BPF programs cannot load without it anyway.
TaskCounterSupport running_kernel_task_counter_support();

}  // namespace vmscope
