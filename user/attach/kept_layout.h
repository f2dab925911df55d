// Where each counter lies in the kept counter structs (vs_net_counters, vs_service_counters),
// written beside the kept maps, so that a later build whose structs differ can still read
// them field by field, by name: a changed layout is migrated, not reset (issue 9).
//
// A counter of the same name keeps its meaning across builds; a counter whose meaning
// changes under the same name (say, vs_l4's order) needs kKeptRevision bumped instead
// (attach/kept_state.cpp), which makes the kept maps unreadable and resets them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vmscope.h"

namespace vmscope {

// One counter: its byte offset in its struct and its number of __u64 words.
struct FieldPlace {
  uint32_t offset = 0;
  uint32_t words = 1;
};

struct KeptFieldLayout {
  uint32_t dirs = 0;          // vs_dev_counters: dirs x vs_net_counters
  uint32_t net_size = 0;      // bytes of one vs_net_counters
  uint32_t service_size = 0;  // bytes of one vs_service_counters
  std::map<std::string, FieldPlace, std::less<>> net, service;
};

// This build's layout, as text (the form kept in the pin directory).
std::string describe_kept_fields();
// A kept description back; an error names the line that is not one.
Result<KeptFieldLayout> parse_kept_fields(std::string_view text);

// Reads counters of an older layout into this build's structs, by name: a counter this
// build has and the old one had not starts at zero; one the old build had and this one has
// not is dropped (dropped() names them); arrays keep their common prefix.
class KeptFieldConverter {
 public:
  // An error when the old layout cannot be read this way (another number of directions,
  // a field beyond its struct).
  static Result<KeptFieldConverter> from(const KeptFieldLayout& old);

  // Words of one old net_stats value (dirs x net_size) and of one old service value.
  size_t old_dev_words() const { return old_dev_words_; }
  size_t old_service_words() const { return old_service_words_; }
  // out = the old value's counters in this build's struct (out is overwritten).
  void convert(const uint64_t* old_dev, vs_dev_counters& out) const;
  void convert(const uint64_t* old_service, vs_service_counters& out) const;
  const std::vector<std::string>& dropped() const { return dropped_; }

 private:
  struct Copy {
    uint32_t from, to, words;  // in __u64 words
  };
  std::vector<Copy> net_, service_;  // net_: within one direction
  size_t old_dev_words_ = 0, old_net_words_ = 0, old_service_words_ = 0;
  std::vector<std::string> dropped_;
};

}  // namespace vmscope
