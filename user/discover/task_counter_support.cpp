#include "discover/task_counter_support.h"

#include <bpf/btf.h>

#include <cstring>
#include <initializer_list>
#include <memory>

#include "vmscope.h"

namespace vmscope {
namespace {

// The struct `name` (after typedefs and modifiers), or nullptr.
const btf_type* find_struct(const btf* b, const char* name) {
  const int id = btf__find_by_name_kind(b, name, BTF_KIND_STRUCT);
  return id > 0 ? btf__type_by_id(b, id) : nullptr;
}

// The member `name` of struct s, or nullptr.
const btf_member* find_member(const btf* b, const btf_type* s, const char* name) {
  if (!s || !btf_is_composite(s)) return nullptr;
  const btf_member* m = btf_members(s);
  for (int i = 0; i < btf_vlen(s); ++i, ++m)
    if (std::strcmp(btf__name_by_offset(b, m->name_off), name) == 0) return m;
  return nullptr;
}

// The struct a member is, or nullptr.
const btf_type* member_struct(const btf* b, const btf_member* m) {
  if (!m) return nullptr;
  const btf_type* t = btf__type_by_id(b, btf__resolve_type(b, m->type));
  return t && btf_is_struct(t) ? t : nullptr;
}

bool has_members(const btf* b, const btf_type* s, std::initializer_list<const char*> names) {
  if (!s) return false;
  for (const char* n : names)
    if (!find_member(b, s, n)) return false;
  return true;
}

}  // namespace

TaskCounterSupport task_counter_support(const btf* kernel) {
  TaskCounterSupport kept;
  const btf_type* task = find_struct(kernel, "task_struct");
  if (!task) return kept;  // not a kernel's BTF: nothing to say
  kept.cpu_wait =
      has_members(kernel, member_struct(kernel, find_member(kernel, task, "sched_info")),
                  {"run_delay", "pcount"});
#define VS_IO_NAME_(field, own, dead) #field,
  kept.io = has_members(kernel, member_struct(kernel, find_member(kernel, task, "ioac")),
                        {VS_TASK_IO_COUNTERS(VS_IO_NAME_)});
#undef VS_IO_NAME_
  return kept;
}

TaskCounterSupport running_kernel_task_counter_support() {
  std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), btf__free);
  if (!vmlinux) return {};
  return task_counter_support(vmlinux.get());
}

}  // namespace vmscope
