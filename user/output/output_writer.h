// Delivers every batch to every sink, each sink on a thread of its own: a slow or
// unreachable destination (an HTTP attempt may take its full timeout) must delay
// neither the ticks, nor the handling of link and process events, nor the other outputs.
//
// With a spool (output/spool.h), what a sink cannot deliver goes to disk, and every later
// batch goes behind it until the spool has been replayed, oldest first: the destination
// receives the lines in the order they were made, also across an agent restart (the
// previous agent's spool is replayed before this agent's first lines).
#pragma once

#include <condition_variable>
#include <deque>
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
  // The tags of the batches written from now on (a configuration reload): each output's
  // suffix is encoded here, once.
  void set_tags(const OutputTags& tags);
  // Delivers what is queued, flushes every sink (each bounded by its timeout) and stops
  // the threads. Idempotent.
  void close();
  // Summed over all sinks, plus lines dropped before reaching them.
  SinkStats totals() const;
  size_t size() const { return workers_.size(); }

 private:
  using Batch = std::shared_ptr<const std::string>;  // one copy, shared by all sinks

  class Worker {
   public:
    Worker(std::unique_ptr<Sink> sink, std::unique_ptr<Spool> spool, size_t max_queued_bytes);
    ~Worker();
    void push(const Batch& b);
    void set_tag_suffix(std::string suffix);
    const std::string& url() const { return url_; }
    void close();
    SinkStats stats() const;

   private:
    void run();
    void deliver_spooling(const std::string& round, bool last);
    // Hands the oldest spooled record to the sink; keeps what it could not deliver.
    void replay_one();
    // Moves what the sink could not deliver to the end of the spool.
    void spill();
    void set_down(bool down);       // logs the start of spooling once per outage
    const std::string url_;         // the sink's, for set_tags from the tick's thread
    std::unique_ptr<Sink> sink_;    // used by this worker's thread only
    std::unique_ptr<Spool> spool_;  // likewise; null: none
    bool down_ = false;             // the last attempt left lines undelivered
    bool spooling_logged_ = false;  // "spooling to" was logged since the spool was empty
    const size_t max_queued_bytes_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Batch> queue_;
    std::string tag_suffix_;  // the output's tags, spliced into each line (empty: none)
    size_t queued_bytes_ = 0;
    uint64_t queue_dropped_lines_ = 0;
    SinkStats sink_stats_;  // refreshed by the thread after each round
    bool closing_ = false;
    std::thread thread_;
  };

  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace vmscope
