#!/bin/bash
# Every C/C++ file is clang-formatted by its nearest .clang-format: Google style for user/,
# tests/ and bench/, kernel style for bpf/ (ctest: format.clang_format, label unit).
# Usage: scripts/check-format.sh [ROOT]   Lists the files that differ; exits 1 if any.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
bad=0
while IFS= read -r f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f (clang-format -i $f)"; bad=1; }
done < <(git ls-files '*.c' '*.h' '*.cpp' 2>/dev/null || find bpf user tests bench -name '*.[ch]' -o -name '*.cpp')
exit $bad
