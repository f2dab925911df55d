// Read-only mappings of mmapable BPF arrays (net_stats, the task-list walk's records):
// the one owner of a mapping; unmaps it exactly once.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>

#include "common/result.h"

namespace vmscope {

struct MappingDeleter {
  size_t bytes = 0;
  void operator()(const void* p) const { munmap(const_cast<void*>(p), bytes); }
};

template <typename T>
using Mapping = std::unique_ptr<const T, MappingDeleter>;

// Maps `count` elements of the mmapable BPF array map_fd, read-only. what: for errors.
template <typename T>
Result<Mapping<T>> map_readonly(int map_fd, size_t count, const std::string& what) {
  const size_t bytes = count * sizeof(T);
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, map_fd, 0);
  if (p == MAP_FAILED) return Error::from_errno("map " + what, errno);
  return Mapping<T>(static_cast<const T*>(p), MappingDeleter{bytes});
}

// How many elements to map when `needed` exceed what is mapped: a mapping of a BPF
// array is resident as a whole, so it covers what is used and an eighth more, not a
// power of two (at 10,000 VMs doubling would map up to 16,384 records, 2-5 MB more per
// array); growing by an eighth still remaps only a few times as VMs are added.
inline size_t mapping_size(size_t needed, size_t capacity) {
  size_t want = std::max<size_t>(needed + needed / 8, 256);
  return std::min(want, capacity);
}

}  // namespace vmscope
