"""Evidence through the reference ingest (docs/cloud.md, docs/evidence.md section 15): an
agent whose units sign their readings (eport-sim --evidence-keys) and whose custody events
are signed by the gateway (evidence.custody_key) publishes to mosquitto; every message the
broker delivered (topic and bytes, as mosquitto_sub saw them) goes through the ingest
worker's own decoding (Worker.decode) into a throw-away PostgreSQL with db.store_batch, twice
(redelivery). Then `eport-ingest capture` exports the record of one container and of every
source from the database, and both verifiers (eport-verify and examples/python/eport_verify.py)
verify it: the same sources verified, the same readings covered, no problem, and the same
report as from eport-tail's live capture. A checkpoint that arrives on the evidence topic
is stored once in eport.evidence_checkpoint with its range; an envelope on the evidence
topic that holds a reading is refused."""
import json
import os
import subprocess
import sys
import time
import types

import harness as h

sys.path.insert(0, os.path.join(h.SOURCE_DIR, "cloud", "ingest"))
from eport_ingest import pgtest  # noqa: E402

if __name__ == "__main__" and pgtest.missing():
    print(f"SKIP: needs {pgtest.missing()}")
    sys.exit(77)
try:
    import cbor2, nacl, cryptography  # noqa: F401,E401 (the Python verifier's packages)
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

from eport_ingest import db, worker  # noqa: E402

INGEST = os.path.join(h.SOURCE_DIR, "cloud", "ingest", "eport-ingest")
PY_VERIFY = os.path.join(h.SOURCE_DIR, "examples", "python", "eport_verify.py")
EPORT_VERIFY = h.AGENT.replace("app/eport-agent", "tools/eport-verify")
EPB_EVIDENCE = os.path.join(os.path.dirname(h.BIN), "firmware-bridge", "epb-evidence")
GATEWAY = "gw-ingev"
UNITS, COUNT = 4, 80


def verify(keys, capture):
    """Both verifiers' JSON reports of a capture, which must be equal."""
    out = []
    for cmd in ([EPORT_VERIFY], ["/usr/bin/python3", PY_VERIFY]):
        p = subprocess.run([*cmd, "--keys", keys, "--json", capture], capture_output=True, text=True, timeout=120)
        assert p.returncode in (0, 1), f"{cmd}: {p.returncode} {p.stdout} {p.stderr}"
        out.append((p.returncode, json.loads(p.stdout)))
    assert out[0] == out[1], f"the verifiers differ on {capture}"
    return out[0]


def test_ingest_evidence(work):
    keydir = work.file("keys")
    listing = h.sim(["--units", UNITS, "--evidence-keys", keydir, "--list-units"], timeout=30)
    assert listing.returncode == 0, listing.stderr
    units = [json.loads(line) for line in listing.stdout.splitlines()]
    key = subprocess.run([EPB_EVIDENCE, "keygen", work.file("custody.key.pem"), work.file("custody.pub.pem")],
                         capture_output=True, text=True, check=True).stdout.split()
    keys = work.file("all_keys")
    with open(keys, "w") as f:
        f.write(open(os.path.join(keydir, "evidence_keys")).read())
        f.write(f"{GATEWAY}:custody ed25519 {key[3].rstrip(',')} {key[5]}\n")

    broker = h.Broker(work)
    broker.start()
    raw_path = work.file("raw.txt")
    raw = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-t", "eport/#", "-q", "1", "-F", "%t %x"],
                           stdout=open(raw_path, "w"), stderr=subprocess.DEVNULL)
    data_tail = h.Tail(work, broker.uri, client_id="ie-data", name="data")
    ev_tail = h.Tail(work, broker.uri, client_id="ie-ev", name="evidence", extra_args=("--topic", "eport/v1/+/+/evidence"))
    extra = (f'[custody]\nenabled = true\nzones_file = "{h.SAMPLE_ZONES}"\n'
             f'[evidence]\ncustody_key = "{work.file("custody.key.pem")}"\ncheckpoint_every_s = 1\n')
    agent = h.FleetAgent(work, broker.uri, name="agent", gateway=GATEWAY, extra=extra,
                         store_extra="maintenance_interval_s = 1")
    with open(agent.config) as f:
        text = f.read()
    with open(agent.config, "w") as f:
        f.write(text.replace("[bridge]\n", f'[bridge]\nevidence_keys = "{os.path.join(keydir, "evidence_keys")}"\n', 1))
    agent.start()
    p = h.sim(["--connect", "unix:" + agent.socket, "--units", UNITS, "--rate", 40, "--count", COUNT,
               "--time-step", 30000, "--evidence-keys", keydir, "--evidence-every", 16, "--drain-timeout", 60,
               "--quiet"], timeout=120)
    assert p.returncode == 0, f"eport-sim: {p.stdout} {p.stderr}"
    time.sleep(3)  # the custody source's checkpoint by time
    assert agent.terminate() == 0
    h.wait_until(lambda: len(data_tail.readings()) >= UNITS * COUNT, 30, "the readings at the subscriber")
    time.sleep(1)
    for t in (data_tail, ev_tail):
        t.stop()
    raw.terminate()
    raw.wait()
    live = work.file("live.jsonl")
    with open(live, "w") as f:
        for r in data_tail.readings() + ev_tail.readings():
            f.write(json.dumps(r) + "\n")
    rc, live_report = verify(keys, live)
    h.log(f"live capture: {live_report['summary']}")
    assert rc == 0 and live_report["summary"].startswith(f"sources verified {UNITS + 1} of {UNITS + 1}"), live_report

    ec, codec = worker.load_decoder(cache_dir=work.file("codegen"))
    decoder = types.SimpleNamespace(codec=codec, ec=ec)
    messages = []
    for line in open(raw_path):
        topic, _, hexed = line.rstrip("\n").partition(" ")
        if not topic.endswith(("/evidence",)) and "/data/" not in topic:
            continue
        m = worker.Worker.decode(decoder, worker.MQTT_MSGS_PREFIX + topic.replace("/", "."), bytes.fromhex(hexed))
        messages += m if isinstance(m, list) else [m]
    assert not [m for m in messages if isinstance(m, db.Rejected)], [m for m in messages if isinstance(m, db.Rejected)]

    # A reading smuggled onto the evidence topic is refused.
    data_line = next(line for line in open(raw_path) if "/data/" in line)
    topic, _, hexed = data_line.rstrip("\n").partition(" ")
    smuggled = worker.Worker.decode(decoder, worker.MQTT_MSGS_PREFIX + f"eport.v1.cnsha.{GATEWAY}.evidence",
                                    bytes.fromhex(hexed))
    assert isinstance(smuggled, db.Rejected) and "not an evidence checkpoint" in smuggled.error, smuggled

    with pgtest.TempPostgres() as pg:
        with db.connect(pg.dsn) as conn:
            db.init_schema(conn)
            parts = db.Partitions("month")
            first = db.store_batch(conn, parts, messages)
            again = db.store_batch(conn, parts, messages)  # redelivery: nothing new
            assert again.stored == 0 and again.checkpoints == 0, again
            n_ck = conn.execute("SELECT count(*), count(first_seq), count(checkpoint) FROM "
                                "eport.evidence_checkpoint").fetchone()
            h.log(f"stored {first.stored} records, {first.checkpoints} checkpoints ({n_ck})")
            assert n_ck[0] == first.checkpoints == len(ev_tail.readings()) and n_ck[0] == n_ck[1] == n_ck[2], n_ck
            # Completeness is of the data sources: checkpoint records' seqs have holes by design.
            holes = conn.execute("SELECT source, undeclared_gaps FROM eport.source_completeness "
                                 "WHERE undeclared_gap_seqs > 0 OR source LIKE '%:ev'").fetchall()
            assert holes == [], holes
        out_all = work.file("db-all.jsonl")
        sources = sorted({u["unit"] for u in units} | {f"{GATEWAY}:custody"})
        subprocess.run([INGEST, "capture", "--dsn", pg.dsn, *sum((["--source", s] for s in sources), []), out_all],
                       check=True, capture_output=True, text=True, timeout=60)
        rc, db_report = verify(keys, out_all)
        h.log(f"database capture, every source: {db_report['summary']}")
        assert rc == 0 and db_report == live_report, "the database's record verifies otherwise than the live one"

        container = units[0]["container"]
        out_one = work.file("db-container.jsonl")
        subprocess.run([INGEST, "capture", "--dsn", pg.dsn, "--container", container, out_one],
                       check=True, capture_output=True, text=True, timeout=60)
        rc, one = verify(keys, out_one)
        h.log(f"database capture of {container}: {one['summary']}")
        assert rc == 0 and set(one["sources"]) == {units[0]["unit"], f"{GATEWAY}:custody"}, one["sources"].keys()
        assert one["sources"] == {k: v for k, v in live_report["sources"].items() if k in one["sources"]}, one
        usage = subprocess.run([INGEST, "capture", "--dsn", pg.dsn, out_one], capture_output=True, text=True)
        assert usage.returncode == 2 and "give --source or --container" in usage.stderr, usage.stderr


if __name__ == "__main__":
    h.main(test_ingest_evidence)
