// `vmscope cleanup`: removes what `vmscope run` keeps in the kernel across its restarts
// (attach/kept_state.h): vmscope's clsact filters on every device, its pinned tcx links
// (unpinning detaches them) and counter maps, and its pin directory. Refused while an agent
// runs in the namespace. The .deb runs it (all namespaces) when the package is removed.
#pragma once

#include <cstdio>

#include "common/result.h"

namespace vmscope {

struct CleanupCounts {
  unsigned filters = 0, pins = 0, namespaces = 0;
};

// This network namespace; with all_namespaces also every other one that has a pin
// directory (entered through a process in it or its /run/netns entry; where it is gone,
// only the pins are left to remove). One line per namespace cleaned goes to out.
Result<CleanupCounts> cleanup_kept_state(bool all_namespaces, std::FILE* out);

}  // namespace vmscope
