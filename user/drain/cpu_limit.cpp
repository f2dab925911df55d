#include "drain/cpu_limit.h"

#include <bpf/libbpf.h>

#include "vmscope.h"

namespace vmscope {

Result<uint32_t> check_cpu_count(int possible) {
  if (possible <= 0)
    return Error::from_errno("count possible CPUs", possible < 0 ? -possible : EINVAL);
  if (possible > VS_MAX_CPUS)
    return Error::msg(fmt::format("this host has {} possible CPUs, vmscope supports at most {}",
                                  possible, VS_MAX_CPUS));
  return static_cast<uint32_t>(possible);
}

Result<uint32_t> possible_cpus() {
  return check_cpu_count(libbpf_num_possible_cpus());
}

}  // namespace vmscope
