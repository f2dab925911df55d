// OutputWriter: delivery order, flush on close, and that a stuck destination neither
// blocks the caller nor grows the queue without bound.
#include "output/output_writer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace vmscope {
namespace {

using namespace std::chrono_literals;

// Records what it receives; can be held so that write() blocks until released.
class RecordingSink : public Sink {
 public:
  explicit RecordingSink(std::string url = "test://") : url_(std::move(url)) {}
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
  std::string url_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, entered_ = false, flushed_ = false;
  std::string received_;
  SinkStats stats_;
};

// A writer with one RecordingSink, held: its thread blocks in the sink's first write().
struct HeldWriter {
  RecordingSink* sink;
  std::unique_ptr<OutputWriter> writer;
};
HeldWriter held_writer(size_t max_queued_bytes = 16 << 20) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* s = sink.get();
  s->hold();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  return {s, std::make_unique<OutputWriter>(std::move(sinks), max_queued_bytes)};
}

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

// Each output gets its own tags on every line: the global tags everywhere, host only where
// the lines bypass Telegraf (http/https); a reload's set_tags applies to later batches.
TEST(OutputWriter, EachOutputAddsItsTagsToEveryLine) {
  auto http = std::make_unique<RecordingSink>("http://db:8086/write?db=v");
  auto tcp = std::make_unique<RecordingSink>("tcp://telegraf:8094");
  auto out = std::make_unique<RecordingSink>("-");
  RecordingSink *rh = http.get(), *rt = tcp.get(), *ro = out.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(http));
  sinks.push_back(std::move(tcp));
  sinks.push_back(std::move(out));
  OutputTags tags;
  tags.tags = {{"dc", "fra 1"}, {"rack", "r7"}};
  tags.host = "h1";
  OutputWriter w(std::move(sinks), SpoolOptions{}, tags);
  w.write("interface,vm=a\\\\\\ b,bridge=br0 vm_to_host_bytes=1i 10\nvmscope tick_ns=5i 10\n");
  w.write("vm_event,event=start,vm=a text=\"x y\" 11\n");
  w.close();
  EXPECT_EQ(rh->received(),
            "interface,vm=a\\\\\\ b,bridge=br0,dc=fra\\ 1,host=h1,rack=r7 vm_to_host_bytes=1i 10\n"
            "vmscope,dc=fra\\ 1,host=h1,rack=r7 tick_ns=5i 10\n"
            "vm_event,event=start,vm=a,dc=fra\\ 1,host=h1,rack=r7 text=\"x y\" 11\n");
  const std::string no_host =
      "interface,vm=a\\\\\\ b,bridge=br0,dc=fra\\ 1,rack=r7 vm_to_host_bytes=1i 10\n"
      "vmscope,dc=fra\\ 1,rack=r7 tick_ns=5i 10\n"
      "vm_event,event=start,vm=a,dc=fra\\ 1,rack=r7 text=\"x y\" 11\n";
  EXPECT_EQ(rt->received(), no_host);
  EXPECT_EQ(ro->received(), no_host);
}

TEST(OutputWriter, SetTagsAppliesToLaterBatches) {
  auto http = std::make_unique<RecordingSink>("https://db/write?db=v");
  RecordingSink* rh = http.get();
  rh->hold();  // the first batch is taken (and tagged) at once, then held in write()
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(http));
  OutputWriter w(std::move(sinks), SpoolOptions{}, OutputTags{{}, "old"});
  w.write("m v=1i 1\n");
  ASSERT_TRUE(rh->wait_entered());  // taken, tagged, and being written
  w.set_tags(OutputTags{{{"k", "v"}}, ""});
  rh->release();
  w.write("m v=2i 2\n");
  w.close();
  EXPECT_EQ(rh->received(), "m,host=old v=1i 1\nm,k=v v=2i 2\n");
}

TEST(OutputWriter, AStuckSinkNeitherBlocksWritesNorGrowsTheQueueUnbounded) {
  HeldWriter held = held_writer(100);
  RecordingSink* s = held.sink;  // no structured binding: lambdas capture it (clang 14)
  OutputWriter& w = *held.writer;
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

// The bound holds at least two ticks however they are cut: a tick of 20 MB at 10,000
// VMs, in 1 MiB chunks, must not lose its first chunks to its last ones.
TEST(OutputWriter, TheQueueBoundGrowsToTwoTicks) {
  HeldWriter held = held_writer(100);
  RecordingSink* s = held.sink;  // no structured binding: lambdas capture it (clang 14)
  OutputWriter& w = *held.writer;
  w.write("first 1i\n");
  ASSERT_TRUE(s->wait_entered());
  w.set_tick_bytes(500);  // the bound becomes 1000 bytes
  for (int i = 0; i < 50; ++i) w.write("m v=" + std::to_string(i + 10) + "i\n");  // 10 B each
  s->release();
  w.close();
  SinkStats t = w.totals();
  EXPECT_EQ(t.lines_dropped, 0u);
  EXPECT_EQ(t.lines_written, 51u);
}

// Spent batches come back through take_buffer() with their memory: the next tick's
// chunks refill the same pages instead of fresh ones.
TEST(OutputWriter, ABatchEverySinkIsDoneWithIsRecycled) {
  auto a = std::make_unique<RecordingSink>();
  auto b = std::make_unique<RecordingSink>();
  RecordingSink *ra = a.get(), *rb = b.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(a));
  sinks.push_back(std::move(b));
  OutputWriter w(std::move(sinks));
  EXPECT_EQ(w.take_buffer().capacity(), std::string().capacity()) << "nothing spent yet";
  std::string batch;
  batch.reserve(64 << 10);
  batch = "m v=1i\n";
  w.write(std::move(batch));
  const auto both_got_it = [&] {
    return ra->received() == "m v=1i\n" && rb->received() == "m v=1i\n";
  };
  for (int i = 0; i < 500 && !both_got_it(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(both_got_it());
  std::string recycled;
  for (int i = 0; i < 500 && recycled.capacity() < (64 << 10); ++i) {
    recycled = w.take_buffer();
    if (recycled.capacity() < (64 << 10)) std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(recycled.capacity(), 64u << 10);
  EXPECT_TRUE(recycled.empty());
}

// A tick hands out chunks far faster than a sink sends them: take_buffer() paces it, so
// that the batches the sinks hold stay near kMaxLentBytes instead of a whole tick.
TEST(OutputWriter, ASlowSinkPacesTheChunksLentToIt) {
  HeldWriter held = held_writer();
  RecordingSink* s = held.sink;  // no structured binding: lambdas capture it (clang 14)
  OutputWriter& w = *held.writer;
  w.set_tick_bytes(64 << 20);  // the queue would hold all of it: only the pacing bounds it
  constexpr size_t kChunk = 256 << 10;
  constexpr int kChunks = 64;  // 16 MiB, four times the bound
  auto releaser = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(50ms);
    s->release();
  });
  size_t most_lent = 0;
  std::string chunk;
  for (int i = 0; i < kChunks; ++i) {
    chunk.reserve(kChunk);
    chunk.assign(kChunk - 16, 'x');
    chunk += " v=" + std::to_string(i) + "i\n";
    w.write(std::move(chunk));
    most_lent = std::max(most_lent, w.lent_bytes());
    chunk = w.take_buffer(std::chrono::steady_clock::now() + 10s);
  }
  releaser.get();
  w.close();
  EXPECT_EQ(w.totals().lines_written, static_cast<uint64_t>(kChunks)) << "nothing lost";
  EXPECT_EQ(w.totals().lines_dropped, 0u);
  EXPECT_LE(most_lent, OutputWriter::kMaxLentBytes + 2 * kChunk);
  EXPECT_EQ(w.lent_bytes(), 0u) << "every chunk came back";
}

// A stuck sink makes take_buffer() wait until its deadline, no longer; without one, it
// never waits.
TEST(OutputWriter, AStuckSinkDelaysTakeBufferOnlyUntilItsDeadline) {
  HeldWriter held = held_writer();
  RecordingSink* s = held.sink;  // no structured binding: lambdas capture it (clang 14)
  OutputWriter& w = *held.writer;
  w.set_tick_bytes(64 << 20);
  w.write("first 1i\n");
  ASSERT_TRUE(s->wait_entered());  // stuck in the sink: what follows stays queued, lent
  while (w.lent_bytes() < OutputWriter::kMaxLentBytes) {
    std::string chunk;
    chunk.reserve(256 << 10);
    chunk = "m v=1i\n";
    w.write(std::move(chunk));
  }
  auto t0 = std::chrono::steady_clock::now();
  (void)w.take_buffer();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms) << "no deadline: no wait";
  t0 = std::chrono::steady_clock::now();
  (void)w.take_buffer(t0 + 200ms);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 3s);
  s->release();
  w.close();
  EXPECT_EQ(w.totals().lines_dropped, 0u);
}

// A destination that can be switched off: while down, write() keeps what it gets pending,
// as the real sinks' backlogs do.
class SwitchableSink : public Sink {
 public:
  explicit SwitchableSink(bool up, std::string url = "test://switchable")
      : url_(std::move(url)), up_(up) {}
  const std::string& url() const override { return url_; }
  void write(std::string_view lines) override {
    std::lock_guard lk(mu_);
    pending_ += lines;
    if (!up_) return;
    received_ += pending_;
    stats_.lines_written +=
        static_cast<uint64_t>(std::count(pending_.begin(), pending_.end(), '\n'));
    pending_.clear();
  }
  void flush() override { write(""); }
  SinkStats stats() const override {
    std::lock_guard lk(mu_);
    return stats_;
  }
  size_t pending_bytes() const override {
    std::lock_guard lk(mu_);
    return pending_.size();
  }
  std::string take_unsent() override {
    std::lock_guard lk(mu_);
    return std::exchange(pending_, std::string());
  }
  void set_up(bool up) {
    std::lock_guard lk(mu_);
    up_ = up;
  }
  std::string received() const {
    std::lock_guard lk(mu_);
    return received_;
  }

 private:
  std::string url_;
  mutable std::mutex mu_;
  bool up_;
  std::string pending_, received_;
  SinkStats stats_;
};

struct SpoolDir {
  SpoolDir() {
    char tmpl[] = "/tmp/vmscope-writer-test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~SpoolDir() { std::filesystem::remove_all(path); }
  std::string path;
};

std::string tick_line(int i) {
  return "vmscope,host=h tick=" + std::to_string(i) + "i " + std::to_string(1000 + i) + "\n";
}

bool wait_for(const std::function<bool()>& pred) {
  for (int i = 0; i < 500 && !pred(); ++i) std::this_thread::sleep_for(10ms);
  return pred();
}

TEST(OutputWriter, AnOutageSpoolsToDiskAndTheDestinationGetsEveryLineInOrder) {
  SpoolDir d;
  auto sink = std::make_unique<SwitchableSink>(/*up=*/false);
  SwitchableSink* s = sink.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  // A memory queue of 400 bytes (a dozen lines): without the spool most would be dropped. Not
  // smaller: the queue must bridge a worker that falls a few ticks behind (a loaded CI
  // machine, the sanitizer build), or a line is dropped before it reaches the spool.
  OutputWriter w(std::move(sinks), SpoolOptions{d.path, 1 << 20}, /*max_queued_bytes=*/400);
  std::string want;
  for (int i = 0; i < 50; ++i) {
    want += tick_line(i);
    w.write(tick_line(i));
    std::this_thread::sleep_for(2ms);  // ticks, not one burst
  }
  ASSERT_TRUE(wait_for([&] { return w.totals().spool_batches > 0; }));
  EXPECT_TRUE(s->received().empty());
  s->set_up(true);
  for (int i = 50; i < 60; ++i) {
    want += tick_line(i);
    w.write(tick_line(i));
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(wait_for([&] { return s->received().size() == want.size(); })) << s->received();
  EXPECT_EQ(s->received(), want);
  w.close();
  EXPECT_EQ(w.totals().lines_dropped, 0u);
  EXPECT_EQ(w.totals().spool_batches, 0u);
}

TEST(OutputWriter, ARestartedWriterSendsThePreviousSpoolFirst) {
  SpoolDir d;
  std::string want;
  {
    std::vector<std::unique_ptr<Sink>> sinks;
    sinks.push_back(std::make_unique<SwitchableSink>(/*up=*/false));
    OutputWriter w(std::move(sinks), SpoolOptions{d.path, 1 << 20});
    for (int i = 0; i < 20; ++i) {
      want += tick_line(i);
      w.write(tick_line(i));
    }
    w.close();  // still down: everything stays in the spool
    EXPECT_GT(w.totals().spool_batches, 0u);
  }
  auto sink = std::make_unique<SwitchableSink>(/*up=*/true);
  SwitchableSink* s = sink.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  OutputWriter w(std::move(sinks), SpoolOptions{d.path, 1 << 20});
  for (int i = 20; i < 25; ++i) {
    want += tick_line(i);
    w.write(tick_line(i));
  }
  ASSERT_TRUE(wait_for([&] { return s->received().size() == want.size(); })) << s->received();
  EXPECT_EQ(s->received(), want);
}

// A sink the writer owns in front of one the test keeps: a removed output's sink is
// destroyed once its worker is done, and the test still looks at what it received.
class SharedSink : public Sink {
 public:
  explicit SharedSink(std::shared_ptr<SwitchableSink> s) : s_(std::move(s)) {}
  const std::string& url() const override { return s_->url(); }
  void write(std::string_view lines) override { s_->write(lines); }
  void flush() override { s_->flush(); }
  SinkStats stats() const override { return s_->stats(); }
  size_t pending_bytes() const override { return s_->pending_bytes(); }
  std::string take_unsent() override { return s_->take_unsent(); }

 private:
  std::shared_ptr<SwitchableSink> s_;
};

// Reloads: sinks by URL, made by the test, kept so that the test can look at them.
struct SinkFactory {
  std::map<std::string, std::vector<std::shared_ptr<SwitchableSink>>> made;
  bool up = true;
  OutputWriter::MakeSink maker() {
    return [this](const std::string& url) -> Result<std::unique_ptr<Sink>> {
      if (url.rfind("test://", 0) != 0) return Error::msg("output \"" + url + "\": bad");
      auto s = std::make_shared<SwitchableSink>(up, url);
      made[url].push_back(s);
      return std::unique_ptr<Sink>(std::make_unique<SharedSink>(s));
    };
  }
  std::vector<std::unique_ptr<Sink>> initial(const std::vector<std::string>& urls) {
    std::vector<std::unique_ptr<Sink>> out;
    for (const auto& u : urls) {
      auto sink = maker()(u);
      out.push_back(std::move(*sink));
    }
    return out;
  }
};

TEST(OutputWriterReload, KeptOutputsKeepTheirSinkNewOnesStartRemovedOnesFlush) {
  SinkFactory f;
  OutputWriter w(f.initial({"test://a", "test://b"}));
  SwitchableSink *a = f.made["test://a"][0].get(), *b = f.made["test://b"][0].get();
  std::string before, after;
  for (int i = 0; i < 10; ++i) {
    before += tick_line(i);
    w.write(tick_line(i));
  }
  ASSERT_TRUE(w.reconfigure({"test://c", "test://a"}, /*renew=*/false, f.maker()));
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(f.made["test://a"].size(), 1u) << "a kept its sink";
  ASSERT_EQ(f.made["test://c"].size(), 1u);
  SwitchableSink* c = f.made["test://c"][0].get();
  for (int i = 10; i < 20; ++i) {
    after += tick_line(i);
    w.write(tick_line(i));
  }
  w.close();
  EXPECT_EQ(a->received(), before + after) << "no line lost or repeated across the reload";
  EXPECT_EQ(b->received(), before) << "the removed output delivered its queue";
  EXPECT_EQ(c->received(), after) << "the new output from the reload on";
  // Counters never go back: the removed output's lines stay counted.
  EXPECT_EQ(w.totals().lines_written, 10u + 20u + 10u);
}

TEST(OutputWriterReload, RenewedSinkTakesOverTheUndeliveredLinesFirst) {
  SinkFactory f;
  f.up = false;
  OutputWriter w(f.initial({"test://a"}));
  SwitchableSink* old = f.made["test://a"][0].get();
  std::string want;
  for (int i = 0; i < 5; ++i) {
    want += tick_line(i);
    w.write(tick_line(i));
  }
  ASSERT_TRUE(wait_for([&] { return old->pending_bytes() == want.size(); }));
  f.up = true;
  ASSERT_TRUE(w.reconfigure({"test://a"}, /*renew=*/true, f.maker()));
  ASSERT_EQ(f.made["test://a"].size(), 2u);
  SwitchableSink* fresh = f.made["test://a"][1].get();
  for (int i = 5; i < 10; ++i) {
    want += tick_line(i);
    w.write(tick_line(i));
  }
  ASSERT_TRUE(wait_for([&] { return fresh->received().size() == want.size(); }))
      << fresh->received();
  EXPECT_EQ(fresh->received(), want);
  w.close();
  EXPECT_EQ(w.totals().lines_written, 10u);
}

TEST(OutputWriterReload, ABadUrlChangesNothing) {
  SinkFactory f;
  OutputWriter w(f.initial({"test://a"}));
  auto st = w.reconfigure({"test://a", "tcp://"}, /*renew=*/true, f.maker());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "output \"tcp://\": bad");
  EXPECT_EQ(w.size(), 1u);
  w.write(tick_line(1));
  w.close();
  EXPECT_EQ(f.made["test://a"][0]->received(), tick_line(1)) << "the first sink, not renewed";
}

// A removed output whose destination is down keeps its lines in its spool; the next
// writer with that URL sends them first.
TEST(OutputWriterReload, ARemovedOutputsUndeliveredLinesStayInItsSpool) {
  SpoolDir d;
  SinkFactory f;
  f.up = false;
  std::string want;
  {
    OutputWriter w(f.initial({"test://a"}), SpoolOptions{d.path, 1 << 20});
    for (int i = 0; i < 5; ++i) {
      want += tick_line(i);
      w.write(tick_line(i));
    }
    ASSERT_TRUE(w.reconfigure({"test://b"}, /*renew=*/false, f.maker()));
    w.close();
  }
  f.up = true;
  OutputWriter w(f.initial({"test://a"}), SpoolOptions{d.path, 1 << 20});
  SwitchableSink* a = f.made["test://a"].back().get();
  ASSERT_TRUE(wait_for([&] { return a->received().size() == want.size(); })) << a->received();
  EXPECT_EQ(a->received(), want);
}

}  // namespace
}  // namespace vmscope
