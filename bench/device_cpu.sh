#!/usr/bin/env bash
# The core's C++ tests and the W1 / W2 / W7 drivers on another x86-64 machine's CPU, for the
# instruction sets a development host cannot run (the hypervisor of some hides AVX-512). Used on the GPU
# machine, which has no R and no GoogleTest: the executables are built here, statically.
#
#   Here:   cmake -S tests/cpp -B build/static -DKERNOPS_STATIC=ON -DKERNOPS_CUDA=OFF \
#             -DCMAKE_BUILD_TYPE=Release && cmake --build build/static -j2
#           mkdir -p build/device && strip -o build/device/kernops_core_tests \
#             build/static/kernops_core_tests && strip -o build/device/kernops_driver \
#             build/static/kernops_driver
#   There:  bash bench/device_cpu.sh build/device      (device tool: carry build/device)
#
# Timed runs are pinned to two cores (taskset -c 0,1), the size of the target machine.
set -uo pipefail
bin=${1:-build/device}
pin="taskset -c 0,1"
command -v taskset > /dev/null || pin=""

echo "== machine"
grep -m1 'model name' /proc/cpuinfo
echo "cores: $(nproc)"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512(f|dq|vl|bw|cd))$' | tr '\n' ' ')"

echo "== C++ tests (every instruction set this processor supports)"
"$bin/kernops_core_tests" --gtest_brief=1 2>&1 | tail -5
tests_rc=${PIPESTATUS[0]}

echo "== drivers, 2 threads pinned to cores 0-1; each line checks 20 rows against a double loop"
run() { KERNOPS_MAX_ISA=$1 $pin "$bin/kernops_driver" "${@:2}" || echo "  ^ FAILED (exit $?)"; }
for rep in 1 2; do
  for isa in avx512 avx2; do
    run $isa w1 100000 float64 2
    run $isa w1 100000 float32 2
  done
done
run sse2 w1 30000 float64 2
for isa in avx512 avx2; do
  run $isa w2 10000 float64 2
  run $isa w2g 10000 float64 2
  run $isa w7 100000 float32 2 32
  run $isa w7 100000 float32 2 3
done
echo "== all cores, for scale"
for isa in avx512 avx2; do
  KERNOPS_MAX_ISA=$isa "$bin/kernops_driver" w1 100000 float64 "$(nproc)"
  KERNOPS_MAX_ISA=$isa "$bin/kernops_driver" w1 100000 float32 "$(nproc)"
done
exit "$tests_rc"
