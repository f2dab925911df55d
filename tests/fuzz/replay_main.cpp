// Replays corpus files through a fuzz target without libFuzzer: the normal build (g++ or
// clang) links every target with this main, and ctest runs it over the target's committed
// corpus, so that CI replays each seed and every past crash in seconds. Arguments are
// files or directories (their regular files, in name order); a crash or a failed check
// inside the target aborts, which fails the test.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> files_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  if (!S_ISDIR(st.st_mode)) return {path};
  std::vector<std::string> files;
  if (DIR* d = ::opendir(path.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string child = path + "/" + e->d_name;
      struct stat cst {};
      if (e->d_name[0] != '.' && ::stat(child.c_str(), &cst) == 0 && S_ISREG(cst.st_mode))
        files.push_back(child);
    }
    ::closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::vector<std::string> files = files_of(argv[i]);
    if (files.empty()) {
      std::fprintf(stderr, "replay: %s: no input files\n", argv[i]);
      return 1;
    }
    for (const std::string& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  std::printf("replay: %zu inputs, no failure\n", replayed);
  return replayed > 0 ? 0 : 1;
}
