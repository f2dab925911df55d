// Delivers every batch to every sink, each sink on a thread of its own: a slow or
// unreachable destination (an HTTP attempt may take its full timeout) must delay
// neither the ticks, nor the handling of link and process events, nor the other outputs.
//
// With a spool (output/spool.h), what a sink cannot deliver goes to disk, and every later
// batch goes behind it until the spool has been replayed, oldest first: the destination
// receives the lines in the order they were made, also across an agent restart (the
// previous agent's spool is replayed before this agent's first lines).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "output/output_tags.h"
#include "output/sink.h"
#include "output/spool.h"

namespace vmscope {

struct SpoolOptions {
  std::string dir;         // each output spools to DIR/<spool_id(url)>; empty: no spool
  uint64_t max_bytes = 0;  // bound per output; 0: no spool
};

class OutputWriter {
 public:
  // max_queued_bytes bounds what waits for each sink's thread; each sink also keeps its
  // own bounded backlog while its destination is down.
  explicit OutputWriter(std::vector<std::unique_ptr<Sink>> sinks,
                        size_t max_queued_bytes = 16 << 20);
  // Each output but stdout spools to disk; an output whose spool cannot be opened runs
  // without one (one warning).
  OutputWriter(std::vector<std::unique_ptr<Sink>> sinks, const SpoolOptions& spool,
               size_t max_queued_bytes = 16 << 20);
  // The same, each output adding its tags (output/output_tags.h) to every line.
  OutputWriter(std::vector<std::unique_ptr<Sink>> sinks, const SpoolOptions& spool,
               const OutputTags& tags, size_t max_queued_bytes = 16 << 20);
  ~OutputWriter();  // close()
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  // Queues complete lines for every sink; never waits for I/O. Over a sink's bound, its
  // oldest queued batch is dropped and its lines counted as dropped.
  void write(std::string batch);
  // An empty buffer for the next batch: one that every sink is done with, its pages
  // kept (a tick's chunks reuse the same memory every tick), else a new one.
  // While the batches the sinks still hold take kMaxLentBytes or more, waits for one to
  // come back until wait_until (default: not at all): a tick encodes ~1 GB/s, far faster
  // than a sink sends, and without this pause the chunks of a whole tick would be in
  // memory at once (~20 MB at 10,000 VMs). A stuck sink delays the caller until
  // wait_until only; its queue's bound then applies as before.
  static constexpr size_t kMaxLentBytes = 4 << 20;
  std::string take_buffer(std::chrono::steady_clock::time_point wait_until = {});
  // Bytes of the batches the sinks still hold (buffer capacities).
  size_t lent_bytes() const;
  // How many bytes the last tick wrote (in as many batches as it took): each sink's
  // queue holds at least two such ticks before it drops, so that a tick cut in chunks
  // is not dropped in part merely for being large (10,000 VMs: ~20 MB a tick).
  void set_tick_bytes(size_t bytes);
  // Delivers what is queued, flushes every sink (each bounded by its timeout) and stops
  // the threads. Idempotent.
  void close();
  // Summed over all sinks, plus lines dropped before reaching them; the counters
  // (not the spool's present size) include the outputs a reconfigure removed.
  SinkStats totals() const;
  size_t size() const { return workers_.size(); }

  // A reload: the outputs become `urls`, in that order. An output running with the same
  // URL keeps its sink, queue and spool (with renew, e.g. new credentials, a new sink
  // from make takes over its queue and spool); a new URL gets a sink from make and its
  // spool; a removed one is closed in the background: its queue goes out with one last
  // flush (bounded by its timeout) and what that cannot deliver stays in its spool for a
  // later run with that URL. Changes nothing when make fails for any URL.
  // The tags of the batches written from now on (a configuration reload): each output's
  // suffix is encoded here, once; outputs a reconfigure adds get them too.
  void set_tags(const OutputTags& tags);

  using MakeSink = std::function<Result<std::unique_ptr<Sink>>(const std::string& url)>;
  Status reconfigure(const std::vector<std::string>& urls, bool renew, const MakeSink& make);

 private:
  using Batch = std::shared_ptr<const std::string>;  // one copy, shared by all sinks

  // Buffers every sink is done with, for take_buffer(). Shared with the batches, whose
  // last owner (a sink's thread) returns the buffer here.
  struct BufferPool {
    std::mutex mu;
    std::condition_variable returned;
    std::vector<std::string> free;
    size_t lent_bytes = 0;  // capacities of the PooledTexts alive
    void lend(size_t bytes);
    void give(std::string&& s, size_t lent);
  };
  // Owns a batch's text; when the last sink lets go, gives the buffer back to the pool.
  struct PooledText {
    std::string text;
    std::weak_ptr<BufferPool> pool;
    size_t lent;  // text's capacity when it was lent
    PooledText(std::string t, std::weak_ptr<BufferPool> p)
        : text(std::move(t)), pool(std::move(p)), lent(text.capacity()) {}
    ~PooledText();
    PooledText(const PooledText&) = delete;
    PooledText& operator=(const PooledText&) = delete;
  };

  class Worker {
   public:
    Worker(std::unique_ptr<Sink> sink, std::unique_ptr<Spool> spool, size_t max_queued_bytes);
    ~Worker();
    void push(const Batch& b);
    void close();
    // close() without waiting: the thread delivers what is queued and ends (finished()).
    void begin_close();
    bool finished() const { return finished_; }
    // The thread hands over to `sink` before its next round: what the old sink holds
    // undelivered goes to the new one first.
    void replace_sink(std::unique_ptr<Sink> sink);
    const std::string& url() const { return url_; }
    void set_tag_suffix(std::string suffix);
    void set_queue_bound(size_t bytes);
    SinkStats stats() const;

   private:
    void run();
    void deliver_spooling(const std::string& round, bool last);
    // Hands the oldest spooled record to the sink; keeps what it could not deliver.
    void replay_one();
    // Moves what the sink could not deliver to the end of the spool.
    void spill();
    void set_down(bool down);  // logs the start of spooling once per outage
    void take_over(std::unique_ptr<Sink> next);
    const std::string url_;         // the sink's, for set_tags from the tick's thread
    std::unique_ptr<Sink> sink_;    // used by this worker's thread only
    std::unique_ptr<Spool> spool_;  // likewise; null: none
    bool down_ = false;             // the last attempt left lines undelivered
    bool spooling_logged_ = false;  // "spooling to" was logged since the spool was empty
    mutable std::mutex mu_;
    size_t max_queued_bytes_;  // under mu_
    std::condition_variable cv_;
    std::deque<Batch> queue_;
    size_t queued_bytes_ = 0;
    uint64_t queue_dropped_lines_ = 0;
    SinkStats sink_stats_;  // refreshed by the thread after each round
    SinkStats replaced_;    // counters of the sinks replace_sink retired
    std::unique_ptr<Sink> next_sink_;
    std::string tag_suffix_;  // the output's tags, spliced into each line (empty: none)
    bool closing_ = false;
    std::atomic<bool> finished_ = false;
    std::thread thread_;
  };

  std::unique_ptr<Worker> make_worker(std::unique_ptr<Sink> sink);
  // Joins the removed outputs' workers that are done (all of them with wait).
  void reap(bool wait);

  SpoolOptions spool_;
  size_t max_queued_bytes_;  // as configured
  size_t queue_bound_ = 0;   // what each worker holds: the configured bound or two ticks
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>();
  OutputTags tags_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Worker>> closing_;  // removed by reconfigure, still delivering
  SinkStats removed_;                             // counters of the removed outputs, reaped
};

}  // namespace vmscope
