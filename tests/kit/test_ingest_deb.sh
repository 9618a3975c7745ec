#!/bin/bash
# test_ingest_deb.sh BUILD_DIR WORK_DIR SOURCE_DIR [CPACK]: ctest packaging.kit_ingest, the
# eport-ingest .deb (cmake/EportIngest.cmake, packaging/kit/ingest/) as an operator gets it:
#   1. `cpack --config CPackKitConfig.cmake` (what `ninja kit-packages` runs): control fields,
#      conffiles, maintainer scripts, files (schema.sql where db.py finds it, no test helpers)
#   2. unpacked with python3-eport into a root: the installed `eport-ingest --help` and
#      `run --help`, isolated from the source tree (only the root's dist-packages), and, when
#      3 cannot install, `init-db` from there against a throw-away PostgreSQL
#      (eport_ingest/pgtest.py; skipped without one)
#   3. as root where systemd is not the running init (CI, containers), and neither package
#      is installed already: installed for real with apt-get, the user, modes and conffile
#      checked, `init-db` run as user eport-ingest through /usr/bin/eport-ingest, the units
#      through `systemd-analyze verify`, then purged (nothing left). Else the units of the
#      unpacked root are verified (their ExecStart pointed there). No systemd-analyze: skipped.
# EPORT_PACKAGING_INSTALL=0 never installs. Exit 0 pass, 1 fail, 77 skip (dpkg-deb missing).
set -euo pipefail
build=$1 work=$2 src=$3 cpack=${4:-cpack}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $*"; }
command -v dpkg-deb >/dev/null || skip "needs dpkg-deb"
rm -rf "$work"; mkdir -p "$work"

step "1. cpack --config CPackKitConfig.cmake"
(cd "$work" && "$cpack" --config "$build/CPackKitConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/eport-ingest_*_all.deb) || fail "no eport-ingest_*_all.deb"
py=$(ls "$work"/out/python3-eport_*_all.deb) || fail "no python3-eport_*_all.deb"
version=$(dpkg-deb -f "$deb" Version)
[[ $(dpkg-deb -f "$deb" Package) == eport-ingest && $(dpkg-deb -f "$deb" Architecture) == all ]] ||
  fail "Package/Architecture: $(dpkg-deb -f "$deb" Package Architecture)"
depends=$(dpkg-deb -f "$deb" Depends)
for d in "python3-eport (= $version)" python3-psycopg python3-cbor2 adduser; do
  [[ ", $depends," == *", $d"[\ ,]* ]] || fail "Depends lacks $d: $depends"
done
echo "Depends: $depends"
dpkg-deb -e "$deb" "$work/control"
[[ $(cat "$work/control/conffiles") == /etc/eport-ingest/ingest.env ]] || fail "conffiles: $(cat "$work/control/conffiles")"
for s in postinst prerm postrm; do
  [[ -x $work/control/$s ]] || fail "no executable $s"
  sh -n "$work/control/$s" || fail "$s: syntax"
done
dpkg-deb -c "$deb" >"$work/contents"
awk '{print $6}' "$work/contents" >"$work/list"
for f in ./usr/lib/eport-ingest/eport-ingest ./usr/lib/eport-ingest/eport_ingest/worker.py \
         ./usr/lib/eport-ingest/eport_ingest/schema.sql ./usr/lib/eport-ingest/eport_ingest/web/map.js \
         ./usr/bin/eport-ingest ./lib/systemd/system/eport-ingest@.service ./lib/systemd/system/eport-ingest-serve.service \
         ./etc/eport-ingest/ingest.env ./etc/eport-ingest/clients/ ./usr/share/man/man8/eport-ingest.8.gz \
         ./usr/share/doc/eport-ingest/copyright ./usr/share/eport-ingest/zones/shanghai-terminals.geojson; do
  grep -qxF "$f" "$work/list" || fail "the package lacks $f"
done
grep -E 'pgtest|natstest|__pycache__|\.pyc$|/tests?/' "$work/list" && fail "test helpers or caches in the package"
grep -q ' ./usr/bin/eport-ingest -> ../lib/eport-ingest/eport-ingest$' "$work/contents" ||
  fail "/usr/bin/eport-ingest is not the symlink to /usr/lib/eport-ingest/eport-ingest"
echo "$(basename "$deb"): $(wc -l <"$work/list") entries, conffile, maintainer scripts"

step "2. unpacked with python3-eport: the installed program"
root=$work/root
dpkg-deb -x "$py" "$root"
dpkg-deb -x "$deb" "$root"
# Only the root's dist-packages on the path (the program finds its own modules beside it).
run_installed() { (cd / && PYTHONPATH=$root/usr/lib/python3/dist-packages /usr/bin/python3 "$root/usr/bin/eport-ingest" "$@"); }
export -f run_installed
export root
/usr/bin/python3 -I -c "import psycopg" 2>/dev/null || skip "needs python3-psycopg (the package's Depends)"
run_installed --help >"$work/help" || fail "eport-ingest --help"
grep -q 'init-db' "$work/help" || fail "--help lists no init-db"
run_installed run --help >/dev/null || fail "eport-ingest run --help"
# The modules come from the root, not from the source tree.
(cd / && /usr/bin/python3 -I -c "
import sys; sys.path[:0] = ['$root/usr/lib/eport-ingest', '$root/usr/lib/python3/dist-packages']
import eport_ingest, eport, eport.decode, eport_ingest.db as db, eport_ingest.sites as sites
assert sites.site_problem('nlrtm') == '' and 'at byte 3' in sites.site_problem('nl rtm'), 'the site id rule'
for m in (eport_ingest, eport, db, sites, sys.modules['eport_broker.inventory']):
    assert m.__file__.startswith('$root/'), m.__file__
assert db.SCHEMA_SQL.is_file(), db.SCHEMA_SQL
assert eport.decode.bundled(), 'the decoder generated at build time is not installed'
print('modules from the unpacked root; schema', db.SCHEMA_SQL)") || fail "the installed modules"
echo "eport-ingest --help and run --help from the unpacked root"

# PostgreSQL for init-db: pgtest from the source tree (the test's harness, not the package).
pg_py() {
  PYTHONPATH=$src/cloud/ingest /usr/bin/python3 - "$@" <<'EOF'
import subprocess, sys
from eport_ingest import pgtest
if pgtest.missing():
    print(f"init-db not run: needs {pgtest.missing()}")
    sys.exit(0)
how = sys.argv[1]
with pgtest.TempPostgres() as pg:
    if how == "unpacked":
        cmd = ["bash", "-c", 'run_installed "$@"', "run_installed"]
    else:                       # installed: the real /usr/bin/eport-ingest as the service user
        cmd = ["runuser", "-u", "eport-ingest", "--", "/usr/bin/eport-ingest"]
    for args in (["init-db", "--dsn", pg.dsn], ["completeness", "--dsn", pg.dsn]):
        r = subprocess.run(cmd + args, capture_output=True, text=True, cwd="/")
        if r.returncode != 0:
            print(f"FAIL: {' '.join(args[:1])} ({how}): {r.stderr[-2000:]}")
            sys.exit(1)
    import psycopg
    with psycopg.connect(pg.dsn) as c:
        n = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'eport'").fetchone()[0]
        ext = c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()[0]
    if n < 8 or ext != 1:
        print(f"FAIL: init-db ({how}) made {n} tables in schema eport, postgis {ext}")
        sys.exit(1)
    print(f"init-db ({how}) made {n} tables in schema eport with PostGIS; completeness ran")
EOF
}
# Installed for real below, init-db runs there (one PostgreSQL start less); else here.
state() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || echo not-installed; }
MARKER=/var/tmp/eport-ingest-packaging-test.installed
why=""
if [[ "${EPORT_PACKAGING_INSTALL:-}" == 0 ]]; then why="EPORT_PACKAGING_INSTALL=0"
elif [[ $(id -u) -ne 0 ]]; then why="not root"
elif [[ -d /run/systemd/system ]]; then why="systemd is running here"
elif [[ ! -f $MARKER ]] && { [[ $(state eport-ingest) == installed || $(state python3-eport) == installed ]] ||
                             getent passwd eport-ingest >/dev/null; }; then
  why="eport-ingest or python3-eport is already installed on this machine"
fi
if [[ -n $why ]]; then pg_py unpacked || fail "init-db from the unpacked root"; fi

verify_units() {   # $1: directory of the units, $2...: systemd-analyze options
  local dir=$1; shift
  command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: units not verified"; return 0; }
  cp "$dir/eport-ingest@.service" "$work/eport-ingest@1.service"
  systemd-analyze verify "$@" "$work/eport-ingest@1.service" "$dir/eport-ingest-serve.service" >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; fail "systemd-analyze verify"; }
  [[ ! -s $work/verify.log ]] || { cat "$work/verify.log"; fail "systemd-analyze verify warned"; }
  echo "systemd-analyze verify: eport-ingest@1.service and eport-ingest-serve.service accepted, no warning"
}

step "3. installed for real"
if [[ -n $why ]]; then
  echo "install skipped: $why; the unpacked root's units instead"
  mkdir -p "$work/units"
  for u in eport-ingest@.service eport-ingest-serve.service; do
    sed "s|/usr/bin/eport-ingest|$root/usr/bin/eport-ingest|" "$root/lib/systemd/system/$u" >"$work/units/$u"
  done
  verify_units "$work/units" --man=no
  echo PASSED; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -qq -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold)
cleanup() { "${APT[@]}" purge eport-ingest python3-eport >/dev/null 2>&1 || true; rm -f "$MARKER"; }
[[ -f $MARKER ]] && cleanup
touch "$MARKER"
trap cleanup EXIT
"${APT[@]}" install --no-install-recommends "$py" "$deb" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "apt-get install"; }
[[ $(state eport-ingest) == installed ]] || fail "state $(state eport-ingest)"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd eport-ingest) || fail "user eport-ingest not created"
((uid < 1000)) || fail "eport-ingest is not a system user (uid $uid)"
[[ $shell == /usr/sbin/nologin ]] || fail "user shell $shell"
[[ $(stat -c '%U:%G %a' /etc/eport-ingest/ingest.env) == "root:eport-ingest 640" ]] ||
  fail "ingest.env is $(stat -c '%U:%G %a' /etc/eport-ingest/ingest.env)"
[[ $(stat -c '%U:%G %a' /etc/eport-ingest/clients) == "root:eport-ingest 750" ]] ||
  fail "clients/ is $(stat -c '%U:%G %a' /etc/eport-ingest/clients)"
dpkg-query -W -f='${Conffiles}\n' eport-ingest | grep -q '^ /etc/eport-ingest/ingest.env ' || fail "ingest.env is not a conffile"
runuser -u eport-ingest -- test -r /etc/eport-ingest/ingest.env || fail "the service user cannot read ingest.env"
runuser -u eport-ingest -- /usr/bin/eport-ingest --help >/dev/null || fail "/usr/bin/eport-ingest --help as eport-ingest"
echo "installed: system user eport-ingest (uid $uid), ingest.env root:eport-ingest 0640 (conffile), clients/ 0750"
pg_py installed || fail "init-db through /usr/bin/eport-ingest"
verify_units /lib/systemd/system
"${APT[@]}" purge eport-ingest python3-eport >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
[[ $(state eport-ingest) == not-installed ]] || fail "state after purge: $(state eport-ingest)"
for p in /usr/lib/eport-ingest /usr/bin/eport-ingest /etc/eport-ingest /lib/systemd/system/eport-ingest@.service; do
  [[ ! -e $p && ! -L $p ]] || fail "$p left after purge"
done
getent passwd eport-ingest >/dev/null && fail "user left after purge"
getent group eport-ingest >/dev/null && fail "group left after purge"
dpkg-statoverride --list | grep -q eport-ingest && fail "statoverride left after purge"
rm -f "$MARKER"
echo "purged: no file, user, group or statoverride left"
echo PASSED
