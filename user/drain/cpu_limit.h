// The possible-CPU count the BPF objects are loaded with (their rodata nr_cpus), checked
// against the contract's VS_MAX_CPUS: the in-kernel per-CPU loops stop there, so on a
// larger host they would count only some CPUs. vmscope refuses to load instead.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace vmscope {

// possible: libbpf_num_possible_cpus()'s answer (a negative errno on failure).
Result<uint32_t> check_cpu_count(int possible);

// The host's possible CPUs, checked.
Result<uint32_t> possible_cpus();

}  // namespace vmscope
