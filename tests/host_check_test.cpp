// `vmscope check`'s rules on given inputs (the root test runs the real thing).
#include "agent/host_check.h"

#include <gtest/gtest.h>

namespace vmscope {
namespace {

std::string text(const std::vector<CheckLine>& lines) {
  std::string out;
  for (const CheckLine& l : lines) out += format_check_line(l) + "\n";
  return out;
}

TEST(HostCheck, KernelRelease) {
  EXPECT_TRUE(check_kernel_release("6.1.0-28-amd64").ok);
  EXPECT_EQ(format_check_line(check_kernel_release("6.1.0-28-amd64")),
            "✓ kernel 6.1.0-28-amd64: 5.8 or newer");
  EXPECT_TRUE(check_kernel_release("5.8.0").ok);
  EXPECT_FALSE(check_kernel_release("5.7.19").ok);
  EXPECT_FALSE(check_kernel_release("4.19.0-27-amd64").ok);
  EXPECT_FALSE(check_kernel_release("").ok);
}

TEST(HostCheck, RootHasEveryCapability) {
  const auto lines = check_capabilities(~0ULL);
  EXPECT_EQ(first_failure(lines), nullptr) << text(lines);
  EXPECT_EQ(lines.size(), 5u);
}

TEST(HostCheck, NoCapabilityFailsOnCapBpf) {
  const auto lines = check_capabilities(0);
  const CheckLine* f = first_failure(lines);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(format_check_line(*f),
            "✗ CAP_BPF: missing: no BPF map or program can be created (run as root, or with "
            "the capabilities of vmscope.service)");
  for (const CheckLine& l : lines) EXPECT_FALSE(l.ok) << l.what;
}

// CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON; the /proc capabilities are optional: the
// agent runs, tying only its own user's taps to their VMs.
TEST(HostCheck, SysAdminStandsInForBpfAndPerfmon) {
  const uint64_t admin_net = 1ULL << 21 | 1ULL << 12;
  const auto lines = check_capabilities(admin_net);
  EXPECT_EQ(first_failure(lines), nullptr) << text(lines);
  EXPECT_FALSE(lines[3].ok);  // CAP_SYS_PTRACE
  EXPECT_FALSE(lines[3].required);
}

TEST(HostCheck, MissingNetAdminIsFatal) {
  const uint64_t bpf_perfmon = 1ULL << 39 | 1ULL << 38;
  const auto lines = check_capabilities(bpf_perfmon);  // f points into it
  const CheckLine* f = first_failure(lines);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->what, "CAP_NET_ADMIN");
}

}  // namespace
}  // namespace vmscope
