#!/usr/bin/env bash
# Records a CPU profile of the release router under one benchmark row and draws its flamegraph.
#
#   bench/profiles/record.sh S1          # writes bench/profiles/S1.svg
#
# Runs `switchyard-bench run --quick --only <row>`, attaches `perf record` (dwarf call graphs,
# 499 Hz) to the router once the warm-up is over, for 4 s of the measured window, and folds the
# stacks with inferno (`cargo install inferno`). Needs `perf` (Debian: linux-perf) and the
# release build (`cargo build --release -p switchyard -p switchyard-bench`). The row's own
# figures, taken with perf attached, are printed and are not comparable with a plain run.
set -euo pipefail

row=${1:?usage: record.sh <row>}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"

target/release/switchyard-bench run --quick --only "$row" --no-plugin-stage \
  --out "$work/out" >"$work/bench.log" 2>&1 &
bench=$!
pid=""
for _ in $(seq 1 300); do
  pid=$(pgrep -n -f "target/release/switchyard run -c" || true)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "the router did not start" >&2; cat "$work/bench.log" >&2; exit 1; }
sleep 1.5 # the quick run's warm-up is 1 s
# perf answers the end of its `sleep` with a non-zero status: the profile is written all the same.
perf record -F 499 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" -- sleep 4 2>/dev/null || true
wait "$bench"
grep -E "^\| $row " "$work/out/summary.md" | head -1
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
inferno-flamegraph --title "$row: router CPU" --minwidth 0.5 <"$work/folded" \
  >"bench/profiles/$row.svg"
echo "bench/profiles/$row.svg"
