// The field description kept beside the counter maps, and the conversion a later build
// makes with it (issue 9: a changed layout is migrated by counter name, not reset).
#include "attach/kept_layout.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace vmscope {
namespace {

TEST(KeptLayout, ThisBuildsDescriptionNamesEveryCounter) {
  auto l = parse_kept_fields(describe_kept_fields());
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->dirs, uint32_t{VS_DIR_COUNT});
  EXPECT_EQ(l->net_size, sizeof(vs_net_counters));
  EXPECT_EQ(l->service_size, sizeof(vs_service_counters));
  uint32_t net_words = 0, service_words = 0;
  for (const auto& [_, p] : l->net) net_words += p.words;
  for (const auto& [_, p] : l->service) service_words += p.words;
  EXPECT_EQ(net_words, uint32_t{VS_NET_COUNTER_WORDS});
  EXPECT_EQ(service_words, uint32_t{VS_SERVICE_COUNTER_COUNT});
  EXPECT_EQ(l->net.at("l4_bytes").words, uint32_t{VS_L4_COUNT});
  EXPECT_EQ(l->net.at("bytes").offset, offsetof(vs_net_counters, bytes));
  EXPECT_EQ(l->service.at("http_5xx").offset, offsetof(vs_service_counters, http_5xx));
}

TEST(KeptLayout, SameLayoutConvertsEveryWord) {
  auto conv = KeptFieldConverter::from(*parse_kept_fields(describe_kept_fields()));
  ASSERT_TRUE(conv) << conv.error().message;
  EXPECT_TRUE(conv->dropped().empty());
  std::vector<uint64_t> old(conv->old_dev_words());
  for (size_t i = 0; i < old.size(); ++i) old[i] = 1000 + i;
  vs_dev_counters out;
  conv->convert(old.data(), out);
  EXPECT_EQ(std::memcmp(&out, old.data(), sizeof(out)), 0);
  std::vector<uint64_t> old_service(conv->old_service_words());
  for (size_t i = 0; i < old_service.size(); ++i) old_service[i] = 7 * i + 1;
  vs_service_counters service;
  conv->convert(old_service.data(), service);
  EXPECT_EQ(std::memcmp(&service, old_service.data(), sizeof(service)), 0);
}

// An older build: counters in another order, one this build lacks, one it lacks (tcp_syns),
// a shorter l4_bytes array, and a smaller service struct.
constexpr const char* kOlder =
    "vmscope-kept-fields 1\n"
    "dirs 2\n"
    "net_size 64\n"
    "service_size 24\n"
    "net packets 0 1\n"
    "net retired_counter 8 1\n"
    "net bytes 16 1\n"
    "net l4_bytes 24 3\n"
    "net bcast_packets 48 1\n"
    "net mcast_packets 56 1\n"
    "service dns_noerror 0 1\n"
    "service tcp_syn_in 8 1\n"
    "service http_2xx 16 1\n";

TEST(KeptLayout, OlderLayoutConvertsByName) {
  auto old = parse_kept_fields(kOlder);
  ASSERT_TRUE(old) << old.error().message;
  auto conv = KeptFieldConverter::from(*old);
  ASSERT_TRUE(conv) << conv.error().message;
  EXPECT_EQ(conv->dropped(), std::vector<std::string>{"vm_net/bridge retired_counter"});
  ASSERT_EQ(conv->old_dev_words(), 16u);
  // Direction d, word w holds 100 * d + w + 1.
  std::vector<uint64_t> raw(16);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = 100 * (i / 8) + i % 8 + 1;
  vs_dev_counters out;
  conv->convert(raw.data(), out);
  for (int d = 0; d < VS_DIR_COUNT; ++d) {
    const vs_net_counters& c = out.dir[d];
    const uint64_t base = 100 * d;
    EXPECT_EQ(c.packets, base + 1) << d;
    EXPECT_EQ(c.bytes, base + 3) << d;
    EXPECT_EQ(c.l4_bytes[0], base + 4) << d;
    EXPECT_EQ(c.l4_bytes[1], base + 5) << d;
    EXPECT_EQ(c.l4_bytes[2], base + 6) << d;
    EXPECT_EQ(c.l4_bytes[3], 0u) << d << ": the old build had no such element";
    EXPECT_EQ(c.bcast_packets, base + 7) << d;
    EXPECT_EQ(c.mcast_packets, base + 8) << d;
    EXPECT_EQ(c.tcp_syns, 0u) << d << ": the old build had no such counter";
  }
  const uint64_t old_service[] = {11, 22, 33};
  vs_service_counters s;
  conv->convert(old_service, s);
  EXPECT_EQ(s.dns_noerror, 11u);
  EXPECT_EQ(s.tcp_syn_in, 22u);
  EXPECT_EQ(s.http_2xx, 33u);
  EXPECT_EQ(s.tcp_accepted, 0u);
}

TEST(KeptLayout, DescriptionsThatCannotBeReadAreErrors) {
  const char* bad[] = {
      "",
      "vmscope-kept-fields 9\ndirs 2\n",                                           // unknown form
      "vmscope-kept-fields 1\ndirs 2\nnet_size 16\nservice_size 8\nnet a 16 1\n",  // beyond
      "vmscope-kept-fields 1\ndirs 2\nnet_size 16\nservice_size 8\nnet a 0 1\nnet a 8 1\n",
      "vmscope-kept-fields 1\ndirs 2\nnet_size 16\nservice_size 8\nnet a 4 1\n",  // unaligned
      "vmscope-kept-fields 1\ndirs 0\nnet_size 16\nservice_size 8\n",
      "vmscope-kept-fields 1\ndirs 2\nnet_size 99999999\nservice_size 8\n",
      "vmscope-kept-fields 1\ndirs 2\nnet_size 16\nservice_size 8\nnet a 0 x\n",
      "vmscope-kept-fields 1\ndirs 2\nnet_size 16\nservice_size 8\nnet a 0 0\n",  // no words
      "vmscope-kept-fields 1\ndirs 2\nnet_size 16\nservice_size 8\nwhat 1\n",
  };
  for (const char* text : bad) EXPECT_FALSE(parse_kept_fields(text)) << text;
  // Readable, but not into this build: another number of directions.
  auto three = parse_kept_fields("vmscope-kept-fields 1\ndirs 3\nnet_size 8\nservice_size 8\n");
  ASSERT_TRUE(three);
  EXPECT_FALSE(KeptFieldConverter::from(*three));
}

}  // namespace
}  // namespace vmscope
