#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then builds and runs ctest twice: with gcc and warnings as errors,
# and with clang, AddressSanitizer + UndefinedBehaviorSanitizer and the
# libFuzzer targets (short bounded runs); then cross-builds for aarch64 (unit
# tests under qemu) and armhf (programs and package).
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
# The broker-config and packaging tests exercise no agent code of their own
# beyond the gcc stage; long load tests run shorter here (same paths, fewer
# iterations), the rest runs in full.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 EPORT_FLEET_SECONDS=20 EPORT_TORTURE_ITERATIONS=10 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 -LE 'broker|packaging'


echo "== cross: aarch64 build, its unit tests under qemu; armhf build and package"
scripts/cross-test.sh --no-armhf-tests

echo "== all test stages passed in $(( $(date +%s) - start )) s"
