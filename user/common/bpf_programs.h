// The programs of a loaded BPF object, for the self-metrics: each owner reports every
// program of its objects by walking them, so a program added to a .bpf.c file is
// reported without being listed anywhere.
#pragma once

#include <bpf/libbpf.h>

#include <vector>

namespace vmscope {

// Appends the fd of every loaded program of obj (a skeleton's `obj`) to out.
inline void append_program_fds(const bpf_object* obj, std::vector<int>& out) {
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    const int fd = bpf_program__fd(prog);
    if (fd >= 0) out.push_back(fd);  // not loaded (autoload off): nothing runs
  }
}

}  // namespace vmscope
