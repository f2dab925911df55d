// The one file of the library that reads the generated version.h, so that a new revision
// recompiles only this.
#include "output/prometheus_metrics.h"
#include "version.h"

namespace vmscope {

BuildInfo build_info() {
  return {VMSCOPE_VERSION, VMSCOPE_GIT_DESCRIBE, VMSCOPE_VMLINUX_KERNEL};
}

}  // namespace vmscope
