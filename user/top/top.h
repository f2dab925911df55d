// `vmscope top`: a live view of every VM on the host, from the same collection engine
// as `vmscope run`.
#pragma once

#include <cstdio>

#include "common/result.h"
#include "config/config.h"

namespace vmscope {

// Interactive until `q` (or SIGINT/SIGTERM), or -b: opts.iterations snapshots on out.
// Whatever it attached is detached before it returns.
Status run_top(const Config& config, const TopOptions& opts, std::FILE* out);

}  // namespace vmscope
