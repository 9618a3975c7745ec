#!/usr/bin/env bash
# pki/eport-pki on its own: private keys 0600 and the CA directory 0700, the
# broker SAN (host, IP, localhost, 127.0.0.1, each once), client certificates
# for client auth only (with a URI SAN when asked, kept by a rotation), node
# certificates for server and client auth, ids checked, no second certificate
# for one CN without --reissue (a rotation: new key and serial, the old one
# valid until revoked), revocation with an RFC 5280 reason visible to
# `openssl verify -crl_check` and in the CRL, and `list` with ISO 8601 UTC
# dates, days left and reasons.
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
"$pki_tool" server "$p" broker-b mqtt-b.port.test 127.0.0.1 LOCALHOST ::1 10.9.8.7 10.9.8.7 >/dev/null
san_b=$(openssl x509 -in "$p/issued/broker-b.crt" -noout -ext subjectAltName | tail -1 | sed 's/^ *//')
check "a HOST that is localhost, 127.0.0.1, ::1 or given twice appears once in the SAN" \
  '[[ $san_b == "DNS:mqtt-b.port.test, IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1, IP Address:10.9.8.7" ]]'
"$pki_tool" revoke "$p" broker-b >/dev/null
check "broker certificate is for server auth" \
  'openssl x509 -in "$p/issued/broker.crt" -noout -ext extendedKeyUsage | grep -q "Server Authentication"'
check "gateway certificate is for client auth, CN = gateway id" \
  'openssl x509 -in "$p/issued/gw-01.crt" -noout -ext extendedKeyUsage | grep -q "Client Authentication" &&
   openssl x509 -in "$p/issued/gw-01.crt" -noout -subject | grep -q "CN *= *gw-01"'
"$pki_tool" client "$p" gw-07 eport://s1/gateway/gw-07 >/dev/null
"$pki_tool" node "$p" nats-1 nats-1.port.test >/dev/null
check "client CN URI: the URI is the certificate's only SAN, for client auth" \
  '[[ $(openssl x509 -in "$p/issued/gw-07.crt" -noout -ext subjectAltName | tail -n +2 | xargs) == URI:eport://s1/gateway/gw-07 ]] &&
   openssl x509 -in "$p/issued/gw-07.crt" -noout -ext extendedKeyUsage | grep -q "Client Authentication"'
check "node certificate: server and client auth (routes), SAN has its host and 127.0.0.1" \
  'openssl x509 -in "$p/issued/nats-1.crt" -noout -ext extendedKeyUsage | grep -q "Server Authentication, TLS Web Client Authentication" &&
   openssl x509 -in "$p/issued/nats-1.crt" -noout -ext subjectAltName | grep -q "DNS:nats-1.port.test.*IP Address:127.0.0.1"'
"$pki_tool" client "$p" gw-07 --reissue >/dev/null
check "--reissue keeps the URI SAN of the certificate it replaces" \
  'openssl x509 -in "$p/issued/gw-07.crt" -noout -ext subjectAltName | grep -q "URI:eport://s1/gateway/gw-07" &&
   [[ $(ls "$p"/previous/gw-07-*.crt | wc -l) -eq 1 ]]'
"$pki_tool" revoke "$p" gw-07 --serial "$(openssl x509 -in "$(ls "$p"/previous/gw-07-*.crt)" -noout -serial | cut -d= -f2)" >/dev/null
check "a URI NATS would not compare as written is refused" '! "$pki_tool" client "$p" gw-03 "eport://S1/gw 03" 2>/dev/null'
check "a CN that is not a valid id is refused" '! "$pki_tool" client "$p" "gw/01" 2>/dev/null && ! "$pki_tool" client "$p" "GW01" 2>/dev/null'
check "a second certificate for a CN is refused without --reissue" \
  '! "$pki_tool" client "$p" gw-01 2>"$work/err" && grep -q -- "--reissue" "$work/err"'
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
check "list shows three revoked (gw-01, broker, gw-07 rotated) and four valid certificates (gw-01, broker-b, gw-07, nats-1)" \
  '[[ $(grep -c "^revoked" "$work/list") -eq 3 && $(grep -c "^valid" "$work/list") -eq 4 ]]'

# Rotation: --reissue while the current certificate stays valid.
s1=$(openssl x509 -in "$p/issued/gw-01.crt" -noout -serial | cut -d= -f2)
k1=$(openssl pkey -in "$p/issued/gw-01.key" -pubout)
"$pki_tool" client "$p" gw-01 --reissue >"$work/out"
s2=$(openssl x509 -in "$p/issued/gw-01.crt" -noout -serial | cut -d= -f2)
check "--reissue issues a new serial and a new key for the same CN" \
  '[[ $s2 != "$s1" && $(openssl pkey -in "$p/issued/gw-01.key" -pubout) != "$k1" &&
     $(openssl x509 -in "$p/issued/gw-01.crt" -noout -subject) == *"CN = gw-01"* ]]'
check "the previous certificate moves to previous/ and still verifies (valid until revoked)" \
  '[[ -f $p/previous/gw-01-$s1.crt && -f $p/previous/gw-01-$s1.key ]] &&
   openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" "$p/previous/gw-01-$s1.crt" >/dev/null 2>&1 &&
   grep -q -- "--serial $s1" "$work/out"'
check "a second --reissue is refused while the previous certificate is not revoked" \
  '! "$pki_tool" client "$p" gw-01 --reissue 2>"$work/err" && grep -q "finish that rotation" "$work/err" &&
   [[ $(openssl x509 -in "$p/issued/gw-01.crt" -noout -serial | cut -d= -f2) == "$s2" ]]'
check "an unknown revocation reason is refused" \
  '! "$pki_tool" revoke "$p" gw-01 --serial "$s1" --reason stolen 2>"$work/err" && grep -q keyCompromise "$work/err" &&
   [[ -f $p/previous/gw-01-$s1.crt ]]'
"$pki_tool" revoke "$p" gw-01 --serial "$s1" >/dev/null
check "revoke --serial revokes the previous certificate (reason superseded), the new one stays valid" \
  '[[ -f $p/revoked/gw-01-$s1.crt && -f $p/issued/gw-01.crt ]] &&
   { openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" "$p/revoked/gw-01-$s1.crt" 2>&1 || true; } | grep -q "certificate revoked" &&
   openssl verify -CAfile "$p/ca.crt" -crl_check -CRLfile "$p/crl.pem" "$p/issued/gw-01.crt" >/dev/null 2>&1 &&
   openssl crl -in "$p/crl.pem" -noout -text | grep -A4 "Serial Number: $s1" | grep -q "Superseded"'
"$pki_tool" client "$p" gw-02 >/dev/null
s3=$(openssl x509 -in "$p/issued/gw-02.crt" -noout -serial | cut -d= -f2)
"$pki_tool" revoke "$p" gw-02 --reason keyCompromise >/dev/null
check "revoke --reason keyCompromise puts that reason code into the CRL" \
  'openssl crl -in "$p/crl.pem" -noout -text | grep -A4 "Serial Number: $s3" | grep -q "Key Compromise"'
check "revoking a current certificate defaults to cessationOfOperation" \
  'openssl crl -in "$p/crl.pem" -noout -text | grep -A4 "Serial Number: $serial" | grep -q "Cessation Of Operation"'
EPORT_PKI_CERT_DAYS=7 "$pki_tool" client "$p" gw-03 >/dev/null
"$pki_tool" list "$p" >"$work/list"
iso='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
end3=$(openssl x509 -in "$p/issued/gw-03.crt" -noout -enddate | cut -d= -f2)
s4=$(openssl x509 -in "$p/issued/gw-03.crt" -noout -serial | cut -d= -f2)
check "list has a header and ISO 8601 UTC expiry dates" \
  '[[ $(head -1 "$work/list") == STATUS*"NOT AFTER (UTC)"*"DAYS LEFT"*REASON ]] &&
   [[ $(tail -n +2 "$work/list" | grep -Evc "^(valid|revoked) +[a-z0-9-]+ +[0-9A-F]+ +$iso ") -eq 0 ]] &&
   grep -q "^valid  *gw-03  *$s4  *$(date -u -d "$end3" +%Y-%m-%dT%H:%M:%SZ) " "$work/list"'
check "list shows days left (a 7-day certificate: 6 or 7)" \
  '[[ $(awk "\$2==\"gw-03\" {print \$5}" "$work/list") =~ ^[67]$ ]]'
check "list shows revocation time and reason: superseded, keyCompromise, cessationOfOperation" \
  'grep -Eq "^revoked +gw-01 +$s1 +$iso +[0-9]+ +$iso +superseded$" "$work/list" &&
   grep -Eq "^revoked +gw-02 +$s3 +$iso +[0-9]+ +$iso +keyCompromise$" "$work/list" &&
   grep -Eq "^revoked +gw-01 +$serial +$iso +[0-9]+ +$iso +cessationOfOperation$" "$work/list"'

# A certificate past its notAfter that openssl's database still marks V
# (openssl ca -updatedb was never run): list says expired, days negative.
cp -r "$p" "$work/old"
awk -F'\t' -v OFS='\t' '$6 ~ /CN=gw-03$/ { $2 = "010203040506Z" } { print }' "$p/index.txt" >"$work/old/index.txt"
"$pki_tool" list "$work/old" >"$work/list-old"
check "list marks a certificate past its notAfter as expired, with negative days left" \
  'grep -Eq "^expired +gw-03 +[0-9A-F]+ +2001-02-03T04:05:06Z +-[0-9]+ +- +-$" "$work/list-old"'

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
