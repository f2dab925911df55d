#include "attach/kept_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>

namespace vmscope {
namespace {

constexpr std::string_view kHeader = "vmscope-kept-fields 1";
// Bounds a description must stay within (it is read from a pin anyone with bpffs write
// access could have replaced): far above any real struct.
constexpr uint32_t kMaxStructBytes = 1 << 16;
constexpr uint32_t kMaxDirs = 8;

std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool to_u32(std::string_view s, uint32_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Copies from old fields to this build's, by name.
template <typename Fields>
void plan(const Fields& old, const std::map<std::string, FieldPlace, std::less<>>& now,
          std::vector<std::pair<FieldPlace, FieldPlace>>& copies, std::vector<std::string>& dropped,
          std::string_view prefix) {
  for (const auto& [name, place] : old) {
    auto it = now.find(name);
    if (it == now.end()) {
      dropped.push_back(fmt::format("{}{}", prefix, name));
      continue;
    }
    copies.emplace_back(place, it->second);
  }
}

}  // namespace

std::string describe_kept_fields() {
  std::string s =
      fmt::format("{}\ndirs {}\nnet_size {}\nservice_size {}\n", kHeader, int(VS_DIR_COUNT),
                  sizeof(vs_net_counters), sizeof(vs_service_counters));
#define VS_NET_FIELD_(field) \
  s += fmt::format("net {} {} 1\n", #field, offsetof(vs_net_counters, field));
#define VS_NET_ARRAY_(field, n) \
  s += fmt::format("net {} {} {}\n", #field, offsetof(vs_net_counters, field), int(n));
  VS_NET_COUNTERS(VS_NET_FIELD_, VS_NET_ARRAY_)
#undef VS_NET_FIELD_
#undef VS_NET_ARRAY_
#define VS_SERVICE_FIELD_(field) \
  s += fmt::format("service {} {} 1\n", #field, offsetof(vs_service_counters, field));
  VS_SERVICE_COUNTERS(VS_SERVICE_FIELD_)
#undef VS_SERVICE_FIELD_
  return s;
}

Result<KeptFieldLayout> parse_kept_fields(std::string_view text) {
  KeptFieldLayout l;
  bool header = false;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    auto bad = [&](std::string_view why) {
      return Error::msg(fmt::format("kept field layout, line {}: {}", line_no, why));
    };
    if (!header) {
      if (line != kHeader) return bad("not a vmscope field layout of a known form");
      header = true;
      continue;
    }
    auto w = words_of(line);
    if (w.size() == 2) {
      uint32_t v = 0;
      if (!to_u32(w[1], v)) return bad("not a number");
      if (w[0] == "dirs")
        l.dirs = v;
      else if (w[0] == "net_size")
        l.net_size = v;
      else if (w[0] == "service_size")
        l.service_size = v;
      else
        return bad("unknown key");
      continue;
    }
    if (w.size() != 4 || (w[0] != "net" && w[0] != "service"))
      return bad("expected `net|service NAME OFFSET WORDS`");
    FieldPlace p;
    if (!to_u32(w[2], p.offset) || !to_u32(w[3], p.words) || p.words == 0 || p.offset % 8 != 0)
      return bad("bad offset or word count");
    auto& fields = w[0] == "net" ? l.net : l.service;
    if (!fields.emplace(std::string(w[1]), p).second) return bad("a field named twice");
  }
  if (!header) return Error::msg("kept field layout: empty");
  if (l.dirs == 0 || l.dirs > kMaxDirs || l.net_size == 0 || l.net_size > kMaxStructBytes ||
      l.net_size % 8 != 0 || l.service_size > kMaxStructBytes || l.service_size % 8 != 0)
    return Error::msg("kept field layout: struct sizes out of bounds");
  auto within = [](const auto& fields, uint32_t size) {
    return std::all_of(fields.begin(), fields.end(), [&](const auto& f) {
      return uint64_t{f.second.offset} + uint64_t{f.second.words} * 8 <= size;
    });
  };
  if (!within(l.net, l.net_size) || !within(l.service, l.service_size))
    return Error::msg("kept field layout: a field lies beyond its struct");
  return l;
}

Result<KeptFieldConverter> KeptFieldConverter::from(const KeptFieldLayout& old) {
  if (old.dirs != VS_DIR_COUNT)
    return Error::msg(fmt::format("the kept counters have {} directions, this build {}", old.dirs,
                                  int(VS_DIR_COUNT)));
  auto now = parse_kept_fields(describe_kept_fields());
  if (!now) return now.error().context("this build's own field layout");
  KeptFieldConverter c;
  c.old_net_words_ = old.net_size / 8;
  c.old_dev_words_ = size_t{old.dirs} * c.old_net_words_;
  c.old_service_words_ = old.service_size / 8;
  std::vector<std::pair<FieldPlace, FieldPlace>> copies;
  plan(old.net, now->net, copies, c.dropped_, "vm_net/bridge ");
  for (const auto& [from, to] : copies)
    c.net_.push_back({from.offset / 8, to.offset / 8, std::min(from.words, to.words)});
  copies.clear();
  plan(old.service, now->service, copies, c.dropped_, "vm_service ");
  for (const auto& [from, to] : copies)
    c.service_.push_back({from.offset / 8, to.offset / 8, std::min(from.words, to.words)});
  return c;
}

void KeptFieldConverter::convert(const uint64_t* old_dev, vs_dev_counters& out) const {
  out = {};
  for (int d = 0; d < VS_DIR_COUNT; ++d) {
    uint64_t to[sizeof(vs_net_counters) / 8];
    std::memcpy(to, &out.dir[d], sizeof(to));
    const uint64_t* from = old_dev + size_t(d) * old_net_words_;
    for (const Copy& c : net_)
      for (uint32_t i = 0; i < c.words; ++i) to[c.to + i] = from[c.from + i];
    std::memcpy(&out.dir[d], to, sizeof(to));
  }
}

void KeptFieldConverter::convert(const uint64_t* old_service, vs_service_counters& out) const {
  uint64_t to[sizeof(vs_service_counters) / 8] = {};
  for (const Copy& c : service_)
    for (uint32_t i = 0; i < c.words; ++i) to[c.to + i] = old_service[c.from + i];
  std::memcpy(&out, to, sizeof(to));
}

}  // namespace vmscope
