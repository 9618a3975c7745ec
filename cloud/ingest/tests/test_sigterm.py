#!/usr/bin/python3
"""[ingest] A worker stopped with SIGTERM (what `systemctl stop eport-ingest@N` sends)
loses nothing it acknowledged: a real nats-server with JetStream (eport_ingest.natstest,
one node, a stream of our own over the $MQTT_msgs subjects) and a real PostgreSQL
(pgtest), the real `eport-ingest run`. Checked:
  1. a SIGTERM while the worker's batch waits on a database lock: the worker finishes the
     batch (commits it, then acknowledges it), exits 0, and leaves nothing pending;
  2. SIGTERMs at varied moments of a run: every message the stream no longer holds (interest
     retention: acknowledged) has all its readings in PostgreSQL, and none is left waiting
     for ack_wait (30 s here);
  3. a last worker drains the rest: every reading exactly once.
Skips (77) without PostgreSQL 15 + PostGIS, psycopg, nats-server, flatc or the decoder's
Python modules."""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INGEST = os.path.join(HERE, "..", "eport-ingest")
sys.path.insert(0, os.path.join(HERE, ".."))
from eport_ingest import natstest, pgtest  # noqa: E402

STREAM, DURABLE = "EPORT_SIGTERM", "eport-ingest"
MESSAGES, PER_MESSAGE = 240, 10


T_START = time.monotonic()


def log(msg):
    print(f"[sigterm {time.monotonic() - T_START:5.1f} s] {msg}", flush=True)


def payloads(builder, zstd):
    """MESSAGES envelopes of PER_MESSAGE sensor readings over 2 gateways and 8 units:
    [(subject, payload, [(gateway, source, seq)])]."""
    out, next_seq = [], {}
    for i in range(MESSAGES):
        gw = f"gw-{i % 2}"
        rs = []
        for k in range(PER_MESSAGE):
            src = f"tu-{i % 2}-{k % 4}"
            seq = next_seq[src] = next_seq.get(src, 0) + 1
            rs.append({"source": src, "container": "MSKU1234565", "seq": seq, "time_utc_ms": 1795000000000 + seq * 1000,
                       "kind": "sensor", "temperature_centi_c": -1850, "battery_mv": 3650})
        out.append((f"$MQTT.msgs.eport.v1.cnsha.{gw}.data.telemetry",
                    zstd.compress(builder.envelope(rs, "cnsha", gw, i + 1, priority="telemetry")),
                    [(gw, r["source"], r["seq"]) for r in rs]))
    return out


class Run:
    """One `eport-ingest run` process; its JSON log lines."""

    def __init__(self, work, nats_url, dsn, name, batch, codegen):
        self.err = os.path.join(work, f"{name}.log")
        self.proc = subprocess.Popen(
            [sys.executable, INGEST, "run", "--nats", nats_url, "--dsn", dsn, "--name", name, "--stream", STREAM,
             "--durable", DURABLE, "--ack-wait-s", "30", "--batch", str(batch), "--expires-s", "0.2",
             "--stats-every-s", "60", "--codegen-dir", codegen],
            stdout=subprocess.DEVNULL, stderr=open(self.err, "wb"))

    def events(self, kind):
        with open(self.err) as f:
            return [e for e in (json.loads(x) for x in f if x.startswith("{")) if e.get("event") == kind]

    def wait_for(self, kind, timeout_s=20):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.events(kind):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {kind} event: " + open(self.err).read()[-2000:])

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        assert rc == 0, f"exit status {rc} after SIGTERM: " + open(self.err).read()[-2000:]
        stopped = self.events("stopped")
        assert stopped, "no stopped event"
        return stopped[-1]


def main():
    problem = pgtest.missing() or natstest.missing()
    if not problem:
        try:
            import zstandard
            from eport import decode as ec   # the consumer kit (eport_ingest puts it on sys.path)
        except ImportError as e:
            problem = f"the Python module {e.name} (python3-zstandard, python3-flatbuffers)"
    if not problem:
        from eport_ingest import worker
        try:
            worker.load_decoder(cache_dir=os.path.join(tempfile.gettempdir(), "eport-sigterm-codegen"))
        except ec.SetupError as e:            # flatc or python3-flatbuffers missing
            problem = f"the decoder ({e})"
    if problem:
        print(f"SKIP: needs {problem}")
        return 77
    sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "integration"))
    import envelopes                          # the test suite's envelope builder
    builder = envelopes.Builder()
    from eport_ingest import db
    from eport_ingest.jetstream import ConsumerConfig
    msgs = payloads(builder, zstandard.ZstdCompressor(level=3))
    with tempfile.TemporaryDirectory(prefix="eport-sigterm-") as work, pgtest.TempPostgres() as pg, \
            natstest.TempNats() as nats:
        codegen = os.path.join(work, "codegen")
        conn = db.connect(pg.dsn)
        db.init_schema(conn)
        cli = natstest.Client(nats.url, STREAM, DURABLE)
        cli.create_stream()
        cli.ensure_consumer(ConsumerConfig(stream=STREAM, durable=DURABLE, filter_subject=natstest.SUBJECTS,
                                           ack_wait_s=30.0))
        seqs = cli.publish([(s, p) for s, p, _ in msgs])
        keys_of = dict(zip(seqs, (k for _, _, k in msgs)))
        log(f"{MESSAGES} messages of {PER_MESSAGE} readings in JetStream (stream seqs {seqs[0]}..{seqs[-1]})")

        def stored():
            return [tuple(r) for r in conn.execute("SELECT gateway, source, seq FROM eport.reading")]

        def check_acked(what):
            info = cli.consumer_info(DURABLE)
            assert info["num_ack_pending"] == 0, f"{what}: {info['num_ack_pending']} messages left pending for ack_wait"
            have = set(stored())
            acked = [s for s in seqs if not cli.stream_has(s)]
            lost = [s for s in acked if not set(keys_of[s]) <= have]
            assert not lost, f"{what}: acknowledged messages {lost[:5]} have readings missing from PostgreSQL"
            return acked, have

        # 1. SIGTERM while the batch in hand waits on the database.
        locker = db.connect(pg.dsn)
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE eport.reading_seq IN SHARE MODE")   # inserts wait
        w = Run(work, nats.url, pg.dsn, "w-lock", 20, codegen)
        w.wait_for("consumer")
        deadline = time.monotonic() + 10
        while cli.consumer_info(DURABLE)["num_ack_pending"] == 0:
            assert time.monotonic() < deadline, "the worker pulled nothing"
            time.sleep(0.02)
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert w.proc.poll() is None, "the worker exited with its batch uncommitted"
        locker.execute("ROLLBACK")
        locker.close()
        st = w.terminate()
        acked, have = check_acked("batch under a lock")
        assert len(acked) == 20 and st["messages"] == 20 and len(have) == 20 * PER_MESSAGE, \
            f"acked {len(acked)}, counted {st['messages']}, stored {len(have)}: the batch in hand was not finished"
        log("1. SIGTERM during a blocked commit: the worker waited, committed and acknowledged its batch of 20, "
            "exit 0, nothing pending")

        # 2. SIGTERM at varied moments.
        rnd = random.Random(15)
        for i in range(2):
            w = Run(work, nats.url, pg.dsn, f"w-{i}", 4, codegen)
            w.wait_for("consumer")
            time.sleep(rnd.uniform(0.0, 0.15))
            st = w.terminate()
            acked, have = check_acked(f"round {i}")
            log(f"2.{i} SIGTERM after {st['messages']} messages ({st['batches']} batches, handed back "
                f"{st['handed_back']}): {len(acked)} of {MESSAGES} acknowledged, all stored; none pending")
            assert len(acked) < MESSAGES, "the worker finished before its SIGTERM: nothing was interrupted"

        # 3. The rest.
        w = Run(work, nats.url, pg.dsn, "w-last", 64, codegen)
        deadline = time.monotonic() + 30
        while cli.consumer_info(DURABLE)["num_pending"] or cli.consumer_info(DURABLE)["num_ack_pending"]:
            assert time.monotonic() < deadline, "the last worker did not drain the stream"
            time.sleep(0.05)
        w.terminate()
        acked, have = check_acked("drained")
        rows = stored()
        assert len(acked) == MESSAGES, f"{len(acked)} of {MESSAGES} acknowledged"
        assert len(rows) == len(set(rows)) == MESSAGES * PER_MESSAGE, \
            f"{len(rows)} rows, {len(set(rows))} distinct, want {MESSAGES * PER_MESSAGE}"
        log(f"3. drained: {len(rows)} readings, each exactly once")
        cli.close()
        conn.close()
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
