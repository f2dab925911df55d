// The configuration sliced once into what each component takes: the front ends
// (run_agent, run_top, list_vms) call these and pass the small structs down, so no
// component below them sees the Config.
#pragma once

#include "agent/engine.h"
#include "config/config.h"
#include "output/sink.h"

namespace vmscope {

inline EngineOptions engine_options(const Config& c) {
  EngineOptions o;
  o.attach_mode = c.attach_mode;
  o.net_slots = c.net_slots;
  o.inventory.naming.drop_path = c.drop_path;
  o.inventory.overrides = c.overrides;
  o.processes.naming.drop_path = c.drop_path;
  o.processes.overrides = c.overrides;
  return o;
}

// What every output's sink takes of the configuration (at start and at a reload).
inline SinkOptions sink_options(const Config& c) {
  SinkOptions o;
  o.http_username = c.http_username;
  o.http_password = c.http_password;
  o.http_token = c.http_token;
  o.tls_ca_file = c.tls_ca_file;
  return o;
}

}  // namespace vmscope
