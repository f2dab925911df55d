// `vmscope check` and `vmscope --version` on the real host, as root and as an unprivileged
// user without capabilities; `vmscope run` refuses to start with the failing check's line.
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <cstdio>
#include <sstream>

#include "test_env.h"

namespace vmscope::test {
namespace {

struct Ran {
  int status = -1;
  std::string out;  // stdout and stderr
};

Ran run(const std::string& cmd, bool with_stderr = true) {
  Ran r;
  FILE* p = popen((cmd + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// As nobody, with no capability at all (and none to inherit).
std::string unprivileged(const std::string& args) {
  return "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all " + vmscope_bin() +
         " " + args;
}

TEST(HostCheckOnThisHost, RootPassesEveryRequiredCheck) {
  const Ran r = run(vmscope_bin() + " check", false);
  EXPECT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string l;
  int n = 0;
  while (std::getline(lines, l)) {
    ++n;
    EXPECT_TRUE(l.rfind("✓ ", 0) == 0 || l.rfind("✗ ", 0) == 0) << l;
  }
  EXPECT_GE(n, 14) << r.out;
  for (const char* ok : {"✓ kernel BTF", "✓ CAP_BPF", "✓ CAP_NET_ADMIN", "✓ network programs",
                         "✓ in-kernel summing", "✓ process programs", "✓ task sampling"})
    EXPECT_NE(r.out.find(ok), std::string::npos) << ok << "\n" << r.out;
}

TEST(HostCheckOnThisHost, WithoutCapabilitiesCheckFailsAndRunRefuses) {
  const Ran c = run(unprivileged("check"));
  EXPECT_EQ(c.status, 1) << c.out;
  EXPECT_NE(c.out.find("✗ CAP_BPF: missing"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("✗ network programs"), std::string::npos) << c.out;

  const Ran r = run(unprivileged("run --count 1"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(r.out,
            "vmscope: ✗ CAP_BPF: missing: no BPF map or program can be created (run as root, or "
            "with the capabilities of vmscope.service) (`vmscope check` lists every "
            "requirement)\n");
}

TEST(HostCheckOnThisHost, VersionNamesRevisionAndKernel) {
  const Ran r = run(vmscope_bin() + " --version");
  EXPECT_EQ(r.status, 0) << r.out;
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  EXPECT_EQ(r.out.rfind("vmscope 0.", 0), 0u) << r.out;
  // Built on this host from its own BTF (scripts/build.sh; CI builds where it tests).
  EXPECT_NE(r.out.find(std::string("BPF types from kernel ") + u.release), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("unknown"), std::string::npos) << "a git checkout: " << r.out;
}

}  // namespace
}  // namespace vmscope::test
