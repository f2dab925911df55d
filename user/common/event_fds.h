// The descriptors an event loop polls: a periodic timer and a signalfd for the signals
// that stop it. Shared by `vmscope run` and `vmscope top`.
#pragma once

#include <signal.h>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vmscope {

// A CLOCK_MONOTONIC timerfd firing every interval_s, first after one interval.
Result<UniqueFd> make_timer(double interval_s);
// Re-arms it with a new interval; the next expiry is first_s from now (one new interval
// when negative).
Status set_timer(int timer_fd, double interval_s, double first_s = -1);

// Blocks SIGINT and SIGTERM (and SIGHUP with reload) in the calling thread. Call before
// any thread starts: threads inherit the mask, so the signals reach only the signalfd.
Status block_stop_signals(bool reload = false);
// A signalfd for SIGINT and SIGTERM (and SIGHUP with reload).
Result<UniqueFd> make_stop_signalfd(bool reload = false);

}  // namespace vmscope
