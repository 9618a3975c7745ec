#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then builds and runs ctest twice: with gcc and warnings as errors,
# and with clang, AddressSanitizer + UndefinedBehaviorSanitizer and the
# libFuzzer targets (short bounded runs).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

echo "== setup and build (gcc, -Werror)"
scripts/setup.sh --test
echo "== tests (gcc build)"
ctest --test-dir build --output-on-failure -j2 --timeout 300

echo "== build (clang, ASan+UBSan, fuzzers)"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DEPORT_WERROR=ON -DEPORT_SANITIZE=ON -DEPORT_FUZZ=ON >/dev/null
cmake --build build-asan -- -j"$(nproc)"
echo "== tests (sanitizer build)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600

echo "== all test stages passed in $(( $(date +%s) - start )) s"
