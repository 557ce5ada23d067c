#!/usr/bin/env bash
# bench/threads.sh -- thread scaling of the core alone (no R): the standalone driver
# (tests/cpp/driver.cpp) on W1, W2 (Hamiltonian and its gradients) and W7 (D = 32) with 1
# and 2 threads.
# Usage: bash bench/threads.sh [--append]   (builds build/cpp first if needed)
set -euo pipefail
append="${1:-}"
cd "$(dirname "$0")/.."
[ -x build/cpp/kernops_driver ] || { cmake -S tests/cpp -B build/cpp -DKERNOPS_BUILD_TESTS=OFF >/dev/null && cmake --build build/cpp -j2 >/dev/null; }
runs=(
  "w1 30000 float64" "w1 30000 float32" "w2 20000 float64" "w2g 20000 float64" "w7 20000 float32 32"
)
table="| workload | N = M | dtype | 1 thread (s) | 2 threads (s) | speedup |
|---|---|---|---:|---:|---:|"
for r in "${runs[@]}"; do
  set -- $r
  t1=$(build/cpp/kernops_driver $1 $2 $3 1 ${4:-3} | sed -nE 's/.*: ([0-9.]+) s,.*/\1/p')
  t2=$(build/cpp/kernops_driver $1 $2 $3 2 ${4:-3} | sed -nE 's/.*: ([0-9.]+) s,.*/\1/p')
  table+=$'\n'"| $1${4:+ D=$4} | $2 | $3 | $t1 | $t2 | $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.2fx", a/b}') |"
done
section="## Thread scaling (core alone) -- $(date -u '+%Y-%m-%d %H:%M:%S') UTC

- machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') (family $(grep -m1 'cpu family' /proc/cpuinfo | sed 's/.*: //'), model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | sed 's/.*: //')), git $(git rev-parse --short HEAD)
- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)
- command: \`bash bench/threads.sh${append:+ $append}\` (one run each, kernops_driver from tests/cpp, instruction set chosen at run time)

$table
"
echo "$section"
[ "$append" = "--append" ] && echo "$section" >> bench/RESULTS.md || true
