// Command line and TOML configuration: defaults, precedence (flags win), and the exact
// one-line errors an operator sees for bad input.
#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "config/sort_key.h"

namespace vmscope {
namespace {

ParseOutcome parse(std::vector<std::string> args) {
  args.insert(args.begin(), "vmscope");
  return parse_command_line(args);
}

TEST(ConfigCli, RunDefaults) {
  auto out = parse({"run"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->command, Command::kRun);
  const Config& c = out.cli->config;
  EXPECT_DOUBLE_EQ(c.interval_s, 1.0);
  EXPECT_EQ(c.count, 0u);
  EXPECT_EQ(c.outputs, std::vector<std::string>{"-"});
  EXPECT_TRUE(c.drop_path);
  EXPECT_EQ(c.attach_mode, AttachMode::kAuto);
  EXPECT_EQ(c.net_slots, 0u);  // from the host
}

TEST(ConfigCli, NetSlotsFlag) {
  auto out = parse({"run", "--net-slots", "20480"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.net_slots, 20480u);
  out = parse({"top", "--net-slots", "64"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.net_slots, 64u);
}

// The default follows the links (twice, in steps of 1024) above a floor that keeps the
// per-CPU net_stats within 32 MiB: 8192 slots on small hosts, 1024 on very large ones.
TEST(SlotCapacity, DefaultFromLinksAndCpus) {
  EXPECT_EQ(default_slot_capacity(10, 2), 8192u);
  EXPECT_EQ(default_slot_capacity(4095, 2), 8192u);
  EXPECT_EQ(default_slot_capacity(10011, 2), 20480u);  // 10,000 taps on 10 bridges and lo
  EXPECT_EQ(default_slot_capacity(10, 28), 8192u);
  EXPECT_EQ(default_slot_capacity(10, 64), 3072u);
  EXPECT_EQ(default_slot_capacity(10, 256), 1024u);
  EXPECT_EQ(default_slot_capacity(10, 4096), 1024u);
  EXPECT_EQ(default_slot_capacity(10011, 256), 20480u);
  EXPECT_EQ(default_slot_capacity(4'000'000, 2), kMaxSlots);
  for (uint32_t cpus : {1u, 2u, 28u, 64u, 200u})  // the floor's per-CPU counters: <= 32 MiB
    EXPECT_LE(uint64_t{default_slot_capacity(0, cpus)} * cpus * sizeof(vs_dev_counters),
              32ull << 20);
}

TEST(ConfigCli, RunFlags) {
  auto out =
      parse({"run", "--interval", "0.5", "--count", "3", "--output", "-", "--output",
             "tcp://127.0.0.1", "--attach", "clsact", "--no-drop-path", "--log-level", "debug"});
  ASSERT_TRUE(out.cli) << out.message;
  const Config& c = out.cli->config;
  EXPECT_DOUBLE_EQ(c.interval_s, 0.5);
  EXPECT_EQ(c.count, 3u);
  EXPECT_EQ(c.outputs, (std::vector<std::string>{"-", "tcp://127.0.0.1"}));
  EXPECT_EQ(c.attach_mode, AttachMode::kClsact);
  EXPECT_FALSE(c.drop_path);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(ConfigCli, List) {
  auto out = parse({"list", "--no-drop-path"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->command, Command::kList);
  EXPECT_FALSE(out.cli->config.drop_path);
}

TEST(ConfigCli, HelpExitsZero) {
  auto out = parse({"run", "--help"});
  EXPECT_FALSE(out.cli);
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_NE(out.message.find("--interval"), std::string::npos);
}

struct BadArgs {
  std::vector<std::string> args;
  std::string message;
};

class ConfigCliErrors : public ::testing::TestWithParam<BadArgs> {};

TEST_P(ConfigCliErrors, OneLineErrorExit2) {
  auto out = parse(GetParam().args);
  EXPECT_FALSE(out.cli);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.message, GetParam().message);
  EXPECT_EQ(out.message.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigCliErrors,
    ::testing::Values(
        BadArgs{{}, "vmscope: A subcommand is required"},
        BadArgs{{"walk"}, "vmscope: The following argument was not expected: walk"},
        BadArgs{{"run", "--interval", "0"},
                "vmscope: interval 0: must be between 0.01 and 3600 seconds"},
        BadArgs{{"run", "--interval", "abc"}, "vmscope: Could not convert: --interval = abc"},
        BadArgs{{"run", "--count", "-1"}, "vmscope: --count -1: must be >= 0"},
        BadArgs{{"run", "--attach", "xdp"},
                "vmscope: --attach: attach mode \"xdp\": expected auto, tcx or clsact"},
        BadArgs{{"run", "--log-level", "loud"},
                "vmscope: log level \"loud\": expected trace, debug, info, warn, error, "
                "critical or off"},
        BadArgs{{"run", "--net-slots", "10"},
                "vmscope: --net-slots 10: must be 0 (from the host) or between 64 and 1048576"},
        BadArgs{{"top", "--net-slots", "2000000"},
                "vmscope: --net-slots 2000000: must be 0 (from the host) or between 64 and "
                "1048576"},
        BadArgs{{"run", "--net-slots", "-5"},
                "vmscope: --net-slots -5: must be 0 (from the host) or between 64 and 1048576"},
        BadArgs{{"run", "--net-slots", "many"}, "vmscope: Could not convert: --net-slots = many"},
        BadArgs{{"run", "--config", "/nonexistent/vmscope.toml"},
                "vmscope: --config: File does not exist: /nonexistent/vmscope.toml"},
        BadArgs{{"run", "--spool-max-size", "12X"},
                "vmscope: --spool-max-size: size \"12X\": expected bytes with an optional K, "
                "KiB, M, MiB, G or GiB suffix"},
        BadArgs{{"run", "--spool-max-size", "-1"},
                "vmscope: --spool-max-size: size \"-1\": expected bytes with an optional K, "
                "KiB, M, MiB, G or GiB suffix"},
        BadArgs{{"run", "--spool-max-size", "1000"},
                "vmscope: spool max size 1000 bytes: must be 0 (no spool) or at least 1MiB"},
        BadArgs{{"run", "--spool-dir", "spool"},
                "vmscope: spool dir \"spool\": must be an absolute path"},
        BadArgs{{"run", "--tag", "dc"}, "vmscope: --tag \"dc\": expected KEY=VALUE"},
        BadArgs{{"run", "--hostname", "a\\"},
                "vmscope: hostname \"a\\\": no control characters, no final backslash"},
        BadArgs{{"run", "--tag", "dc="}, "vmscope: tag \"dc\": empty value"},
        BadArgs{{"run", "--tag", "vm=x"}, "vmscope: tag \"vm\": vmscope writes this key itself"},
        BadArgs{{"run", "--tag", "host=x"},
                "vmscope: tag \"host\": vmscope writes host itself (set hostname / --hostname)"},
        BadArgs{{"run", "--tag", "a-b=x"},
                "vmscope: tag \"a-b\": a key is a letter or _ followed by letters, digits or _"}));

// Many hosts: [tags], host_tag and hostname in the file; --tag adds to and overrides the
// file's tags, --no-host-tag and --hostname override the file.
TEST(ConfigCli, TagsFromFileAndFlags) {
  auto d = parse({"run"});
  ASSERT_TRUE(d.cli) << d.message;
  EXPECT_TRUE(d.cli->config.tags.empty());
  EXPECT_TRUE(d.cli->config.host_tag);
  EXPECT_EQ(d.cli->config.hostname, "");  // gethostname() when the agent starts

  const std::string path = ::testing::TempDir() + "/vmscope-tags.toml";
  {
    std::ofstream f(path);
    f << "hostname = \"node-1\"\n[tags]\ndc = \"fra 1\"\nrack = \"r7\"\n";
  }
  auto file = parse({"run", "--config", path});
  ASSERT_TRUE(file.cli) << file.message;
  EXPECT_EQ(file.cli->config.tags,
            (std::map<std::string, std::string>{{"dc", "fra 1"}, {"rack", "r7"}}));
  EXPECT_EQ(file.cli->config.hostname, "node-1");
  EXPECT_TRUE(file.cli->config.host_tag);

  auto flags = parse({"run", "--config", path, "--tag", "rack=r9", "--tag", "env=a=b", "--hostname",
                      "n2", "--no-host-tag"});
  ASSERT_TRUE(flags.cli) << flags.message;
  EXPECT_EQ(flags.cli->config.tags,
            (std::map<std::string, std::string>{{"dc", "fra 1"}, {"env", "a=b"}, {"rack", "r9"}}));
  EXPECT_EQ(flags.cli->config.hostname, "n2");
  EXPECT_FALSE(flags.cli->config.host_tag);
  std::remove(path.c_str());
}

TEST(ConfigCli, SpoolDefaultsAndFlags) {
  auto out = parse({"run"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.spool_dir, "/var/lib/vmscope/spool");
  EXPECT_EQ(out.cli->config.spool_max_bytes, uint64_t{512} << 20);
  out = parse({"run", "--spool-dir", "/srv/spool", "--spool-max-size", "2GiB"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.spool_dir, "/srv/spool");
  EXPECT_EQ(out.cli->config.spool_max_bytes, uint64_t{2} << 30);
  out = parse({"run", "--spool-max-size", "0"});  // no spool
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.spool_max_bytes, 0u);
}

TEST(ConfigSize, Units) {
  EXPECT_EQ(*parse_size("0"), 0u);
  EXPECT_EQ(*parse_size("1048576"), 1u << 20);
  EXPECT_EQ(*parse_size("64K"), 64u << 10);
  EXPECT_EQ(*parse_size("512MiB"), 512u << 20);
  EXPECT_EQ(*parse_size("3G"), uint64_t{3} << 30);
  for (const char* bad : {"", "MiB", "1.5G", "1 GiB", "1TB", "12x", "9999999999999999"})
    EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(ConfigCommands, VersionAndCheck) {
  auto v = parse({"--version"});
  ASSERT_TRUE(v.cli) << v.message;
  EXPECT_EQ(v.cli->command, Command::kVersion);
  auto c = parse({"check"});
  ASSERT_TRUE(c.cli) << c.message;
  EXPECT_EQ(c.cli->command, Command::kCheck);
  EXPECT_EQ(c.cli->config.log_level, "warn");  // its lines are the output
  auto cl = parse({"check", "--log-level", "debug"});
  ASSERT_TRUE(cl.cli) << cl.message;
  EXPECT_EQ(cl.cli->config.log_level, "debug");
}

TEST(ConfigTop, Defaults) {
  auto out = parse({"top"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->command, Command::kTop);
  const TopOptions& t = out.cli->top;
  EXPECT_FALSE(t.batch);
  EXPECT_EQ(t.iterations, 0u);
  EXPECT_EQ(t.sort, SortKey::kCpu);
  EXPECT_EQ(t.filter, "");
  EXPECT_TRUE(t.shared);
  EXPECT_DOUBLE_EQ(out.cli->config.interval_s, 1.0);
  EXPECT_EQ(out.cli->config.log_level, "warn");  // top's output is the screen
}

TEST(ConfigTop, Flags) {
  auto out = parse({"top", "-b", "-n", "3", "-d", "0.5", "--sort", "mem", "--filter", "web"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->command, Command::kTop);
  const TopOptions& t = out.cli->top;
  EXPECT_TRUE(t.batch);
  EXPECT_EQ(t.iterations, 3u);
  EXPECT_EQ(t.sort, SortKey::kMem);
  EXPECT_EQ(t.filter, "web");
  EXPECT_TRUE(t.shared);
  EXPECT_DOUBLE_EQ(out.cli->config.interval_s, 0.5);
  EXPECT_EQ(out.cli->config.log_level, "warn");
}

TEST(ConfigTop, LongFlags) {
  auto out = parse({"top", "--batch", "--iterations", "2", "--delay", "10", "--own", "--attach",
                    "tcx", "--no-drop-path"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_TRUE(out.cli->top.batch);
  EXPECT_EQ(out.cli->top.iterations, 2u);
  EXPECT_FALSE(out.cli->top.shared);  // --own: attach its own programs
  EXPECT_DOUBLE_EQ(out.cli->config.interval_s, 10);
  EXPECT_EQ(out.cli->config.attach_mode, AttachMode::kTcx);
  EXPECT_FALSE(out.cli->config.drop_path);
}

TEST(ConfigTop, EverySortKeyAccepted) {
  for (SortKey k : sort_keys()) {
    auto out = parse({"top", "--sort", std::string(sort_key_name(k))});
    ASSERT_TRUE(out.cli) << sort_key_name(k) << ": " << out.message;
    EXPECT_EQ(out.cli->top.sort, k);
  }
}

TEST(ConfigTop, LogLevelFlagWins) {
  auto out = parse({"top", "--log-level", "info"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.log_level, "info");
  out = parse({"--log-level", "debug", "top"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.log_level, "debug");
  // Only top defaults to warn.
  out = parse({"run"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.log_level, "info");
}

TEST(ConfigTop, BadSortListsTheKeys) {
  auto out = parse({"top", "--sort", "bogus"});
  EXPECT_FALSE(out.cli);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.message.rfind("vmscope: --sort bogus: expected one of ", 0), 0u) << out.message;
  EXPECT_EQ(out.message.find('\n'), std::string::npos);
  for (SortKey k : sort_keys())
    EXPECT_NE(out.message.find(std::string(sort_key_name(k))), std::string::npos)
        << sort_key_name(k) << " missing from: " << out.message;
}

INSTANTIATE_TEST_SUITE_P(
    Top, ConfigCliErrors,
    ::testing::Values(
        BadArgs{{"top", "-d", "0"}, "vmscope: --delay 0: must be between 0.1 and 3600 seconds"},
        BadArgs{{"top", "--delay", "0.05"},
                "vmscope: --delay 0.05: must be between 0.1 and 3600 seconds"},
        BadArgs{{"top", "-d", "3601"},
                "vmscope: --delay 3601: must be between 0.1 and 3600 seconds"},
        BadArgs{{"top", "-n", "-1"}, "vmscope: --iterations -1: must be >= 0"},
        BadArgs{{"top", "--attach", "xdp"},
                "vmscope: --attach: attach mode \"xdp\": expected auto, tcx or clsact"}));

TEST(ConfigToml, AllKeys) {
  auto c = apply_toml(R"(
interval = 2
count = 5
outputs = ["tcp://127.0.0.1:8094", "-"]
log_level = "warn"
drop_path = false
attach = "tcx"
net_slots = 30000
[http]
username = "u"
password = "p"
[spool]
dir = "/srv/vmscope"
max_size = "1GiB"
[[override]]
tap = "vmmtap7"
name = "legacy"
bridge = "br9"
[[override]]
process = "my-vmm --id=\\w+"
name = "other"
)",
                      "test.toml", Config{});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_DOUBLE_EQ(c->interval_s, 2.0);
  EXPECT_EQ(c->count, 5u);
  EXPECT_EQ(c->outputs.size(), 2u);
  EXPECT_EQ(c->log_level, "warn");
  EXPECT_FALSE(c->drop_path);
  EXPECT_EQ(c->attach_mode, AttachMode::kTcx);
  EXPECT_EQ(c->net_slots, 30000u);
  EXPECT_EQ(c->http_username, "u");
  EXPECT_EQ(c->http_password, "p");
  EXPECT_EQ(c->spool_dir, "/srv/vmscope");
  EXPECT_EQ(c->spool_max_bytes, uint64_t{1} << 30);
  ASSERT_EQ(c->overrides.size(), 2u);
  EXPECT_EQ(c->overrides[0].tap, "vmmtap7");
  EXPECT_EQ(c->overrides[0].bridge, "br9");
  EXPECT_EQ(c->overrides[1].process_regex, "my-vmm --id=\\w+");
}

struct BadToml {
  std::string text;
  std::string message;
};

class ConfigTomlErrors : public ::testing::TestWithParam<BadToml> {};

TEST_P(ConfigTomlErrors, NamesTheKey) {
  auto c = apply_toml(GetParam().text, "f.toml", Config{});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigTomlErrors,
    ::testing::Values(
        BadToml{"intervall = 1", "f.toml: unknown key \"intervall\""},
        BadToml{"interval = \"1s\"", "f.toml: key \"interval\" must be a number"},
        BadToml{"interval = -1", "f.toml: interval -1: must be between 0.01 and 3600 seconds"},
        BadToml{"count = -2", "f.toml: key \"count\" must be >= 0"},
        BadToml{"drop_path = 1", "f.toml: key \"drop_path\" has the wrong type"},
        BadToml{"outputs = \"-\"", "f.toml: key \"outputs\" must be an array of URLs"},
        BadToml{"outputs = [1]", "f.toml: key \"outputs\" must hold strings"},
        BadToml{"attach = \"xdp\"", "f.toml: attach mode \"xdp\": expected auto, tcx or clsact"},
        BadToml{"net_slots = 8",
                "f.toml: key \"net_slots\" 8: must be 0 (from the host) or between 64 and "
                "1048576"},
        BadToml{"net_slots = 5000000",
                "f.toml: key \"net_slots\" 5000000: must be 0 (from the host) or between 64 "
                "and 1048576"},
        BadToml{"net_slots = \"auto\"", "f.toml: key \"net_slots\" has the wrong type"},
        BadToml{"[http]\nuser = \"x\"", "f.toml: unknown key \"http.user\""},
        BadToml{"[[override]]\nname = \"x\"\ntaps = \"y\"",
                "f.toml: unknown key \"override.taps\""},
        BadToml{"[spool]\nsize = 1", "f.toml: unknown key \"spool.size\""},
        BadToml{"[spool]\nmax_size = \"lots\"",
                "f.toml: key \"spool.max_size\": size \"lots\": expected bytes with an optional "
                "K, KiB, M, MiB, G or GiB suffix"},
        BadToml{"[spool]\nmax_size = -5", "f.toml: key \"spool.max_size\" must be >= 0"},
        BadToml{"tags = \"dc=fra\"", "f.toml: key \"tags\" must be a table"},
        BadToml{"[tags]\ndc = 1", "f.toml: tag \"dc\" must be a string"},
        BadToml{"[tags]\nbridge = \"b\"", "f.toml: tag \"bridge\": vmscope writes this key itself"},
        BadToml{"[tags]\ndc = \"\"", "f.toml: tag \"dc\": empty value"},
        BadToml{"host_tag = \"no\"", "f.toml: key \"host_tag\" has the wrong type"},
        BadToml{"[spool]\nmax_size = 1.5",
                "f.toml: key \"spool.max_size\" must be a size like \"512MiB\" or bytes"},
        BadToml{"[spool]\ndir = \"rel\"", "f.toml: spool dir \"rel\": must be an absolute path"},
        BadToml{"interval = ",
                "f.toml:1:12: Error while parsing key-value pair: encountered end-of-file"}));

TEST(ConfigFile, FlagsWinOverFile) {
  char path[] = "/tmp/vmscope-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(path);
    f << "interval = 5\ncount = 9\noutputs = [\"udp://127.0.0.1:8094\"]\n";
  }
  auto out = parse({"run", "--config", path, "--interval", "0.25"});
  std::remove(path);
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_DOUBLE_EQ(out.cli->config.interval_s, 0.25);  // flag
  EXPECT_EQ(out.cli->config.count, 9u);                // file
  EXPECT_EQ(out.cli->config.outputs, std::vector<std::string>{"udp://127.0.0.1:8094"});
}

TEST(ConfigFile, BadFileIsOneLineError) {
  char path[] = "/tmp/vmscope-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(path);
    f << "[[override]]\nname = \"x\"\nprocess = \"(\"\n";
  }
  auto out = parse({"run", "--config", path});
  std::remove(path);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.message.rfind("vmscope: " + std::string(path) + ": override for \"x\": ", 0), 0u)
      << out.message;
  EXPECT_EQ(out.message.find('\n'), std::string::npos);
}

// The Prometheus endpoint: off unless asked, from the flag or the file (the flag wins).
TEST(ConfigListen, OffByDefaultFlagAndFile) {
  auto out = parse({"run"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.listen, "");
  out = parse({"run", "--listen", "127.0.0.1:9847"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.listen, "127.0.0.1:9847");
  auto c = apply_toml("listen = \"[::1]:9847\"", "f.toml", Config{});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen, "[::1]:9847");
  c = apply_toml("listen = \"localhost:9847\"", "f.toml", Config{});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "f.toml: listen address \"localhost:9847\": not an IPv4 address (IPv6 goes in "
            "brackets) (expected ADDR:PORT, e.g. 127.0.0.1:9847 or [::1]:9847)");
  c = apply_toml("listen = 9847", "f.toml", Config{});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "f.toml: key \"listen\" has the wrong type");
  out = parse({"run", "--listen", "9847"});
  EXPECT_FALSE(out.cli);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.message,
            "vmscope: listen address \"9847\": no port (expected ADDR:PORT, e.g. "
            "127.0.0.1:9847 or [::1]:9847)");
}

// InfluxDB 2.x/3.x: the token from [http] or the environment (which wins), never a flag;
// the CA bundle from [http] or --tls-ca-file. A bad token is an error that does not show it.
TEST(ConfigHttp, TokenFromFileOrEnvironmentCaFromFileOrFlag) {
  unsetenv(kTokenEnv);
  auto c =
      apply_toml("[http]\ntoken = \"t0k\"\ntls_ca_file = \"/etc/hostname\"", "f.toml", Config{});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_token, "t0k");
  EXPECT_EQ(c->tls_ca_file, "/etc/hostname");

  auto out = parse({"run", "--tls-ca-file", "/etc/hostname"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.tls_ca_file, "/etc/hostname");
  EXPECT_EQ(out.cli->config.http_token, "");
  EXPECT_EQ(parse({"run", "--token", "x"}).exit_code, 2) << "no flag may carry the token";

  setenv(kTokenEnv, "from-env", 1);
  out = parse({"run"});
  ASSERT_TRUE(out.cli) << out.message;
  EXPECT_EQ(out.cli->config.http_token, "from-env");
  setenv(kTokenEnv, "two words", 1);
  out = parse({"run"});
  unsetenv(kTokenEnv);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.message,
            "vmscope: http token (config http.token or VMSCOPE_INFLUX_TOKEN): contains a space "
            "or control character");
  EXPECT_EQ(out.message.find("words"), std::string::npos);

  c = apply_toml("[http]\ntoken = 5", "f.toml", Config{});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "f.toml: key \"token\" has the wrong type");
}

// Reload (SIGHUP): the command line parsed again; what changed, and restart-only keys
// kept at their running values.
struct ReloadFile {
  ReloadFile() {
    char tmpl[] = "/tmp/vmscope-reload-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path = tmpl;
  }
  ~ReloadFile() { std::remove(path.c_str()); }
  void write(const std::string& text) const { std::ofstream(path) << text; }
  std::string path;
};

TEST(ConfigReload, ChangesAreListedAndFlagsStillWin) {
  ReloadFile f;
  f.write("interval = 1\nlog_level = \"info\"\noutputs = [\"tcp://127.0.0.1:8094\"]\n");
  const std::vector<std::string> args = {"vmscope", "run", "--config", f.path, "--count", "7"};
  auto start = parse_command_line(args);
  ASSERT_TRUE(start.cli) << start.message;
  EXPECT_EQ(start.cli->config.config_file, f.path);

  auto same = reload_config(args, start.cli->config);
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_TRUE(same->changed.empty());
  EXPECT_TRUE(same->restart.empty());
  EXPECT_EQ(same->config, start.cli->config);

  f.write(
      "interval = 0.5\nlog_level = \"debug\"\ncount = 3\n"
      "outputs = [\"tcp://127.0.0.1:8094\", \"udp://127.0.0.1:8094\"]\n"
      "[[override]]\ntap = \"t0\"\nname = \"x\"\n");
  auto next = reload_config(args, start.cli->config);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_DOUBLE_EQ(next->config.interval_s, 0.5);
  EXPECT_EQ(next->config.log_level, "debug");
  EXPECT_EQ(next->config.count, 7u) << "--count given at start wins over the file";
  EXPECT_EQ(next->changed, (std::vector<std::string>{"interval 1 -> 0.5", "log_level info -> debug",
                                                     "outputs (added udp://127.0.0.1:8094)",
                                                     "override (0 -> 1 entries)"}));
  EXPECT_TRUE(next->restart.empty());
}

TEST(ConfigReload, RestartOnlyKeysKeepTheirRunningValues) {
  Config running;
  running.outputs = {"-"};
  Config next = running;
  next.attach_mode = AttachMode::kClsact;
  next.net_slots = 4096;
  next.spool_dir = "/elsewhere";
  next.spool_max_bytes = 2 << 20;
  next.outputs = {"udp://127.0.0.1:1"};
  next.http_password = "secret";
  Reload r = plan_reload(running, next);
  EXPECT_EQ(r.config.attach_mode, AttachMode::kAuto);
  EXPECT_EQ(r.config.net_slots, 0u);
  EXPECT_EQ(r.config.spool_dir, running.spool_dir);
  EXPECT_EQ(r.config.spool_max_bytes, running.spool_max_bytes);
  EXPECT_EQ(r.config.outputs, next.outputs);
  EXPECT_EQ(r.restart,
            (std::vector<std::string>{"attach (running with auto)", "net_slots (running with 0)",
                                      "spool.dir (running with /var/lib/vmscope/spool)",
                                      "spool.max_size (running with 536870912)"}));
  EXPECT_EQ(r.changed, (std::vector<std::string>{"outputs (added udp://127.0.0.1:1; removed -)",
                                                 "http credentials"}));
  for (const auto& c : r.changed) EXPECT_EQ(c.find("secret"), std::string::npos);
}

TEST(ConfigReload, ABadFileIsOneErrorNamingTheFile) {
  ReloadFile f;
  f.write("interval = 1\n");
  const std::vector<std::string> args = {"vmscope", "run", "--config", f.path};
  auto start = parse_command_line(args);
  ASSERT_TRUE(start.cli) << start.message;
  for (const std::string bad : {"interval = ", "interval = 0", "outputs = 3", "color = 1"}) {
    f.write(bad + "\n");
    auto r = reload_config(args, start.cli->config);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message.rfind(f.path, 0), 0u) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  std::remove(f.path.c_str());
  auto gone = reload_config(args, start.cli->config);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find(f.path), std::string::npos) << gone.error().message;
}

}  // namespace
}  // namespace vmscope
