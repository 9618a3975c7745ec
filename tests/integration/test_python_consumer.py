"""The Python example consumer (examples/python/eport_consumer.py) against the C++ reference,
eport-tail: real mosquitto, agent, eport-sim, both consumers subscribed at once, with zstd
(default) and without. Also runs the examples of docs/consuming.md, so the doc cannot drift."""
import json
import os
import re
import signal
import subprocess
import sys

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
ZONES = os.path.join(SOURCE, "docs", "zones", "shanghai-terminals.geojson")

try:
    import flatbuffers  # noqa: F401  (the consumer's runtime; imported here to skip cleanly)
    import paho.mqtt.client  # noqa: F401
    import zstandard
except ImportError as e:
    package = {"paho": "python3-paho-mqtt", "flatbuffers": "python3-flatbuffers",
               "zstandard": "python3-zstandard"}.get((e.name or "").split(".")[0], e.name)
    print(f"SKIP: the Python consumer needs the module {e.name!r}: apt-get install {package} "
          f"(Debian 12; tests run with /usr/bin/python3)", flush=True)
    sys.exit(77)

SRC = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CONSUMER = os.path.join(SRC, "examples", "python", "eport_consumer.py")
DOC = os.path.join(SRC, "docs", "consuming.md")
sys.path.insert(0, os.path.dirname(CONSUMER))
import eport_consumer as ec  # noqa: E402
import envelopes  # noqa: E402  (tests/integration/envelopes.py)

UNITS, COUNT = 20, 50  # 1000 readings; the doc's example comes from tcu-0038, outside this fleet
CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")


class Subdir:
    """One scenario's files inside the test's work dir (same interface as harness.Workdir)."""

    def __init__(self, work, name):
        self.path = work.file(name)
        os.makedirs(self.path)
        os.chmod(self.path, 0o777)

    def file(self, name):
        return os.path.join(self.path, name)


class PyConsumer:
    def __init__(self, work, broker_uri, codegen, name="py"):
        self.out = work.file(f"{name}.jsonl")
        self.err = work.file(f"{name}.err")
        self.proc = subprocess.Popen([sys.executable, CONSUMER, "--broker", broker_uri, "--envelopes",
                                      "--codegen-dir", codegen],
                                     stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        h.wait_until(lambda: "subscribed" in open(self.err).read() or self.proc.poll() is not None, 15,
                     "python consumer subscription")
        assert self.proc.poll() is None, open(self.err).read()

    def lines(self):
        with open(self.out) as f:
            return [line.rstrip("\n") for line in f if line.endswith("\n")]

    def readings(self):
        return [line for line in self.lines() if line.startswith('{"source"')]

    def tagged(self, tag):
        """The status, health or reply messages the consumer printed, each checked against
        schema/json/ (the consumer prints them unchanged)."""
        out = []
        for line in self.lines():
            if line.startswith(f'{{"{tag}"'):
                m = json.loads(line)
                out.append(h.check_json(m["topic"], json.dumps(m[tag])) if tag in ("status", "health", "reply")
                           else m[tag])
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
        return open(self.err).read()


def raw_lines(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.endswith("\n")]


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i}: eport-tail {x} / python {y}"
    return f"lengths {len(a)} / {len(b)}"


def read_doc():
    """The worked example of docs/consuming.md: blocks after <!-- check: NAME --> markers."""
    with open(DOC) as f:
        text = f.read()
    blocks = dict(re.findall(r"<!-- check: (\w+) -->\s*```[a-z]*\n(.*?)```", text, re.S))
    assert {"payload", "envelope", "output", "command"} <= set(blocks), f"markers missing in {DOC}: {list(blocks)}"
    return blocks


def hexdump(block):
    """ "0000  28 b5 2f fd ...  |ascii|" lines -> bytes"""
    return bytes.fromhex("".join("".join(line.split("|")[0].split()[1:]) for line in block.splitlines()))


def check_doc_command(work, broker):
    """The doc's Python command sender, run as printed (port replaced) against the running agent."""
    code = read_doc()["command"]
    connect = 'client.connect("127.0.0.1", 1883)'
    assert connect in code, "doc: the command example no longer connects as the test expects"
    script = work.file("doc_command.py")
    with open(script, "w") as f:
        f.write(code.replace(connect, f'client.connect("127.0.0.1", {broker.port})'))
    subprocess.run(["flatc", "--python", "-o", work.file("gen"), os.path.join(SRC, "schema", "command.fbs")],
                   check=True, timeout=30)
    p = subprocess.run([sys.executable, script], cwd=work.path, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "'ok': True" in p.stdout and "'gateway.id': 'gw-test-01'" in p.stdout, \
        f"doc command example: {p.stdout[:500]} {p.stderr[-2000:]}"
    h.log("doc's Python command example answered by the agent")


def publish(broker, topic, data, work):
    path = work.file("publish.bin")
    with open(path, "wb") as f:
        f.write(data)
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", topic, "-f", path],
                   check=True, timeout=10)


def check_doc_example(work, broker, py, codegen):
    blocks = read_doc()
    payload, envelope = hexdump(blocks["payload"]), hexdump(blocks["envelope"])
    output = blocks["output"].strip().splitlines()
    assert payload[:4] == ec.ZSTD_MAGIC and envelope[4:8] == b"EPT1"
    assert zstandard.ZstdDecompressor().decompress(payload) == envelope, "doc: payload does not unpack to envelope"
    plain_output = [output[0].replace(f'"bytes":{len(payload)}}}', f'"bytes":{len(envelope)}}}'), output[1]]
    assert plain_output[0] != output[0], "doc: the output's envelope line must show the payload's size"
    # 1. In process, with the example's decoder.
    codec = ec.load_codec(cache_dir=codegen)
    for data, want in ((payload, output), (envelope, plain_output)):
        header, readings, problems = codec.decode_payload(data)
        got = [ec.json_line({"envelope": header, "readings": len(readings), "bytes": len(data)}).decode()]
        got += [ec.json_line(r).decode() for r in readings]
        assert got == want and not problems, f"doc example decodes to {got}, the doc shows {want}"
    # 2. The same bytes through the broker, to eport-tail (C++) and the running Python consumer.
    doc = json.loads(output[0])["envelope"]
    topic = f"eport/v1/{doc['site']}/{doc['gateway']}/data/{doc['priority']}"
    etail_out, etail_err = work.file("doc-tail.jsonl"), work.file("doc-tail.err")
    etail = subprocess.Popen([h.TAIL, "--broker", broker.uri, "--envelopes"],
                             stdout=open(etail_out, "w"), stderr=open(etail_err, "w"))
    try:
        h.wait_until(lambda: "subscribed" in open(etail_err).read(), 10, "eport-tail --envelopes")
        mark = len(py.lines())
        publish(broker, topic, payload, work)
        publish(broker, topic, envelope, work)  # the same reading again: python drops it as a duplicate
        hostile = [b"this is not a flatbuffer",
                   envelope[:100],  # truncated
                   envelope[:0x64] + (0x7FFFFFFF).to_bytes(4, "little") + envelope[0x68:],  # readings vector length
                   ec.ZSTD_MAGIC + b"\xe0" + (64 << 30).to_bytes(8, "little") + b"\x00" * 16]  # claims 64 GiB
        for data in hostile:
            publish(broker, topic, data, work)
        publish(broker, topic.replace(doc["gateway"], "gw-rogue"), payload, work)  # another gateway's topic
        def py_data():  # health messages (every second here) may come in between
            return [line for line in py.lines()[mark:] if not line.startswith(('{"health"', '{"status"'))]

        h.wait_until(lambda: len(raw_lines(etail_out)) >= 10 and len(py_data()) >= 8, 10,
                     "the doc example at both consumers")
        c_lines, py_lines = raw_lines(etail_out), py_data()
        assert c_lines[:4] == output + plain_output, f"eport-tail printed {c_lines[:4]}, the doc shows {output}"
        assert py_lines[:3] == output + plain_output[:1], py_lines
        c_errors = [line for line in c_lines[4:8] if line.startswith('{"error"')]
        py_errors = [json.loads(line)["error"] for line in py_lines[3:7] if line.startswith('{"error"')]
        assert len(c_errors) == 4 and len(py_errors) == 4, (c_lines, py_lines)
        assert c_lines[8:10] == output, "eport-tail decodes the envelope on a foreign topic"
        assert "another gateway's" in json.loads(py_lines[7])["error"], py_lines[7]
        h.log(f"doc example decodes as shown in both consumers; python refused: {py_errors} and the foreign topic")
    finally:
        etail.send_signal(signal.SIGINT)
        etail.wait(timeout=10)


def check_gap_lines(work, broker, py, codegen):
    """Schema 1.1 through the broker: declared gaps and gateway receive time, built here in
    Python, print the same lines at eport-tail and at the Python consumer (and the lines that
    tests/unit/codec_test.cpp expects from the C++ codec); a reading of an unknown payload kind
    is skipped and reported by both, the rest of its envelope kept."""
    ec.load_codec(cache_dir=codegen)  # the generated package, for the builder
    builder = envelopes.Builder()
    future = {"source": "TU-0017", "seq": 300, "time_utc_ms": 1795000003000, "payload_type": 9}
    after = ('{"source":"TU-0017","container":"CSQU3054383","seq":301,"time_utc_ms":1795000003100,'
             '"time_source":"gateway_receive","kind":"door","state":"closed"}')
    topic = "eport/v1/cnsha/gw-test-01/data/event"
    etail_out, etail_err = work.file("gaps-tail.jsonl"), work.file("gaps-tail.err")
    etail = subprocess.Popen([h.TAIL, "--broker", broker.uri, "--envelopes"],
                             stdout=open(etail_out, "w"), stderr=open(etail_err, "w"))
    try:
        h.wait_until(lambda: "subscribed" in open(etail_err).read(), 10, "eport-tail --envelopes")
        mark = len(py.lines())
        zstd = zstandard.ZstdCompressor(write_content_size=True).compress  # the scenario counts plain envelopes
        publish(broker, topic, zstd(builder.envelope(envelopes.GAP_LINES, envelope_seq=900)), work)
        publish(broker, topic, zstd(builder.envelope([future, after], envelope_seq=901)), work)

        def py_data():
            return [line for line in py.lines()[mark:] if not line.startswith(('{"health"', '{"status"'))]

        n = len(envelopes.GAP_LINES) + 4  # two envelope lines, one error line, one reading after it
        h.wait_until(lambda: len(raw_lines(etail_out)) >= n and len(py_data()) >= n, 10,
                     "the schema 1.1 envelopes at both consumers")
        c_lines, py_lines = raw_lines(etail_out)[:n], py_data()[:n]
        readings = lambda lines: [line for line in lines if line.startswith('{"source"')]
        envs = lambda lines: [json.loads(line) for line in lines if line.startswith('{"envelope"')]
        errors = lambda lines: [json.loads(line)["error"] for line in lines if line.startswith('{"error"')]
        assert readings(c_lines) == envelopes.GAP_LINES + [after], first_difference(
            envelopes.GAP_LINES + [after], readings(c_lines))
        assert readings(py_lines) == readings(c_lines), first_difference(readings(c_lines), readings(py_lines))
        assert [e["readings"] for e in envs(c_lines)] == [len(envelopes.GAP_LINES), 2], c_lines
        assert [(e["envelope"], e["readings"]) for e in envs(py_lines)] == \
            [(e["envelope"], e["readings"]) for e in envs(c_lines)], (c_lines, py_lines)
        c_err, py_err = errors(c_lines), errors(py_lines)
        assert len(c_err) == 1 and "unknown payload kind skipped" in c_err[0], c_lines
        assert len(py_err) == 1 and "unknown or missing payload type 9" in py_err[0], py_lines
        h.log(f"schema 1.1: {len(envelopes.GAP_LINES)} gap and gateway-time lines equal at eport-tail and python; "
              f"unknown kind skipped by both: {c_err[0]!r} / {py_err[0]!r}")
    finally:
        etail.send_signal(signal.SIGINT)
        etail.wait(timeout=10)
    assert "skipped=1" in open(etail_err).read().strip().splitlines()[-1]


def scenario(work, name, codegen, compression):
    sub = Subdir(work, name)
    broker = h.Broker(sub)
    broker.start()
    procs = []
    try:
        tail = h.Tail(sub, broker.uri)
        procs.append(tail.proc)
        py = PyConsumer(sub, broker.uri, codegen)
        procs.append(py.proc)
        # Custody events on: the units' pairings (and whatever else their
        # tracks show) reach both consumers as schema 1.2 CustodyEvent readings.
        extra = "[health]\ninterval_s = 1\n" + f'[custody]\nenabled = true\nzones_file = "{ZONES}"\n'
        if compression == "none":
            extra += '[publish]\ncompression = "none"\n'
        agent = h.Agent(sub, broker.uri, extra=extra)
        agent.start()
        procs.append(agent.proc)
        # Schema 1.3's seal fields: every container expects a seal its unit
        # does not read, so every seal reading gives a seal_mismatch event.
        h.wait_until(lambda: "connected to" in agent.read_log(), 20, "agent connected")
        fleet = subprocess.run([h.SIM, "--units", str(UNITS), "--list-units"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        for unit in map(json.loads, fleet):
            c = subprocess.run([CMD, "--broker", broker.uri, "--site", "cnsha", "--gateway", "gw-test-01",
                                "expect-seal", unit["container"], "SL-EXPECTED", "--class", "indicative"],
                               capture_output=True, text=True, timeout=30)
            assert c.returncode == 0, c.stdout + c.stderr
        p = h.run_sim(agent, units=UNITS, rate=50, count=COUNT, acked_log=sub.file("acked.jsonl"))
        assert p.returncode == 0, f"eport-sim failed: {p.stdout} {p.stderr}"
        acked = h.read_jsonl(sub.file("acked.jsonl"))
        n = UNITS * COUNT
        assert len(acked) == n, f"sim got {len(acked)} acks, expected {n}"
        def unit_readings(lines):  # the custody events (many with the seal alarms) are not the units' readings
            return sum(1 for line in lines if '"source":"tcu-' in line)
        h.wait_until(lambda: sum(1 for r in tail.readings() if r["source"].startswith("tcu-")) >= n and
                     unit_readings(py.readings()) >= n, 30, f"{n} unit readings at eport-tail and at the python consumer")
        h.wait_until(lambda: py.tagged("health"), 10, "a health message at the python consumer")

        def event_lines(lines):
            return [line for line in lines if '"kind":"event"' in line]
        h.wait_until(lambda: len(event_lines(py.readings())) >= UNITS and
                     len(event_lines(raw_lines(tail.out))) == len(event_lines(py.readings())), 30,
                     "every unit's pairing event at both consumers")
        c_lines = [line for line in raw_lines(tail.out) if not line.startswith('{"error"')]
        py_lines = py.readings()
        # Line by line, byte for byte: the same JSON, in the same order.
        assert py_lines == c_lines, first_difference(c_lines, py_lines)
        assert h.check_all_arrived(acked, [json.loads(line) for line in py_lines]) == 0
        assert h.check_all_arrived(acked, tail.readings()) == 0
        envelopes = [json.loads(line) for line in py.lines() if line.startswith('{"envelope"')]
        events = len(event_lines(py_lines))
        # The health message reports the engine: what it derived, in which zones version.
        h.wait_until(lambda: py.tagged("health")[-1].get("custody", {}).get("events", 0) >= events, 10,
                     "the custody events counted in a health message")
        custody = py.tagged("health")[-1]["custody"]
        assert custody["source"] == "gw-test-01:custody" and custody["zones_version"], custody
        assert custody["by_event"]["pairing"] == UNITS and custody["rollbacks"] == 0, custody
        assert custody["expected_seals"] == UNITS and custody["by_event"]["seal_mismatch"] >= 1, custody
        mismatch = json.loads(next(line for line in py_lines if '"event":"seal_mismatch"' in line))
        assert mismatch["expected_seal_id"] == "SL-EXPECTED" and mismatch["seal_class"] == "indicative" and \
            mismatch["seal_id"][:2] in ("SL", "CN") and "dcsa" not in mismatch, mismatch
        assert sum(e["readings"] for e in envelopes) == n + events, \
            "envelope lines do not add up to the readings and custody events"
        status = py.tagged("status")
        assert status and status[0]["state"] == "online" and status[0]["compression"] == compression, status
        if compression == "zstd":
            check_doc_example(sub, broker, py, codegen)
            check_gap_lines(sub, broker, py, codegen)
            check_doc_command(sub, broker)
        assert agent.terminate() == 0
        h.wait_until(lambda: py.tagged("status")[-1]["state"] == "offline", 10, "offline status")
        tail.stop()
        summary = py.stop()
        counts = dict(re.findall(r"(\w+)=(\d+)", summary.strip().splitlines()[-1]))
        zstd, plain = int(counts["zstd"]), int(counts["envelopes"]) - int(counts["zstd"])
        # With zstd every envelope from the agent was compressed (the one plain envelope is the doc's).
        assert (zstd > 0 and plain == 1) if compression == "zstd" else (zstd == 0 and plain > 0), summary
        h.log(f"compression={compression}: {n} readings and {events} custody events in {len(envelopes)} envelopes from the agent, "
              f"python == eport-tail line by line == sim's acked log; {summary.strip().splitlines()[-1]}")
    except BaseException:
        for fname in sorted(os.listdir(sub.path)):
            if fname.endswith((".log", ".err")):
                with open(sub.file(fname)) as f:
                    print(f"----- {name}/{fname} (end) -----\n{f.read()[-3000:]}", flush=True)
        raise
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        broker.stop()


def test_python_consumer(work):
    codegen = work.file("codegen")  # generated anew by flatc on every run
    scenario(work, "zstd", codegen, "zstd")
    scenario(work, "plain", codegen, "none")


if __name__ == "__main__":
    h.main(test_python_consumer)
