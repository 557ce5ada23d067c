#!/usr/bin/env bash
# tools/run.sh -- the one entry point for building and testing kernops (CI runs `test`).
#
#   setup    install the Debian packages we need, only those missing (works as root)
#   install  setup + R CMD INSTALL .
#   demo     setup + install + Rscript tools/demo.R
#   cpptest  setup + build tests/cpp with CMake in build/cpp-tests and run ctest
#   cpptest-clang  the same with clang++ in build/cpp-tests-clang (CRAN builds with clang too)
#   fuzz     setup + build the libFuzzer target in build/fuzz and run it for FUZZ_SECONDS
#            (default 30) from tests/cpp/fuzz/corpus (tests/cpp/fuzz/README.md)
#   test     setup + core guard + cpptest + cpptest-clang + fuzz + R CMD build + R CMD check --no-manual
#
# Generated files (src/RcppExports.cpp, R/RcppExports.R, NAMESPACE, man/) are committed; run
# Rscript -e 'Rcpp::compileAttributes(); roxygen2::roxygenise()' yourself after changing
# exports or docs. Nothing here regenerates them, so CI checks what is committed.
# roxygenise() compiles src/ through pkgload without optimisation and leaves its objects
# there; `install` runs ./cleanup first so that R CMD INSTALL never reuses them (a W7 run
# with them was 40x slower).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The R peers the statistics are compared with (ks, kernlab) and progressr are Suggests:
# installed here so that CI runs the comparison tests (they skip where a peer is absent).
APT_PACKAGES=(r-base-dev r-cran-rcpp r-cran-rcppeigen r-cran-testthat r-cran-roxygen2
              r-cran-knitr r-cran-rmarkdown r-cran-ks r-cran-kernlab r-cran-progressr r-cran-fields
              r-cran-future r-cran-parallelly
              cmake g++ libgtest-dev clang libclang-rt-14-dev)

log() { printf '== %s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

cmd_setup() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "setup: all packages present"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || die "need root or sudo to install: ${missing[*]}"
    sudo="sudo"
  fi
  log "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
}

cmd_install() {
  cmd_setup
  log "R CMD INSTALL ."
  sh ./cleanup
  R CMD INSTALL .
}

cmd_demo() {
  cmd_install
  log "Rscript tools/demo.R"
  Rscript tools/demo.R
}

cmd_cpptest() {
  cmd_setup
  log "cpptest: cmake tests/cpp -> build/cpp-tests"
  cmake -S tests/cpp -B build/cpp-tests
  cmake --build build/cpp-tests -j2
  (cd build/cpp-tests && ctest --output-on-failure | tee ctest.log)
}

cmd_cpptest_clang() {
  cmd_setup
  log "cpptest-clang: cmake tests/cpp -> build/cpp-tests-clang (clang++)"
  CXX=clang++ cmake -S tests/cpp -B build/cpp-tests-clang
  cmake --build build/cpp-tests-clang -j2
  (cd build/cpp-tests-clang && ctest --output-on-failure | tee ctest.log)
}

# libFuzzer run of the core (clang, ASan + UBSan): seeds copied into a working corpus so
# that the committed one only changes by hand; a crash fails the step and leaves crash-*.
cmd_fuzz() {
  cmd_setup
  local seconds="${FUZZ_SECONDS:-30}"
  log "fuzz: build/fuzz, ${seconds} s from tests/cpp/fuzz/corpus"
  CXX=clang++ cmake -S tests/cpp -B build/fuzz -DKERNOPS_FUZZ=ON -DKERNOPS_BUILD_TESTS=OFF
  cmake --build build/fuzz -j2 --target kernops_fuzz_formula
  mkdir -p build/fuzz/corpus
  cp tests/cpp/fuzz/corpus/* build/fuzz/corpus/
  (cd build/fuzz && ./kernops_fuzz_formula -dict="$ROOT/tests/cpp/fuzz/formula.dict" -max_len=4096 \
     -timeout=10 -rss_limit_mb=4096 -max_total_time="$seconds" -print_final_stats=1 corpus)
}

# The core must stay free of R (DESIGN.md): no R/Rcpp headers, no console output, no exit().
# Lines that start with a comment are skipped so that comments may mention the rule.
core_guard() {
  [ -d src/core ] || { log "core guard: no src/core yet"; return 0; }
  local hits
  hits=$(grep -rnE \
    --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' --include='*.cu' \
    -e '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](R[A-Za-z_./]*|Rcpp[A-Za-z_./]*)[>"]' \
    -e 'std::(cout|cerr|clog)' \
    -e '(^|[^A-Za-z0-9_])exit[[:space:]]*\(' \
    src/core | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|/?\*)' || true)
  if [ -n "$hits" ]; then
    printf '%s\n' "$hits" >&2
    die "core guard: src/core must not include R/Rcpp headers, write to std::cout/cerr or call exit()"
  fi
  log "core guard: OK"
}

cmd_test() {
  cmd_setup
  core_guard
  cmd_cpptest
  cmd_cpptest_clang
  cmd_fuzz

  # Build and check outside the tree; the directory is kept on failure for inspection.
  local tmp
  tmp="$(mktemp -d)"
  log "R CMD build (in $tmp)"
  (cd "$tmp" && R CMD build "$ROOT")
  local tarball
  tarball="$(ls "$tmp"/kernops_*.tar.gz)"
  log "R CMD check --no-manual $(basename "$tarball")"
  local rc=0
  (cd "$tmp" && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual "$tarball") || rc=$?

  local rcheck="$tmp/kernops.Rcheck" out
  # testthat's last summary line: [ FAIL 0 | WARN 0 | SKIP 0 | PASS 12 ]
  for out in "$rcheck"/tests/testthat.Rout "$rcheck"/tests/testthat.Rout.fail; do
    if [ -f "$out" ]; then
      log "tests: $(basename "$out")"
      grep -E '^\[ FAIL' "$out" | tail -n 1 || true
      case "$out" in *.fail) tail -n 60 "$out" ;; esac
    fi
  done
  local status
  status="$(grep -E '^Status:' "$rcheck/00check.log" 2>/dev/null || echo 'Status: unknown')"
  if [ "$rc" -ne 0 ] || grep -qE 'ERROR|WARNING|unknown' <<< "$status"; then
    grep -nE -A 15 '\.\.\. *(ERROR|WARNING)$' "$rcheck/00check.log" >&2 || true
    echo "check directory kept: $rcheck" >&2
    echo "R CMD check: FAILED ($status)"
    exit 1
  fi
  # One plain closing line for both suites: "N passed, N failed".
  local r_pass r_fail c_pass c_fail summary
  summary="$(grep -hE '^\[ FAIL' "$rcheck"/tests/testthat.Rout 2>/dev/null | tail -n 1)"
  r_fail="$(sed -nE 's/.*FAIL ([0-9]+).*/\1/p' <<< "$summary")"
  r_pass="$(sed -nE 's/.*PASS ([0-9]+).*/\1/p' <<< "$summary")"
  c_fail="$(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/p' build/cpp-tests/ctest.log)"
  c_pass="$(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/p' build/cpp-tests/ctest.log)"
  rm -rf "$tmp"
  status="${status#Status: }"
  if [ "$status" = "OK" ]; then echo "R CMD check: OK"; else echo "R CMD check: OK ($status)"; fi
  local cl_pass
  cl_pass="$(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/p' build/cpp-tests-clang/ctest.log)"
  echo "C++ core tests: $((${c_pass:-0} - ${c_fail:-0})) passed (GCC), ${cl_pass:-0} passed (clang); R tests (testthat expectations): ${r_pass:-0} passed"
  echo "$((${r_pass:-0} + ${c_pass:-0} - ${c_fail:-0})) passed, $((${r_fail:-0} + ${c_fail:-0})) failed"
}

case "${1:-}" in
  setup) cmd_setup ;;
  install) cmd_install ;;
  demo) cmd_demo ;;
  cpptest) cmd_cpptest ;;
  cpptest-clang) cmd_cpptest_clang ;;
  fuzz) cmd_fuzz ;;
  test) cmd_test ;;
  *) die "usage: tools/run.sh {setup|install|demo|cpptest|cpptest-clang|fuzz|test}" ;;
esac
