#include "discover/proc_stat.h"

#include <charconv>
#include <fstream>
#include <iterator>

namespace vmscope {

std::vector<std::string> read_proc_stat(const std::string& proc_root, uint32_t pid) {
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_proc_stat(text);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

std::vector<std::string> parse_proc_stat(std::string_view text) {
  // comm may contain spaces and parentheses: it ends at the last ')'.
  auto lparen = text.find('('), rparen = text.rfind(')');
  if (lparen == std::string_view::npos || lparen < 2 || rparen == std::string_view::npos ||
      rparen < lparen)
    return {};
  std::vector<std::string> fields = {"", std::string(text.substr(0, lparen - 1)),
                                     std::string(text.substr(lparen + 1, rparen - lparen - 1))};
  std::string_view rest = text.substr(rparen + 1);
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && is_space(rest[i])) ++i;
    size_t j = i;
    while (j < rest.size() && !is_space(rest[j])) ++j;
    if (j > i) fields.emplace_back(rest.substr(i, j - i));
    rest.remove_prefix(j);
  }
  return fields;
}

std::optional<Statm> parse_statm(std::string_view text) {
  Statm s;
  const char* p = text.data();
  const char* const end = p + text.size();
  for (uint64_t* v : {&s.size_pages, &s.resident_pages}) {
    while (p != end && is_space(*p)) ++p;
    auto r = std::from_chars(p, end, *v);
    if (r.ec != std::errc() || (r.ptr != end && !is_space(*r.ptr))) return std::nullopt;
    p = r.ptr;
  }
  return s;
}

}  // namespace vmscope
