#!/usr/bin/env bash
# The cross stage of the test suite: builds and packages eport-edge for arm64
# and runs its unit tests under qemu-aarch64 through ctest, then the same for
# armhf under qemu-arm. Integration, broker, MCU and gpsd tests need host
# programs (python, mosquitto, arm-none-eabi-gcc, gpsfake), fuzz and bench
# programs are not built here: they stay in the native stages (packaging.deb
# is registered in native builds only). Prints the time of each step.
# Usage: scripts/cross-test.sh [--no-armhf-tests] [--build-only | --tests-only]
#   --no-armhf-tests  armhf: programs and package only
#   --build-only      build and package both, run no test (scripts/test.sh
#                     runs this beside the sanitizer tests, then --tests-only)
#   --tests-only      run the tests of builds made before, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."

ARMHF_TESTS=1 BUILD=1 TESTS=1
for arg in "$@"; do
  case "$arg" in
    --no-armhf-tests) ARMHF_TESTS=0 ;;
    --build-only) TESTS=0 ;;
    --tests-only) BUILD=0 ;;
    *) echo "usage: $0 [--no-armhf-tests] [--build-only | --tests-only]" >&2; exit 64 ;;
  esac
done
((BUILD || TESTS)) || { echo "usage: --build-only and --tests-only exclude each other" >&2; exit 64; }

# Tests with these labels need host programs (corpus: a corpus tool, which the
# cross builds leave out); catch_discover_tests placeholders of test programs
# that were not built (NOT_BUILT) are not tests.
EXCLUDE_LABELS='integration|broker|fuzz|mcu|gpsd|bench|corpus'
start=$(date +%s)
timed() {
  local t0=$SECONDS
  "$@"
  echo "== cross: '$*' took $((SECONDS - t0)) s"
}
unit_tests() {
  # The power-cut test's 1,000 runs natively; 200 under qemu (300 s timeout)
  EPORT_POWER_CUT_RUNS=200 ctest --test-dir "build-$1" --output-on-failure -j"$(nproc)" --timeout 300 \
    -LE "$EXCLUDE_LABELS" -E 'NOT_BUILT' --no-tests=error
}

if ((BUILD)); then
  echo "== cross: arm64 build + package"
  timed scripts/cross-build.sh arm64
  echo "== cross: armhf build + package"
  if ((ARMHF_TESTS)); then
    timed scripts/cross-build.sh armhf
  else
    timed scripts/cross-build.sh armhf --no-tests
  fi
fi
if ((TESTS)); then
  echo "== cross: arm64 unit tests under qemu-aarch64"
  timed unit_tests arm64
  if ((ARMHF_TESTS)); then
    echo "== cross: armhf unit tests under qemu-arm"
    timed unit_tests armhf
  fi
fi
echo "== cross stage passed in $(($(date +%s) - start)) s"
