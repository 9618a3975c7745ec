#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then builds and runs ctest twice: with gcc and warnings as errors,
# and with clang, AddressSanitizer + UndefinedBehaviorSanitizer and the
# libFuzzer targets (short bounded runs); then cross-builds for aarch64 (unit
# tests under qemu) and armhf (programs and package).
#
# The tests leave the CPU idle much of the time (brokers, timeouts, fsync), so
# each next build runs beside the tests before it, at nice 19: the sanitizer
# build beside the gcc tests, the cross builds beside the sanitizer tests.
# The tests keep the CPU whenever they want it; the builds take what is left.
# Every apt-get runs first, in the foreground, before any test starts.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
stage() { echo "== $* ($(( $(date +%s) - start )) s)"; }

background_pid=""
stop_background() { if [[ -n "$background_pid" ]]; then kill -- -"$background_pid" 2>/dev/null || true; fi; }
trap stop_background EXIT
# Runs "$@" at nice 19 in its own process group, output to LOG.
start_background() {
  local log=$1; shift
  mkdir -p "$(dirname "$log")"
  set -m
  ( renice -n 19 -p "$BASHPID" >/dev/null && "$@" ) >"$log" 2>&1 &
  background_pid=$!
  set +m
}
# Waits for the background job; on failure shows its log and fails.
wait_background() {
  local log=$1 rc=0
  wait "$background_pid" || rc=$?
  background_pid=""
  if ((rc)); then
    tail -n 80 "$log"
    echo "== failed: $2 (exit $rc, full log: $log)" >&2
    exit "$rc"
  fi
}

stage "setup and build (gcc, -Werror)"
scripts/setup.sh --test
stage "cross: what the arm64 and armhf builds need"
scripts/cross-build.sh arm64 --install-only
scripts/cross-build.sh armhf --install-only

asan_build() {
  CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DEPORT_WERROR=ON -DEPORT_SANITIZE=ON -DEPORT_FUZZ=ON >/dev/null
  cmake --build build-asan -- -j"$(nproc)"
}
stage "tests (gcc build); beside them: build (clang, ASan+UBSan, fuzzers), log build-logs/asan.log"
start_background build-logs/asan.log asan_build
ctest --test-dir build --output-on-failure -j2 --timeout 300
stage "waiting for the sanitizer build"
wait_background build-logs/asan.log "build (clang, ASan+UBSan, fuzzers)"

stage "tests (sanitizer build); beside them: cross builds, log build-logs/cross.log"
start_background build-logs/cross.log scripts/cross-test.sh --no-armhf-tests --build-only
# The broker-config and packaging tests exercise no agent code of their own
# beyond the gcc stage; long load tests run shorter here (same paths, fewer
# iterations), the rest runs in full.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 EPORT_FLEET_SECONDS=20 EPORT_TORTURE_ITERATIONS=10 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 -LE 'broker|packaging'
stage "waiting for the cross builds"
wait_background build-logs/cross.log "cross builds"
grep '^== cross' build-logs/cross.log || true

stage "cross: aarch64 unit tests under qemu"
scripts/cross-test.sh --no-armhf-tests --tests-only

stage "all test stages passed in $(( $(date +%s) - start )) s"
