// Fuzz target: a TOML configuration file (--config), as apply_toml reads it. Any text must
// give a valid configuration or one error line, never a crash; the size syntax of
// spool.max_size is fed the same text.
#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = vmscope::apply_toml(text, "fuzz.toml", vmscope::Config{});
  if (config) {
    FUZZ_CHECK(vmscope::validate(*config));  // what a file sets passes the same checks
  } else {
    FUZZ_CHECK(config.error().message.starts_with("fuzz.toml"));  // errors name the file
  }
  if (auto bytes = vmscope::parse_size(text)) FUZZ_CHECK(*bytes <= (uint64_t{1} << 62));
  return 0;
}
