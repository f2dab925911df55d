#!/usr/bin/env bash
# Fuzzes each target of tests/fuzz for MINUTES (default 10), one after the other, each
# with libFuzzer, ASan and UBSan, starting from its committed corpus.
#   tests/fuzz/run.sh [MINUTES] [TARGET...]      e.g. run.sh 1 naming line_protocol
# Builds in build-fuzz/ (clang++, -DVMSCOPE_FUZZ=ON). New coverage goes to
# build-fuzz/corpus/<target>/ (merge the interesting inputs into tests/fuzz/corpus/ by
# hand: committed corpora stay small); a crash stops that target, and its input is left
# in build-fuzz/crashes/<target>/ to become a regression input in the corpus.
# Prints one line per target: minutes, executions, result.
set -euo pipefail
MINUTES=${1:-10}
shift || true
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$SRC/build-fuzz}
JOBS=${JOBS:-2}

cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMSCOPE_FUZZ=ON \
  -DVMSCOPE_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz_targets >/dev/null

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=()
  for f in "$SRC"/tests/fuzz/*_fuzz.cpp; do
    n=$(basename "$f" _fuzz.cpp)
    TARGETS+=("$n")
  done
fi

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t"
  log="$BUILD/fuzz-$t.log"
  set +e
  "$BUILD/tests/fuzz/fuzz_$t" -max_total_time=$((MINUTES * 60)) -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t/" \
    "$BUILD/corpus/$t" "$SRC/tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    result="no crash"
  else
    result="FAILED (rc $rc): $(ls "$BUILD/crashes/$t" | head -3 | tr '\n' ' ')see $log"
    status=1
  fi
  printf '%s  %-14s %3d min  %12s execs  %s\n' "$(date -u +%F)" "$t" "$MINUTES" "${execs:-?}" \
    "$result"
done
exit $status
