#!/usr/bin/python3
"""bench_ingest: readings/s that eport-ingest's database path (db.store_batch: dedup key,
partitioned COPY, gaps, per-source stats, one transaction per batch) puts into PostgreSQL
with 1, 2 and 4 worker processes, with and without decoding (the worker's own decode of
zstd FlatBuffers envelopes, built here with tests/integration/envelopes.py), next to a plain
COPY of the same rows into an unindexed, unpartitioned table with the same columns, in
batches of the same size, in the same run and the same throw-away PostgreSQL
(eport_ingest.pgtest, fsync on). With --nats, also the full path: the same envelopes
published into a real nats-server with JetStream (eport_ingest.natstest: one node, a stream
of our own over the $MQTT_msgs subjects) before the workers start, then pulled, decoded,
stored and acknowledged by the real worker loop (worker.Worker.run) in 1 and 2 processes;
the clock runs from the moment every worker is connected until the consumer has nothing
pending or unacknowledged. Prints figures (docs/cloud.md section 9); asserts only that
every reading was stored once.

    cloud/ingest/bench/bench_ingest.py [--readings 200000] [--batch-readings 6400] [--workers 1,2,4]
        [--nats] [--nats-workers 1,2]
"""
import argparse
import io
import json
import multiprocessing as mp
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from eport_ingest import db, natstest, pgtest, worker  # noqa: E402
from eport_ingest.jetstream import ConsumerConfig  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
EC = CODEC = None


class _Decoder:
    """What Worker.decode needs of a worker."""
    def __init__(self, ec, codec):
        self.ec, self.codec = ec, codec


def encode(batches):
    """The same batches as (subject, zstd payload) lists, as the worker pulls them."""
    import zstandard
    sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
    import envelopes
    b = envelopes.Builder()
    z = zstandard.ZstdCompressor(level=3)
    return [[(f"$MQTT.msgs.eport.v1.{m.site}.{m.gateway}.data.{m.priority}",
              z.compress(b.envelope(m.readings, m.site, m.gateway, m.envelope_seq, priority=m.priority)))
             for m in batch] for batch in batches]

T0 = 1795000000000
ENVELOPE_READINGS = 100          # readings per envelope (message)


def make_readings(n, sources):
    """n readings over `sources` units, 1 position in 4, the rest sensor samples, and one
    declared gap per source; seqs 1.. per source, 30 s apart in reading time."""
    out = {}
    for i in range(n):
        s = f"tcu-{i % sources:05d}"
        seq = i // sources + 1
        t = T0 + seq * 30000
        if seq % 4 == 0:
            r = {"source": s, "container": "MSKU1234565", "seq": seq, "time_utc_ms": t, "kind": "position",
                 "lat_e7": 306269946 + seq, "lon_e7": 1220209931 - seq, "fix": 3, "satellites": 9}
        elif seq == 50:
            r = {"source": s, "container": "MSKU1234565", "seq": seq, "time_utc_ms": t, "kind": "gap",
                 "first_seq": 45, "reason": "flash_full"}
        else:
            r = {"source": s, "container": "MSKU1234565", "seq": seq, "time_utc_ms": t, "kind": "sensor",
                 "temperature_centi_c": -1850 + seq % 7, "battery_mv": 3650}
        out.setdefault(s, []).append(r)
    return out


def batches_for(by_source, names, batch_readings, envelope_readings=ENVELOPE_READINGS):
    """Batches of envelopes (DataMessages of envelope_readings each) for the given sources."""
    by_gw = {}
    for s in names:
        by_gw.setdefault(f"gw-{int(s[4:]) % 50:02d}", []).extend(by_source[s])
    per_gw = []
    for gw, rs in sorted(by_gw.items()):
        rs.sort(key=lambda r: (r["seq"], r["source"]))     # as units interleave on a gateway
        per_gw.append([db.DataMessage("cnsha", gw, "telemetry", i, rs[i:i + envelope_readings])
                       for i in range(0, len(rs), envelope_readings)])
    envs = [e for group in __import__("itertools").zip_longest(*per_gw) for e in group if e is not None]
    per = max(1, batch_readings // envelope_readings)
    return [envs[i:i + per] for i in range(0, len(envs), per)]




def run_worker(dsn, batches, q):
    conn = db.connect(dsn)
    parts = db.Partitions("month")
    dec = _Decoder(EC, CODEC)
    t = time.perf_counter()
    stored = 0
    for b in batches:
        if b and isinstance(b[0], tuple):     # encoded: decode as the worker does
            msgs = []
            for subject, payload in b:
                m = worker.Worker.decode(dec, subject, payload)
                msgs += m if isinstance(m, list) else [m]
            b = msgs
        stored += db.store_batch(conn, parts, b).stored
    q.put((stored, time.perf_counter() - t))
    conn.close()


def run_nats_worker(url, dsn, cfg, batch, barrier, q, i):
    """A real worker (Worker.run: pull, decode, store, ack) until the parent's SIGTERM."""
    sys.stderr = open(os.devnull, "w")      # its JSON log lines
    opts = worker.Options(servers=[url], tls=None, dsn=dsn, consumer=cfg, name=f"bench-{i}", batch=batch,
                          expires_s=0.5, overdue_check_s=1e9, stats_every_s=1e9)
    w = worker.Worker(opts, CODEC, EC)
    worker.install_signals(w)
    w.run(ready=barrier.wait)
    q.put((w.counts["readings_stored"], w.counts["messages"]))


def nats_path(pg, conn, msgs, readings, batch, counts, base, firsts):
    """Figures of the full path for each worker count; msgs: [(subject, payload)]."""
    stream = "EPORT_BENCH"
    cfg = ConsumerConfig(stream=stream, durable="eport-ingest", filter_subject=natstest.SUBJECTS)
    with natstest.TempNats() as nats:
        cli = natstest.Client(nats.url, stream)
        one = None
        for w in counts:
            conn.execute("DROP SCHEMA eport CASCADE")
            db.init_schema(conn)
            cli.create_stream()
            cli.ensure_consumer(cfg)
            t = time.perf_counter()
            cli.publish(msgs)
            pub = time.perf_counter() - t
            q, barrier = mp.Queue(), mp.Barrier(w + 1)
            procs = [mp.Process(target=run_nats_worker, args=(nats.url, pg.dsn, cfg, batch, barrier, q, i))
                     for i in range(w)]
            for pr in procs:
                pr.start()
            barrier.wait(timeout=60)
            t = time.perf_counter()
            while True:
                info = cli.consumer_info(cfg.durable)
                if not info["num_pending"] and not info["num_ack_pending"]:
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - t
            for pr in procs:
                os.kill(pr.pid, signal.SIGTERM)
            res = [q.get(timeout=60) for _ in procs]
            for pr in procs:
                pr.join()
            stored = sum(r[0] for r in res)
            assert stored == readings, f"{stored} of {readings} readings stored"
            total = stored / wall
            one = one or total
            print(f"  nats+decode+db, {w} worker(s): {stored} readings ({len(msgs)} messages, published in "
                  f"{pub:.2f} s = {len(msgs) / pub:,.0f} msgs/s) pulled, stored and acked in {wall:.2f} s = "
                  f"{total:,.0f} readings/s ({total / base:.2f} x plain COPY, {total / firsts['db']:.2f} x db, "
                  f"{total / firsts['decode+db']:.2f} x decode+db of 1 worker, {total / one:.2f} x 1 worker); per worker " + ", ".join(f"{r[0] / wall:,.0f}" for r in res)
                  + " readings/s", flush=True)
        cli.close()


def plain_copy(conn, batches):
    conn.execute("DROP TABLE IF EXISTS bench_plain")
    conn.execute("CREATE TABLE bench_plain (site text, gateway text, source text, seq bigint, time timestamptz, "
                 "time_source text, container text, kind text, priority text, position geography(Point, 4326), "
                 "payload jsonb, envelope_seq bigint, received_at timestamptz DEFAULT now())")
    n, t = 0, time.perf_counter()
    for b in batches:
        buf = io.StringIO()
        for m in b:
            for r in m.readings:
                buf.write("\t".join(db._copy_text(v) for v in (
                    m.site, m.gateway, r["source"], r["seq"], db.time_text(r["time_utc_ms"]), "source",
                    r.get("container"), r["kind"], m.priority, db._position(r),
                    json.dumps(r, separators=(",", ":")), m.envelope_seq)) + "\n")
                n += 1
        with conn.transaction():
            with conn.cursor().copy("COPY bench_plain (site, gateway, source, seq, time, time_source, container, "
                                    "kind, priority, position, payload, envelope_seq) FROM STDIN") as cp:
                cp.write(buf.getvalue())
    return n, time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--readings", type=int, default=200000)
    p.add_argument("--sources", type=int, default=400)
    p.add_argument("--batch-readings", type=int, default=6400, help="readings per transaction (default 6400)")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--nats", action="store_true", help="also the full path through a real nats-server (JetStream)")
    p.add_argument("--nats-workers", default="1,2", help="worker counts of the --nats figures (default 1,2)")
    a = p.parse_args()
    if pgtest.missing():
        print(f"bench_ingest: needs {pgtest.missing()}")
        return 77
    global EC, CODEC
    EC, CODEC = worker.load_decoder()
    by_source = make_readings(a.readings, a.sources)
    names = sorted(by_source)
    print(f"bench_ingest: {a.readings} readings, {a.sources} sources, {a.batch_readings} readings per transaction, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    if a.nats and natstest.missing():
        print(f"  --nats skipped: needs {natstest.missing()}", flush=True)
        a.nats = False
    with pgtest.TempPostgres() as pg:
        conn = db.connect(pg.dsn)
        db.init_schema(conn)
        n, s = plain_copy(conn, batches_for(by_source, names, a.batch_readings))
        base = n / s
        print(f"  plain COPY (no key, no partitions, no index): {n} rows in {s:.2f} s = {base:,.0f} rows/s", flush=True)
        encoded = {}
        firsts = {}                      # mode -> readings/s of 1 worker
        for mode in ("db", "decode+db"):
            one = None
            for w in [int(x) for x in a.workers.split(",")]:
                conn.execute("DROP SCHEMA eport CASCADE")
                db.init_schema(conn)
                q = mp.Queue()
                # JetStream hands each message to one worker; here each worker gets a share of the
                # sources (their envelopes interleave, as on a gateway).
                shares = [batches_for(by_source, names[i::w], a.batch_readings) for i in range(w)]
                if mode == "decode+db":
                    shares = [encoded.setdefault((w, i), encode(sh)) for i, sh in enumerate(shares)]
                procs = [mp.Process(target=run_worker, args=(pg.dsn, sh, q)) for sh in shares]
                t = time.perf_counter()
                for pr in procs:
                    pr.start()
                res = [q.get() for _ in procs]
                wall = time.perf_counter() - t
                for pr in procs:
                    pr.join()
                stored = sum(r[0] for r in res)
                total = stored / wall
                one = one or total
                firsts.setdefault(mode, total)
                per = [r[0] / r[1] for r in res]
                print(f"  {mode:9s}, {w} worker(s): {stored} readings in {wall:.2f} s = {total:,.0f} readings/s "
                      f"({total / base:.2f} x plain COPY, {total / one:.2f} x 1 worker); per worker "
                      + ", ".join(f"{x:,.0f}" for x in per) + " readings/s", flush=True)
                dup = db.store_batch(conn, db.Partitions(), batches_for(by_source, names[:10], a.batch_readings)[0])
                assert dup.stored == 0, "a repeated batch stored readings again"
        if a.nats:
            msgs = [m for b in encode(batches_for(by_source, names, a.batch_readings)) for m in b]
            nats_path(pg, conn, msgs, a.readings, max(1, a.batch_readings // ENVELOPE_READINGS),
                      [int(x) for x in a.nats_workers.split(",")], base, firsts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
