#include "output/output_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "output/line_protocol.h"

namespace vmscope {
namespace {

// A round handed to a sink stays well under its in-memory backlog (8 MiB by default),
// which would otherwise drop lines before the spool could take them back; and one HTTP
// request carries at most about this much (a tick at 10,000 VMs is ~20 MB, in chunks of
// 256 KiB): the joined copy stays small.
constexpr size_t kMaxRound = 2 << 20;
// Spent buffers kept for take_buffer(): as many as a tick's chunks (agent.cpp: 256 KiB)
// lent at once (kMaxLentBytes), and a few. Larger ones (an unchunked batch) are not worth
// holding on to.
constexpr size_t kPoolBuffers = 24;
constexpr size_t kPoolBufferMax = 8 << 20;
// While the destination is down, how often the oldest spooled record is tried again
// between batches.
constexpr auto kRetry = std::chrono::seconds(1);

}  // namespace

OutputWriter::OutputWriter(std::vector<std::unique_ptr<Sink>> sinks, size_t max_queued_bytes)
    : OutputWriter(std::move(sinks), SpoolOptions{}, max_queued_bytes) {}

OutputWriter::OutputWriter(std::vector<std::unique_ptr<Sink>> sinks, const SpoolOptions& spool,
                           size_t max_queued_bytes)
    : OutputWriter(std::move(sinks), spool, OutputTags{}, max_queued_bytes) {}

OutputWriter::OutputWriter(std::vector<std::unique_ptr<Sink>> sinks, const SpoolOptions& spool,
                           const OutputTags& tags, size_t max_queued_bytes)
    : spool_(spool),
      max_queued_bytes_(max_queued_bytes),
      queue_bound_(max_queued_bytes),
      tags_(tags) {
  for (auto& s : sinks) workers_.push_back(make_worker(std::move(s)));
}

void OutputWriter::set_tags(const OutputTags& tags) {
  tags_ = tags;
  for (auto& w : workers_) w->set_tag_suffix(line_tag_suffix(tags_, w->url()));
}

std::unique_ptr<OutputWriter::Worker> OutputWriter::make_worker(std::unique_ptr<Sink> s) {
  std::unique_ptr<Spool> sp;
  // stdout never queues: nothing to spool.
  if (!spool_.dir.empty() && spool_.max_bytes > 0 && s->url() != "-") {
    auto opened = Spool::open(spool_.dir + "/" + spool_id(s->url()), spool_.max_bytes, s->url());
    if (opened)
      sp = std::move(*opened);
    else
      spdlog::warn("output {}: no spool, an outage loses what exceeds the memory backlog: {}",
                   s->url(), opened.error().message);
  }
  auto w = std::make_unique<Worker>(std::move(s), std::move(sp), queue_bound_);
  w->set_tag_suffix(line_tag_suffix(tags_, w->url()));
  return w;
}

Status OutputWriter::reconfigure(const std::vector<std::string>& urls, bool renew,
                                 const MakeSink& make) {
  // Every sink first: a bad URL changes nothing.
  std::vector<std::unique_ptr<Worker>> old = std::move(workers_);
  workers_.clear();
  std::vector<Worker*> kept(urls.size(), nullptr);
  std::vector<std::unique_ptr<Sink>> fresh(urls.size());
  for (size_t i = 0; i < urls.size(); ++i) {
    for (auto& w : old)
      if (w && w->url() == urls[i] && std::find(kept.begin(), kept.end(), w.get()) == kept.end()) {
        kept[i] = w.get();
        break;
      }
    if (kept[i] && !renew) continue;
    auto sink = make(urls[i]);
    if (!sink) {
      workers_ = std::move(old);
      return sink.error();
    }
    fresh[i] = std::move(*sink);
  }
  for (size_t i = 0; i < urls.size(); ++i) {
    if (!kept[i]) continue;
    auto it = std::find_if(old.begin(), old.end(), [&](auto& w) { return w.get() == kept[i]; });
    if (fresh[i]) (*it)->replace_sink(std::move(fresh[i]));
    workers_.push_back(std::move(*it));
  }
  for (auto& w : old) {
    if (!w) continue;
    w->begin_close();
    closing_.push_back(std::move(w));
  }
  // A URL removed by an earlier reload and back now: its spool directory must be free.
  for (size_t i = 0; i < urls.size(); ++i)
    if (fresh[i] && !kept[i]) {
      for (auto& c : closing_)
        if (c->url() == urls[i]) c->close();
      reap(false);
    }
  // In the order of urls: kept ones where they are listed, new ones made now.
  std::vector<std::unique_ptr<Worker>> ordered;
  size_t next_kept = 0;
  for (size_t i = 0; i < urls.size(); ++i)
    ordered.push_back(kept[i] ? std::move(workers_[next_kept++])
                              : make_worker(std::move(fresh[i])));
  workers_ = std::move(ordered);
  return {};
}

void OutputWriter::reap(bool wait) {
  for (auto it = closing_.begin(); it != closing_.end();) {
    if (!wait && !(*it)->finished()) {
      ++it;
      continue;
    }
    (*it)->close();
    const SinkStats s = (*it)->stats();
    removed_.lines_written += s.lines_written;
    removed_.lines_dropped += s.lines_dropped;
    removed_.bytes_written += s.bytes_written;
    removed_.spool_dropped_batches += s.spool_dropped_batches;
    it = closing_.erase(it);
  }
}

OutputWriter::~OutputWriter() {
  close();
}

void OutputWriter::write(std::string batch) {
  if (!closing_.empty()) reap(false);
  if (batch.empty()) return;
  auto owner = std::make_shared<const PooledText>(std::move(batch), pool_);
  pool_->lend(owner->lent);
  const Batch shared(owner, &owner->text);  // shares the owner: the text lives as long
  for (auto& w : workers_) w->push(shared);
}

std::string OutputWriter::take_buffer(std::chrono::steady_clock::time_point wait_until) {
  std::unique_lock lk(pool_->mu);
  // Returns at once when the predicate holds or wait_until has passed (the default).
  pool_->returned.wait_until(
      lk, wait_until, [&] { return !pool_->free.empty() || pool_->lent_bytes < kMaxLentBytes; });
  if (pool_->free.empty()) return {};
  std::string s = std::move(pool_->free.back());
  pool_->free.pop_back();
  return s;
}

void OutputWriter::set_tick_bytes(size_t bytes) {
  const size_t bound = std::max(max_queued_bytes_, 2 * bytes);
  if (bound == queue_bound_) return;
  queue_bound_ = bound;
  for (auto& w : workers_) w->set_queue_bound(bound);
}

size_t OutputWriter::lent_bytes() const {
  std::lock_guard lk(pool_->mu);
  return pool_->lent_bytes;
}

void OutputWriter::BufferPool::lend(size_t bytes) {
  std::lock_guard lk(mu);
  lent_bytes += bytes;
}

void OutputWriter::BufferPool::give(std::string&& s, size_t lent) {
  {
    std::lock_guard lk(mu);
    lent_bytes -= lent;
    if (s.capacity() <= kPoolBufferMax && free.size() < kPoolBuffers) {
      s.clear();
      free.push_back(std::move(s));
    }
  }
  returned.notify_all();
}

OutputWriter::PooledText::~PooledText() {
  if (auto p = pool.lock()) p->give(std::move(text), lent);
}

void OutputWriter::close() {
  // All at once: the flushes (each bounded by its sink's timeout) overlap.
  std::vector<std::thread> closers;
  for (auto& w : workers_) closers.emplace_back([&w] { w->close(); });
  for (auto& t : closers) t.join();
  reap(true);
}

SinkStats OutputWriter::totals() const {
  SinkStats t = removed_;
  const auto add = [&](const Worker& w) {
    SinkStats s = w.stats();
    t.lines_written += s.lines_written;
    t.lines_dropped += s.lines_dropped;
    t.bytes_written += s.bytes_written;
    t.spool_bytes += s.spool_bytes;
    t.spool_batches += s.spool_batches;
    t.spool_dropped_batches += s.spool_dropped_batches;
  };
  for (const auto& w : workers_) add(*w);
  for (const auto& w : closing_) add(*w);
  return t;
}

void OutputWriter::Worker::set_tag_suffix(std::string suffix) {
  std::lock_guard lk(mu_);
  tag_suffix_ = std::move(suffix);
}

OutputWriter::Worker::Worker(std::unique_ptr<Sink> sink, std::unique_ptr<Spool> spool,
                             size_t max_queued_bytes)
    : url_(sink->url()),
      sink_(std::move(sink)),
      spool_(std::move(spool)),
      max_queued_bytes_(max_queued_bytes) {
  thread_ = std::thread([this] { run(); });
}

OutputWriter::Worker::~Worker() {
  close();
}

void OutputWriter::Worker::set_queue_bound(size_t bytes) {
  std::lock_guard lk(mu_);
  max_queued_bytes_ = bytes;
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
  begin_close();
  if (thread_.joinable()) thread_.join();
}

void OutputWriter::Worker::begin_close() {
  {
    std::lock_guard lk(mu_);
    closing_ = true;
  }
  cv_.notify_one();
}

void OutputWriter::Worker::replace_sink(std::unique_ptr<Sink> sink) {
  {
    std::lock_guard lk(mu_);
    next_sink_ = std::move(sink);
  }
  cv_.notify_one();
}

SinkStats OutputWriter::Worker::stats() const {
  std::lock_guard lk(mu_);
  SinkStats s = sink_stats_;
  s.lines_written += replaced_.lines_written;
  s.lines_dropped += queue_dropped_lines_ + replaced_.lines_dropped;
  s.bytes_written += replaced_.bytes_written;
  return s;
}

// The worker's thread, between rounds: a line half written to the old sink's stream is
// finished (flush, bounded by its timeout), and the whole lines it still holds go first.
void OutputWriter::Worker::take_over(std::unique_ptr<Sink> next) {
  const std::string unsent = sink_->take_unsent();
  sink_->flush();
  const SinkStats old = sink_->stats();
  {
    std::lock_guard lk(mu_);
    replaced_.lines_written += old.lines_written;
    replaced_.lines_dropped += old.lines_dropped;
    replaced_.bytes_written += old.bytes_written;
  }
  sink_ = std::move(next);
  if (!unsent.empty()) sink_->write(unsent);
}

namespace {
constexpr size_t kKeptRoundBytes = 2 * kMaxRound;
}  // namespace

void OutputWriter::Worker::run() {
  std::string round;
  std::string suffix;
  std::vector<Batch> taken;  // this round's batches, tagged outside the lock
  for (;;) {
    bool last;
    Batch single;  // the only queued batch: written as it is, not copied
    std::unique_ptr<Sink> next_sink;
    {
      std::unique_lock lk(mu_);
      const auto ready = [&] { return closing_ || !queue_.empty() || next_sink_; };
      if (spool_ && !spool_->empty()) {
        // Behind: replay without waiting while the destination takes it; when it is down,
        // try again with the next batch or after kRetry.
        if (down_) cv_.wait_for(lk, kRetry, ready);
      } else {
        cv_.wait(lk, ready);
      }
      // What is queued goes out in one write, up to kMaxRound: a slow destination costs
      // one timeout per round, not one per batch (a tick's chunks are many batches).
      suffix = tag_suffix_;  // a few bytes; the batches of this round get these tags
      if (queue_.size() == 1 && suffix.empty()) {
        single = std::move(queue_.front());
        queued_bytes_ -= single->size();
        queue_.pop_front();
      }
      size_t bytes = 0;
      while (!queue_.empty() && (bytes == 0 || bytes < kMaxRound)) {
        bytes += queue_.front()->size();
        queued_bytes_ -= queue_.front()->size();
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      last = closing_ && queue_.empty();
      next_sink = std::move(next_sink_);
    }
    round.clear();
    for (const Batch& b : taken) append_with_tags(*b, suffix, round);
    taken.clear();
    if (next_sink) take_over(std::move(next_sink));
    const std::string& out = single ? *single : round;
    if (spool_) {
      deliver_spooling(out, last);
    } else {
      if (!out.empty()) sink_->write(out);
      if (last) sink_->flush();
    }
    single.reset();
    // Rounds are bounded (kMaxRound and one batch); a far larger one (a single unchunked
    // batch, tagged) is not worth keeping for good.
    if (round.capacity() > kKeptRoundBytes) std::string().swap(round);
    SinkStats s = sink_->stats();
    if (spool_) {
      const SpoolStats sp = spool_->stats();
      s.lines_dropped += sp.dropped_lines;
      s.spool_bytes = sp.bytes;
      s.spool_batches = sp.batches;
      s.spool_dropped_batches = sp.dropped_batches;
    }
    {
      std::lock_guard lk(mu_);
      sink_stats_ = s;
    }
    if (last) {
      finished_ = true;
      return;
    }
  }
}

void OutputWriter::Worker::deliver_spooling(const std::string& round, bool last) {
  if (spool_->empty() && !down_) {
    if (!round.empty()) sink_->write(round);
    if (last) sink_->flush();
    spill();
    return;
  }
  // New lines queue behind the spooled ones, on disk.
  spool_->append(round);
  if (last) {
    // The next agent replays the spool; only a line half written to a stream is finished.
    sink_->flush();
    spill();
    return;
  }
  replay_one();
}

void OutputWriter::Worker::replay_one() {
  std::optional<std::string> lines = spool_->front();
  if (!lines) {
    set_down(false);
    return;
  }
  sink_->write(*lines);
  const std::string rest = sink_->take_unsent();
  if (rest.empty()) {
    spool_->pop_front();
  } else if (rest.size() < lines->size()) {
    spool_->replace_front(rest);
  }
  // A line half written to a stream stays in the sink until the stream takes the rest.
  set_down(!rest.empty() || sink_->pending_bytes() > 0);
  if (spool_->empty()) spdlog::info("output {}: spool replayed, sending live again", sink_->url());
}

void OutputWriter::Worker::spill() {
  const std::string rest = sink_->take_unsent();
  spool_->append(rest);
  set_down(!rest.empty() || sink_->pending_bytes() > 0);
}

void OutputWriter::Worker::set_down(bool down) {
  if (down && !down_ && spool_->empty() == false && !spooling_logged_) {
    spdlog::info("output {}: spooling to {} until the destination takes lines again", sink_->url(),
                 spool_->dir());
    spooling_logged_ = true;
  }
  if (spool_->empty()) spooling_logged_ = false;
  down_ = down;
}

}  // namespace vmscope
