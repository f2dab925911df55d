// The agent's loop: link events attach and detach at once; every interval one tick
// resolves new owners, drains the maps, encodes one batch and hands it to every sink.
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "output/sink.h"

namespace vmscope {

// Runs `vmscope run` until config.count ticks are done or SIGINT/SIGTERM arrives.
// Everything it attached is detached before it returns, also on error. SIGHUP reloads:
// args (the command line) is parsed again, re-reading its config file.
Status run_agent(const Config& config, std::vector<std::unique_ptr<Sink>> sinks,
                 std::vector<std::string> args);

// `vmscope list`: one line per VM found on the host right now.
Status list_vms(const Config& config, std::FILE* out);

}  // namespace vmscope
