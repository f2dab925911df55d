// The configuration as each component wants it.
#pragma once

#include "config/config.h"
#include "discover/inventory.h"
#include "discover/vm_processes.h"

namespace vmscope {

inline InventoryOptions inventory_options(const Config& c) {
  InventoryOptions o;
  o.naming.drop_path = c.drop_path;
  o.overrides = c.overrides;
  return o;
}

inline VmProcessOptions process_options(const Config& c) {
  VmProcessOptions o;
  o.naming.drop_path = c.drop_path;
  o.overrides = c.overrides;
  return o;
}

}  // namespace vmscope
