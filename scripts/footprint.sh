#!/usr/bin/env bash
# Footprint of eport-edge on a gateway, per architecture: stripped size of the
# programs and of the .deb, the shared libraries eport-agent needs, and the
# agent's memory (VmRSS idle and under load, VmHWM) natively and under
# qemu-aarch64, with a real mosquitto on a free loopback port and eport-sim
# as the load. Uses the build trees that exist: build-amd64 (or build-pkg,
# build), build-arm64, build-armhf (scripts/cross-build.sh makes them).
# Usage: scripts/footprint.sh [--units N] [--rate R_PER_UNIT_PER_S] [--seconds S]
#        (defaults: 200 units, 5 readings/s each, 15 s of load)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

UNITS=200 RATE=5 SECONDS_LOAD=15
while (($#)); do
  case "$1" in
    --units) UNITS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECONDS_LOAD=$2; shift 2 ;;
    *) echo "usage: $0 [--units N] [--rate R] [--seconds S]" >&2; exit 64 ;;
  esac
done

# build dir per architecture (first one holding an eport-agent)
declare -A BUILD TRIPLET=([amd64]=x86_64-linux-gnu [arm64]=aarch64-linux-gnu [armhf]=arm-linux-gnueabihf)
for d in build-amd64 build-pkg build; do
  [[ -x $d/agent/app/eport-agent ]] && { BUILD[amd64]=$ROOT/$d; break; }
done
for a in arm64 armhf; do
  [[ -x build-$a/agent/app/eport-agent ]] && BUILD[$a]=$ROOT/build-$a
done
ARCHES=()
for a in amd64 arm64 armhf; do [[ -n "${BUILD[$a]:-}" ]] && ARCHES+=("$a"); done
((${#ARCHES[@]})) || { echo "footprint: no build tree with eport-agent (run scripts/cross-build.sh ARCH)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/eport-footprint.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

strip_for() {  # the binutils strip that understands ARCH's objects
  if [[ $1 == "$(dpkg --print-architecture)" ]]; then echo strip; else echo "${TRIPLET[$1]}-strip"; fi
}

echo "== stripped size in bytes (as packaged: no symbols, debug info, .comment)"
printf '%-6s %12s %12s %12s %12s  %s\n' arch eport-agent eport-sim eport-tail .deb "build tree"
for a in "${ARCHES[@]}"; do
  sizes=()
  for p in app/eport-agent tools/eport-sim tools/eport-tail; do
    f=${BUILD[$a]}/agent/$p
    if [[ -x $f ]] && $(strip_for "$a") --remove-section=.comment -o "$WORK/stripped" "$f" 2>/dev/null; then
      sizes+=("$(stat -c %s "$WORK/stripped")")
    else
      sizes+=(-)
    fi
  done
  deb=$(ls "${BUILD[$a]}"/packages/eport-agent_*_"$a".deb 2>/dev/null | head -n 1 || true)
  printf '%-6s %12s %12s %12s %12s  %s\n' "$a" "${sizes[@]}" "${deb:+$(stat -c %s "$deb")}" "${BUILD[$a]#"$ROOT"/}"
done

echo
echo "== shared libraries eport-agent needs (readelf -d NEEDED)"
for a in "${ARCHES[@]}"; do
  libs=$(readelf -d "${BUILD[$a]}/agent/app/eport-agent" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  printf '%-6s %s\n' "$a" "$libs"
done

# --- memory: broker, agent, simulated units --------------------------------------
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
if ! command -v mosquitto >/dev/null; then
  echo; echo "== memory: skipped (mosquitto not installed)"; exit 0
fi
PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n' "$PORT" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
SIM=${BUILD[amd64]:-}/agent/tools/eport-sim
[[ -x $SIM ]] || SIM=""

# measure NAME LAUNCHER... : starts the agent with LAUNCHER (empty or qemu),
# idles, loads it with the native eport-sim, prints one table row.
measure() {
  local name=$1 arch=$2; shift 2
  local dir=$WORK/$name
  mkdir -p "$dir"
  cat >"$dir/agent.toml" <<TOML
[gateway]
id = "gw-footprint"
site = "lab"
[bridge]
unix_socket = "$dir/bridge.sock"
[store]
path = "$dir/outbox.db"
[mqtt]
uri = "tcp://127.0.0.1:$PORT"
TOML
  "$@" "${BUILD[$arch]}/agent/app/eport-agent" --config "$dir/agent.toml" 2>"$dir/agent.log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do [[ -S $dir/bridge.sock ]] && break; sleep 0.1; done
  [[ -S $dir/bridge.sock ]] || { echo "footprint: $name did not start:" >&2; cat "$dir/agent.log" >&2; return 1; }
  sleep 3
  local idle_rss idle_hwm peak=0 rss acked="-"
  idle_rss=$(status_kb "$pid" VmRSS)
  idle_hwm=$(status_kb "$pid" VmHWM)
  if [[ -n $SIM ]]; then
    "$SIM" --connect "unix:$dir/bridge.sock" --units "$UNITS" --rate "$RATE" --duration "$SECONDS_LOAD" \
      --quiet >"$dir/sim.out" 2>&1 &
    local sim=$!
    while kill -0 "$sim" 2>/dev/null; do
      rss=$(status_kb "$pid" VmRSS); ((rss > peak)) && peak=$rss
      sleep 0.5
    done
    wait "$sim" || true
    acked=$(sed -nE 's/.* acked=([0-9]+).*/\1/p' "$dir/sim.out" | tail -n 1)
  fi
  local hwm
  hwm=$(status_kb "$pid" VmHWM)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-22s %10s %10s %14s %10s %12s\n' "$name" "$idle_rss" "$idle_hwm" "$peak" "$hwm" "${acked:--}"
}

echo
echo "== eport-agent memory in kB: idle 3 s, then $UNITS simulated units x $RATE readings/s for $SECONDS_LOAD s"
printf '%-22s %10s %10s %14s %10s %12s\n' run "idle RSS" "idle HWM" "load RSS peak" "HWM" "acked"
[[ -n "${BUILD[amd64]:-}" ]] && measure "amd64 native" amd64
if [[ -n "${BUILD[arm64]:-}" ]] && command -v qemu-aarch64 >/dev/null; then
  measure "arm64 qemu-aarch64" arm64 qemu-aarch64 -L /
  echo "(under qemu the figures are qemu's process: the agent plus the emulator and its translated code)"
fi
