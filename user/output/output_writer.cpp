#include "output/output_writer.h"

#include <algorithm>

namespace vmscope {

OutputWriter::OutputWriter(std::vector<std::unique_ptr<Sink>> sinks, size_t max_queued_bytes) {
  for (auto& s : sinks)
    workers_.push_back(std::make_unique<Worker>(std::move(s), max_queued_bytes));
}

OutputWriter::~OutputWriter() {
  close();
}

void OutputWriter::write(std::string batch) {
  if (batch.empty()) return;
  auto shared = std::make_shared<const std::string>(std::move(batch));
  for (auto& w : workers_) w->push(shared);
}

void OutputWriter::close() {
  // All at once: the flushes (each bounded by its sink's timeout) overlap.
  std::vector<std::thread> closers;
  for (auto& w : workers_) closers.emplace_back([&w] { w->close(); });
  for (auto& t : closers) t.join();
}

SinkStats OutputWriter::totals() const {
  SinkStats t;
  for (const auto& w : workers_) {
    SinkStats s = w->stats();
    t.lines_written += s.lines_written;
    t.lines_dropped += s.lines_dropped;
    t.bytes_written += s.bytes_written;
  }
  return t;
}

OutputWriter::Worker::Worker(std::unique_ptr<Sink> sink, size_t max_queued_bytes)
    : sink_(std::move(sink)), max_queued_bytes_(max_queued_bytes) {
  thread_ = std::thread([this] { run(); });
}

OutputWriter::Worker::~Worker() {
  close();
}

void OutputWriter::Worker::push(const Batch& b) {
  {
    std::lock_guard lk(mu_);
    if (closing_) return;
    queued_bytes_ += b->size();
    queue_.push_back(b);
    while (queued_bytes_ > max_queued_bytes_ && queue_.size() > 1) {
      const std::string& old = *queue_.front();
      queue_dropped_lines_ += static_cast<uint64_t>(std::count(old.begin(), old.end(), '\n'));
      queued_bytes_ -= old.size();
      queue_.pop_front();
    }
  }
  cv_.notify_one();
}

void OutputWriter::Worker::close() {
  {
    std::lock_guard lk(mu_);
    closing_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

SinkStats OutputWriter::Worker::stats() const {
  std::lock_guard lk(mu_);
  SinkStats s = sink_stats_;
  s.lines_dropped += queue_dropped_lines_;
  return s;
}

namespace {
constexpr size_t kKeptRoundBytes = 1 << 20;
}  // namespace

void OutputWriter::Worker::run() {
  std::string round;
  for (;;) {
    bool last;
    Batch single;  // the only queued batch: written as it is, not copied
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return closing_ || !queue_.empty(); });
      // Everything queued goes out in one write: a slow destination costs one timeout
      // per round, not one per batch.
      round.clear();
      if (queue_.size() == 1)
        single = std::move(queue_.front());
      else
        for (const Batch& b : queue_) round += *b;
      queue_.clear();
      queued_bytes_ = 0;
      last = closing_;
    }
    if (single && !single->empty()) sink_->write(*single);
    single.reset();
    if (!round.empty()) sink_->write(round);
    // A batch is ~800 bytes per VM (8 MB at 10,000 VMs): keeping the largest round ever
    // joined would hold that much for good.
    if (round.capacity() > kKeptRoundBytes) std::string().swap(round);
    if (last) sink_->flush();
    SinkStats s = sink_->stats();
    {
      std::lock_guard lk(mu_);
      sink_stats_ = s;
    }
    if (last) return;
  }
}

}  // namespace vmscope
