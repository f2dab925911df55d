// User-space sums of the contract's counter lists (bpf/vmscope.h): each expands its list,
// so a counter added there is summed here with no change.
#pragma once

#include "vmscope.h"

namespace vmscope {

// a += b, counter by counter.
inline void add_counters(vs_net_counters& a, const vs_net_counters& b) {
#define VS_ADD_(field) a.field += b.field;
#define VS_ADD_ARRAY_(field, n) \
  for (int i = 0; i < (n); ++i) a.field[i] += b.field[i];
  VS_NET_COUNTERS(VS_ADD_, VS_ADD_ARRAY_)
#undef VS_ADD_ARRAY_
#undef VS_ADD_
}

// a += b, counter by counter.
inline void add_counters(vs_service_counters& a, const vs_service_counters& b) {
#define VS_ADD_(field) a.field += b.field;
  VS_SERVICE_COUNTERS(VS_ADD_)
#undef VS_ADD_
}

// a += b, both directions.
inline void add_counters(vs_dev_counters& a, const vs_dev_counters& b) {
  for (int d = 0; d < VS_DIR_COUNT; ++d) add_counters(a.dir[d], b.dir[d]);
}

// a += b, counter by counter.
inline void add_counters(vs_task_counters& a, const vs_task_counters& b) {
#define VS_ADD_(field, ...) a.field += b.field;
  VS_TASK_COUNTERS(VS_ADD_)
#undef VS_ADD_
}

}  // namespace vmscope
