// /proc/<pid>/stat, split once for everyone who needs a field of it; /proc/<pid>/statm.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmscope {

// The fields, indexed by field number as in proc(5): [1] pid, [2] comm (without its
// parentheses, which may hold spaces), [3] state, [4] ppid, ... ([0] is unused).
// Empty when the process is gone.
std::vector<std::string> read_proc_stat(const std::string& proc_root, uint32_t pid);

// The same from the text of a stat file (apart from the read, for tests and fuzzing):
// empty when the text has no "pid (comm)" head.
std::vector<std::string> parse_proc_stat(std::string_view text);

// /proc/<pid>/statm: "size resident shared text lib data dt", in pages.
struct Statm {
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
};
// The first two fields; nullopt when they are not two decimal numbers that fit 64 bits.
std::optional<Statm> parse_statm(std::string_view text);

}  // namespace vmscope
