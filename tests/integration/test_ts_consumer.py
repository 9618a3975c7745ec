"""The TypeScript decoder package (consumers/typescript) against the C++ reference, eport-tail:
real mosquitto, the agent with custody events on (pairings and schema 1.3 seal mismatches),
eport-sim, and both consumers subscribed at once. The TS consumer is the package's CLI,
eport-ts-decode, fed the raw payloads by mosquitto_sub -F '%t %x'. Its reading lines equal
eport-tail's, line for line and byte for byte; then envelopes built here (schema 1.1 gaps and
gateway time, 1.4 evidence checkpoints, a newer payload kind) and hostile payloads through the
same broker: the same lines again, and every hostile payload refused by both.
The agent sends envelope v2 by default (EPT2, zstd with the v2 dictionary, site and gateway only
in the topic): the TS consumer decodes it with each message's topic, and every agent envelope it
prints is a v2 one; with EPORT_TEST_ENVELOPE_FORMAT=v1 (ctest integration.ts_consumer_v1) the
same with envelope v1."""
import json
import os
import shutil
import signal
import subprocess
import sys

import harness as h
import ts_package

PKG = ts_package.build()  # or exit 77, saying why (no node, npm or tsc; npm cannot reach the registry)

FORMAT = os.environ.get("EPORT_TEST_ENVELOPE_FORMAT") or "v2"  # what the agent sends (harness.Agent)
UNITS, COUNT = 10, 30  # 300 readings: the test stays well under a minute
CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")


def raw_lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.endswith("\n")]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i}: eport-tail {x} / ts {y}"
    return f"lengths {len(a)} / {len(b)}"


class TsConsumer:
    """mosquitto_sub -F '%t %x' | node dist/cli.js --envelopes"""

    TOPICS = ("eport/v1/+/+/data/#", "eport/v1/+/+/status", "eport/v1/+/+/health")

    def __init__(self, work, broker, pkg):
        self.out, self.err = work.file("ts.jsonl"), work.file("ts.err")
        sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-F", "%t %x"]
        for t in self.TOPICS:
            sub += ["-t", t]
        self.sub = h.spawn(sub, stdout=subprocess.PIPE, stderr=open(work.file("mosquitto_sub.err"), "w"))
        self.node = h.spawn(["node", os.path.join(pkg, "dist", "cli.js"), "--envelopes"], stdin=self.sub.stdout,
                            stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        self.sub.stdout.close()  # node owns the pipe now
        # Subscribed when a probe published to one of its topics comes out of the decoder (as a
        # refused payload: a data topic, so that the status contracts checker never sees it).
        probe = "eport/v1/probe/gw-probe/data/probe"

        def seen():
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", probe, "-m", "probe"], check=True,
                           timeout=10)
            return any(f'"topic":"{probe}"' in line for line in raw_lines(self.out))
        h.wait_until(seen, 15, "the TS consumer's subscription (a probe status message decoded)")

    def lines(self):
        return [line for line in raw_lines(self.out) if '"topic":"eport/v1/probe/' not in line]

    def readings(self):
        return [line for line in self.lines() if line.startswith('{"source"')]

    def stop(self):
        if self.sub.poll() is None:
            self.sub.send_signal(signal.SIGINT)
            self.sub.wait(timeout=10)
        self.node.wait(timeout=10)  # ends at the end of its input
        return open(self.err).read()


def publish(broker, topic, data, work):
    path = work.file("publish.bin")
    with open(path, "wb") as f:
        f.write(data)
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", topic, "-f", path], check=True,
                   timeout=10)


def built_envelopes():
    """Envelopes built with the Python kit (tests/integration/envelopes.py), or None without it."""
    try:
        import flatbuffers  # noqa: F401
        import zstandard
    except ImportError as e:
        h.log(f"built envelopes not sent: no Python module {e.name!r} (python3-flatbuffers, python3-zstandard)")
        return None
    if not shutil.which("flatc"):
        h.log("built envelopes not sent: no flatc (flatbuffers-compiler)")
        return None
    sys.path.insert(0, os.path.join(h.SOURCE_DIR, "examples", "python"))
    import eport_consumer as ec
    import envelopes
    ec.load_codec(cache_dir=os.path.join(os.environ.get("TMPDIR", "/tmp"), f"eport-ts-test-codegen-{os.getuid()}"))
    b = envelopes.Builder()
    z = zstandard.ZstdCompressor(write_content_size=True).compress
    future = {"source": "TU-0017", "seq": 300, "time_utc_ms": 1795000003000, "payload_type": 9}
    after = ('{"source":"TU-0017","container":"CSQU3054383","seq":301,"time_utc_ms":1795000003100,'
             '"time_source":"gateway_receive","kind":"door","state":"closed"}')
    sent = [("event", z(b.envelope(envelopes.GAP_LINES, envelope_seq=900))),
            ("event", b.envelope([future, after], envelope_seq=901)),
            ("alarm", z(b.envelope(envelopes.EVIDENCE_LINES, envelope_seq=902, priority="alarm")))]
    want = envelopes.GAP_LINES + [after] + envelopes.EVIDENCE_LINES
    return sent, want


HOSTILE = [b"this is not a flatbuffer",
           b"\x28\xb5\x2f\xfd\xe0" + (64 << 30).to_bytes(8, "little") + b"\x00" * 16,  # claims 64 GiB
           b"EPT1" * 8]


def check_built_and_hostile(work, broker, ts):
    built = built_envelopes()
    corpus = os.path.join(h.SOURCE_DIR, "agent", "codec", "fuzz", "corpus", "envelope")
    hostile = list(HOSTILE)
    for name in ("missing_table_seal.ept", "long_source_id.ept", "shared_string_bomb.ept.zst"):
        with open(os.path.join(corpus, name), "rb") as f:
            hostile.append(f.read())
    etail_out, etail_err = work.file("built-tail.jsonl"), work.file("built-tail.err")
    etail = h.spawn([h.TAIL, "--broker", broker.uri], stdout=open(etail_out, "w"), stderr=open(etail_err, "w"))
    try:
        h.wait_until(lambda: "subscribed" in open(etail_err).read(), 10, "eport-tail")
        mark = len(ts.lines())
        topic = "eport/v1/cnsha/gw-test-01/data/"
        for data in hostile:
            publish(broker, topic + "event", data, work)
        want = []
        if built:
            for cls, data in built[0]:
                publish(broker, topic + cls, data, work)
            want = built[1]

        def ts_data():
            return [line for line in ts.lines()[mark:] if not line.startswith(('{"health"', '{"status"'))]

        def ts_readings():
            return [line for line in ts_data() if line.startswith('{"source"')]

        def errors(lines):
            return [json.loads(line)["error"] for line in lines if line.startswith('{"error"')]
        n_err = len(hostile) + (1 if built else 0)  # + the newer payload kind, skipped by both
        h.wait_until(lambda: len(errors(ts_data())) >= n_err and len(ts_readings()) >= len(want) and
                     len(errors(raw_lines(etail_out))) >= n_err, 15, "the built and hostile envelopes at both")
        c_lines = raw_lines(etail_out)
        c_readings = [line for line in c_lines if line.startswith('{"source"')]
        assert c_readings == want, first_difference(want, c_readings)
        assert ts_readings() == c_readings, first_difference(c_readings, ts_readings())
        ts_err, c_err = errors(ts_data()), errors(c_lines)
        assert len(ts_err) == len(c_err) == n_err, (ts_err, c_err)
        # The bounds refuse with the C++ codec's words (gen_corpus.py's EXPECTED).
        for msg in ("reading 0: payload type 2 (SealEvent) without its table", "reading 0: source_id of 41 bytes > 40",
                    "reading 0: source_id of 4000 bytes > 40"):
            assert msg in ts_err and any(msg in e for e in c_err), (msg, ts_err, c_err)
        assert "zstd payload: decompresses to 68719476736 bytes > 4194304" in ts_err, ts_err
        h.log(f"built envelopes ({len(want)} readings: gaps, gateway time, evidence) equal at eport-tail and ts; "
              f"{len(hostile)} hostile payloads refused by both; ts said: {ts_err}")
    finally:
        etail.send_signal(signal.SIGINT)
        etail.wait(timeout=10)


def test_ts_consumer(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    ts = TsConsumer(work, broker, PKG)
    extra = "[health]\ninterval_s = 1\n" + f'[custody]\nenabled = true\nzones_file = "{h.SAMPLE_ZONES}"\n'
    agent = h.Agent(work, broker.uri, extra=extra)
    agent.start()
    h.wait_until(lambda: "connected to" in agent.read_log(), 20, "agent connected")
    # Schema 1.3's seal fields: every container expects a seal its unit does not read.
    fleet = subprocess.run([h.SIM, "--units", str(UNITS), "--list-units"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    for unit in map(json.loads, fleet):
        c = subprocess.run([CMD, "--broker", broker.uri, "--site", "cnsha", "--gateway", "gw-test-01",
                            "expect-seal", unit["container"], "SL-EXPECTED", "--class", "indicative"],
                           capture_output=True, text=True, timeout=30)
        assert c.returncode == 0, c.stdout + c.stderr
    p = h.run_sim(agent, units=UNITS, rate=50, count=COUNT, acked_log=work.file("acked.jsonl"))
    assert p.returncode == 0, f"eport-sim failed: {p.stdout} {p.stderr}"
    acked = h.read_jsonl(work.file("acked.jsonl"))
    n = UNITS * COUNT
    assert len(acked) == n, f"sim got {len(acked)} acks, expected {n}"

    def units(lines):
        return sum(1 for line in lines if '"source":"tcu-' in line)

    def events(lines):
        return [line for line in lines if '"kind":"event"' in line]
    h.wait_until(lambda: units(raw_lines(tail.out)) >= n and units(ts.readings()) >= n, 30,
                 f"{n} unit readings at eport-tail and at the TS consumer")
    h.wait_until(lambda: len(events(ts.readings())) >= UNITS and
                 len(events(raw_lines(tail.out))) == len(events(ts.readings())), 30,
                 "every unit's pairing event at both consumers")
    c_lines = [line for line in raw_lines(tail.out) if not line.startswith('{"error"')]
    ts_lines = ts.readings()
    assert ts_lines == c_lines, first_difference(c_lines, ts_lines)  # line by line, byte for byte
    assert h.check_all_arrived(acked, [json.loads(line) for line in ts_lines]) == 0
    ev = [json.loads(line) for line in events(ts_lines)]
    assert sum(1 for e in ev if e["event"] == "pairing") == UNITS, ev
    mismatch = [e for e in ev if e["event"] == "seal_mismatch"]
    assert mismatch and all(e["expected_seal_id"] == "SL-EXPECTED" and e["seal_class"] == "indicative" and
                            "dcsa" not in e for e in mismatch), mismatch
    envs = [json.loads(line) for line in ts.lines() if line.startswith('{"envelope"')]
    assert sum(e["readings"] for e in envs) == len(ts_lines), "envelope lines do not add up to the readings"
    versions = {e["envelope"]["schema_version"] for e in envs}
    assert versions == {2 if FORMAT == "v2" else 1}, f"agent sending {FORMAT}: envelopes of schema_version {versions}"
    assert all(e["envelope"]["site"] == "cnsha" and e["envelope"]["gateway"] == "gw-test-01" for e in envs), envs
    assert any(line.startswith('{"health"') for line in ts.lines()), "no health message at the TS consumer"
    h.log(f"{n} readings and {len(ev)} custody events ({len(mismatch)} seal mismatches) in {len(envs)} {FORMAT} envelopes: "
          f"TS consumer == eport-tail line by line == sim's acked log")
    check_built_and_hostile(work, broker, ts)
    assert agent.terminate() == 0
    h.wait_until(lambda: any('"state":"offline"' in line for line in ts.lines() if line.startswith('{"status"')), 10,
                 "offline status at the TS consumer")
    tail.stop()
    summary = ts.stop().strip().splitlines()[-1]
    assert "zstd=" in summary and " zstd=0 " not in summary, summary
    h.log(f"TS consumer: {summary}")
    broker.stop()


if __name__ == "__main__":
    h.main(test_ts_consumer)
