#!/usr/bin/python3
"""[ingest] The database side of eport-ingest against a real PostgreSQL 15 + PostGIS
started in a temporary directory (eport_ingest.pgtest; as root the server runs as
`nobody`): idempotency by (site, gateway, source, seq), partitions by the reading's own
time, declared gaps and completeness (the worked example of docs/consuming.md section 11),
duplicates counted, two workers writing the same batch at once, custody events, health
liveness and overdue gateways. Skips (77) when PostgreSQL, PostGIS or psycopg is absent."""
import os
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from eport_ingest import pgtest  # noqa: E402

if __name__ == "__main__" and pgtest.missing():
    print(f"SKIP: needs {pgtest.missing()}")
    sys.exit(77)

from eport_ingest import db  # noqa: E402

PG = None
T0 = 1795000000000


def msg(readings, site="cnsha", gw="gw-1", prio="telemetry", eseq=1):
    return db.DataMessage(site, gw, prio, eseq, readings)


def sensor(seq, source="TU-0042", t=None):
    return {"source": source, "container": "MSKU1234565", "seq": seq, "time_utc_ms": T0 + seq * 1000 if t is None else t,
            "kind": "sensor", "temperature_centi_c": -1850}


# docs/consuming.md section 11, the worked example (seq 99 on).
EXAMPLE = [
    {"source": "TU-0042", "seq": 99, "time_utc_ms": 1795000000000, "kind": "door", "state": "closed"},
    {"source": "TU-0042", "seq": 100, "time_utc_ms": 1795000060000, "kind": "sensor", "battery_mv": 3650},
    {"source": "TU-0042", "seq": 119, "time_utc_ms": 1795001200000, "kind": "gap", "first_seq": 101, "reason": "flash_full"},
    {"source": "TU-0042", "seq": 120, "time_utc_ms": 1795001260000, "kind": "sensor", "battery_mv": 3640},
    {"source": "TU-0042", "seq": 123, "time_utc_ms": 1795001441000, "time_source": "gateway_receive", "kind": "door",
     "state": "open"},
    {"source": "TU-0042", "seq": 124, "time_utc_ms": 1795001441000, "time_source": "gateway_receive", "kind": "gap",
     "first_seq": 124, "reason": "rejected_malformed"},
    {"source": "TU-0042", "seq": 125, "time_utc_ms": 1795001500000, "kind": "sensor", "battery_mv": 3640},
]


class IngestDb(unittest.TestCase):
    def setUp(self):
        self.conn = db.connect(PG.dsn)
        self.conn.execute("DROP SCHEMA IF EXISTS eport CASCADE")
        db.init_schema(self.conn)
        self.parts = db.Partitions("month")

    def tearDown(self):
        self.conn.close()

    def q(self, sql, *args):
        return self.conn.execute(sql, args).fetchall()

    def test_a_redelivered_batch_is_stored_once_and_counted_as_duplicates(self):
        batch = [msg([sensor(1), sensor(2), sensor(3)])]
        r1 = db.store_batch(self.conn, self.parts, batch)
        r2 = db.store_batch(self.conn, self.parts, batch + [msg([sensor(2), sensor(4)], eseq=2)])
        self.assertEqual((r1.stored, r1.duplicates), (3, 0))
        self.assertEqual((r2.stored, r2.duplicates), (1, 4))
        self.assertEqual(self.q("SELECT count(*) FROM eport.reading")[0][0], 4)
        self.assertEqual(self.q("SELECT readings, duplicates, max_seq FROM eport.source_stats")[0], (4, 4, 4))

    def test_a_duplicate_claiming_another_time_is_still_a_duplicate(self):
        db.store_batch(self.conn, self.parts, [msg([sensor(7)])])
        r = db.store_batch(self.conn, self.parts, [msg([sensor(7, t=T0 + 86400000 * 60)])])
        self.assertEqual((r.stored, r.duplicates), (0, 1))
        self.assertEqual(self.q("SELECT count(*) FROM eport.reading")[0][0], 1)

    def test_the_same_seq_of_two_gateways_or_sources_is_two_readings(self):
        db.store_batch(self.conn, self.parts, [msg([sensor(1), sensor(1, "TU-0043")]), msg([sensor(1)], gw="gw-2")])
        self.assertEqual(self.q("SELECT count(*) FROM eport.reading")[0][0], 3)

    def test_readings_land_in_the_partition_of_their_own_time(self):
        old = 1700000000000   # 2023-11
        db.store_batch(self.conn, self.parts, [msg([sensor(1, t=old), sensor(2), sensor(3, t=0)])])
        rows = dict(self.q("SELECT seq, tableoid::regclass::text FROM eport.reading"))
        self.assertEqual(rows, {1: "reading_202311", 2: "reading_202611", 3: "reading_before_2000"})

    def test_day_partitions(self):
        parts = db.Partitions("day")
        db.store_batch(self.conn, parts, [msg([sensor(1)])])
        self.assertEqual(self.q("SELECT tableoid::regclass::text FROM eport.reading")[0][0], "reading_20261118")

    def test_completeness_of_the_worked_example(self):
        db.store_batch(self.conn, self.parts, [msg(EXAMPLE[:4]), msg(EXAMPLE[4:], prio="event")])
        self.conn.execute("UPDATE eport.source_stats SET first_expected_seq = 99")
        got = self.q("SELECT * FROM eport.source_ranges('cnsha', 'gw-1', 'TU-0042')")
        self.assertEqual(got, [("declared", 101, 119, "flash_full"), ("declared", 124, 124, "rejected_malformed"),
                               ("received", 99, 100, None), ("received", 120, 120, None), ("received", 123, 123, None),
                               ("received", 125, 125, None), ("undeclared", 121, 122, None)])
        v = self.q("SELECT received, declared_gaps, undeclared_gaps, undeclared_gap_seqs FROM eport.source_completeness")
        self.assertEqual(v, [("99-100,120-120,123-123,125-125", "101-119:flash_full,124-124:rejected_malformed",
                              "121-122", 2)])
        self.assertEqual(self.q("SELECT count(*) FROM eport.declared_gap")[0][0], 2)

    def test_completeness_from_seq_1_and_of_a_complete_source(self):
        db.store_batch(self.conn, self.parts, [msg([sensor(s) for s in (3, 1, 2, 5)])])
        self.assertEqual(self.q("SELECT state, first_seq, last_seq FROM eport.source_ranges('cnsha', 'gw-1', 'TU-0042')"),
                         [("received", 1, 3), ("received", 5, 5), ("undeclared", 4, 4)])
        db.store_batch(self.conn, self.parts, [msg([sensor(4)])])
        self.assertEqual(self.q("SELECT undeclared_gap_seqs, received FROM eport.source_completeness"), [(0, "1-5")])

    def test_completeness_of_a_source_that_starts_late_and_of_none(self):
        db.store_batch(self.conn, self.parts, [msg([sensor(10)])])
        self.assertEqual(self.q("SELECT undeclared_gaps FROM eport.source_completeness"), [("1-9",)])
        self.assertEqual(self.q("SELECT * FROM eport.source_ranges('cnsha', 'gw-1', 'nobody')"), [])

    def test_two_workers_writing_the_same_readings_at_once_store_each_once(self):
        readings = [sensor(s, f"TU-{s % 7}") for s in range(1, 2001)]
        results, errors = [], []

        def worker(rs):
            c = db.connect(PG.dsn)
            try:
                for i in range(0, len(rs), 200):
                    results.append(db.store_batch(c, db.Partitions(), [msg(rs[i:i + 200])]))
            except Exception as e:   # noqa: BLE001
                errors.append(e)
            finally:
                c.close()
        ts = [threading.Thread(target=worker, args=(readings,)),
              threading.Thread(target=worker, args=(list(reversed(readings)),))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(sum(r.stored for r in results), 2000)
        self.assertEqual(sum(r.duplicates for r in results), 2000)
        self.assertEqual(self.q("SELECT count(*), count(DISTINCT (source, seq)) FROM eport.reading")[0], (2000, 2000))
        self.assertEqual(self.q("SELECT sum(readings), sum(duplicates) FROM eport.source_stats")[0], (2000, 2000))

    def test_custody_events_positions_and_rejections(self):
        ev = {"source": "gw-1:custody", "container": "MSKU0000006", "seq": 1, "time_utc_ms": T0, "kind": "event",
              "event": "geofence_entry", "dcsa": "GEOFENCE_ENTRY", "subject": "tcu-0003", "first_seq": 31,
              "caused_by_seq": 35, "zone": "yangshan-4", "lat_e7": 306269946, "lon_e7": 1220209931}
        pos = {"source": "tcu-0003", "seq": 1, "time_utc_ms": T0, "kind": "position", "lat_e7": 306269946,
               "lon_e7": 1220209931, "fix": 3, "satellites": 9}
        bad = dict(pos, seq=2, lat_e7=1900000000)
        r = db.store_batch(self.conn, self.parts, [msg([ev], prio="event"), msg([pos, bad]),
                                                   db.Rejected("$MQTT.msgs.x", "not an EPT1 envelope", b"junk")])
        self.assertEqual((r.stored, r.custody_events, r.rejected), (3, 1, 1))
        self.assertEqual(self.q("SELECT event, dcsa, zone, round(ST_Y(position::geometry)::numeric, 4) "
                                "FROM eport.custody_event"), [("geofence_entry", "GEOFENCE_ENTRY", "yangshan-4",
                                                               __import__("decimal").Decimal("30.6270"))])
        self.assertEqual(self.q("SELECT seq, position IS NULL FROM eport.reading WHERE kind = 'position' ORDER BY seq"),
                         [(1, False), (2, True)])
        self.assertEqual(self.q("SELECT error FROM eport.rejected_message"), [("not an EPT1 envelope",)])

    def test_health_marks_online_and_an_overdue_gateway_offline(self):
        h = {"gateway": "gw-1", "time_utc_ms": T0, "uptime_s": 1}
        db.store_batch(self.conn, self.parts, [db.HealthMessage("cnsha", "gw-1", h)], health_interval_s=2)
        self.assertEqual(self.q("SELECT state FROM eport.gateway_liveness"), [("online",)])
        self.assertEqual(self.q("SELECT eport.mark_overdue(3, now() + interval '5 s')")[0][0], 0)
        self.assertEqual(self.q("SELECT eport.mark_overdue(3, now() + interval '7 s')")[0][0], 1)
        self.assertEqual(self.q("SELECT eport.mark_overdue(3, now() + interval '8 s')")[0][0], 0)
        self.assertEqual(self.q("SELECT state FROM eport.gateway_liveness"), [("offline",)])
        # a redelivered older heartbeat does not revive it; a newer one does
        db.store_batch(self.conn, self.parts, [db.HealthMessage("cnsha", "gw-1", dict(h, time_utc_ms=T0 - 1))])
        self.assertEqual(self.q("SELECT state FROM eport.gateway_liveness"), [("offline",)])
        db.store_batch(self.conn, self.parts, [db.HealthMessage("cnsha", "gw-1", dict(h, time_utc_ms=T0 + 2000)),
                                               db.StatusMessage("cnsha", "gw-1", "online")])
        self.assertEqual(self.q("SELECT state, status_hint FROM eport.gateway_liveness"), [("online", "online")])
        self.assertEqual(self.q("SELECT state, reason FROM eport.liveness_event ORDER BY id"),
                         [("online", "health"), ("offline", "health overdue"), ("online", "health")])

    def test_a_payload_the_database_refuses_is_rejected_alone_and_the_rest_stored(self):
        from eport_ingest import worker
        w = worker.Worker(worker.Options(servers=["127.0.0.1:9"], tls=None, dsn=PG.dsn), None, None)
        w.db = self.conn
        bad = dict(sensor(2), source="TU-\x00")              # PostgreSQL text cannot hold NUL
        worse = dict(sensor(3), source="TU-\udcff")          # not UTF-8 (surrogateescape)
        groups = [("s.1", b"one", [msg([sensor(1)])]), ("s.2", b"two", [msg([bad])]),
                  ("s.3", b"three", [msg([worse])]), ("s.4", b"four", [msg([sensor(4)])])]
        r = w.store_groups(groups)
        self.assertEqual((r.stored, r.rejected), (2, 2))
        self.assertEqual(self.q("SELECT seq FROM eport.reading ORDER BY seq"), [(1,), (4,)])
        self.assertEqual([row[0] for row in self.q("SELECT subject FROM eport.rejected_message ORDER BY id")],
                         ["s.2", "s.3"])
        self.assertEqual(self.q("SELECT payload FROM eport.rejected_message ORDER BY id")[0][0], b"two")

    def test_the_command_line_init_db_and_completeness(self):
        import subprocess
        exe = os.path.join(HERE, "..", "eport-ingest")
        self.conn.execute("DROP SCHEMA eport CASCADE")
        p = subprocess.run([sys.executable, exe, "init-db", "--dsn", PG.dsn], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        db.store_batch(self.conn, self.parts, [msg([sensor(1), sensor(3)]), msg([sensor(1, "TU-9")])])
        p = subprocess.run([sys.executable, exe, "completeness", "--dsn", PG.dsn, "--undeclared-only"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [line.split("\t") for line in p.stdout.splitlines()]
        self.assertEqual([(f[2], f[3], f[5], f[8]) for f in lines], [("TU-0042", "2", "1", "2-2")])
        p = subprocess.run([sys.executable, exe, "run", "--dsn", PG.dsn, "--nats", "x", "--batch", "0"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--batch: '0' must be > 0", p.stderr)

    def test_an_empty_batch_changes_nothing(self):
        r = db.store_batch(self.conn, self.parts, [])
        self.assertEqual((r.stored, r.duplicates), (0, 0))
        self.assertEqual(self.q("SELECT count(*) FROM eport.source_stats")[0][0], 0)

    def test_init_schema_twice_and_from_two_workers(self):
        cs = [db.connect(PG.dsn) for _ in range(2)]
        ts = [threading.Thread(target=db.init_schema, args=(c,)) for c in cs]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for c in cs:
            c.close()
        db.store_batch(self.conn, self.parts, [msg([sensor(1)])])
        self.assertEqual(self.q("SELECT count(*) FROM eport.reading")[0][0], 1)


if __name__ == "__main__":
    with pgtest.TempPostgres() as pg:
        PG = pg
        prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
