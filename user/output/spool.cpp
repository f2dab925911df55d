#include "output/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "output/compress.h"

namespace vmscope {
namespace {

constexpr char kMagic[8] = {'v', 'm', 's', 'p', 'o', 'o', 'l', '1'};

struct Header {
  char magic[8];
  uint32_t raw_size;      // lines, uncompressed
  uint32_t payload_size;  // compressed bytes after the header
  uint32_t lines;
  uint32_t crc;  // CRC-32 of the payload
  uint64_t reserved;
};
static_assert(sizeof(Header) == 32);

size_t count_newlines(std::string_view s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// mkdir -p with 0700: the lines name VMs and hosts.
Status make_dirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return Error::from_errno(fmt::format("mkdir {}", part), errno);
  }
  return {};
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(fmt::format("write {}", path), errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> read_whole(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::from_errno(fmt::format("open {}", path), errno);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(fmt::format("read {}", path), errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// The header of a whole file, checked against the file's size.
std::optional<Header> parse_header(std::string_view file) {
  Header h;
  if (file.size() < sizeof(h)) return std::nullopt;
  std::memcpy(&h, file.data(), sizeof(h));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return std::nullopt;
  if (file.size() != sizeof(h) + h.payload_size) return std::nullopt;
  return h;
}

// "00000000000000000042.rec" -> 42
std::optional<uint64_t> seq_of(std::string_view name, std::string_view ext) {
  if (name.size() != 20 + ext.size() || !name.ends_with(ext)) return std::nullopt;
  uint64_t v = 0;
  for (char c : name.substr(0, 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::string spool_id(std::string_view url) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a: stable across builds and hosts
  for (unsigned char c : url) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

Result<std::unique_ptr<Spool>> Spool::open(const std::string& dir, uint64_t max_bytes,
                                           std::string label) {
  if (Status st = make_dirs(dir); !st) return st.error().context("spool");
  const std::string lock_path = dir + "/lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return Error::from_errno(fmt::format("spool: open {}", lock_path), errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Error::msg(fmt::format("spool {}: in use by another vmscope", dir));
    return Error::from_errno(fmt::format("spool: lock {}", lock_path), errno);
  }
  std::unique_ptr<Spool> s(new Spool(dir, max_bytes, std::move(label), std::move(lock)));
  if (Status st = s->scan(); !st) return st.error();
  // For a human looking at /var/lib/vmscope/spool: which output this directory is.
  const std::string url_path = dir + "/url";
  if (UniqueFd fd(::open(url_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      fd.valid())
    (void)write_all(fd.get(), s->label_ + "\n", url_path);
  return s;
}

Status Spool::scan() {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir_.c_str()), ::closedir);
  if (!d) return Error::from_errno(fmt::format("spool: opendir {}", dir_), errno);
  std::vector<uint64_t> seqs;
  while (const dirent* e = ::readdir(d.get())) {
    const std::string_view name = e->d_name;
    if (auto seq = seq_of(name, ".tmp")) {
      // A write the previous agent did not finish: never part of the spool.
      ::unlink((dir_ + "/" + std::string(name)).c_str());
    } else if (auto seq = seq_of(name, ".rec")) {
      seqs.push_back(*seq);
    }
  }
  std::sort(seqs.begin(), seqs.end());
  for (uint64_t seq : seqs) {
    const std::string p = path(seq, ".rec");
    // Only the header is checked now; the CRC when the record is replayed.
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    Header h{};
    const bool ok = fd.valid() && ::fstat(fd.get(), &st) == 0 &&
                    ::pread(fd.get(), &h, sizeof(h), 0) == static_cast<ssize_t>(sizeof(h)) &&
                    std::memcmp(h.magic, kMagic, sizeof(kMagic)) == 0 &&
                    static_cast<uint64_t>(st.st_size) == sizeof(h) + h.payload_size;
    if (!ok) {
      ::unlink(p.c_str());
      count_drop(1, 0, fmt::format("record {} is damaged", p));
      continue;
    }
    records_.push_back(Record{seq, static_cast<uint64_t>(st.st_size), h.lines});
    stats_.bytes += static_cast<uint64_t>(st.st_size);
  }
  next_seq_ = seqs.empty() ? 1 : seqs.back() + 1;
  stats_.batches = records_.size();
  if (!records_.empty())
    spdlog::info("output {}: {} spooled batch(es), {} bytes in {}, to be sent first", label_,
                 records_.size(), stats_.bytes, dir_);
  return {};
}

std::string Spool::path(uint64_t seq, const char* ext) const {
  return fmt::format("{}/{:020}{}", dir_, seq, ext);
}

Result<uint64_t> Spool::write_record(uint64_t seq, std::string_view lines, uint32_t line_count) {
  auto payload = deflate_zlib(lines);
  if (!payload) return payload.error();
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.raw_size = static_cast<uint32_t>(lines.size());
  h.payload_size = static_cast<uint32_t>(payload->size());
  h.lines = line_count;
  h.crc = crc32_of(*payload);
  const std::string tmp = path(seq, ".tmp");
  Status st;
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return Error::from_errno(fmt::format("open {}", tmp), errno);
    st = write_all(fd.get(), std::string_view(reinterpret_cast<const char*>(&h), sizeof(h)), tmp);
    if (st) st = write_all(fd.get(), *payload, tmp);
  }
  if (st && ::rename(tmp.c_str(), path(seq, ".rec").c_str()) != 0)
    st = Error::from_errno(fmt::format("rename {}", tmp), errno);
  if (!st) {
    ::unlink(tmp.c_str());
    return st.error();
  }
  return sizeof(h) + payload->size();
}

void Spool::append(std::string_view lines) {
  if (lines.empty()) return;
  const uint32_t n = static_cast<uint32_t>(count_newlines(lines));
  auto size = write_record(next_seq_, lines, n);
  if (!size) {
    count_drop(1, n, size.error().message);
    return;
  }
  records_.push_back(Record{next_seq_++, *size, n});
  stats_.bytes += *size;
  stats_.batches = records_.size();
  while (stats_.bytes > max_bytes_ && records_.size() > 1) {
    const Record old = records_.front();
    remove_front();
    count_drop(1, old.lines, fmt::format("spool over its bound of {} bytes", max_bytes_));
  }
}

std::optional<std::string> Spool::front() {
  while (!records_.empty()) {
    const Record r = records_.front();
    const std::string p = path(r.seq, ".rec");
    auto file = read_whole(p);
    std::string why;
    if (file) {
      auto h = parse_header(*file);
      const std::string_view payload =
          std::string_view(*file).substr(std::min(file->size(), sizeof(Header)));
      if (!h)
        why = fmt::format("record {}: bad header", p);
      else if (crc32_of(payload) != h->crc)
        why = fmt::format("record {}: checksum mismatch", p);
      else if (auto lines = inflate_zlib(payload, h->raw_size); lines)
        return std::move(*lines);
      else
        why = fmt::format("record {}: {}", p, lines.error().message);
    } else {
      why = file.error().message;
    }
    remove_front();
    count_drop(1, r.lines, why);
  }
  return std::nullopt;
}

void Spool::pop_front() {
  if (records_.empty()) return;
  remove_front();
  if (records_.empty() && dropping_) {
    spdlog::info("output {}: spool drained; {} batch(es) were dropped during the outage", label_,
                 stats_.dropped_batches - dropped_at_outage_start_);
    dropping_ = false;
  }
}

void Spool::replace_front(std::string_view rest) {
  if (records_.empty()) return;
  if (rest.empty()) return pop_front();
  Record& r = records_.front();
  const uint32_t n = static_cast<uint32_t>(count_newlines(rest));
  // Same sequence number: rename() replaces the old record atomically.
  auto size = write_record(r.seq, rest, n);
  if (!size) return;  // the old record stays whole: its delivered part is sent again
  stats_.bytes = stats_.bytes - r.bytes + *size;
  r.bytes = *size;
  r.lines = n;
}

void Spool::remove_front() {
  const Record r = records_.front();
  records_.pop_front();
  ::unlink(path(r.seq, ".rec").c_str());
  stats_.bytes -= std::min(stats_.bytes, r.bytes);
  stats_.batches = records_.size();
}

void Spool::count_drop(uint64_t batches, uint64_t lines, std::string_view why) {
  stats_.dropped_batches += batches;
  stats_.dropped_lines += lines;
  if (dropping_) return;
  dropping_ = true;
  dropped_at_outage_start_ = stats_.dropped_batches - batches;
  spdlog::warn("output {}: dropping spooled lines ({}); logged once until the spool drains", label_,
               why);
}

}  // namespace vmscope
