// /proc/<pid>/stat, split once for everyone who needs a field of it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmscope {

// The fields, indexed by field number as in proc(5): [1] pid, [2] comm (without its
// parentheses, which may hold spaces), [3] state, [4] ppid, ... ([0] is unused).
// Empty when the process is gone.
std::vector<std::string> read_proc_stat(const std::string& proc_root, uint32_t pid);

}  // namespace vmscope
