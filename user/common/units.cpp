#include "common/units.h"

#include <fmt/format.h>

namespace vmscope {
namespace {

std::string scaled(double v, double base, const char* units) {
  int u = 0;
  while (v >= 999.5 && units[u + 1] != '\0') {
    v /= base;
    ++u;
  }
  std::string suffix = units[u] == ' ' ? "" : std::string(1, units[u]);
  if (u == 0) return fmt::format("{:.0f}{}", v, suffix);
  if (v < 9.995) return fmt::format("{:.2f}{}", v, suffix);
  if (v < 99.95) return fmt::format("{:.1f}{}", v, suffix);
  return fmt::format("{:.0f}{}", v, suffix);
}

}  // namespace

std::string human_si(double v) {
  return scaled(v < 0 ? 0 : v, 1000, " kMGTP");
}

std::string human_bytes(double bytes) {
  return scaled(bytes < 0 ? 0 : bytes, 1024, " KMGTP");
}

std::string human_duration(double s) {
  auto secs = static_cast<uint64_t>(s < 0 ? 0 : s);
  if (secs >= 100 * 86400) return fmt::format("{}d", secs / 86400);
  if (secs >= 86400) return fmt::format("{}d{:02}h", secs / 86400, secs % 86400 / 3600);
  if (secs >= 3600) return fmt::format("{}h{:02}m", secs / 3600, secs % 3600 / 60);
  return fmt::format("{}m{:02}s", secs / 60, secs % 60);
}

}  // namespace vmscope
