// Frames through the real tc programs without a device: BPF_PROG_TEST_RUN with lo
// (ifindex 1) as the frame's device, which the tests give a counter slot as a VM tap
// would have. Shared by the classification table and the service counters' tests.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <vector>

#include "attach/net_programs.h"

namespace vmscope::test {

inline constexpr int kLoopback = 1;

// Loads net.bpf.o into `programs` and gives lo a slot (into `slot`); fails the test
// suite's setup otherwise.
inline void load_with_loopback_slot(std::optional<NetPrograms>& programs, uint32_t& slot) {
  auto p = NetPrograms::load();
  ASSERT_TRUE(p) << p.error().message;
  programs.emplace(std::move(*p));
  auto s = programs->assign_slot(kLoopback);
  ASSERT_TRUE(s) << s.error().message;
  slot = *s;
}

struct LoopbackRun {
  int err = 0;  // errno of a failed test run, 0 when it ran
  int32_t retval = 0;
};

// One test run of frame through the program prog_fd, as if it crossed lo.
inline LoopbackRun run_on_loopback(int prog_fd, const std::vector<uint8_t>& frame) {
  __sk_buff ctx{};
  ctx.ifindex = kLoopback;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = 1);
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return {errno, 0};
  return {0, static_cast<int32_t>(opts.retval)};
}

}  // namespace vmscope::test
