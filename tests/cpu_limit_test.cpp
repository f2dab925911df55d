// The possible-CPU count is checked against the contract's VS_MAX_CPUS before any BPF
// object that loops over CPUs is loaded: beyond it, an error that says both numbers.
#include "drain/cpu_limit.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "vmscope.h"

namespace vmscope {
namespace {

TEST(CpuLimit, AcceptsUpToTheContractLimit) {
  for (int n : {1, 2, 64, VS_MAX_CPUS}) {
    auto r = check_cpu_count(n);
    ASSERT_TRUE(r) << n << ": " << r.error().message;
    EXPECT_EQ(*r, static_cast<uint32_t>(n));
  }
}

TEST(CpuLimit, RefusesMoreCpusThanTheLimitSayingBoth) {
  auto r = check_cpu_count(VS_MAX_CPUS + 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            fmt::format("this host has {} possible CPUs, vmscope supports at most {}",
                        VS_MAX_CPUS + 1, VS_MAX_CPUS));
  EXPECT_FALSE(check_cpu_count(8192));
}

TEST(CpuLimit, ReportsAFailedCount) {
  auto r = check_cpu_count(-ENOENT);  // libbpf could not read /sys/.../possible
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ENOENT);
  EXPECT_NE(r.error().message.find("count possible CPUs"), std::string::npos);
  EXPECT_FALSE(check_cpu_count(0));
}

TEST(CpuLimit, ThisHostIsWithinTheLimit) {
  auto r = possible_cpus();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GE(*r, 1u);
}

}  // namespace
}  // namespace vmscope
