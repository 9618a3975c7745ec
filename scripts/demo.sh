#!/usr/bin/env bash
# The main job, end to end on this machine: a mosquitto on loopback with the
# dev config, eport-agent (custody events on, with the sample Shanghai
# zones; the units' evidence checkpoints checked), simulated telematics units
# (eport-sim) on journeys around Yangshan that sign their readings, and
# eport-tail printing every decoded reading and event; a summary at the end,
# and the evidence verified from the messages alone.
# Usage: scripts/demo.sh [--duration SECONDS] [--units N] [--rate PER_UNIT_PER_S]
#        (defaults: 30 s, 20 units, 2 readings/s each; Ctrl-C ends it early)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=30 UNITS=20 RATE=2 SEED=37
while (($#)); do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --units) UNITS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--units N] [--rate R]" >&2; exit 64 ;;
  esac
done

scripts/setup.sh
BIN=$ROOT/build/agent

WORK=$(mktemp -d /tmp/eport-demo.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# A free loopback port for the broker (1883 may be taken by a system broker).
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
broker-config/dev/render.sh "$PORT" "$WORK" >/dev/null
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

cat > "$WORK/agent.toml" <<TOML
[gateway]
id = "gw-yangshan-01"
site = "cnsha"
[bridge]
unix_socket = "$WORK/bridge.sock"
evidence_keys = "$WORK/evidence/evidence_keys"
[store]
path = "$WORK/outbox.db"
# Store housekeeping every second: it also makes the checkpoints due by time.
maintenance_interval_s = 1
[mqtt]
uri = "tcp://127.0.0.1:$PORT"
# Mosquitto speaks MQTT 5: topic aliases and PUBACK reason codes (docs/operators.md).
protocol_version = "5"
[custody]
enabled = true
zones_file = "$ROOT/docs/zones/shanghai-terminals.geojson"
# The simulated clock runs a journey in two hours: a reefer counts as out of
# its band after 5 minutes here (the default is 10).
reefer_min_duration_s = 300
[evidence]
# The gateway signs its custody events too (docs/evidence.md 13.4).
custody_key = "$WORK/evidence/custody.key.pem"
checkpoint_every_s = 1
TOML
# Each simulated unit signs checkpoints over its readings (docs/evidence.md):
# its key, and the agent's list of the units' public keys, made here. The
# gateway's custody key is made here too, its public key listed for the
# verifier (an operator issues it with eport-pki evidence-key, into the
# signed registry).
"$BIN/tools/eport-sim" --units "$UNITS" --seed "$SEED" --list-units --evidence-keys "$WORK/evidence" > /dev/null
"$ROOT/build/firmware-bridge/epb-evidence" keygen "$WORK/evidence/custody.key.pem" "$WORK/evidence/custody.pub.pem" |
  sed -nE 's/^Ed25519 key, kid ([0-9a-f]+), public ([0-9a-f]+)$/gw-yangshan-01:custody ed25519 \1 \2/p' \
  > "$WORK/evidence/gateway_keys"
"$BIN/app/eport-agent" --config "$WORK/agent.toml" 2> "$WORK/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)

"$BIN/tools/eport-tail" --broker "tcp://127.0.0.1:$PORT" > "$WORK/tail.jsonl" 2> "$WORK/tail.err" &
TAIL_PID=$!
PIDS+=($TAIL_PID)
tail -n +1 -f "$WORK/tail.jsonl" &
PIDS+=($!)
# The evidence topic, for the verification at the end.
"$BIN/tools/eport-tail" --broker "tcp://127.0.0.1:$PORT" --topic 'eport/v1/+/+/evidence' \
  > "$WORK/evidence.jsonl" 2> "$WORK/evidence.err" &
EVTAIL_PID=$!
PIDS+=($EVTAIL_PID)
for _ in $(seq 50); do grep -q subscribed "$WORK/tail.err" 2>/dev/null && [ -S "$WORK/bridge.sock" ] && break; sleep 0.1; done

echo "demo: broker 127.0.0.1:$PORT, $UNITS units at $RATE readings/s each for $DURATION s (files in $WORK)" >&2
# The cloud's part: from its bookings it knows each container's seal and tells
# the gateway which seal to expect (ExpectSeal). A seal read with another
# number, a tamper, or an opening outside the allowed zones (none here) is
# then an alarm naming both numbers (docs/custody-events.md).
expected=0
while read -r line; do
  container=$(sed -nE 's/.*"container":"([^"]+)".*/\1/p' <<<"$line")
  seal=$(sed -nE 's/.*"seal":"([^"]+)".*/\1/p' <<<"$line")
  "$BIN/tools/eport-cmd" --broker "tcp://127.0.0.1:$PORT" --site cnsha --gateway gw-yangshan-01 --timeout 5 \
    expect-seal "$container" "$seal" --class high_security >> "$WORK/cmd.out" 2>> "$WORK/cmd.err" && expected=$((expected + 1))
done < <("$BIN/tools/eport-sim" --units "$UNITS" --seed "$SEED" --list-units)
echo "demo: the cloud told the gateway the expected seal of $expected containers (eport-cmd expect-seal)" >&2
set +e
# --time-step: the journeys run on a simulated clock (60 s between a unit's
# readings), so that 30 s of demo show an hour of terminal life: zone
# entries after their dwell, motion, reefer excursions. --seed 37: a fleet
# whose first hour has a tampered seal and reefer excursions.
"$BIN/tools/eport-sim" --connect "unix:$WORK/bridge.sock" --units "$UNITS" --rate "$RATE" --seed "$SEED" \
  --duration "$DURATION" --time-step 60000 --evidence-keys "$WORK/evidence" --quiet > "$WORK/sim.out" 2> "$WORK/sim.err" &
SIM_PID=$!
trap 'kill -INT $SIM_PID 2>/dev/null' INT
wait $SIM_PID
trap - INT
set -e
sleep 2  # the last readings' way to the broker, and the custody source's last checkpoint
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
sleep 0.5
kill -INT "$TAIL_PID"; wait "$TAIL_PID" 2>/dev/null || true
kill -INT "$EVTAIL_PID"; wait "$EVTAIL_PID" 2>/dev/null || true

sent=$(sed -nE 's/.*generated=([0-9]+).*/\1/p' "$WORK/sim.out")
acked=$(sed -nE 's/.* acked=([0-9]+).*/\1/p' "$WORK/sim.out")
published=$(sed -nE 's/.* ([0-9]+) published and acknowledged.*/\1/p' "$WORK/agent.log")
received=$(sed -nE 's/.*readings=([0-9]+).*/\1/p' "$WORK/tail.err")
echo
events=$(grep -c '"kind":"event"' "$WORK/tail.jsonl" || true)
kinds=$(grep -o '"event":"[a-z_]*"' "$WORK/tail.jsonl" | sort | uniq -c | awk '{sub(/"event":/, "", $2); gsub(/"/, "", $2); printf "%s%s %s", sep, $2, $1; sep=", "}')
echo "== custody events derived by the agent (docs/custody-events.md): ${events:-0}${kinds:+ ($kinds)}"
checkpoints=$(grep -c '"kind":"evidence"' "$WORK/evidence.jsonl" || true)
echo "== summary: readings sent ${sent:-?}, acknowledged by the agent ${acked:-?}, published ${published:-?} (with the custody events and the evidence checkpoints), received by the subscribers ${received:-?} on the data topics and ${checkpoints:-0} on the evidence topic"
# The evidence, checked from the messages alone by eport-verify (C++, over the C
# library's verifier) and by the verifier written from docs/evidence.md in Python,
# which must agree (readings after a source's last checkpoint are its unverified tail).
cat "$WORK/evidence/evidence_keys" "$WORK/evidence/gateway_keys" > "$WORK/evidence/all_keys"
verdict=$("$BIN/tools/eport-verify" --keys "$WORK/evidence/all_keys" \
  "$WORK/tail.jsonl" "$WORK/evidence.jsonl" 2>&1 | tail -n 1)
echo "== evidence (docs/evidence.md): $verdict"
py_verdict=$(/usr/bin/python3 examples/python/eport_verify.py --keys "$WORK/evidence/all_keys" \
  "$WORK/tail.jsonl" "$WORK/evidence.jsonl" 2>&1 | tail -n 1)
[[ $py_verdict == "$verdict" ]] || echo "== evidence, by examples/python/eport_verify.py (differs!): $py_verdict"
