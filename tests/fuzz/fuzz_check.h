// What the fuzz targets share: a check that aborts (a finding for libFuzzer, a failed
// test for the replay build) with what broke, whatever NDEBUG says, and a splitter of
// the input into parts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace vmscope::fuzz {

// Input split on a separator byte; an input without it is a single part.
inline std::vector<std::string_view> split(std::string_view data, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t at = data.find(sep);
    parts.push_back(data.substr(0, at));
    if (at == std::string_view::npos) return parts;
    data.remove_prefix(at + 1);
  }
}

}  // namespace vmscope::fuzz
