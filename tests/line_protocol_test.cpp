#include "output/line_protocol.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vmscope {
namespace {

struct Case {
  const char* name;
  std::function<void(LineWriter&)> build;  // begin() .. fields; the test calls end(-1)
  const char* want;                        // "" when the line must be dropped
};

void check_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string out;
    LineWriter w(out);
    c.build(w);
    w.end(-1);
    EXPECT_EQ(out, c.want);
    EXPECT_EQ(w.lines(), std::string_view(c.want).empty() ? 0u : 1u);
  }
}

// Examples from the InfluxDB 1.x line protocol reference / tutorial, element by element.
TEST(LineProtocol, EscapingPerElement) {
  check_cases({
      {"plain",
       [](LineWriter& w) { w.begin("weather").tag("location", "us-midwest").field_int("t", 82); },
       "weather,location=us-midwest t=82i\n"},
      {"measurement comma", [](LineWriter& w) { w.begin("wea,ther").field_int("t", 1); },
       "wea\\,ther t=1i\n"},
      {"measurement space", [](LineWriter& w) { w.begin("wea ther").field_int("t", 1); },
       "wea\\ ther t=1i\n"},
      {"measurement equals is literal",
       [](LineWriter& w) { w.begin("wea=ther").field_int("t", 1); }, "wea=ther t=1i\n"},
      {"measurement quote is literal",
       [](LineWriter& w) { w.begin("wea\"ther").field_int("t", 1); }, "wea\"ther t=1i\n"},
      {"tag key comma equals space",
       [](LineWriter& w) { w.begin("m").tag("a,b=c d", "v").field_int("t", 1); },
       "m,a\\,b\\=c\\ d=v t=1i\n"},
      {"tag value comma equals space",
       [](LineWriter& w) { w.begin("m").tag("location", "us,mid=west x").field_int("t", 1); },
       "m,location=us\\,mid\\=west\\ x t=1i\n"},
      {"tag value quote is literal",
       [](LineWriter& w) { w.begin("m").tag("k", "\"q\"").field_int("t", 1); }, "m,k=\"q\" t=1i\n"},
      {"field key comma equals space",
       [](LineWriter& w) { w.begin("m").field_int("temp,e=ra ture", 1); },
       "m temp\\,e\\=ra\\ ture=1i\n"},
      {"string value quotes", [](LineWriter& w) { w.begin("m").field_string("s", "too\"hot\""); },
       "m s=\"too\\\"hot\\\"\"\n"},
      {"string value backslash",
       [](LineWriter& w) { w.begin("m").field_string("s", "C:\\Windows\\"); },
       "m s=\"C:\\\\Windows\\\\\"\n"},
      {"string value keeps comma equals space",
       [](LineWriter& w) { w.begin("m").field_string("s", "a, b=c"); }, "m s=\"a, b=c\"\n"},
      {"string value empty", [](LineWriter& w) { w.begin("m").field_string("s", ""); },
       "m s=\"\"\n"},
      {"utf-8 passes through",
       [](LineWriter& w) {
         w.begin("m").tag("k", "\xc3\xa9t\xc3\xa9").field_string("s", "\xe2\x9c\x93");
       },
       "m,k=\xc3\xa9t\xc3\xa9 s=\"\xe2\x9c\x93\"\n"},
  });
}

// Newlines would split a point in two; they become the two characters \n (as Telegraf does).
// A literal key is classified at compile time: plain ones skip the escape scan, the rest
// (and every key built at run time) are escaped, with the same bytes either way.
static_assert(Key("vm_to_host_bytes").is_plain());
static_assert(!Key("a,b").is_plain() && !Key("a=b").is_plain() && !Key("a b").is_plain());
static_assert(!Key("a\\b").is_plain() && !Key("a\nb").is_plain() && !Key("").is_plain());

TEST(LineProtocol, LiteralAndRunTimeKeysWriteTheSameBytes) {
  const std::string plain = "vm", special = "a,b=c d";
  EXPECT_FALSE(Key(plain).is_plain());
  for (bool literal : {true, false}) {
    SCOPED_TRACE(literal ? "literal keys" : "run-time keys");
    std::string out;
    LineWriter w(out);
    if (literal)
      w.begin("m").tag("vm", "x").tag("a,b=c d", "y").field_int("vm", 1).field_int("a,b=c d", 2);
    else
      w.begin("m").tag(plain, "x").tag(special, "y").field_int(plain, 1).field_int(special, 2);
    w.end(-1);
    EXPECT_EQ(out, "m,vm=x,a\\,b\\=c\\ d=y vm=1i,a\\,b\\=c\\ d=2i\n");
  }
}

// A tag value escaped beforehand (TagValue, one value for several lines) writes exactly
// what tag() writes with the raw value, skipped elements included; one TagValue reused for
// values of every length keeps nothing of the previous one.
TEST(LineProtocol, EscapedTagValuesWriteTheSameBytes) {
  const std::vector<std::string> values = {"web",
                                           "",
                                           "a,b=c d",
                                           "\\",
                                           "x\\",
                                           "x\\ y",
                                           "line\nbreak\r",
                                           "tab\t",
                                           std::string(40, 'v'),
                                           std::string(3, ','),
                                           "\\,",
                                           "z"};
  TagValue reused;
  for (const std::string& v : values) {
    SCOPED_TRACE(v);
    std::string raw, escaped;
    {
      LineWriter w(raw);
      w.begin("m").tag("k", v).tag(std::string("t,2"), v).field_int("f", 1).end(-1);
    }
    reused.set(v);
    {
      LineWriter w(escaped);
      w.begin("m").tag("k", reused).tag(std::string("t,2"), reused).field_int("f", 1).end(-1);
    }
    EXPECT_EQ(escaped, raw);
    EXPECT_EQ(TagValue(v).text(), reused.text());
  }
  std::string after_field;
  LineWriter w(after_field);
  w.begin("m").field_int("f", 1).tag("k", TagValue("x")).end(-1);  // tags after fields: skipped
  EXPECT_EQ(after_field, "m f=1i\n");
}

// Measurement names: a literal is copied as it is when it needs no escaping, a run-time
// name is always escaped; both write the same bytes ('=' needs no escape here).
TEST(LineProtocol, LiteralAndRunTimeMeasurementsWriteTheSameBytes) {
  const std::string plain = "vm_net", special = "a,b=c d";
  std::string literal_out, runtime_out;
  {
    LineWriter w(literal_out);
    w.begin("vm_net").field_int("f", 1).end(-1);
    w.begin("a,b=c d").field_int("f", 2).end(-1);
  }
  {
    LineWriter w(runtime_out);
    w.begin(plain).field_int("f", 1).end(-1);
    w.begin(special).field_int("f", 2).end(-1);
  }
  EXPECT_EQ(literal_out, "vm_net f=1i\na\\,b=c\\ d f=2i\n");
  EXPECT_EQ(runtime_out, literal_out);
}

TEST(LineProtocol, NewlinesNeverBreakTheLine) {
  check_cases({
      {"measurement", [](LineWriter& w) { w.begin("a\nb").field_int("t", 1); }, "a\\nb t=1i\n"},
      {"tag key", [](LineWriter& w) { w.begin("m").tag("a\nb", "v").field_int("t", 1); },
       "m,a\\nb=v t=1i\n"},
      {"tag value", [](LineWriter& w) { w.begin("m").tag("k", "a\r\nb").field_int("t", 1); },
       "m,k=a\\r\\nb t=1i\n"},
      {"field key", [](LineWriter& w) { w.begin("m").field_int("a\nb", 1); }, "m a\\nb=1i\n"},
      {"string value", [](LineWriter& w) { w.begin("m").field_string("s", "l1\nl2\r"); },
       "m s=\"l1\\nl2\\r\"\n"},
  });
}

// Backslashes in names: doubled before an escaped character (so the escape is not swallowed by a
// "\x" pair scanner), dropped at the end (InfluxDB 1.x cannot parse a trailing one).
TEST(LineProtocol, BackslashesInNames) {
  check_cases({
      {"literal in the middle",
       [](LineWriter& w) { w.begin("m").tag("path", "C:\\dir").field_int("t", 1); },
       "m,path=C:\\dir t=1i\n"},
      {"before escaped comma",
       [](LineWriter& w) { w.begin("m").tag("k", "a\\,b").field_int("t", 1); },
       "m,k=a\\\\\\,b t=1i\n"},
      {"run before escaped space", [](LineWriter& w) { w.begin("m\\\\ x").field_int("t", 1); },
       "m\\\\\\\\\\ x t=1i\n"},
      {"before equals in field key", [](LineWriter& w) { w.begin("m").field_int("a\\=b", 1); },
       "m a\\\\\\=b=1i\n"},
      {"trailing in measurement", [](LineWriter& w) { w.begin("m\\").field_int("t", 1); },
       "m t=1i\n"},
      {"trailing in tag value",
       [](LineWriter& w) { w.begin("m").tag("k", "v\\\\").field_int("t", 1); }, "m,k=v t=1i\n"},
      {"tag value of backslashes only is skipped",
       [](LineWriter& w) { w.begin("m").tag("k", "\\").field_int("t", 1); }, "m t=1i\n"},
      {"tag key of backslashes only is skipped",
       [](LineWriter& w) { w.begin("m").tag("\\", "v").field_int("t", 1); }, "m t=1i\n"},
      {"field key of backslashes only is skipped",
       [](LineWriter& w) { w.begin("m").field_int("\\", 1).field_int("t", 2); }, "m t=2i\n"},
      {"measurement of backslashes only drops the line",
       [](LineWriter& w) { w.begin("\\").field_int("t", 1); }, ""},
  });
}

TEST(LineProtocol, SkippedElements) {
  check_cases({
      {"empty tag value skipped",
       [](LineWriter& w) { w.begin("m").tag("a", "").tag("b", "2").field_int("t", 1); },
       "m,b=2 t=1i\n"},
      {"empty tag key skipped", [](LineWriter& w) { w.begin("m").tag("", "v").field_int("t", 1); },
       "m t=1i\n"},
      {"empty field key skipped",
       [](LineWriter& w) { w.begin("m").field_int("", 1).field_int("t", 2); }, "m t=2i\n"},
      {"tag after a field skipped",
       [](LineWriter& w) { w.begin("m").field_int("t", 1).tag("late", "x"); }, "m t=1i\n"},
      {"no fields drops the line", [](LineWriter& w) { w.begin("m").tag("a", "b"); }, ""},
      {"only NaN drops the line",
       [](LineWriter& w) { w.begin("m").field_float("f", std::nan("")); }, ""},
      {"empty measurement drops the line", [](LineWriter& w) { w.begin("").field_int("t", 1); },
       ""},
  });
}

TEST(LineProtocol, Integers) {
  static constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  static constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  static constexpr uint64_t kUMax = std::numeric_limits<uint64_t>::max();
  check_cases({
      {"zero", [](LineWriter& w) { w.begin("m").field_int("v", 0); }, "m v=0i\n"},
      {"negative", [](LineWriter& w) { w.begin("m").field_int("v", -42); }, "m v=-42i\n"},
      {"int64 min", [](LineWriter& w) { w.begin("m").field_int("v", kMin); },
       "m v=-9223372036854775808i\n"},
      {"int64 max", [](LineWriter& w) { w.begin("m").field_int("v", kMax); },
       "m v=9223372036854775807i\n"},
      {"uint small", [](LineWriter& w) { w.begin("m").field_uint("v", 123); }, "m v=123i\n"},
      {"uint at int64 max", [](LineWriter& w) { w.begin("m").field_uint("v", uint64_t{kMax}); },
       "m v=9223372036854775807i\n"},
      {"uint just above clamps",
       [](LineWriter& w) { w.begin("m").field_uint("v", uint64_t{kMax} + 1); },
       "m v=9223372036854775807i\n"},
      {"uint max clamps", [](LineWriter& w) { w.begin("m").field_uint("v", kUMax); },
       "m v=9223372036854775807i\n"},
  });
}

// uints is field_uint per key: the same bytes for any value (clamped alike), its first
// field after a space, the rest after commas, and fields on either side of it.
TEST(LineProtocol, UintRunsWriteWhatFieldUintWrites) {
  static constexpr UintKeys kKeys{"rx_bytes", "host_to_vm_new_connections", "a"};
  std::mt19937_64 rng(12);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t v[3] = {rng() >> (rng() % 64), rng(), uint64_t(i)};
    std::string run, single;
    LineWriter wr(run), ws(single);
    wr.begin("m").tag("vm", "x").uints(kKeys, v[0], v[1], v[2]).field_int("z", -1).end(i);
    ws.begin("m").tag("vm", "x").field_uint("rx_bytes", v[0]);
    ws.field_uint("host_to_vm_new_connections", v[1]).field_uint("a", v[2]).field_int("z", -1);
    ws.end(i);
    ASSERT_EQ(run, single) << v[0] << " " << v[1];
  }
  std::string out;
  LineWriter w(out);
  static constexpr UintKeys kZeros{"ixrss", "idrss"};
  w.begin("m").uints(kZeros, 0, 0).field_int("c", 1).end(1);
  w.begin("m").field_int("c", 1).uints(kZeros, 0, std::numeric_limits<uint64_t>::max()).end(2);
  w.uints(kZeros, 1, 2);  // no line open: ignored
  EXPECT_EQ(out, "m ixrss=0i,idrss=0i,c=1i 1\nm c=1i,ixrss=0i,idrss=9223372036854775807i 2\n");
}

TEST(LineProtocol, Floats) {
  check_cases({
      {"0.1", [](LineWriter& w) { w.begin("m").field_float("v", 0.1); }, "m v=0.1\n"},
      {"integral value has no i", [](LineWriter& w) { w.begin("m").field_float("v", 1.0); },
       "m v=1\n"},
      {"negative", [](LineWriter& w) { w.begin("m").field_float("v", -2.5); }, "m v=-2.5\n"},
      {"zero", [](LineWriter& w) { w.begin("m").field_float("v", 0.0); }, "m v=0\n"},
      {"1e21 scientific", [](LineWriter& w) { w.begin("m").field_float("v", 1e21); },
       "m v=1e+21\n"},
      {"small scientific", [](LineWriter& w) { w.begin("m").field_float("v", 1.5e-7); },
       "m v=1.5e-07\n"},
      {"denormal", [](LineWriter& w) { w.begin("m").field_float("v", 5e-324); }, "m v=5e-324\n"},
      {"max",
       [](LineWriter& w) { w.begin("m").field_float("v", std::numeric_limits<double>::max()); },
       "m v=1.7976931348623157e+308\n"},
      {"1/3 round trips", [](LineWriter& w) { w.begin("m").field_float("v", 1.0 / 3); },
       "m v=0.3333333333333333\n"},
      {"NaN skipped",
       [](LineWriter& w) { w.begin("m").field_float("n", std::nan("")).field_int("t", 1); },
       "m t=1i\n"},
      {"Inf skipped",
       [](LineWriter& w) {
         w.begin("m").field_float("a", INFINITY).field_float("b", -INFINITY).field_int("t", 1);
       },
       "m t=1i\n"},
  });
}

TEST(LineProtocol, FloatsRoundTrip) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> mant(-1.0, 1.0);
  std::uniform_int_distribution<int> exp(-300, 300);
  for (int i = 0; i < 2000; ++i) {
    const double v = std::ldexp(mant(rng), exp(rng));
    std::string out;
    LineWriter(out).begin("m").field_float("v", v).end(-1);
    ASSERT_EQ(out.substr(0, 4), "m v=");
    const std::string text = out.substr(4, out.size() - 5);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
  }
}

TEST(LineProtocol, FixedDecimals) {
  check_cases({
      {"albatross utime", [](LineWriter& w) { w.begin("m").field_fixed("utime", 1.25, 6); },
       "m utime=1.250000\n"},
      {"zero", [](LineWriter& w) { w.begin("m").field_fixed("v", 0.0, 6); }, "m v=0.000000\n"},
      {"large seconds", [](LineWriter& w) { w.begin("m").field_fixed("v", 123456.5, 6); },
       "m v=123456.500000\n"},
      {"rounds", [](LineWriter& w) { w.begin("m").field_fixed("v", 2.0 / 3, 3); }, "m v=0.667\n"},
      {"no decimals", [](LineWriter& w) { w.begin("m").field_fixed("v", 2.6, 0); }, "m v=3\n"},
      {"negative decimals clamp to 0",
       [](LineWriter& w) { w.begin("m").field_fixed("v", 7.0, -2); }, "m v=7\n"},
      {"negative value", [](LineWriter& w) { w.begin("m").field_fixed("v", -1.5, 2); },
       "m v=-1.50\n"},
      {"NaN skipped",
       [](LineWriter& w) { w.begin("m").field_fixed("v", std::nan(""), 6).field_int("t", 1); },
       "m t=1i\n"},
  });
}

// field_fixed writes exactly what std::to_chars(fixed) writes, including values next to a
// rounding tie and values too large for its integer fast path.
TEST(LineProtocol, FixedMatchesToChars) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<uint64_t> ns(0, uint64_t{1} << 62);
  std::uniform_int_distribution<int> decimals(0, 9);
  auto check = [](double v, int d) {
    std::string out;
    LineWriter(out).begin("m").field_fixed("v", v, d).end(-1);
    char want[400];
    auto r = std::to_chars(want, want + sizeof want, v, std::chars_format::fixed, d);
    ASSERT_EQ(out, "m v=" + std::string(want, r.ptr) + "\n") << v << " " << d;
  };
  for (int i = 0; i < 200000; ++i) {
    const uint64_t n = ns(rng) >> (i % 40);
    check(static_cast<double>(n) / 1e9, 6);                   // seconds from nanoseconds
    check(static_cast<double>(n - n % 1000 + 500) / 1e9, 6);  // next to a tie
    check(static_cast<double>(n) / 1e9, decimals(rng));
  }
  check(0.0078125, 6);  // an exact tie: round half to even
  check(-0.0, 6);
  check(1e300, 2);
}

TEST(LineProtocol, BoolsAndFieldOrder) {
  check_cases({
      {"bools",
       [](LineWriter& w) { w.begin("m").field_bool("up", true).field_bool("down", false); },
       "m up=true,down=false\n"},
      {"mixed fields in call order",
       [](LineWriter& w) {
         w.begin("vm")
             .tag("name", "web1")
             .tag("bridge", "br0")
             .field_int("rx", 10)
             .field_float("load", 0.5)
             .field_string("state", "running")
             .field_bool("ok", true);
       },
       "vm,name=web1,bridge=br0 rx=10i,load=0.5,state=\"running\",ok=true\n"},
  });
}

TEST(LineProtocol, Timestamps) {
  std::string out;
  LineWriter w(out);
  w.begin("m").field_int("v", 0).end(-1);
  w.begin("m").field_int("v", 1).end(1465839830100400200);
  w.begin("m").field_int("v", 2).end(0);
  w.begin("m").field_int("v", 3).end(-1);
  w.begin("m").field_int("v", 4).end(std::numeric_limits<int64_t>::max());
  // end() formats a timestamp once for the lines that share it: repeats and returns.
  w.begin("m").field_int("v", 5).end(std::numeric_limits<int64_t>::max());
  w.begin("m").field_int("v", 6).end(-1);
  w.begin("m").field_int("v", 7).end(-1);
  w.begin("m").field_int("v", 8).end(1465839830100400200);
  w.begin("m").field_int("v", 9).end(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(out,
            "m v=0i\n"
            "m v=1i 1465839830100400200\n"
            "m v=2i 0\n"
            "m v=3i\n"
            "m v=4i 9223372036854775807\n"
            "m v=5i 9223372036854775807\n"
            "m v=6i\n"
            "m v=7i\n"
            "m v=8i 1465839830100400200\n"
            "m v=9i\n");
  EXPECT_EQ(w.lines(), 10u);
}

TEST(LineProtocol, MultipleLinesAndRollback) {
  std::string out = "existing\n";  // the writer appends to what the caller has
  LineWriter w(out);
  w.begin("a").field_int("v", 1).end(10);
  w.begin("dropped").tag("k", "v").end(11);  // no field: rolled back
  w.begin("b").tag("k", "v").field_int("v", 2).end(12);
  w.begin("unfinished").field_int("v", 3);  // never end()ed: discarded by the next begin
  w.begin("c").field_int("v", 4).end(13);
  w.end(14);  // end without begin: nothing
  EXPECT_EQ(out, "existing\na v=1i 10\nb,k=v v=2i 12\nc v=4i 13\n");
  EXPECT_EQ(w.lines(), 3u);
}

TEST(LineProtocol, FieldsWithoutBeginAreIgnored) {
  std::string out;
  LineWriter w(out);
  w.tag("k", "v").field_int("v", 1);
  w.end(1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(w.lines(), 0u);
}

}  // namespace
}  // namespace vmscope
