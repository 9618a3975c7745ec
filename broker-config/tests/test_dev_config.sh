#!/usr/bin/env bash
# Development broker (dev/mosquitto.conf via dev/render.sh): anonymous
# publish/subscribe works on 127.0.0.1, the rendered copy differs from the
# original only in the port (and `user root`), and render.sh rejects a bad port.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bc=$here/..
for tool in mosquitto mosquitto_pub mosquitto_sub; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || { echo "SKIP: $tool not installed"; exit 77; }
done
PATH=$PATH:/usr/sbin
pass=0 fail=0
check() { if eval "$2"; then echo "  PASS $1"; pass=$((pass+1)); else echo "  FAIL $1"; fail=$((fail+1)); fi; }

work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
conf=$("$bc/dev/render.sh" "$port" "$work")
check "render.sh prints the path of the written config" '[[ $conf == $work/mosquitto.conf && -f $conf ]]'
check "only the listener line (and user root) differ from dev/mosquitto.conf" \
  '[[ $(diff "$bc/dev/mosquitto.conf" "$conf" | grep -c "^[<>] [a-z]") -le 3 ]] && grep -qx "listener $port 127.0.0.1" "$conf"'
check "render.sh rejects a port out of range" '! "$bc/dev/render.sh" 70000 "$work/x" 2>/dev/null'

mosquitto -c "$conf" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 50); do mosquitto_pub -h 127.0.0.1 -p "$port" -t probe -n 2>/dev/null && break; sleep 0.1; done

mosquitto_sub -h 127.0.0.1 -p "$port" -t 'eport/v1/#' -v -C 2 -W 5 >"$work/sub" &
sub=$!
sleep 0.3
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t eport/v1/dev/gw-dev/data/telemetry -m hello
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t eport/v1/dev/gw-dev/status -m online
wait "$sub" || true
check "anonymous subscriber received both anonymous publishes" \
  '[[ $(cat "$work/sub") == $'"'"'eport/v1/dev/gw-dev/data/telemetry hello\neport/v1/dev/gw-dev/status online'"'"' ]]'
check "broker logged the anonymous client connections" 'grep -q "New client connected from 127.0.0.1" "$work/log"'
# Listening sockets for the port from the kernel's tables: only 127.0.0.1 (0100007F), no IPv6.
hexport=$(printf '%04X' "$port")
listen4=$(awk -v p=":$hexport" '$4 == "0A" && substr($2, 9) == p { print substr($2, 1, 8) }' /proc/net/tcp)
listen6=$(awk -v p=":$hexport" '$4 == "0A" && substr($2, 33) == p' /proc/net/tcp6 2>/dev/null || true)
check "broker listens on 127.0.0.1 only (kernel socket table)" '[[ $listen4 == 0100007F && -z $listen6 ]]'
if [[ $fail -ne 0 ]]; then cat "$work/log"; fi
echo "test_dev_config: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
