#include "agent/agent.h"

#include <fmt/ranges.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>

#include "agent/engine.h"
#include "agent/host_check.h"
#include "agent/options.h"
#include "common/event_fds.h"
#include "output/metrics_server.h"
#include "output/net_lines.h"
#include "output/output_writer.h"
#include "output/proc_lines.h"
#include "output/self_lines.h"

namespace vmscope {
namespace {

// The tags of every output and of /metrics, from the config (output/output_tags.h).
OutputTags output_tags(const Config& config) {
  OutputTags t;
  t.tags = config.tags;
  if (config.host_tag) {
    t.host = config.hostname;
    if (t.host.empty()) {
      char buf[256] = {};
      gethostname(buf, sizeof(buf) - 1);
      t.host = buf;
    }
  }
  return t;
}

class Agent {
 public:
  // args: the command line, parsed again (file and flags) by a reload.
  Agent(const Config& config, std::vector<std::string> args,
        std::vector<std::unique_ptr<Sink>> sinks, std::unique_ptr<Engine> engine,
        std::unique_ptr<MetricsServer> metrics)
      : config_(config),
        args_(std::move(args)),
        metrics_(std::move(metrics)),
        output_(std::move(sinks), SpoolOptions{config.spool_dir, config.spool_max_bytes},
                output_tags(config)),
        engine_(std::move(engine)),
        kept_(running_kernel_task_counter_support()) {
    if (metrics_) metrics_->set_tags(output_tags(config));
    if (!kept_.cpu_wait)
      spdlog::warn(
          "this kernel keeps no scheduler statistics (CONFIG_SCHED_INFO): vm_cpu (run_delay, "
          "run_count) is not written");
    if (!kept_.io)
      spdlog::warn(
          "this kernel keeps no task I/O accounting (CONFIG_TASK_XACCT, "
          "CONFIG_TASK_IO_ACCOUNTING): vm_io is not written, inblock/outblock stay 0");
  }

  Status run() {
    if (auto st = engine_->start(); !st) return st;
    auto timer = make_timer(config_.interval_s);
    if (!timer) return timer.error();
    auto sigfd = make_stop_signalfd(/*reload=*/true);
    if (!sigfd) return sigfd.error();
    spdlog::info("vmscope running: interval {}s, {} output(s), {} tap(s) found", config_.interval_s,
                 output_.size(), engine_->inventory().taps().size());
    if (metrics_) spdlog::info("Prometheus metrics on http://{}/metrics", metrics_->address());

    pollfd fds[4] = {{timer->get(), POLLIN, 0},
                     {engine_->link_events_fd(), POLLIN, 0},
                     {sigfd->get(), POLLIN, 0},
                     {engine_->proc_events_fd(), POLLIN, 0}};
    uint64_t ticks = 0;
    Status result;
    // The first point goes out at once, not one interval after start: a restart leaves no
    // longer gap in the graphs than the restart itself.
    tick();
    ++ticks;
    while (config_.count == 0 || ticks < config_.count) {
      // Devices left to attach (a cold start at scale): attach more whenever idle.
      const int ready = poll(fds, 4, engine_->sync_pending() ? 0 : -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        result = Error::from_errno("poll", errno);
        break;
      }
      if (ready == 0) {
        engine_->continue_sync();
        continue;
      }
      if (fds[2].revents) {
        signalfd_siginfo si;
        const bool got = read(sigfd->get(), &si, sizeof(si)) == sizeof(si);
        // Between ticks, never inside one: the loop is where both happen.
        if (got && si.ssi_signo == SIGHUP) {
          reload(timer->get());
          continue;
        }
        if (got) spdlog::info("signal {}: stopping", strsignal(static_cast<int>(si.ssi_signo)));
        break;
      }
      if (fds[1].revents) engine_->on_link_events();
      if (fds[3].revents) on_proc_events();
      if (fds[0].revents) {
        uint64_t expirations = 0;
        if (read(timer->get(), &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
        tick();
        ++ticks;
      }
    }
    output_.close();  // delivers what is queued, flushes every sink
    engine_->detach_all();
    return result;
  }

 private:
  // VM starts and exits go out at once, stamped with when they happened.
  void on_proc_events() {
    std::vector<VmEvent> events = engine_->poll_events();
    if (events.empty()) return;
    batch_.clear();
    for (const VmEvent& ev : events) encode_vm_event(ev, batch_, kept_);
    write_all(batch_);
  }

  // Hands the lines to the writer threads; the next ones go into a buffer the writers
  // are done with (the same pages every tick), else a new one.
  // A tick's chunks may wait for the sinks until wait_until (OutputWriter::take_buffer);
  // other lines never wait.
  void write_all(std::string& lines, std::chrono::steady_clock::time_point wait_until = {}) {
    if (lines.empty()) return;
    output_.write(std::move(lines));
    lines = output_.take_buffer(wait_until);
    // A chunk overshoots kChunkBytes by one tap's or VM's lines at most: reserved once,
    // it never doubles on the way.
    if (lines.capacity() < kChunkBytes + kChunkSlack) lines.reserve(kChunkBytes + kChunkSlack);
  }

  // A tick's lines go out in chunks of about kChunkBytes, cut between two taps' or two
  // VMs' lines (ChunkPoint): at 10,000 VMs the tick never exists whole in memory (it is
  // ~20 MB), and the outputs send while the rest is encoded.
  struct TickChunks final : ChunkPoint {
    // A chunk waits for the sinks to take the earlier ones for a quarter of the interval
    // at most: a slow output paces the encoding, a stuck one delays the tick by that
    // much only.
    explicit TickChunks(Agent& a)
        : agent(a),
          wait_until(std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(a.config_.interval_s / 4))) {}
    void between(std::string& out) override {
      if (out.size() < kChunkBytes) return;
      bytes += out.size();
      agent.write_all(out, wait_until);
    }
    Agent& agent;
    const std::chrono::steady_clock::time_point wait_until;
    size_t bytes = 0;  // handed on so far
  };

  // SIGHUP: the command line parsed again (the file re-read, the flags over it), applied
  // without touching the kernel side or the drain's state. Outputs first: they are the
  // one part that can still fail (a sink cannot be made), and then nothing changes.
  void reload(int timer_fd) {
    const std::string& file = config_.config_file;
    const std::string what = file.empty() ? "reload (no --config file)" : "reload of " + file;
    auto planned = reload_config(args_, config_);
    if (!planned) {
      const std::string& m = planned.error().message;
      spdlog::error("{}: {}; running on with the previous configuration",
                    file.empty() || m.find(file) != std::string::npos ? "reload" : what, m);
      return;
    }
    const Config& next = planned->config;
    const bool renew = sink_options(next) != sink_options(config_);
    if (renew || next.outputs != config_.outputs) {
      const SinkOptions opts = sink_options(next);
      auto st = output_.reconfigure(next.outputs, renew,
                                    [&](const std::string& url) { return make_sink(url, opts); });
      if (!st) {
        spdlog::error("{}: {}; running on with the previous configuration", what,
                      st.error().message);
        return;
      }
    }
    if (next.interval_s != config_.interval_s) {
      // The next tick one new interval after the last one (at once if that is past).
      const double since_last = static_cast<double>(boottime_ns() - last_tick_ns_) / 1e9;
      if (auto st =
              set_timer(timer_fd, next.interval_s, std::max(0.0, next.interval_s - since_last));
          !st)
        spdlog::error("{}: {}", what, st.error().message);
    }
    if (next.drop_path != config_.drop_path || next.overrides != config_.overrides)
      engine_->set_naming(engine_options(next));
    if (next.listen != config_.listen) {
      metrics_.reset();  // the old address is free before the new one binds
      if (!next.listen.empty()) {
        auto started = MetricsServer::start(next.listen);
        if (started) metrics_ = std::move(*started);
        if (!started) spdlog::error("{}: /metrics is not served", started.error().message);
      }
    }
    // Tags last among the outputs' settings: the outputs a reconfigure added get them too.
    const OutputTags tags = output_tags(next);
    output_.set_tags(tags);
    if (metrics_) metrics_->set_tags(tags);
    // The line that says so is logged at the more verbose of the two levels.
    const auto level = spdlog::level::from_str(next.log_level);
    if (level < spdlog::get_level()) spdlog::set_level(level);
    config_ = next;
    spdlog::info("{}: {}", what,
                 planned->changed.empty() ? "nothing changed"
                                          : fmt::format("{}", fmt::join(planned->changed, ", ")));
    spdlog::set_level(level);
    if (!planned->restart.empty())
      spdlog::warn("{}: {} changed, which only a restart applies", what,
                   fmt::join(planned->restart, ", "));
  }

  void tick() {
    const int64_t started = boottime_ns();
    last_tick_ns_ = started;
    TickChunks chunks(*this);  // its wait for the sinks counts from the tick's start
    engine_->sample(sample_);
    const int64_t now = sample_.timestamp_ns;
    batch_.clear();
    size_t lines = 0, taps = 0, vms = 0;
    if (sample_.net) {
      lines += encode_net(*sample_.net, batch_, &chunks);
      taps = sample_.net->taps.size();
    }
    for (const VmEvent& ev : sample_.events) {
      encode_vm_event(ev, batch_, kept_);
      ++lines;
    }
    if (sample_.vms) {
      lines += encode_resources(*sample_.vms, now, batch_, kept_, &chunks);
      vms = sample_.vms->size();
    }
    const SelfMetrics self = self_metrics(started, lines, vms, taps);
    encode_self(self, now, batch_);
    output_.set_tick_bytes(chunks.bytes + batch_.size());
    write_all(batch_, chunks.wait_until);
    if (metrics_) metrics_->publish(sample_, self, kept_);
  }

  SelfMetrics self_metrics(int64_t started, size_t lines, size_t vms, size_t taps) {
    SelfMetrics m;
    m.lines = lines;
    m.vms = vms;
    m.taps = taps;
    SinkStats out = output_.totals();
    m.lines_written = out.lines_written;
    m.lines_dropped = out.lines_dropped;
    m.spool_bytes = out.spool_bytes;
    m.spool_batches = out.spool_batches;
    m.spool_dropped_batches = out.spool_dropped_batches;
    m.rss_bytes = own_rss_bytes();
    engine_->describe(m);
    m.tick_ns = static_cast<uint64_t>(boottime_ns() - started);
    return m;
  }

  Config config_;  // what runs now; a reload replaces it as a whole
  const std::vector<std::string> args_;
  int64_t last_tick_ns_ = 0;                // boottime
  std::unique_ptr<MetricsServer> metrics_;  // --listen; stopped after the output
  OutputWriter output_;
  std::unique_ptr<Engine> engine_;
  TickSample sample_;
  std::string batch_;
  TaskCounterSupport kept_;  // counters this kernel keeps (its config)
};

}  // namespace

Status run_agent(const Config& config, std::vector<std::unique_ptr<Sink>> sinks,
                 std::vector<std::string> args) {
  // What a host lacks is said in the words of `vmscope check`, before anything is loaded.
  const std::vector<CheckLine> checks = check_prerequisites();
  if (const CheckLine* failed = first_failure(checks))
    return Error::msg(format_check_line(*failed) + " (`vmscope check` lists every requirement)");
  for (const CheckLine& c : checks)
    if (!c.ok) spdlog::warn("{}", format_check_line(c));
  if (auto st = block_stop_signals(/*reload=*/true); !st) return st;
  auto engine = Engine::create(engine_options(config), SourceChoice::kPublish);
  if (!engine) return engine.error();
  // A port in use loses /metrics, not the other outputs: one line, and the agent runs on.
  std::unique_ptr<MetricsServer> metrics;
  if (!config.listen.empty()) {
    auto started = MetricsServer::start(config.listen);
    if (started) metrics = std::move(*started);
    if (!started) spdlog::error("{}: /metrics is not served", started.error().message);
  }
  Agent agent(config, std::move(args), std::move(sinks), std::move(*engine), std::move(metrics));
  return agent.run();
}

}  // namespace vmscope
