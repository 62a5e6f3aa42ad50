#!/usr/bin/env bash
# Run CI (.ci/run) N times in a row, each from a fresh clone of the given commit, and log each
# run's result line and duration. Acceptance check for "the full suite passes N times in a row
# from a clean clone" (issue #18).
#   usage: benchmarks/suite_repeat.sh [N=3] [COMMIT=HEAD] [LOG=benchmarks/results/suite_repeat_<date>.txt]
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
N="${1:-3}"
COMMIT="$(git -C "$REPO" rev-parse "${2:-HEAD}")"
LOG="${3:-$REPO/benchmarks/results/suite_repeat_$(date -u +%Y%m%dT%H%M).txt}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vz-suite-repeat.XXXXXX")"
{
  echo "commit $COMMIT; host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
       "$(nproc) cores; ISA: $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
} >"$LOG"
passed=0
for i in $(seq 1 "$N"); do
  dir="$WORK/run$i"
  git clone -q "$REPO" "$dir" && git -C "$dir" checkout -q "$COMMIT"
  start=$(date +%s)
  (cd "$dir" && bash .ci/run) >"$WORK/run$i.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  summary="$(grep -E '^[0-9]+ (passed|failed)|[0-9]+ passed' "$WORK/run$i.log" | tail -1)"
  echo "run $i: exit $rc in ${secs}s: $summary" >>"$LOG"
  [ "$rc" -eq 0 ] && passed=$((passed + 1))
  grep -E '^(FAILED|ERROR) ' "$WORK/run$i.log" >>"$LOG"
  rm -rf "$dir"
done
echo "$passed of $N runs passed; logs in $WORK" >>"$LOG"
cat "$LOG"
[ "$passed" -eq "$N" ]
