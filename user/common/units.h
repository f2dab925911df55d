// Figures for people: short, fixed-width renderings of rates, sizes and durations.
#pragma once

#include <cstdint>
#include <string>

namespace vmscope {

// 1000-based with a unit letter, 3 significant digits: 999, 1.23k, 45.6M, 7.89G.
std::string human_si(double v);
// 1024-based bytes: 512K, 1.5M, 23.4G (no B suffix).
std::string human_bytes(double bytes);
// 59m02s, 3h07m, 12d04h.
std::string human_duration(double seconds);

}  // namespace vmscope
