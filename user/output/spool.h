// Spool: an output's undelivered lines on disk, compressed, bounded, oldest first; it
// survives the agent (a restarted agent replays what the previous one spooled).
//
// Layout: DIR/<20-digit sequence>.rec, one file per batch: a 32-byte header (magic
// "vmspool1", raw and compressed sizes, line count, CRC-32 of the compressed payload,
// host byte order) and the zlib-compressed lines. A record is written to <seq>.tmp and
// renamed into place, so a SIGKILL mid-write leaves at most a .tmp file (removed at open)
// and never touches the other records. Without fsync (one per tick would wear the disk),
// a power loss may leave the newest records empty or short: the header and CRC checks
// drop those (counted) and the rest replays. DIR/lock (flock) keeps two agents apart;
// DIR/url names the output for whoever looks.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace vmscope {

struct SpoolStats {
  uint64_t bytes = 0, batches = 0;                  // on disk now
  uint64_t dropped_batches = 0, dropped_lines = 0;  // over the bound, unwritable or corrupt
};

class Spool {
 public:
  // Creates dir (and parents), takes its lock, removes .tmp files a crash left and indexes
  // the records in order. max_bytes bounds the files' total size; label names the output
  // in log lines.
  static Result<std::unique_ptr<Spool>> open(const std::string& dir, uint64_t max_bytes,
                                             std::string label);

  // Appends complete lines as one record. Over the bound the oldest records are deleted and
  // counted (the newest are what an operator looks at first once the destination is back,
  // and the spool stays one unbroken stretch of time). A record that cannot be written
  // (disk full) is counted as dropped. Logs one warning per outage.
  void append(std::string_view lines);
  bool empty() const { return records_.empty(); }
  // The oldest record's lines; unreadable or corrupt records are deleted, counted and
  // skipped. nullopt when empty.
  std::optional<std::string> front();
  // The oldest record was delivered.
  void pop_front();
  // Only `rest` (the tail of the oldest record's lines) is still undelivered.
  void replace_front(std::string_view rest);
  SpoolStats stats() const { return stats_; }
  const std::string& dir() const { return dir_; }

 private:
  struct Record {
    uint64_t seq = 0;
    uint64_t bytes = 0;  // file size
    uint32_t lines = 0;
  };
  Spool(std::string dir, uint64_t max_bytes, std::string label, UniqueFd lock)
      : dir_(std::move(dir)),
        max_bytes_(max_bytes),
        label_(std::move(label)),
        lock_(std::move(lock)) {}
  Status scan();
  std::string path(uint64_t seq, const char* ext) const;
  // Writes lines as record seq (tmp + rename); its size, or an error.
  Result<uint64_t> write_record(uint64_t seq, std::string_view lines, uint32_t line_count);
  void remove_front();
  void count_drop(uint64_t batches, uint64_t lines, std::string_view why);

  const std::string dir_;
  const uint64_t max_bytes_;
  const std::string label_;
  UniqueFd lock_;
  std::deque<Record> records_;
  uint64_t next_seq_ = 1;
  SpoolStats stats_;
  bool dropping_ = false;  // a drop was logged since the spool was last empty
  uint64_t dropped_at_outage_start_ = 0;
};

// Stable name of an output's spool directory: 16 hex digits of a hash of its URL.
std::string spool_id(std::string_view url);

}  // namespace vmscope
