#include "attach/attach_mode.h"

#include <fmt/format.h>

namespace vmscope {

const char* attach_mode_name(AttachMode mode) {
  switch (mode) {
    case AttachMode::kAuto:
      return "auto";
    case AttachMode::kTcx:
      return "tcx";
    case AttachMode::kClsact:
      return "clsact";
  }
  return "?";
}

Result<AttachMode> parse_attach_mode(std::string_view s) {
  if (s == "auto") return AttachMode::kAuto;
  if (s == "tcx") return AttachMode::kTcx;
  if (s == "clsact") return AttachMode::kClsact;
  return Error::msg(fmt::format("attach mode \"{}\": expected auto, tcx or clsact", s));
}

}  // namespace vmscope
