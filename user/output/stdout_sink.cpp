// Stdout sink ("-"): lines straight to stdout, for pipes and debugging. Never queues.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "output/sinks_impl.h"

namespace vmscope::sink_detail {
namespace {

class StdoutSink final : public Sink {
 public:
  const std::string& url() const override { return url_; }

  void write(std::string_view lines) override {
    if (lines.empty()) return;
    const size_t n = std::fwrite(lines.data(), 1, lines.size(), stdout);
    const bool ok = n == lines.size() && std::fflush(stdout) == 0;
    const size_t done = ok ? n : 0;  // after a failed flush nothing is known to have arrived
    stats_.bytes_written += done;
    stats_.lines_written += count_lines(lines.substr(0, done));
    stats_.lines_dropped += count_lines(lines.substr(done));
    if (ok) {
      failing_ = false;
    } else if (!failing_) {
      spdlog::warn("output -: write failed: {}", std::strerror(errno));
      failing_ = true;
    }
  }

  void flush() override { std::fflush(stdout); }

  SinkStats stats() const override { return stats_; }

 private:
  const std::string url_ = "-";
  bool failing_ = false;
  SinkStats stats_;
};

}  // namespace

std::unique_ptr<Sink> make_stdout_sink() {
  return std::make_unique<StdoutSink>();
}

}  // namespace vmscope::sink_detail
