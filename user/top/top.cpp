#include "top/top.h"

#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent/engine.h"
#include "agent/options.h"
#include "common/event_fds.h"
#include "top/top_model.h"
#include "top/top_screen.h"
#include "top/top_text.h"

namespace vmscope {
namespace {

// While the screen is up, log messages would scribble over it: they are kept instead,
// and the warnings and errors among them printed once the terminal is back.
class LogsHeldBack {
 public:
  LogsHeldBack() : held_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200)) {
    held_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    std::swap(spdlog::default_logger()->sinks(), sinks_);
    spdlog::default_logger()->sinks().push_back(held_);
  }
  ~LogsHeldBack() {
    std::swap(spdlog::default_logger()->sinks(), sinks_);
    for (const auto& m : held_->last_raw())
      if (m.level >= spdlog::level::warn)
        spdlog::log(m.level, "{}", std::string_view(m.payload.data(), m.payload.size()));
  }
  LogsHeldBack(const LogsHeldBack&) = delete;
  LogsHeldBack& operator=(const LogsHeldBack&) = delete;

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> held_;
  std::vector<spdlog::sink_ptr> sinks_;
};

class Top {
 public:
  Top(const TopOptions& opts, TopView view, std::unique_ptr<Engine> engine)
      : opts_(opts), engine_(std::move(engine)), view_(std::move(view)) {
    view_.mode = engine_->source_label();
  }

  Status run(std::FILE* out) {
    auto timer = make_timer(view_.delay_s);
    if (!timer) return timer.error();
    auto sigfd = make_stop_signalfd();
    if (!sigfd) return sigfd.error();
    std::unique_ptr<TopScreen> screen;
    std::optional<LogsHeldBack> held;
    if (!opts_.batch) {
      held.emplace();
      auto s = TopScreen::open();
      if (!s) return s.error();
      screen = std::move(*s);
    }
    if (auto st = engine_->start(); !st) return st;
    // The baseline: rates need two samples.
    sample();
    if (screen) screen->draw(model_, view_);

    pollfd fds[5] = {{timer->get(), POLLIN, 0},
                     {sigfd->get(), POLLIN, 0},
                     {engine_->link_events_fd(), POLLIN, 0},
                     {engine_->proc_events_fd(), POLLIN, 0},
                     {screen ? STDIN_FILENO : -1, POLLIN, 0}};
    uint64_t shown = 0;
    Status result;
    while (opts_.iterations == 0 || shown < opts_.iterations) {
      if (poll(fds, 5, -1) < 0) {
        if (errno != EINTR) {
          result = Error::from_errno("poll", errno);
          break;
        }
        // A signal (SIGWINCH): ncurses queues KEY_RESIZE for the next key read. The
        // other revents still hold the last poll's results.
        for (pollfd& p : fds) p.revents = 0;
        if (screen) fds[4].revents = POLLIN;
      }
      if (fds[1].revents) break;
      if (fds[2].revents) engine_->on_link_events();
      if (fds[3].revents) model_.add_events(engine_->poll_events());
      if (fds[4].revents && screen) {
        TopScreen::Action a = screen->handle_keys(view_, model_);
        if (a == TopScreen::Action::kQuit) break;
        if (a == TopScreen::Action::kDelayChanged) {
          if (auto st = set_timer(timer->get(), view_.delay_s); !st)
            spdlog::warn("{}", st.error().message);
        }
        if (a != TopScreen::Action::kNone) screen->draw(model_, view_);
      }
      if (fds[0].revents) {
        uint64_t expirations = 0;
        if (read(timer->get(), &expirations, sizeof(expirations)) != sizeof(expirations)) continue;
        // Paused: the picture stays; the first sample after it measures over the pause.
        if (view_.paused) continue;
        sample();
        ++shown;
        if (screen) {
          screen->draw(model_, view_);
        } else {
          std::fputs(batch_snapshot(model_.frame(), view_, model_.events()).c_str(), out);
          std::fputc('\n', out);
          std::fflush(out);
        }
      }
    }
    screen.reset();  // the terminal back before anything else is printed
    held.reset();
    engine_->detach_all();
    return result;
  }

 private:
  void sample() {
    engine_->sample(sample_);
    model_.update(sample_);
  }

  TopOptions opts_;
  std::unique_ptr<Engine> engine_;
  TickSample sample_;
  TopModel model_;
  TopView view_;
};

}  // namespace

Status run_top(const Config& config, const TopOptions& opts, std::FILE* out) {
  if (auto st = block_stop_signals(); !st) return st;
  auto engine = Engine::create(engine_options(config),
                               opts.shared ? SourceChoice::kViewer : SourceChoice::kOwn);
  if (!engine) return engine.error();
  TopView view;
  view.sort = opts.sort;
  view.filter = opts.filter;
  view.delay_s = config.interval_s;
  Top top(opts, std::move(view), std::move(*engine));
  return top.run(out);
}

}  // namespace vmscope
