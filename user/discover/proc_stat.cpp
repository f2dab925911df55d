#include "discover/proc_stat.h"

#include <fstream>
#include <iterator>
#include <sstream>

namespace vmscope {

std::vector<std::string> read_proc_stat(const std::string& proc_root, uint32_t pid) {
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // comm may contain spaces and parentheses: it ends at the last ')'.
  auto lparen = text.find('('), rparen = text.rfind(')');
  if (lparen == std::string::npos || lparen < 2 || rparen == std::string::npos || rparen < lparen)
    return {};
  std::vector<std::string> fields = {"", text.substr(0, lparen - 1),
                                     text.substr(lparen + 1, rparen - lparen - 1)};
  std::istringstream rest(text.substr(rparen + 1));
  for (std::string f; rest >> f;) fields.push_back(std::move(f));
  return fields;
}

}  // namespace vmscope
