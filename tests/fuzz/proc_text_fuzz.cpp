// Fuzz target: the /proc texts vmscope parses: /proc/<pid>/stat (comm is chosen by the
// process and may hold spaces and parentheses), /proc/<pid>/statm and the fdinfo of a tap
// fd. The same input goes to each parser.
#include <cstdint>
#include <string>
#include <string_view>

#include "discover/proc_stat.h"
#include "discover/tap_owners.h"
#include "fuzz_check.h"

namespace {

bool has_space(std::string_view s) {
  return s.find_first_of(" \t\n\v\f\r") != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto fields = vmscope::parse_proc_stat(text);
  if (!fields.empty()) {
    FUZZ_CHECK(fields.size() >= 3 && fields[0].empty());
    // pid, one separator, then comm in parentheses
    FUZZ_CHECK(text.starts_with(fields[1]) && text[fields[1].size() + 1] == '(');
    FUZZ_CHECK(text.substr(fields[1].size() + 2, fields[2].size()) == fields[2]);
    FUZZ_CHECK(text[fields[1].size() + 2 + fields[2].size()] == ')');
    size_t total = fields[1].size() + fields[2].size() + 3;
    for (size_t i = 3; i < fields.size(); ++i) {
      FUZZ_CHECK(!fields[i].empty() && !has_space(fields[i]));
      FUZZ_CHECK(fields[i].find(')') == std::string::npos);  // comm ends at the last ')'
      total += fields[i].size();
    }
    FUZZ_CHECK(total <= text.size());
  }

  if (const auto statm = vmscope::parse_statm(text)) {
    // What was read is what a statm line with those numbers says.
    const auto again = vmscope::parse_statm(std::to_string(statm->size_pages) + " " +
                                            std::to_string(statm->resident_pages) + " 0 0 0 0 0\n");
    FUZZ_CHECK(again && again->size_pages == statm->size_pages &&
               again->resident_pages == statm->resident_pages);
  }

  const std::string tap = vmscope::tap_from_fdinfo(text);
  FUZZ_CHECK(tap.find('\n') == std::string::npos);
  if (!tap.empty()) FUZZ_CHECK(text.find("iff:") != std::string_view::npos);
  return 0;
}
