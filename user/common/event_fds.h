// The descriptors an event loop polls: a periodic timer and a signalfd for the signals
// that stop it. Shared by `vmscope run` and `vmscope top`.
#pragma once

#include <signal.h>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vmscope {

// A CLOCK_MONOTONIC timerfd firing every interval_s, first after one interval.
Result<UniqueFd> make_timer(double interval_s);
// Re-arms it with a new interval (the next expiry is one new interval from now).
Status set_timer(int timer_fd, double interval_s);

// Blocks SIGINT and SIGTERM in the calling thread. Call before any thread starts:
// threads inherit the mask, so the signals reach only the signalfd.
Status block_stop_signals();
// A signalfd for SIGINT and SIGTERM.
Result<UniqueFd> make_stop_signalfd();

}  // namespace vmscope
