#!/usr/bin/env bash
# ctest packaging.deb: builds the eport-agent .deb of this build tree with
# cpack, checks its contents, control data and maintainer scripts (and lintian
# when installed), then - as root on a machine where systemd is not the
# running init (CI, containers) - installs it for real, checks user, modes,
# conffile and unit, upgrades over a changed config, removes, purges, and
# checks that purge leaves nothing behind.
# Usage: test_deb.sh BUILD_DIR WORK_DIR CPACK [FALLBACK_DEPENDS]
# EPORT_PACKAGING_INSTALL=1 installs even under a running systemd (it then
# enables, never starts, the unit); =0 never installs.
set -euo pipefail
BUILD=$1 WORK=$2 CPACK=$3 FALLBACK_DEPENDS=${4:-}
ARCH=$(dpkg --print-architecture)
MARKER=/var/tmp/eport-agent-packaging-test.installed

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

rm -rf "$WORK"; mkdir -p "$WORK"

step "cpack"
(cd "$BUILD" && "$CPACK" -G DEB -B "$WORK/cpack" -D "CPACK_OUTPUT_FILE_PREFIX=$WORK") >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log"; fail "cpack failed"; }
deb=$(ls "$WORK"/eport-agent_*_"$ARCH".deb)
echo "$deb"

step "contents (dpkg-deb -c)"
dpkg-deb -c "$deb" >"$WORK/contents"
for path in ./usr/bin/eport-agent ./usr/bin/eport-sim ./usr/bin/eport-tail ./usr/bin/eport-verify \
            ./etc/eport-agent/agent.toml ./lib/systemd/system/eport-agent.service \
            ./var/lib/eport-agent/ ./usr/share/doc/eport-agent/copyright \
            ./usr/share/doc/eport-agent/changelog.gz ./usr/share/man/man8/eport-agent.8.gz \
            ./usr/share/man/man1/eport-verify.1.gz; do
  awk '{print $6}' "$WORK/contents" | grep -qxF "$path" || fail "$path missing from the package"
done
awk '{print $6}' "$WORK/contents" | grep -E '^\./(usr/include|usr/local|tmp|home|root)/|\.a$' && fail "unexpected files in the package"
awk '{print $2}' "$WORK/contents" | grep -vqx 'root/root' && fail "files not owned by root/root"
mkdir -p "$WORK/root"
dpkg-deb -x "$deb" "$WORK/root"
for b in eport-agent eport-sim eport-tail eport-verify; do
  readelf -S "$WORK/root/usr/bin/$b" | grep -qE '\.(symtab|debug_info|comment)( |$)' && fail "usr/bin/$b is not stripped"
done
grep -q '^ExecStart=/usr/bin/eport-agent --config /etc/eport-agent/agent.toml$' \
  "$WORK/root/lib/systemd/system/eport-agent.service" || fail "ExecStart of the unit is wrong"

step "control data (dpkg-deb -e)"
dpkg-deb -e "$deb" "$WORK/control"
[[ "$(cat "$WORK/control/conffiles")" == "/etc/eport-agent/agent.toml" ]] || fail "conffiles: $(cat "$WORK/control/conffiles")"
[[ "$(dpkg-deb -f "$deb" Architecture)" == "$ARCH" ]] || fail "Architecture is not $ARCH"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for d in adduser libc6 libstdc++6 libpaho-mqttpp3 libsqlite3-0 libtomlplusplus3; do
  [[ "$depends" == *"$d"* ]] || fail "Depends lacks $d"
done
# libgps and libsystemd are not linked (the gpsd source loads libgps at run
# time, sd_notify is spoken directly): eight libraries, ~1.1 MiB resident less.
readelf -d "$WORK/root/usr/bin/eport-agent" | grep -E 'NEEDED.*(libgps|libsystemd|libdbus)' &&
  fail "eport-agent links libgps, libsystemd or libdbus (docs/benchmarks.md, memory budget)"
for d in libgps libsystemd; do
  [[ "$depends" == *"$d"* ]] && fail "Depends names $d, which the agent does not link"
done
if grep -q '^EPORT_LIBGPS_FILE:FILEPATH=/' "$BUILD/CMakeCache.txt"; then  # built with gpsd support
  recommends=$(dpkg-deb -f "$deb" Recommends)
  echo "Recommends: $recommends"
  [[ "$recommends" == *libgps* && "$recommends" == *gpsd* ]] || fail "Recommends lacks libgps or gpsd: $recommends"
fi
# Sysroot builds cannot run dpkg-shlibdeps and use a fixed list instead
# (EPORT_DEB_FALLBACK_DEPENDS): it must name every package shlibdeps found.
if [[ -n "$FALLBACK_DEPENDS" ]]; then
  fallback_names=$(tr ',' '\n' <<<"$FALLBACK_DEPENDS" | awk '{print $1}')
  for d in $(tr ',' '\n' <<<"$depends" | awk '{print $1}'); do
    [[ $d == adduser ]] && continue
    grep -qxF "$d" <<<"$fallback_names" ||
      fail "EPORT_DEB_FALLBACK_DEPENDS (cmake/EportPackaging.cmake) lacks $d, which dpkg-shlibdeps found"
  done
fi
for s in postinst prerm postrm; do
  [[ -x "$WORK/control/$s" ]] || fail "$s is not executable"
  sh -n "$WORK/control/$s" || fail "$s: syntax error"
done
grep -q 'adduser --system' "$WORK/control/postinst" || fail "postinst does not create the system user"

if command -v lintian >/dev/null; then
  step "lintian"
  # Errors fail. Warnings (a new program without a man page in
  # packaging/man/, say) and info tags (the hardening flags a non-release
  # build tree lacks; scripts/cross-build.sh uses dpkg-buildflags) are shown.
  lintian --display-info --tag-display-limit 0 "$deb" 2>/dev/null | tee "$WORK/lintian.txt" || true
  grep -E '^E: ' "$WORK/lintian.txt" && fail "lintian errors"
fi

if [[ "${EPORT_PACKAGING_INSTALL:-}" == 0 ]]; then
  echo "install checks skipped (EPORT_PACKAGING_INSTALL=0)"; exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install checks skipped: not root"; exit 0
fi
if [[ -d /run/systemd/system && "${EPORT_PACKAGING_INSTALL:-}" != 1 ]]; then
  echo "install checks skipped: systemd is running here (EPORT_PACKAGING_INSTALL=1 installs anyway)"; exit 0
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -qq -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold)
state() { dpkg-query -W -f='${db:Status-Status}' eport-agent 2>/dev/null || echo not-installed; }
# A run that died half way left its installation behind: purge that first.
# A package installed by anyone else is left alone.
if [[ "$(state)" != not-installed && "$(state)" != config-files ]] || getent passwd eport-agent >/dev/null; then
  [[ -f $MARKER ]] || { echo "install checks skipped: eport-agent is already installed on this machine"; exit 0; }
fi
if [[ -f $MARKER ]]; then "${APT[@]}" purge eport-agent >/dev/null || true; fi
touch "$MARKER"
cleanup() { "${APT[@]}" purge eport-agent >/dev/null 2>&1 || true; rm -f "$MARKER"; }
trap cleanup EXIT

step "install"
"${APT[@]}" install --no-install-recommends "$deb" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "install failed"; }
[[ "$(state)" == installed ]] || fail "package state $(state)"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd eport-agent) || fail "user eport-agent not created"
((uid < 1000)) || fail "eport-agent is not a system user (uid $uid)"
[[ $home == /var/lib/eport-agent && $shell == /usr/sbin/nologin ]] || fail "user: home $home shell $shell"
getent group eport-agent >/dev/null || fail "group eport-agent not created"
[[ "$(stat -c '%U:%G %a' /var/lib/eport-agent)" == "eport-agent:eport-agent 750" ]] ||
  fail "/var/lib/eport-agent is $(stat -c '%U:%G %a' /var/lib/eport-agent)"
[[ "$(stat -c '%U:%G %a' /etc/eport-agent/agent.toml)" == "root:eport-agent 640" ]] ||
  fail "agent.toml is $(stat -c '%U:%G %a' /etc/eport-agent/agent.toml)"
dpkg-query -W -f='${Conffiles}\n' eport-agent | grep -q '^ /etc/eport-agent/agent.toml ' || fail "agent.toml is not a conffile"
# The service user can read its config, and the shipped config (a mutual-TLS
# template) is refused until its placeholders are filled in, naming them.
out=$(runuser -u eport-agent -- /usr/bin/eport-agent --check-config /etc/eport-agent/agent.toml 2>&1) &&
  fail "--check-config as eport-agent accepted the unfilled template"
grep -q 'cannot open config file' <<<"$out" && fail "eport-agent cannot read its config: $out"
for k in mqtt.uri mqtt.ca_file mqtt.cert_file mqtt.key_file; do
  grep -q "^/etc/eport-agent/agent.toml:\([0-9]\+:\)\? $k: " <<<"$out" || fail "--check-config does not name $k: $out"
done
[[ -L /etc/systemd/system/multi-user.target.wants/eport-agent.service ]] || fail "unit not enabled"
if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify"
  systemd-analyze verify /lib/systemd/system/eport-agent.service || fail "systemd-analyze verify"
else
  echo "systemd-analyze not installed: unit not verified"
fi

step "upgrade over an edited config keeps the edit"
echo "# edited by the packaging test" >>/etc/eport-agent/agent.toml
"${APT[@]}" install --reinstall "$deb" >"$WORK/reinstall.log" 2>&1 || { cat "$WORK/reinstall.log"; fail "reinstall failed"; }
tail -n 1 /etc/eport-agent/agent.toml | grep -q 'edited by the packaging test' || fail "conffile edit lost on upgrade"
[[ "$(stat -c '%U:%G %a' /etc/eport-agent/agent.toml)" == "root:eport-agent 640" ]] || fail "agent.toml mode lost on upgrade"

step "remove keeps user, config and outbox"
echo data >/var/lib/eport-agent/outbox.db
"${APT[@]}" remove eport-agent >/dev/null 2>&1 || fail "remove failed"
[[ ! -e /usr/bin/eport-agent ]] || fail "/usr/bin/eport-agent left after remove"
[[ -f /var/lib/eport-agent/outbox.db && -f /etc/eport-agent/agent.toml ]] || fail "remove deleted the outbox or the config"
getent passwd eport-agent >/dev/null || fail "remove deleted the user"

step "purge removes everything"
"${APT[@]}" purge eport-agent >/dev/null 2>&1 || fail "purge failed"
[[ "$(state)" == not-installed ]] || fail "package state after purge: $(state)"
for p in /var/lib/eport-agent /etc/eport-agent /lib/systemd/system/eport-agent.service \
         /etc/systemd/system/multi-user.target.wants/eport-agent.service; do
  [[ ! -e $p && ! -L $p ]] || fail "$p left after purge"
done
getent passwd eport-agent >/dev/null && fail "user left after purge"
getent group eport-agent >/dev/null && fail "group left after purge"
dpkg-statoverride --list | grep -q eport-agent && fail "statoverride left after purge"
rm -f "$MARKER"
trap - EXIT
echo "packaging.deb: all checks passed"
