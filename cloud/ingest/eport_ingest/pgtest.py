"""pgtest: a throw-away PostgreSQL 15 for the tests and the benchmark, in a temporary
directory, reachable only through its Unix socket there. PostgreSQL refuses to run as
root, and CI runs as root: then the server runs as the user `nobody` (runuser), owning
only its data directory; the database superuser is `eport` with trust authentication
on that socket (nothing else can reach it: no TCP listener)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("EPORT_PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")


def missing() -> str:
    """'' if a test PostgreSQL with PostGIS can be started here, else what is missing."""
    for exe in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / exe).exists():
            return f"{PG_BIN / exe} (apt-get install postgresql-15)"
    if not POSTGIS_CONTROL.exists():
        return f"{POSTGIS_CONTROL} (apt-get install postgresql-15-postgis-3)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the Python module psycopg (apt-get install python3-psycopg; run with /usr/bin/python3)"
    return ""


class TempPostgres:
    def __init__(self, base: str | None = None, fsync: bool = True):
        self.dir = Path(tempfile.mkdtemp(prefix="eport-pg-", dir=base))
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log = self.dir / "postgres.log"
        self.fsync = fsync
        self.user = None
        if os.geteuid() == 0:
            self.user = "nobody"
            os.chmod(self.dir, 0o755)
            for p in Path(self.dir).parents:   # the server must be able to reach its directory
                if p == Path("/"):
                    break
                if not os.stat(p).st_mode & 0o001:
                    raise RuntimeError(f"{p} is not searchable by others: pass another base directory")

    def _run(self, args, **kw):
        if self.user:
            args = ["runuser", "-u", self.user, "--", *args]
        return subprocess.run(args, check=True, capture_output=True, text=True, **kw)

    def start(self) -> "TempPostgres":
        self.sock.mkdir()
        self.log.touch()
        if self.user:
            pw = pwd.getpwnam(self.user)
            for p in (self.dir, self.sock, self.log):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "eport", "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8"])
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.sock}' -c max_connections=50 "
                f"-c fsync={'on' if self.fsync else 'off'} -c shared_buffers=64MB")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                   "-o", opts, "start"])
        return self

    @property
    def dsn(self) -> str:
        return f"host={self.sock} dbname=postgres user=eport"

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
