#!/usr/bin/env bash
# pki/eport-pki on its own: private keys 0600 and the CA directory 0700, the
# broker SAN (host, IP, localhost, 127.0.0.1), client certificates for
# client auth only (with a URI SAN when asked), node certificates for server
# and client auth, ids checked, no second certificate for one CN until the
# first is revoked, and revocation visible to `openssl verify -crl_check`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pki_tool=$here/../pki/eport-pki
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
pass=0 fail=0
check() { if eval "$2"; then echo "  PASS $1"; pass=$((pass+1)); else echo "  FAIL $1"; fail=$((fail+1)); fi; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
p=$work/pki
"$pki_tool" init "$p" "test CA" >/dev/null
"$pki_tool" server "$p" broker mqtt.port.test 10.9.8.7 >/dev/null
"$pki_tool" client "$p" gw-01 >/dev/null

mode() { stat -c %a "$1"; }
check "CA directory is 0700" '[[ $(mode "$p") == 700 && $(mode "$p/private") == 700 ]]'
check "every private key is 0600" \
  '[[ $(find "$p" -name "*.key" ! -perm 600 | wc -l) -eq 0 && $(find "$p" -name "*.key" | wc -l) -ge 3 ]]'
san=$(openssl x509 -in "$p/issued/broker.crt" -noout -ext subjectAltName)
check "broker SAN has the host, its IP, localhost and 127.0.0.1" \
  '[[ $san == *DNS:mqtt.port.test* && $san == *"IP Address:10.9.8.7"* && $san == *DNS:localhost* && $san == *"IP Address:127.0.0.1"* ]]'
check "broker certificate is for server auth" \
  'openssl x509 -in "$p/issued/broker.crt" -noout -ext extendedKeyUsage | grep -q "Server Authentication"'
check "gateway certificate is for client auth, CN = gateway id" \
  'openssl x509 -in "$p/issued/gw-01.crt" -noout -ext extendedKeyUsage | grep -q "Client Authentication" &&
   openssl x509 -in "$p/issued/gw-01.crt" -noout -subject | grep -q "CN *= *gw-01"'
"$pki_tool" client "$p" gw-02 eport://s1/gateway/gw-02 >/dev/null
"$pki_tool" node "$p" nats-1 nats-1.port.test >/dev/null
check "client CN URI: the URI is the certificate's only SAN, for client auth" \
  '[[ $(openssl x509 -in "$p/issued/gw-02.crt" -noout -ext subjectAltName | tail -n +2 | xargs) == URI:eport://s1/gateway/gw-02 ]] &&
   openssl x509 -in "$p/issued/gw-02.crt" -noout -ext extendedKeyUsage | grep -q "Client Authentication"'
check "node certificate: server and client auth (routes), SAN has its host and 127.0.0.1" \
  'openssl x509 -in "$p/issued/nats-1.crt" -noout -ext extendedKeyUsage | grep -q "Server Authentication, TLS Web Client Authentication" &&
   openssl x509 -in "$p/issued/nats-1.crt" -noout -ext subjectAltName | grep -q "DNS:nats-1.port.test.*IP Address:127.0.0.1"'
check "a URI NATS would not compare as written is refused" '! "$pki_tool" client "$p" gw-03 "eport://S1/gw 03" 2>/dev/null'
check "a CN that is not a valid id is refused" '! "$pki_tool" client "$p" "gw/01" 2>/dev/null && ! "$pki_tool" client "$p" "GW01" 2>/dev/null'
check "a second certificate for a CN is refused while the first is valid" '! "$pki_tool" client "$p" gw-01 2>/dev/null'
check "init refuses to overwrite an existing CA" '! "$pki_tool" init "$p" 2>/dev/null'
check "gw-01 verifies against the CA and the CRL" \
  'openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" "$p/issued/gw-01.crt" >/dev/null 2>&1'

serial=$(openssl x509 -in "$p/issued/gw-01.crt" -noout -serial | cut -d= -f2)
"$pki_tool" revoke "$p" gw-01 >/dev/null
old=$p/revoked/gw-01-$serial.crt
check "revoke moves the certificate and key to revoked/" '[[ -f $old && -f ${old%.crt}.key && ! -e $p/issued/gw-01.crt ]]'
check "the CRL lists the revoked serial" 'openssl crl -in "$p/crl.pem" -noout -text | grep -q "Serial Number: $serial"'
check "openssl verify -crl_check rejects the revoked certificate" \
  '{ openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" "$old" 2>&1 || true; } | grep -q "certificate revoked"'
"$pki_tool" client "$p" gw-01 >/dev/null
check "after revocation the same CN can be issued again, and it verifies" \
  'openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" "$p/issued/gw-01.crt" >/dev/null 2>&1'
EPORT_PKI_CRL_DAYS=7 "$pki_tool" crl "$p" >/dev/null
next=$(date -u -d "$(openssl crl -in "$p/crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)
check "EPORT_PKI_CRL_DAYS sets nextUpdate" '(( next - $(date +%s) > 6*86400 && next - $(date +%s) <= 7*86400 ))'
"$pki_tool" list "$p" >"$work/list"
check "list shows one revoked and four valid certificates (gw-01, broker, gw-02, nats-1)" \
  '[[ $(grep -c "^revoked" "$work/list") -eq 1 && $(grep -c "^valid" "$work/list") -eq 4 ]]'

# Unit keys (unit authentication, docs/firmware-bridge.md 13).
"$pki_tool" unit-key "$p" TU-0042 >/dev/null
"$pki_tool" unit-key "$p" tcu-0001 >/dev/null
k42=$(cat "$p/units/TU-0042.key")
check "unit-key writes a 32-byte hex key 0600 and the agent's line for it" \
  '[[ $k42 =~ ^[0-9a-f]{64}$ && $(mode "$p/units/TU-0042.key") == 600 && $(mode "$p/unit-keys") == 600 &&
     $(grep -c "^TU-0042 $k42\$" "$p/unit-keys") -eq 1 && $(grep -c "^tcu-0001 " "$p/unit-keys") -eq 1 ]]'
check "a second key for a unit is refused without --rotate" '! "$pki_tool" unit-key "$p" TU-0042 2>/dev/null'
check "an id the agent would refuse gets no key" \
  '! "$pki_tool" unit-key "$p" "tu 1" 2>/dev/null && ! "$pki_tool" unit-key "$p" "a/b" 2>/dev/null &&
   ! "$pki_tool" unit-key "$p" "a.b" 2>/dev/null && ! "$pki_tool" unit-key "$p" "$(printf "x%.0s" {1..33})" 2>/dev/null'
"$pki_tool" unit-key "$p" TU-0042 --rotate >/dev/null
check "--rotate replaces the unit's key and line, keeps the others" \
  '[[ $(cat "$p/units/TU-0042.key") != "$k42" && $(grep -c "^TU-0042 " "$p/unit-keys") -eq 1 &&
     $(grep -c "^TU-0042 $k42" "$p/unit-keys") -eq 0 && $(grep -c "^tcu-0001 " "$p/unit-keys") -eq 1 ]]'
"$pki_tool" unit-key "$p" tcu-0001 --remove >/dev/null
check "--remove drops the unit's key and line" \
  '[[ ! -e $p/units/tcu-0001.key && $(grep -c "^tcu-0001 " "$p/unit-keys") -eq 0 && $(grep -c "^TU-0042 " "$p/unit-keys") -eq 1 ]]'
echo "test_pki: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
