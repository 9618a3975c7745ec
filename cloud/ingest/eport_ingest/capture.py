"""The evidence capture of stored readings (docs/evidence.md section 15, docs/cloud.md): the
records of some sources and their checkpoints as JSON lines, exactly as eport-tail printed
them when they arrived, so that eport-verify and examples/python/eport_verify.py verify a
record from the database as they verify a live capture. A chain is verified whole: a
source's records are exported all (no time window, which would cut its checkpoint ranges),
and a container selects its sources (the units that reported on it, and the custody sources
of the gateways that derived events about it), never a subset of their records."""
import json
import os
import tempfile


def sources_of_container(conn, container: str) -> list:
    """The sources whose chains hold the container's record."""
    cur = conn.execute(
        "SELECT DISTINCT source FROM eport.reading WHERE container = %s AND kind <> 'evidence' "
        "UNION SELECT DISTINCT source FROM eport.custody_event WHERE container = %s ORDER BY 1",
        (container, container))
    return [row[0] for row in cur.fetchall()]


def write(conn, out_path: str, sources=(), container=None) -> dict:
    """Writes every record of the sources (and of the container's sources) and every checkpoint
    of them, in (source, seq) order, one JSON object per line; a record stored by two gateways
    (a unit that moved) once. Written to a temporary file and renamed. Returns counts."""
    wanted = set(sources)
    if container:
        wanted |= set(sources_of_container(conn, container))
    names = sorted(wanted) + sorted(s + ":ev" for s in wanted)
    counts = {"sources": len(wanted), "readings": 0, "checkpoints": 0}
    d = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix=".capture-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            cur = conn.execute("SELECT DISTINCT ON (source, seq) source, seq, kind, payload FROM eport.reading "
                               "WHERE source = ANY(%s) ORDER BY source, seq, gateway", (names,))
            for source, seq, kind, payload in cur:
                f.write(json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n")
                counts["checkpoints" if kind == "evidence" else "readings"] += 1
        os.replace(tmp, out_path)
    except BaseException:
        os.unlink(tmp)
        raise
    return counts
