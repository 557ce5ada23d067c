#!/usr/bin/env bash
# The CUDA backend on a GPU machine (which has CMake, a C++ compiler and the CUDA toolkit, but
# no R): builds the core's standalone driver (tests/cpp/driver.cpp), says what CUDA it finds,
# compares CUDA with the CPU engine for every op and reduction in float32 and float64, then
# times the issue's targets (issue 21) and prints one table. Where CUDA is unusable (no driver,
# no GPU, no NVRTC) it says why after the build and exits 0.
#
#   bash bench/gpu/run.sh [--dry-run] [--build-dir DIR] [--compare-n N] [--skip-compare]
#
#   --dry-run       print the steps and commands, run nothing
#   --build-dir     where CMake builds (default build/gpu; an existing build is reused)
#   --compare-n     N of the CUDA-vs-CPU comparison (default 3000; M = 3N/4 + 1)
#   --skip-compare  only the timings
#   --cpu-self-test the whole flow on the CPU at 1/1000 of the sizes (to test this script
#                   where there is no GPU; the numbers mean nothing)
#
# Device tool, from the repository root (one call; see /work/.library/device/README.md):
#   run(command = "bash bench/gpu/run.sh", timeout_s = 540)
# With $OUT set (the device machine), the whole log is also written to $OUT/gpu-run.log.
set -uo pipefail

dry=0
build=build/gpu
compare_n=3000
compare=1
backend=cuda
scale=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --build-dir) build=$2; shift ;;
    --compare-n) compare_n=$2; shift ;;
    --skip-compare) compare=0 ;;
    --cpu-self-test) backend=cpu; scale=1000 ;;
    *) echo "run.sh: unknown argument '$1' (see the header of bench/gpu/run.sh)" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/../.." || exit 1
if [ -n "${OUT:-}" ] && [ "$dry" = 0 ]; then
  exec > >(tee "$OUT/gpu-run.log") 2>&1
fi
jobs=$(nproc 2> /dev/null || echo 2)
drv="$build/kernops_driver"
cache=$(mktemp -d "${TMPDIR:-/tmp}/kernops-cuda-cache.XXXXXX")
trap 'rm -rf "$cache"' EXIT
results=$(mktemp "${TMPDIR:-/tmp}/kernops-gpu-results.XXXXXX")

step() { echo; echo "== $*"; }
do_cmd() {
  echo "+ $*"
  [ "$dry" = 1 ] && return 0
  "$@"
}
# The same, its output kept only when it fails (CMake's).
do_quiet() {
  echo "+ $*"
  [ "$dry" = 1 ] && return 0
  local log
  log=$("$@" 2>&1) || { echo "$log"; return 1; }
}

# The targets: workload, N, dtype, warm repetitions, rows checked against the reference
# loop (each costs N evaluations), the issue's target.
targets=(
  "w1:b1 1000000 float32 3 2 <0.3s"
  "w1:b1 10000000 float32 0 0 completes"
  "w1 1000000 float32 3 2 <0.4s"
  "w1:b1 100000 float64 3 5 <0.02s"
  "w7 1000000 float32 3 2 <1s"
  "w1:lse 1000000 float32 3 2 <0.4s"
)

step "machine"
do_cmd uname -m
if command -v nvidia-smi > /dev/null 2>&1; then
  do_cmd nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader
fi

step "build the standalone driver (no GoogleTest needed)"
do_quiet cmake -S tests/cpp -B "$build" -DKERNOPS_BUILD_TESTS=OFF || exit 1
do_quiet cmake --build "$build" -j "$jobs" --target kernops_driver || exit 1

step "CUDA found at run time"
do_cmd "$drv" cuda-info
rc=$?
if [ "$dry" = 0 ] && [ "$rc" -ne 0 ] && [ "$backend" = cuda ]; then
  echo "CUDA is not usable here (see above): nothing to compare or time."
  exit 0
fi

compare_rc=skipped
if [ "$compare" = 1 ]; then
  step "every op and reduction, CUDA against the CPU engine, float64 and float32 (N = $compare_n)"
  if [ "$backend" = cuda ]; then do_cmd "$drv" cuda-compare "$compare_n"; else do_cmd "$drv" cuda-compare 300 cpu; fi
  compare_rc=$?
fi

step "targets (KERNOPS_BACKEND=cuda; first call includes compile or cache load; best of the warm calls)"
for t in "${targets[@]}"; do
  read -r w n dt reps rows target <<< "$t"
  n=$((n / scale))
  echo "+ KERNOPS_BACKEND=$backend KERNOPS_CUDA_CACHE=$cache KERNOPS_REPS=$reps KERNOPS_CHECK_ROWS=$rows $drv $w $n $dt $jobs"
  [ "$dry" = 1 ] && continue
  out=$(KERNOPS_BACKEND=$backend KERNOPS_CUDA_CACHE="$cache" KERNOPS_REPS="$reps" KERNOPS_CHECK_ROWS="$rows" \
        "$drv" "$w" "$n" "$dt" "$jobs" 2>&1)
  echo "$out"
  line=$(echo "$out" | grep '^RESULT|' || echo "RESULT|$w|$n|$dt|cuda|-|-|failed")
  echo "$line|$target" >> "$results"
done

step "first call of a cached formula in a new process (the cache was filled above)"
for k in 1 2; do
  echo "+ KERNOPS_BACKEND=$backend KERNOPS_CUDA_CACHE=$cache KERNOPS_REPS=0 $drv w1:b1 $((10000 / scale + 10)) float32 $jobs  (process $k)"
  [ "$dry" = 1 ] && continue
  out=$(KERNOPS_BACKEND=$backend KERNOPS_CUDA_CACHE="$cache" KERNOPS_REPS=0 "$drv" w1:b1 $((10000 / scale + 10)) float32 "$jobs" 2>&1)
  echo "$out"
  compiles=$(echo "$out" | sed -n 's/.*kernel compiles \([0-9]*\).*/\1/p')
  line=$(echo "$out" | grep '^RESULT|' || echo "RESULT|w1:b1|10000|float32|cuda|-|-|failed")
  echo "$line|new process $k: compiles ${compiles:-?} (target 0)" >> "$results"
done

step "CPU peer in the same run (all $jobs cores)"
echo "+ $drv w1:b1 $((100000 / scale)) float32 $jobs"
if [ "$dry" = 0 ]; then
  out=$("$drv" w1:b1 $((100000 / scale)) float32 "$jobs" 2>&1)
  echo "$out"
  echo "$(echo "$out" | grep '^RESULT|')|CPU peer" >> "$results"
fi

step "table"
if [ "$dry" = 1 ]; then
  echo "(dry run: no table)"
  exit 0
fi
printf '%-8s %-9s %-8s %-8s %-10s %-10s %-16s %s\n' workload N dtype backend first_s best_s check target
while IFS='|' read -r _ w n dt be first best check target; do
  printf '%-8s %-9s %-8s %-8s %-10s %-10s %-16s %s\n' "$w" "$n" "$dt" "$be" "$first" "$best" "$check" "$target"
done < "$results"
echo "cuda-compare: exit $compare_rc (0: every op and reduction within tolerance)"
rm -f "$results"
exit 0
