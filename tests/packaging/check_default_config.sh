#!/bin/bash
# The shipped agent.toml is a mutual-TLS template: --check-config refuses it
# as shipped, naming the broker placeholder and the CA, certificate and key
# files, and accepts it once those four are filled in (nothing else needs
# changing). Usage: check_default_config.sh AGENT.TOML AGENT-COMMAND...
set -u
toml=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$@" --check-config "$toml" 2>&1)
rc=$?
echo "$out"
[[ $rc == 2 ]] || fail "the shipped config was not refused (exit $rc)"
for want in "mqtt.uri: ssl://broker.invalid:8883 is a placeholder" \
            "mqtt.ca_file: cannot read /etc/eport-edge/tls/ca.crt" \
            "mqtt.cert_file: cannot read /etc/eport-edge/tls/GATEWAY-ID.crt" \
            "mqtt.key_file: cannot read /etc/eport-edge/tls/GATEWAY-ID.key"; do
  grep -qF "$want" <<<"$out" || fail "refusal does not say: $want"
done
[[ $(wc -l <<<"$out") == 4 ]] || fail "the shipped config has other problems than its four placeholders"

printf '%s\n' '-----BEGIN CERTIFICATE-----' MIIB '-----END CERTIFICATE-----' >"$work/ca.crt"
cp "$work/ca.crt" "$work/gw-quay-01.crt"
printf '%s\n' '-----BEGIN PRIVATE KEY-----' MIIE '-----END PRIVATE KEY-----' >"$work/gw-quay-01.key"
chmod 600 "$work/gw-quay-01.key"
sed -e "s|/etc/eport-edge/tls/|$work/|" -e 's|GATEWAY-ID|gw-quay-01|' -e 's|broker.invalid|broker.example.com|' \
  "$toml" >"$work/agent.toml"
out=$("$@" --check-config "$work/agent.toml" 2>&1) || fail "filled-in template refused: $out"
grep -q 'valid (config hash' <<<"$out" || fail "unexpected output: $out"
grep -q warning <<<"$out" && fail "filled-in template warns: $out"
echo "packaging.default_config: refused as shipped (4 placeholders named), valid once filled in"
