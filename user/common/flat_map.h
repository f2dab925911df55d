// A map kept as one sorted vector: what the per-tick walks over every tap and every
// counted device use. At 10,000 VMs a std::map walk is a pointer chase per node, most of
// them cache misses; a vector is read in order, which the prefetcher keeps ahead of.
// Inserting in the middle moves the tail, but taps come and go one at a time and mostly
// with the highest ifindex yet (the kernel counts ifindexes up), i.e. at the end.
// The subset of std::map's interface the callers use; unlike std::map, an insertion or
// an erasure invalidates references and iterators into it.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

namespace vmscope {

template <typename K, typename V>
class FlatMap {
 public:
  using value_type = std::pair<K, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void clear() { items_.clear(); }
  void reserve(size_t n) { items_.reserve(n); }

  iterator lower_bound(const K& key) {
    return std::lower_bound(items_.begin(), items_.end(), key, less_key);
  }
  const_iterator lower_bound(const K& key) const {
    return std::lower_bound(items_.begin(), items_.end(), key, less_key);
  }
  iterator find(const K& key) {
    auto it = lower_bound(key);
    return it != items_.end() && it->first == key ? it : items_.end();
  }
  const_iterator find(const K& key) const {
    auto it = lower_bound(key);
    return it != items_.end() && it->first == key ? it : items_.end();
  }
  size_t count(const K& key) const { return find(key) != items_.end() ? 1 : 0; }
  bool contains(const K& key) const { return find(key) != items_.end(); }
  const V& at(const K& key) const {
    auto it = find(key);
    if (it == items_.end()) throw std::out_of_range("FlatMap::at: no such key");
    return it->second;
  }

  template <typename... Args>
  std::pair<iterator, bool> try_emplace(const K& key, Args&&... args) {
    // The common case first: a key beyond the last one goes at the end.
    auto it = !items_.empty() && items_.back().first < key ? items_.end() : lower_bound(key);
    if (it != items_.end() && it->first == key) return {it, false};
    it = items_.emplace(it, std::piecewise_construct, std::forward_as_tuple(key),
                        std::forward_as_tuple(std::forward<Args>(args)...));
    return {it, true};
  }
  template <typename... Args>
  std::pair<iterator, bool> emplace(const K& key, Args&&... args) {
    return try_emplace(key, std::forward<Args>(args)...);
  }
  V& operator[](const K& key) { return try_emplace(key).first->second; }
  template <typename M>
  std::pair<iterator, bool> insert_or_assign(const K& key, M&& value) {
    auto [it, inserted] = try_emplace(key, std::forward<M>(value));
    if (!inserted) it->second = std::forward<M>(value);
    return {it, inserted};
  }

  iterator erase(const_iterator it) { return items_.erase(it); }
  size_t erase(const K& key) {
    auto it = find(key);
    if (it == items_.end()) return 0;
    items_.erase(it);
    return 1;
  }

  bool operator==(const FlatMap&) const = default;

 private:
  static bool less_key(const value_type& item, const K& key) { return item.first < key; }
  std::vector<value_type> items_;
};

}  // namespace vmscope
