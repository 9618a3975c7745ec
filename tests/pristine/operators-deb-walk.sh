#!/usr/bin/env bash
# docs/operators.md, sections 1 to 6, walked as a port operator would on a
# pristine Debian 12 machine, with the eport-agent .deb built from this tree.
# One machine plays the administration machine, the broker host and a gateway.
#
# Every operator command comes from operators.md itself: `block FIRST_LINE`
# finds the fenced block of the doc that starts with FIRST_LINE and runs it
# whole, as written. When the doc changes, the walk runs the new text; when a
# block it needs is gone, it stops and names it. What cannot be run as
# written on one machine is replaced, and each replacement is listed here:
#   - the .deb is built first (scripts/cross-build.sh amd64) and installed
#     as ./eport-agent_<version>_amd64.deb, not the doc's arm64 example;
#   - the inventory's bind_address 10.20.0.5 becomes 127.0.0.1, and the broker
#     name mqtt.waalhaven.example.net resolves to 127.0.0.1 through /etc/hosts
#     (mqtt-b.waalhaven.example.net, the failover broker, does not resolve);
#   - no systemd in a chroot: `systemctl` and `journalctl` are shell functions
#     that start mosquitto as root (it drops to user mosquitto, as under its
#     unit) and the agent as in its packaged unit (user eport-agent,
#     /run/eport-agent and /var/lib/eport-agent, UMask 0007);
#   - the gateway's serial ports do not exist; simulated units connect to the
#     packaged bridge socket /run/eport-agent/bridge.sock instead.
# It then checks what an operator would: the agent online through the
# generated ACL, eport-tail (reader certificate) decoding every reading the
# units had acknowledged, eport-cmd (commander certificate) getting a reply;
# a second gateway (gw-yard-01, started by hand beside the packaged one);
# section 7's rotation of gw-quay-01 without downtime, revocation of
# gw-yard-01 (its agent names the refusal, its status turns offline) and
# the CRL renewal, with validate on both machines exiting 0 afterwards.
#
# Usage, as root in a throw-away root (it installs packages and writes /etc):
#   ../shared/tools/fresh-run.sh tests/pristine/operators-deb-walk.sh
# Not part of ctest: it needs a whole machine. Exit 0 when the walk succeeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DOC=$REPO/docs/operators.md
WORK=/root/operators-walk
SITE=/srv/eport/rtm-waalhaven
UNITS=5 COUNT=40
[ "$(id -u)" = 0 ] || { echo "walk: run as root, in a throw-away root (see the header)" >&2; exit 2; }
rm -rf "$WORK"; mkdir -p "$WORK"

step() { echo; echo "== walk: $*"; }
fail() { echo "walk: FAILED: $*" >&2; exit 1; }

# The fenced block of operators.md whose first line is $1, printed whole.
doc_block() {   # awk, not python3: section 1 installs python3
  awk -v first="$1" 'found && /^```/ { exit } found { print }
    !found && prev ~ /^```/ && $0 == first { found = 1; print } { prev = $0 }
    END { exit !found }' "$DOC"
}
# Runs that block in this shell, echoing it; $2 (optional) is a sed script
# applied first, for the replacements listed in the header.
block() {
  local text
  text=$(doc_block "$1") || fail "operators.md has no block starting with: $1"
  [ -n "${2:-}" ] && text=$(sed -e "$2" <<<"$text")
  printf '%s\n' "$text" | sed 's/^/  $ /' >&2
  eval "$text"
}

# systemd, as the units would do it
mosquitto_pid() { pgrep -x mosquitto || true; }
agent_pid() { pgrep -f "^/usr/bin/eport-agent --config /etc/eport-agent/agent.toml" || true; }   # the packaged one only
systemctl() {
  case "$*" in
    "restart mosquitto")
      local p; p=$(mosquitto_pid); [ -z "$p" ] || { kill $p; while kill -0 $p 2>/dev/null; do sleep 0.1; done; }
      install -d -o mosquitto -g mosquitto /run/mosquitto /var/log/mosquitto   # what Debian's unit creates
      mosquitto -c /etc/mosquitto/mosquitto.conf -d
      sleep 1; [ -n "$(mosquitto_pid)" ] || { tail -20 /var/log/mosquitto/mosquitto.log; fail "mosquitto did not start"; } ;;
    "reload mosquitto")
      local p; p=$(mosquitto_pid); [ -n "$p" ] || fail "reload: mosquitto is not running"
      kill -HUP $p; sleep 0.5 ;;
    "restart eport-agent")
      local p; p=$(agent_pid); [ -z "$p" ] || { kill $p; while kill -0 $p 2>/dev/null; do sleep 0.1; done; }
      install -d -o eport-agent -g eport-agent -m 0750 /run/eport-agent /var/lib/eport-agent
      local exec; exec=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/eport-agent.service)
      [ -n "$exec" ] || fail "the package installed no eport-agent.service with an ExecStart"
      (umask 0007; setsid runuser -u eport-agent -- $exec >"$WORK/agent.log" 2>&1 &)
      sleep 2; [ -n "$(agent_pid)" ] || { cat "$WORK/agent.log"; fail "eport-agent did not start"; } ;;
    *) fail "walk: no stand-in for: systemctl $*" ;;
  esac
}
journalctl() { echo "  (journalctl: not in a chroot)"; }

step "build the package (what cpack writes; docs/cross-compiling.md)"
if [ "${WALK_REUSE_DEB:-0}" = 1 ] && ls build-amd64/packages/eport-agent_*_amd64.deb >/dev/null 2>&1; then
  echo "  (WALK_REUSE_DEB=1: the package built by an earlier walk in this root)"
else
  scripts/cross-build.sh amd64 --no-tests >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "cross-build.sh amd64"; }
fi
DEB=$(ls "$REPO"/build-amd64/packages/eport-agent_*_amd64.deb) || fail "no .deb in build-amd64/packages"
echo "  $DEB"

step "section 1: install (broker host and administration machine)"
block "apt-get update" >/dev/null
apt-get install -y -qq procps iproute2 >/dev/null   # pgrep for the walk itself

step "section 2: the inventory"
cd "$WORK"
doc_block 'site = "rtm-waalhaven"' | sed 's/^bind_address = "10.20.0.5"/bind_address = "127.0.0.1"/' >site.toml
grep -q '^bind_address = "127.0.0.1"' site.toml || fail "the inventory of section 2 has no bind_address line any more"
grep -q 'mqtt.waalhaven.example.net' /etc/hosts || echo "127.0.0.1 mqtt.waalhaven.example.net" >>/etc/hosts
cp -r "$REPO/broker-config" "$REPO/docs" .   # "copy broker-config/ and docs/ ... to both machines"

step "section 3: generate"
block "broker-config/eport-broker gen site.toml /srv/eport/rtm-waalhaven"
for f in pki/crl.pem broker/mosquitto.conf gateways/gw-quay-01/agent.toml clients/analytics-1/analytics-1.crt; do
  [ -e "$SITE/$f" ] || fail "gen wrote no $f"
done

step "section 4: install and start the broker"
block "out=/srv/eport/rtm-waalhaven/broker      # copied to the broker host, with ../pki/crl.pem (not the rest of pki/)"
cp "$SITE"/clients/cmdsvc-1/cmdsvc-1.{crt,key} .     # "for --cert, any client certificate and key"
set +e
block "broker-config/eport-broker validate /etc/mosquitto/mosquitto.conf \\"
rc=$?
set -e
[ $rc = 0 ] || fail "validate exited $rc on the freshly installed broker"

step "section 5: install the agent, its configuration and certificates (gateway gw-quay-01)"
cp "$DEB" "$WORK/"
block "apt-get install -y ./eport-agent_0.1.0_arm64.deb    # on the gateway, as root" \
  "s|./eport-agent_0.1.0_arm64.deb|./$(basename "$DEB")|" >"$WORK/apt-agent.log" 2>&1 \
  || { tail -20 "$WORK/apt-agent.log"; fail "installing the .deb"; }
id eport-agent >/dev/null || fail "the package created no user eport-agent"
[ -f /etc/eport-agent/agent.toml ] || fail "the package installed no /etc/eport-agent/agent.toml"
block "g=/srv/eport/rtm-waalhaven/gateways/gw-quay-01      # copied to the gateway"
for i in $(seq 100); do grep -q "connected" "$WORK/agent.log" && break; sleep 0.2; done

step "section 6: a reader decodes, a commander commands"
cp "$SITE"/clients/analytics-1/{ca.crt,analytics-1.crt,analytics-1.key} .
block "eport-tail --broker ssl://mqtt.waalhaven.example.net:8883 --ca-file ca.crt \\" >"$WORK/tail.jsonl" 2>"$WORK/tail.err" &
TAIL=$!
sleep 2
kill -0 $TAIL 2>/dev/null || { cat "$WORK/tail.err"; fail "eport-tail exited"; }
eport-sim --connect unix:/run/eport-agent/bridge.sock --units $UNITS --rate 20 --count $COUNT \
  --acked-log "$WORK/acked.jsonl" --drain-timeout 60 --quiet >"$WORK/sim.log" 2>&1 || { cat "$WORK/sim.log"; fail "eport-sim"; }
python3 - "$WORK/acked.jsonl" "$WORK/tail.jsonl" $((UNITS * COUNT)) <<'EOF' || { kill $TAIL; cat "$WORK/agent.log" | tail -20; fail "readings"; }
import json, sys, time
acked_path, tail_path, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
acked = {(r["source"], r["seq"]) for r in map(json.loads, open(acked_path)) }
if len(acked) != want:
    sys.exit(f"walk: the units had {len(acked)} readings acknowledged, expected {want}")
deadline = time.time() + 30
while True:
    got = set()
    for line in open(tail_path):
        if line.startswith("{"):
            r = json.loads(line)
            if "seq" in r and "source" in r:
                got.add((r["source"], r["seq"]))
    missing = acked - got
    if not missing or time.time() > deadline:
        break
    time.sleep(0.5)
if missing:
    sys.exit(f"walk: {len(missing)} acknowledged readings never reached eport-tail, e.g. {sorted(missing)[:3]}")
print(f"  every one of the {len(acked)} acknowledged readings was decoded by eport-tail (reader certificate)")
EOF
kill $TAIL
cp "$SITE"/clients/cmdsvc-1/ca.crt .
block "eport-cmd --broker ssl://mqtt.waalhaven.example.net:8883 --ca-file ca.crt \\" >"$WORK/cmd.out" 2>&1 \
  || { cat "$WORK/cmd.out"; fail "eport-cmd get-config"; }
grep -q '"ok"' "$WORK/cmd.out" || { cat "$WORK/cmd.out"; fail "eport-cmd got no ok reply"; }
echo "  eport-cmd get-config: $(head -c 160 "$WORK/cmd.out")"
mosquitto_sub -h mqtt.waalhaven.example.net -p 8883 --cafile ca.crt --cert analytics-1.crt --key analytics-1.key \
  -t 'eport/v1/rtm-waalhaven/gw-quay-01/status' -C 1 -W 5 >"$WORK/status.json" || fail "no retained status"
grep -q '"online"' "$WORK/status.json" || { cat "$WORK/status.json"; fail "the retained status is not online"; }
echo "  retained status: online"

step "a second gateway, gw-yard-01, on the same machine (its own store and socket; section 5's files)"
Y=/var/lib/eport-walk/gw-yard-01      # not under /root: the agent runs as eport-agent
install -d -m 0755 "$(dirname "$Y")"; install -d -o eport-agent -g eport-agent -m 0750 "$Y"
install -m 0644 "$SITE"/gateways/gw-yard-01/{ca.crt,gw-yard-01.crt} "$Y/"
install -o eport-agent -g eport-agent -m 0600 "$SITE/gateways/gw-yard-01/gw-yard-01.key" "$Y/"
sed -e "s|/etc/eport-edge/tls/|$Y/|" -e "s|/var/lib/eport-agent/|$Y/|" -e "s|/run/eport-agent/|$Y/|" \
  "$SITE/gateways/gw-yard-01/agent.toml" >"$Y/agent.toml"
eport-agent --check-config "$Y/agent.toml" >/dev/null || fail "gw-yard-01's agent.toml"
(umask 0007; setsid runuser -u eport-agent -- eport-agent --config "$Y/agent.toml" >"$Y/agent.log" 2>&1 &)
status_of() {  # the retained status of gateway $1, as a reader sees it
  mosquitto_sub -h mqtt.waalhaven.example.net -p 8883 --cafile ca.crt --cert analytics-1.crt --key analytics-1.key \
    -t "eport/v1/rtm-waalhaven/$1/status" -C 1 -W 5 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || echo none
}
wait_status() {  # gateway, state, seconds
  for i in $(seq $(( $3 * 2 ))); do [ "$(status_of "$1")" = "$2" ] && return 0; sleep 0.5; done
  fail "the retained status of $1 did not become $2 within $3 s (it is $(status_of "$1"))"
}
wait_status gw-yard-01 online 20
echo "  gw-quay-01 and gw-yard-01 online"

step "section 7: rotate gw-quay-01's certificate without downtime"
old_serial=$(openssl x509 -noout -serial -in "$SITE/gateways/gw-quay-01/gw-quay-01.crt" | cut -d= -f2)
# the rotation block starts with the same line as the revocation block: found by its second line
rotation=$(python3 - "$DOC" <<'PY'
import sys
doc = open(sys.argv[1]).read().split("\n")
i = doc.index("# 1. issue the new certificate (new key, new serial); the old one stays valid")
assert doc[i - 1] == "site=/srv/eport/rtm-waalhaven" and doc[i - 2].startswith("```")
out = []
for l in doc[i - 1:]:
    if l.startswith("```"):
        break
    out.append(l)
print("\n".join(out))
PY
) || fail "operators.md has no rotation block any more"
rotation=$(sed "s/OLD_SERIAL/$old_serial/" <<<"$rotation")
printf '%s\n' "$rotation" | sed 's/^/  $ /' >&2
eval "$rotation"
new_serial=$(openssl x509 -noout -serial -in /etc/eport-edge/tls/gw-quay-01.crt | cut -d= -f2)
[ "$new_serial" != "$old_serial" ] || fail "the gateway still has the old certificate"
wait_status gw-quay-01 online 20
broker-config/pki/eport-pki list "$SITE/pki" | grep -E "^revoked +gw-quay-01 +$old_serial .* superseded" >/dev/null \
  || { broker-config/pki/eport-pki list "$SITE/pki"; fail "eport-pki list does not show $old_serial revoked, superseded"; }
echo "  rotated: $old_serial (revoked, superseded) -> $new_serial, gw-quay-01 online"

step "section 7: revoke gw-yard-01 (removed from the inventory first)"
sed -i 's/^gateways = \["gw-quay-01", "gw-quay-02", "gw-yard-01"\]/gateways = ["gw-quay-01", "gw-quay-02"]/' site.toml
grep -q '^gateways = \["gw-quay-01", "gw-quay-02"\]' site.toml || fail "the inventory's gateways line changed: adapt the walk"
revoke=$(doc_block "site=/srv/eport/rtm-waalhaven" | sed -n '1,/^systemctl restart mosquitto/p')
grep -q "eport-broker revoke" <<<"$revoke" || fail "the first block starting site=... is not the revocation any more"
# "2. install pki/crl.pem and broker/acl on the broker (as in section 4)": the files of that block
revoke=$(sed 's|^# 2. install pki/crl.pem and broker/acl on the broker (as in section 4), then|install -o root -g mosquitto -m 0644 $site/pki/crl.pem $site/broker/acl /etc/mosquitto/eport/|' <<<"$revoke")
printf '%s\n' "$revoke" | sed 's/^/  $ /' >&2
eval "$revoke"
wait_status gw-yard-01 offline 20
for i in $(seq 40); do grep -q "refused this gateway's certificate" "$Y/agent.log" && break; sleep 0.5; done
grep -q "refused this gateway's certificate" "$Y/agent.log" || { tail "$Y/agent.log"; fail "gw-yard-01's agent did not name the refusal"; }
grep "refused this gateway's certificate" "$Y/agent.log" | head -1 | sed 's/^/  gw-yard-01: /'
wait_status gw-quay-01 online 30
echo "  gw-yard-01 refused and offline; gw-quay-01 online again after the broker restart"

step "section 7: renew the CRL and install it"
before=$(openssl crl -in "$SITE/pki/crl.pem" -noout -lastupdate)
sleep 1
ln -sf "$SITE/pki/crl.pem" crl.pem     # "on the broker host": the copy that reached it
block "broker-config/pki/eport-pki crl /srv/eport/rtm-waalhaven/pki"
after=$(openssl crl -in /etc/mosquitto/eport/crl.pem -noout -lastupdate)
[ "$before" != "$after" ] || fail "the installed CRL is not the renewed one ($after)"
echo "  installed CRL: $after (was $before)"
set +e
broker-config/eport-broker validate /etc/mosquitto/mosquitto.conf --cert cmdsvc-1.crt --key cmdsvc-1.key >"$WORK/validate2.log" 2>&1
rc=$?
broker-config/eport-broker validate --pki "$SITE/pki" >"$WORK/validate-pki.log" 2>&1
rcp=$?
set -e
[ $rc = 0 ] || { cat "$WORK/validate2.log"; fail "validate after the renewal exited $rc"; }
[ $rcp = 0 ] || { cat "$WORK/validate-pki.log"; fail "validate --pki exited $rcp"; }
wait_status gw-quay-01 online 10
echo "  validate (broker host) and validate --pki (administration machine): exit 0"

step "done: operators.md sections 1-7 hold with the .deb on a pristine Debian 12"
