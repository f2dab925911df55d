// `vmscope check`: what the agent needs of this host, one line per requirement, each
// with ✓ or ✗ and, where it fails, what to do. `vmscope run` runs the cheap ones before
// it starts and refuses with the first failed required line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vmscope {

struct CheckLine {
  bool ok = false;
  bool required = true;  // false: vmscope runs without it, with less (the line says what)
  std::string what;      // "kernel 6.1.0-28-amd64"
  std::string detail;    // what was found, or what to do about it
};

// Kernel release (uname -r), BTF, bpffs, tracefs, tcx or clsact, capabilities, the tun
// device, cgroup v2: no BPF object is loaded. What `vmscope run` checks first.
std::vector<CheckLine> check_prerequisites();

// check_prerequisites() and the BPF objects themselves: the network programs, in-kernel
// summing or its fallback, the process programs and the task-list walk or its fallback.
std::vector<CheckLine> check_host();

// "✓ what: detail" or "✗ what: detail".
std::string format_check_line(const CheckLine& line);

// The first failed required line, or nullptr.
const CheckLine* first_failure(const std::vector<CheckLine>& lines);
// Not of a temporary: the pointer would dangle at the end of the statement.
const CheckLine* first_failure(std::vector<CheckLine>&&) = delete;

// The parts, for tests: one line per capability from a CapEff mask; the kernel line from
// a release string ("6.1.0-28-amd64").
std::vector<CheckLine> check_capabilities(uint64_t effective);
CheckLine check_kernel_release(std::string_view release);

}  // namespace vmscope
