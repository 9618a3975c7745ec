"""rows: what the DCSA and EPCIS mappings (eport.dcsa, eport.epcis of the consumer kit,
consumers/python/eport) read from the database
eport-ingest writes: one Row per stored reading of eport.reading (custody events are
readings of the gateway's source `<gateway>:custody`, mirrored in eport.custody_event),
in a stable order (the reading's own time, then its key), with keyset paging. The
mappings are pure functions of a Row; only fetch() touches PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass

# Row and the export rules belong to the consumer kit (eport.records); re-exported here.
from eport.records import (EXPORTED_KINDS, UTC, VALID_FROM, VALID_TO, Row, exportable,  # noqa: F401
                           iso6346_valid, parse_rfc3339, rfc3339)


@dataclass
class Query:
    """What to fetch: every bound is optional. time_from/time_to are inclusive (DCSA's
    eventUpdatedDateTimeMin/Max are 'at or after' / 'at or before')."""
    container: str | None = None
    time_from: _dt.datetime | None = None
    time_to: _dt.datetime | None = None
    kinds: tuple = EXPORTED_KINDS
    after: tuple | None = None      # Row.key of the last row already handed out
    sites: tuple | None = None      # only these sites (docs/cloud.md section 15); None: every site


def fetch(conn, q: Query, limit: int) -> list[Row]:
    """Up to `limit` rows after q.after, in (time, site, gateway, source, seq) order, of
    containers only (a reading on no container concerns no equipment), times 2000..2100."""
    where = ["container IS NOT NULL", "time >= %s", "time < %s", "kind = ANY(%s)"]
    args: list = [max(q.time_from, VALID_FROM) if q.time_from else VALID_FROM,
                  min(q.time_to + _dt.timedelta(microseconds=1), VALID_TO) if q.time_to else VALID_TO,
                  list(q.kinds)]
    if q.container is not None:
        where.append("container = %s")
        args.append(q.container)
    if q.sites is not None:
        where.append("site = ANY(%s)")
        args.append(list(q.sites))
    if q.after is not None:
        where.append("(time, site, gateway, source, seq) > (%s, %s, %s, %s, %s)")
        args.extend(q.after)
    sql = ("SELECT site, gateway, source, seq, time, kind, container, time_source, payload FROM eport.reading "
           f"WHERE {' AND '.join(where)} ORDER BY time, site, gateway, source, seq LIMIT %s")
    args.append(limit)
    return [Row(site=r[0], gateway=r[1], source=r[2], seq=r[3], time=r[4], kind=r[5], container=r[6],
                time_source=r[7], payload=r[8]) for r in conn.execute(sql, args).fetchall()]


def pages(conn, q: Query, mapper, limit: int, batch: int = 500):
    """Maps rows to documents until `limit` of them: returns (documents, next_key). next_key
    (a Row.key to pass as q.after) is given only when at least one more document exists,
    so the last page has none. Rows the mapper refuses (None) are skipped."""
    out, last = [], None
    after = q.after
    while True:
        rows = fetch(conn, dataclasses.replace(q, after=after), batch)
        for row in rows:
            doc = mapper(row)
            if doc is None:
                after = row.key
                continue
            if len(out) == limit:
                return out, last
            out.append(doc)
            last = after = row.key
        if len(rows) < batch:
            return out, None
