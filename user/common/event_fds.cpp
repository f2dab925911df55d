#include "common/event_fds.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cmath>

namespace vmscope {
namespace {

sigset_t stop_signals(bool reload) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (reload) sigaddset(&mask, SIGHUP);
  return mask;
}

}  // namespace

Status set_timer(int timer_fd, double interval_s, double first_s) {
  itimerspec its{};
  auto ns = static_cast<int64_t>(std::llround(interval_s * 1e9));
  its.it_interval.tv_sec = ns / 1'000'000'000;
  its.it_interval.tv_nsec = ns % 1'000'000'000;
  its.it_value = its.it_interval;
  if (first_s >= 0) {
    // 0 would disarm the timer: at least 1 ns.
    auto first = std::max<int64_t>(1, static_cast<int64_t>(std::llround(first_s * 1e9)));
    its.it_value.tv_sec = first / 1'000'000'000;
    its.it_value.tv_nsec = first % 1'000'000'000;
  }
  if (timerfd_settime(timer_fd, 0, &its, nullptr) < 0)
    return Error::from_errno("start tick timer", errno);
  return {};
}

Result<UniqueFd> make_timer(double interval_s) {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!fd.valid()) return Error::from_errno("create tick timer", errno);
  if (auto st = set_timer(fd.get(), interval_s); !st) return st.error();
  return fd;
}

Status block_stop_signals(bool reload) {
  sigset_t mask = stop_signals(reload);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0)
    return Error::msg("block SIGINT/SIGTERM: pthread_sigmask failed");
  return {};
}

Result<UniqueFd> make_stop_signalfd(bool reload) {
  sigset_t mask = stop_signals(reload);
  UniqueFd fd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) return Error::from_errno("create signalfd", errno);
  return fd;
}

}  // namespace vmscope
