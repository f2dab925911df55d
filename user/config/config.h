// Agent configuration: CLI11 flags over an optional TOML file (toml++); flags win.
// A leaf: it holds values of lower layers (attach mode, name overrides) and top's sort
// keys, and includes nothing above itself. Each front end turns it into the small
// options of its components (agent/options.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attach/attach_mode.h"
#include "common/result.h"
#include "config/sort_key.h"
#include "discover/naming.h"
#include "drain/slot_capacity.h"

namespace vmscope {

struct Config {
  double interval_s = 1.0;
  uint64_t count = 0;                // ticks before a clean exit; 0 = run until signalled
  std::vector<std::string> outputs;  // sink URLs; empty means stdout ("-")
  std::string log_level = "info";
  bool drop_path = true;  // albatross default; --no-drop-path keeps "a:b"
  AttachMode attach_mode = AttachMode::kAuto;
  // VM taps and bridges the network counters can hold (the slot capacity), fixed at start;
  // 0 = from the host (twice its links, at least 1024-8192 by CPU count).
  uint32_t net_slots = 0;
  std::string http_username, http_password;
  // InfluxDB 2.x/3.x: [http] token, or VMSCOPE_INFLUX_TOKEN (wins; never a flag, which ps
  // shows). tls_ca_file: [http] tls_ca_file or --tls-ca-file, the CA bundle of https outputs.
  std::string http_token, tls_ca_file;
  // The Prometheus endpoint's ADDR:PORT (e.g. 127.0.0.1:9847); empty: nothing listens.
  std::string listen;
  std::vector<NameOverride> overrides;
  // Each output's on-disk spool for outages: SPOOL_DIR/<hash of the output's URL>, at most
  // spool_max_bytes each (0: no spool). 512 MiB holds a 5-minute outage at 1,000 VMs
  // more than 4 times over even when no counter compresses (bench/RESULTS.md, outage).
  std::string spool_dir = "/var/lib/vmscope/spool";
  uint64_t spool_max_bytes = uint64_t{512} << 20;
  // Many hosts (README): [tags] / --tag K=V on every line of every output and every /metrics
  // series; host=<hostname> on http(s) outputs and /metrics (Telegraf adds its own to what
  // it forwards) unless host_tag = false / --no-host-tag. Plain values: a reload swaps them.
  std::map<std::string, std::string> tags;
  bool host_tag = true;
  std::string hostname;     // hostname / --hostname; empty: gethostname()
  std::string config_file;  // --config: what a reload reads again; empty: none

  bool operator==(const Config&) const = default;
};

enum class Command { kRun, kList, kTop, kCheck, kCleanup, kVersion };

// `vmscope top`: the interval is the config's; these are the view's own settings.
struct TopOptions {
  bool batch = false;       // -b: plain-text snapshots on stdout instead of the screen
  uint64_t iterations = 0;  // -n: snapshots before exiting; 0 = until quit
  SortKey sort = SortKey::kCpu;
  std::string filter;
  bool shared = true;  // read a running `vmscope run`'s pinned maps when there is one
};

struct CommandLine {
  Command command = Command::kRun;
  Config config;
  TopOptions top;
  bool cleanup_all_namespaces = false;  // cleanup: every namespace with kept state
};

// What main should do: run a command, or exit with a code after printing message
// (help text on stdout for code 0, one-line error on stderr for code 2).
struct ParseOutcome {
  std::optional<CommandLine> cli;
  int exit_code = 0;
  std::string message;
};

ParseOutcome parse_command_line(const std::vector<std::string>& args);

// TOML text over base (the defaults); used for --config FILE. Errors name the key.
Result<Config> apply_toml(std::string_view toml_text, std::string_view source, Config base);

Status validate(const Config& c);

// The environment variable that carries the InfluxDB token.
inline constexpr const char* kTokenEnv = "VMSCOPE_INFLUX_TOKEN";
// SIGHUP: the configuration to run with from now, from the command line parsed again
// (the file read anew, the flags given at start over it). Keys that only a restart
// applies (attach, net_slots, spool.dir, spool.max_size) keep their running values.
struct Reload {
  Config config;
  std::vector<std::string> changed;  // applied now: "interval 1s -> 0.5s", "outputs +URL -URL"
  std::vector<std::string> restart;  // changed in the file, applied at the next start
};
Result<Reload> reload_config(const std::vector<std::string>& args, const Config& running);
// The comparison of reload_config, on a parsed configuration.
Reload plan_reload(const Config& running, Config next);

// "512MiB", "2G", "1048576", "0": bytes, with an optional binary suffix K/KiB, M/MiB, G/GiB.
Result<uint64_t> parse_size(std::string_view text);

}  // namespace vmscope
