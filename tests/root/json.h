// A minimal JSON reader for root tests (InfluxDB /query answers, Grafana dashboards):
// objects keep their member order; numbers keep their text.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace vmscope::test {

struct Json {
  // Declared, defined in json.cpp: clang otherwise checks the implicit one while it
  // instantiates std::pair<std::string, Json> below, before Json is complete.
  Json();
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  std::string text;  // number as written, string value, "true"/"false"/"null"
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
  const Json* get(const std::string& key) const {
    for (const auto& [k, v] : members)
      if (k == key) return &v;
    return nullptr;
  }
  std::string str(const std::string& key) const {
    const Json* v = get(key);
    return v && v->kind == kString ? v->text : std::string();
  }
  bool is_true(const std::string& key) const {
    const Json* v = get(key);
    return v && v->kind == kBool && v->text == "true";
  }
};

// Throws std::runtime_error naming the offset on malformed input.
Json parse_json(const std::string& text);

}  // namespace vmscope::test
