// How tc programs are attached, and its names both ways ("auto", "tcx", "clsact"): the
// config parses them, the tc owner uses the mode and logs its name. Data only, so the
// config can hold a mode without depending on the tc code.
#pragma once

#include <string_view>

#include "common/result.h"

namespace vmscope {

enum class AttachMode { kAuto, kTcx, kClsact };

const char* attach_mode_name(AttachMode mode);
Result<AttachMode> parse_attach_mode(std::string_view s);

}  // namespace vmscope
