// The shipped deploy/vmscope.toml is a valid configuration, and so are the examples it
// shows commented out.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "config/config.h"
#include "output/sink.h"

namespace vmscope {
namespace {

std::string shipped_config() {
  std::ifstream in(std::string(VMSCOPE_SOURCE_DIR) + "/deploy/vmscope.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DeployConfig, ShippedFileIsValidAndPointsAtTelegraf) {
  std::string text = shipped_config();
  ASSERT_FALSE(text.empty());
  auto c = apply_toml(text, "deploy/vmscope.toml", Config{});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->outputs, std::vector<std::string>{"tcp://127.0.0.1:8094"});
  EXPECT_DOUBLE_EQ(c->interval_s, 1.0);
  for (const auto& url : c->outputs) EXPECT_TRUE(make_sink(url, SinkOptions{})) << url;
}

TEST(DeployConfig, CommentedExamplesAreValidToo) {
  // Uncomment "# [table]", "# [[table]]" and "# key = value" lines.
  std::string text = std::regex_replace(
      shipped_config(), std::regex(R"(^# (\[|[a-z_]+ = ))", std::regex::multiline), "$1");
  auto c = apply_toml(text, "deploy/vmscope.toml (examples)", Config{});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http_username, "vmscope");
  EXPECT_FALSE(c->http_token.empty());
  EXPECT_EQ(c->tls_ca_file, "/etc/vmscope/influxdb-ca.pem");
  ASSERT_EQ(c->overrides.size(), 2u);
  EXPECT_EQ(c->overrides[0].tap, "vmmtap7");
  EXPECT_EQ(c->overrides[1].name, "db");
  EXPECT_EQ(c->listen, "127.0.0.1:9847");
  EXPECT_EQ(c->hostname, "node-17");
  EXPECT_EQ(c->tags, (std::map<std::string, std::string>{{"dc", "fra1"}, {"rack", "r7"}}));
}

}  // namespace
}  // namespace vmscope
