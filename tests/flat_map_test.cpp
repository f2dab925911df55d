// FlatMap: the sorted-vector map the per-tick walks use behaves as the std::map it replaced.
#include "common/flat_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace vmscope {
namespace {

TEST(FlatMap, KeepsKeysOrderedWhateverTheInsertionOrder) {
  FlatMap<int, std::string> m;
  std::map<int, std::string> reference;
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const int key = static_cast<int>(rng() % 200);
    const std::string value = std::to_string(i);
    if (i % 3 == 0) {
      m[key] = value;
      reference[key] = value;
    } else if (i % 3 == 1) {
      EXPECT_EQ(m.try_emplace(key, value).second, reference.try_emplace(key, value).second);
    } else {
      EXPECT_EQ(m.erase(key), reference.erase(key));
    }
  }
  ASSERT_EQ(m.size(), reference.size());
  auto r = reference.begin();
  for (const auto& [key, value] : m) {
    EXPECT_EQ(key, r->first);
    EXPECT_EQ(value, r->second);
    ++r;
  }
}

TEST(FlatMap, FindCountAtAndEraseByIterator) {
  FlatMap<int, int> m;
  for (int k : {30, 10, 20, 40}) m.emplace(k, k * 2);
  EXPECT_EQ(m.count(20), 1u);
  EXPECT_EQ(m.count(25), 0u);
  EXPECT_EQ(m.at(40), 80);
  EXPECT_THROW(m.at(25), std::out_of_range);
  EXPECT_EQ(m.find(25), m.end());
  EXPECT_FALSE(m.try_emplace(10, 99).second);  // present: unchanged
  EXPECT_EQ(m.at(10), 20);
  // Erasing while walking, as the attacher and the process tracker do.
  for (auto it = m.begin(); it != m.end();) it = it->first % 20 == 0 ? m.erase(it) : std::next(it);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.begin()->first, 10);
  EXPECT_EQ(std::next(m.begin())->first, 30);
  EXPECT_EQ(m.lower_bound(11)->first, 30);
}

}  // namespace
}  // namespace vmscope
