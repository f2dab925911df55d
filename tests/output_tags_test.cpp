// Tags for many hosts (output/output_tags.h): which outputs get host, the pre-encoded
// suffix and /metrics labels, the splice into encoded lines, and the validation of what
// the user gives.
#include "output/output_tags.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "output/line_protocol.h"
#include "output/prometheus_metrics.h"

namespace vmscope {
namespace {

TEST(OutputTags, HostOnlyWhereTheLinesBypassTelegraf) {
  const OutputTags t{{{"dc", "fra"}, {"a_b", "x,y=z"}}, "node 1"};
  EXPECT_EQ(line_tag_suffix(t, "http://db:8086/write?db=v"), ",a_b=x\\,y\\=z,dc=fra,host=node\\ 1");
  EXPECT_EQ(line_tag_suffix(t, "https://db/api/v2/write?org=o&bucket=b"),
            ",a_b=x\\,y\\=z,dc=fra,host=node\\ 1");
  EXPECT_EQ(line_tag_suffix(t, "tcp://localhost:8094"), ",a_b=x\\,y\\=z,dc=fra");
  EXPECT_EQ(line_tag_suffix(t, "udp://localhost:8094"), ",a_b=x\\,y\\=z,dc=fra");
  EXPECT_EQ(line_tag_suffix(t, "-"), ",a_b=x\\,y\\=z,dc=fra");
  EXPECT_EQ(line_tag_suffix(OutputTags{{}, ""}, "http://db/write?db=v"), "");  // --no-host-tag
  EXPECT_TRUE(bypasses_telegraf("http://x"));
  EXPECT_FALSE(bypasses_telegraf("tcp://http"));
}

TEST(OutputTags, MetricsLabelsEscapedAsPrometheusWantsThem) {
  const OutputTags t{{{"dc", "a\"b\\c\nd"}}, "h1"};
  EXPECT_EQ(metrics_labels(t), "dc=\"a\\\"b\\\\c\\nd\",host=\"h1\"");
  EXPECT_EQ(metrics_labels(OutputTags{}), "");
}

// Every series of /metrics carries them, with or without labels of its own.
TEST(OutputTags, EveryMetricsSeriesCarriesThem) {
  MetricsSnapshot s;
  s.const_labels = metrics_labels(OutputTags{{{"dc", "fra"}}, "h1"});
  s.self.lines = 3;
  std::string text;
  render_metrics(s, ExpositionFormat::kPrometheus, text);
  size_t samples = 0;
  for (size_t at = 0, nl; at < text.size(); at = nl + 1) {
    nl = text.find('\n', at);
    const std::string line = text.substr(at, nl - at);
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    EXPECT_NE(line.find("dc=\"fra\",host=\"h1\"}"), std::string::npos) << line;
  }
  EXPECT_GT(samples, 10u);
  EXPECT_NE(text.find("vmscope_tick_lines{dc=\"fra\",host=\"h1\"} 3\n"), std::string::npos);
}

struct SpliceCase {
  std::string lines, suffix, want;
};

class SpliceTags : public ::testing::TestWithParam<SpliceCase> {};

TEST_P(SpliceTags, AfterTheSeriesKeyOfEveryLine) {
  std::string out = "kept:";
  append_with_tags(GetParam().lines, GetParam().suffix, out);
  EXPECT_EQ(out, "kept:" + GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SpliceTags,
    ::testing::Values(
        SpliceCase{"m v=1i 1\n", "", "m v=1i 1\n"},
        SpliceCase{"m v=1i 1\n", ",h=x", "m,h=x v=1i 1\n"},
        SpliceCase{"m,a=b v=1i 1\nn,c=d w=\"x y\" 2\n", ",h=x",
                   "m,a=b,h=x v=1i 1\nn,c=d,h=x w=\"x y\" 2\n"},
        // Escaped spaces and commas in the measurement and tag values, and a backslash
        // pair before an escaped space (a raw "a\ b"), are part of the key.
        SpliceCase{"my\\ m,vm=a\\\\\\ b\\,c v=1i\n", ",h=x", "my\\ m,vm=a\\\\\\ b\\,c,h=x v=1i\n"},
        SpliceCase{"m,vm=a\\nb v=1i\n", ",h=x", "m,vm=a\\nb,h=x v=1i\n"},  // an escaped newline
        // A last line without its newline (not written by the encoders) still gets them.
        SpliceCase{"m v=1i", ",h=x", "m,h=x v=1i"}, SpliceCase{"", ",h=x", ""}));

// Every line the encoder writes, whatever it escaped, gets the suffix right before its
// fields: the tags line protocol parsers read are the written ones plus the suffix.
TEST(SpliceTags, WhateverTheEncoderEscaped) {
  const std::string nasty[] = {"a b", "a,b", "a=b", "a\\ b", "a\\\\,b", "a\\", "\\ \\", "x\ny"};
  for (const std::string& v : nasty) {
    std::string lines;
    LineWriter w(lines);
    w.begin("m x").tag("vm", v).tag("bridge", v).field_string("s", v + " z").end(5);
    std::string plain;
    LineWriter p(plain);
    p.begin("m x")
        .tag("vm", v)
        .tag("bridge", v)
        .tag("dc", "f 1")
        .field_string("s", v + " z")
        .end(5);
    std::string out;
    append_with_tags(lines, encode_tag_suffix({{"dc", "f 1"}}), out);
    EXPECT_EQ(out, plain) << v;
  }
}

// What the tags cost the output thread at scale (the encoder itself pays nothing).
TEST(SpliceTags, CostOfABatchOf10000Vms) {
  std::string batch;
  size_t lines = 0;
  const auto encode = [&] {
    batch.clear();
    LineWriter w(batch);
    for (int i = 0; i < 10000; ++i) {
      const std::string vm = "vm-" + std::to_string(i);
      for (Key m : {Key("interface"), Key("vm_net"), Key("resource_usage"), Key("kinfo_mem"),
                    Key("vm_cpu")})
        w.begin(m)
            .tag("vm", vm)
            .tag("bridge", "br0")
            .field_uint("a", 123456789)
            .field_uint("b", 987654321)
            .end(1700000000000000000);
    }
    lines = w.lines();
  };
  const std::string suffix = encode_tag_suffix({{"dc", "fra1"}, {"host", "node-17"}});
  std::string out;
  using Clock = std::chrono::steady_clock;
  constexpr int kRounds = 5;
  double encode_ms = 0, splice_ms = 0;
  for (int r = 0; r < kRounds; ++r) {
    const auto t0 = Clock::now();
    encode();
    const auto t1 = Clock::now();
    out.clear();
    append_with_tags(batch, suffix, out);
    const auto t2 = Clock::now();
    encode_ms += std::chrono::duration<double, std::milli>(t1 - t0).count() / kRounds;
    splice_ms += std::chrono::duration<double, std::milli>(t2 - t1).count() / kRounds;
  }
  EXPECT_EQ(out.size(), batch.size() + lines * suffix.size());
  std::printf(
      "[ figures ] %zu lines (%zu bytes): encoded in %.2f ms, tags spliced in %.2f ms (%.2fx)\n",
      lines, batch.size(), encode_ms, splice_ms, splice_ms / encode_ms);
}

struct TagCase {
  std::string key, value, error;  // error empty: valid
};

class ValidateTag : public ::testing::TestWithParam<TagCase> {};

TEST_P(ValidateTag, OneLineNamingTheKey) {
  const Status st = validate_tag(GetParam().key, GetParam().value);
  if (GetParam().error.empty()) {
    EXPECT_TRUE(st) << st.error().message;
  } else {
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, GetParam().error);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidateTag,
    ::testing::Values(
        TagCase{"dc", "fra 1", ""}, TagCase{"_rack", "a,b=c\"d", ""}, TagCase{"Zone9", "ü", ""},
        TagCase{"", "x", "tag with an empty key"}, TagCase{"dc", "", "tag \"dc\": empty value"},
        TagCase{"vm", "x", "tag \"vm\": vmscope writes this key itself"},
        TagCase{"bridge", "x", "tag \"bridge\": vmscope writes this key itself"},
        TagCase{"tap", "x", "tag \"tap\": vmscope writes this key itself"},
        TagCase{"le", "x", "tag \"le\": vmscope writes this key itself"},
        TagCase{"host", "x",
                "tag \"host\": vmscope writes host itself (set hostname / --hostname)"},
        TagCase{"9dc", "x", "tag \"9dc\": a key is a letter or _ followed by letters, digits or _"},
        TagCase{"d c", "x", "tag \"d c\": a key is a letter or _ followed by letters, digits or _"},
        TagCase{"__name", "x", "tag \"__name\": keys starting with __ are Prometheus' own"},
        TagCase{"dc", "a\nb", "tag \"dc\": control characters in the value"},
        TagCase{"dc", "a\\", "tag \"dc\": a value may not end in a backslash"}));

}  // namespace
}  // namespace vmscope
