// OutputWriter: delivery order, flush on close, and that a stuck destination neither
// blocks the caller nor grows the queue without bound.
#include "output/output_writer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

namespace vmscope {
namespace {

using namespace std::chrono_literals;

// Records what it receives; can be held so that write() blocks until released.
class RecordingSink : public Sink {
 public:
  const std::string& url() const override { return url_; }
  void write(std::string_view lines) override {
    std::unique_lock lk(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return !held_; });
    received_ += lines;
    stats_.lines_written += static_cast<uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
  }
  void flush() override {
    std::lock_guard lk(mu_);
    flushed_ = true;
  }
  SinkStats stats() const override {
    std::lock_guard lk(mu_);
    return stats_;
  }
  void hold() {
    std::lock_guard lk(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lk(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  bool wait_entered() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, 5s, [&] { return entered_; });
  }
  std::string received() const {
    std::lock_guard lk(mu_);
    return received_;
  }
  bool flushed() const {
    std::lock_guard lk(mu_);
    return flushed_;
  }

 private:
  std::string url_ = "test://";
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, entered_ = false, flushed_ = false;
  std::string received_;
  SinkStats stats_;
};

TEST(OutputWriter, DeliversInOrderToEverySinkAndFlushesOnClose) {
  auto a = std::make_unique<RecordingSink>();
  auto b = std::make_unique<RecordingSink>();
  RecordingSink *ra = a.get(), *rb = b.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(a));
  sinks.push_back(std::move(b));
  OutputWriter w(std::move(sinks));
  std::string want;
  for (int i = 0; i < 100; ++i) {
    std::string line = "m v=" + std::to_string(i) + "i\n";
    want += line;
    w.write(line);
  }
  w.close();
  EXPECT_EQ(ra->received(), want);
  EXPECT_EQ(rb->received(), want);
  EXPECT_TRUE(ra->flushed() && rb->flushed());
  EXPECT_EQ(w.totals().lines_written, 200u);
  EXPECT_EQ(w.totals().lines_dropped, 0u);
}

TEST(OutputWriter, AStuckSinkNeitherBlocksWritesNorGrowsTheQueueUnbounded) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* s = sink.get();
  s->hold();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  OutputWriter w(std::move(sinks), /*max_queued_bytes=*/100);
  w.write("first 1i\n");
  ASSERT_TRUE(s->wait_entered());  // the writer thread is now stuck inside the sink
  auto writes = std::async(std::launch::async, [&] {
    for (int i = 0; i < 50; ++i) w.write("m v=" + std::to_string(i) + "i\n");  // ~10 B each
  });
  ASSERT_EQ(writes.wait_for(5s), std::future_status::ready) << "write() waited for the sink";
  s->release();
  w.close();
  // 50 lines of ~10 bytes do not fit 100 bytes of queue: the oldest went, counted.
  SinkStats t = w.totals();
  EXPECT_GT(t.lines_dropped, 0u);
  EXPECT_EQ(t.lines_written + t.lines_dropped, 51u);
  EXPECT_NE(s->received().find("m v=49i\n"), std::string::npos) << "the newest lines survive";
}

}  // namespace
}  // namespace vmscope
