#!/usr/bin/env bash
# Installs what eport-edge needs on a Debian 12 machine (only the packages
# that are missing; apt-get needs root) and builds it into build/.
# Usage: scripts/setup.sh [--test|--cloud]   (--test adds the test-only packages
#        and builds everything, tests included; --cloud adds what
#        scripts/cloud-demo.sh runs; without either only the programs)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME_PKGS=(build-essential cmake ninja-build pkg-config
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev
  mosquitto mosquitto-clients
  libflatbuffers-dev flatbuffers-compiler
  libsqlite3-dev sqlite3
  libtomlplusplus-dev libzstd-dev libgps-dev
  catch2 python3
  python3-cbor2 python3-nacl python3-cryptography)  # the demo's evidence check (examples/python/eport_verify.py)
TEST_PKGS=(clang libclang-rt-14-dev gcc-arm-none-eabi libnewlib-arm-none-eabi
  python3-paho-mqtt python3-flatbuffers python3-zstandard openssl gpsd gpsd-clients rabbitmq-server nats-server
  protobuf-compiler libprotobuf-dev lintian
  python3-jsonschema postgresql-15 postgresql-15-postgis-3 python3-psycopg
  python3-yaml  # the DCSA OpenAPI in the ingest.dcsa test
  nodejs node-typescript  # the TypeScript decoder (consumers/typescript); npm below
  chromium)  # the live map's test in headless Chromium (integration.live_map)

# scripts/cloud-demo.sh: the NATS cluster, PostgreSQL + PostGIS and eport-ingest (docs/cloud.md).
CLOUD_PKGS=(nats-server postgresql-15 postgresql-15-postgis-3 python3-psycopg python3-flatbuffers
  python3-zstandard)

want=("${RUNTIME_PKGS[@]}")
if [[ "${1:-}" == "--cloud" ]]; then want+=("${CLOUD_PKGS[@]}"); fi
if [[ "${1:-}" == "--test" ]]; then
  want+=("${TEST_PKGS[@]}")
  # Debian's npm, unless a node that brings its own npm (and conflicts with Debian's) is installed.
  command -v npm >/dev/null || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# gpsd, rabbitmq-server, nats-server and postgresql start system services when installed;
# the tests start their own instances (on free loopback ports, PostgreSQL in a temporary
# directory) and never need those.
if ((${#missing[@]})); then
  for svc in gpsd.socket gpsd.service rabbitmq-server.service nats-server.service postgresql.service; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" 2>/dev/null || true
    fi
  done
  if [[ " ${missing[*]} " == *" rabbitmq-server "* ]] && command -v service >/dev/null; then
    service rabbitmq-server stop >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && command -v service >/dev/null; then
    service postgresql stop >/dev/null 2>&1 || true
  fi
fi

BUILD_DIR=${EPORT_BUILD_DIR:-build}
echo "setup: building in $BUILD_DIR (log: $BUILD_DIR/build.log)"
mkdir -p "$BUILD_DIR"
# Without --test only the programs are built (the demo needs nothing else).
targets=()
if [[ "${1:-}" != "--test" ]]; then targets=(--target eport-agent eport-sim eport-tail eport-cmd eport-verify epb-evidence); fi
if ! { cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEPORT_WERROR=ON &&
       cmake --build "$BUILD_DIR" "${targets[@]}" -- -j"$(nproc)"; } > "$BUILD_DIR/build.log" 2>&1; then
  tail -n 60 "$BUILD_DIR/build.log"
  echo "setup: build failed (full log: $BUILD_DIR/build.log)" >&2
  exit 1
fi
