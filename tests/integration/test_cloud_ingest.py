"""eport-ingest end to end (docs/cloud.md): three nats-server 2.9.10 nodes on loopback
from the configs `eport-broker gen` writes (the inventory's `ingesters` are the
workers' NATS users), a throw-away PostgreSQL 15 + PostGIS, the real
eport-agent (custody on, the sample zones) with the generated cluster/agent.toml, eport-sim
units, and two eport-ingest workers sharing one JetStream durable consumer on $MQTT_msgs.
Mid-run one worker is killed with SIGKILL, then the NATS node holding the agent's
connection. Afterwards every reading eport-sim had acknowledged is in eport.reading exactly
once with its time and kind, completeness reports no undeclared hole for any unit, the
custody source's events are in eport.custody_event, and the gateway is online in
eport.gateway_liveness. Hang guards only: nothing asserts how fast. Skips (77) when
nats-server, PostgreSQL 15, PostGIS, psycopg, flatc or the Python decoder's modules are
absent; fails on a nats-server other than the pinned version."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
BROKER_CONFIG = Path(SOURCE) / "broker-config"
INGEST_DIR = Path(SOURCE) / "cloud" / "ingest"
INGEST = INGEST_DIR / "eport-ingest"
ZONES = h.SAMPLE_ZONES
sys.path.insert(0, str(BROKER_CONFIG / "lib"))
sys.path.insert(0, str(INGEST_DIR))
sys.path.insert(0, str(Path(SOURCE) / "examples" / "python"))

from eport_broker import inventory, natsrun  # noqa: E402
from eport_ingest import pgtest  # noqa: E402

SKIP = 77
CONF_DIR = "/etc/nats-server/eport-test"
SITE, GW, DURABLE = "cnsha", "gw-test-01", "eport-ingest"
WORKERS = ["ingest-1", "ingest-2"]
INVENTORY = f"""\
site = "{SITE}"
gateways = ["{GW}"]
readers = ["reader-1"]
ingesters = [{", ".join(f'"{w}"' for w in WORKERS)}]
[broker]
host = "mqtt.test.invalid"
"""
# 10 units x 400 readings at 40/s each: 4000 readings over about 10 s.
UNITS, RATE, COUNT = 10, 40, 400
KILL_WORKER_AFTER, KILL_NODE_AFTER = 1000, 2000
ACK_WAIT_S = 5           # a dead worker's unacknowledged batch goes to the other after this
HEALTH_S = 2
READY_S, SIM_S, DELIVERY_S = 120, 240, 120


def missing():
    exe = natsrun.find_nats_server()
    if not exe:
        return "nats-server (apt-get install nats-server)"
    for what in (pgtest.missing(),):
        if what:
            return what
    if not shutil.which("flatc"):
        return "flatc (apt-get install flatbuffers-compiler)"
    for mod, pkg in (("flatbuffers", "python3-flatbuffers"), ("zstandard", "python3-zstandard")):
        try:
            __import__(mod)
        except ImportError:
            return f"the Python module {mod} (apt-get install {pkg})"
    return ""


def agent_config(out, agent, uris):
    """The generated cluster agent.toml (h.cluster_agent_config), with health every HEALTH_S and custody on."""
    h.cluster_agent_config(out, GW, agent, uris,
                           f"[health]\ninterval_s = {HEALTH_S}\n\n[custody]\nenabled = true\nzones_file = \"{ZONES}\"\n")


def connected_port(agent):
    ports = re.findall(r"connected to ssl://127\.0\.0\.1:(\d+)", agent.read_log())
    return int(ports[-1]) if ports else None


def ingest_grant_refusals(out, node):
    """What an ingest certificate must not do on the NATS port: read the MQTT layer's QoS 1
    deliveries, publish data or commands, delete the stream, use another durable. Each is
    answered with a Permissions Violation (the connection stays up)."""
    from eport_ingest.nats import Connection, NatsError, TlsOptions
    c = out / "clients" / WORKERS[0]
    conn = Connection([f"tls://127.0.0.1:{node.client_port}"],
                      TlsOptions(str(c / "ca.crt"), str(c / f"{WORKERS[0]}.crt"), str(c / f"{WORKERS[0]}.key")))
    conn.connect()
    tries = [("sub", "$MQTT.sub.>"), ("sub", "eport.v1.cnsha.gw-test-01.data.>"), ("sub", "_INBOX.ingest-2.x"),
             ("pub", f"eport.v1.{SITE}.{GW}.data.alarm"), ("pub", f"eport.v1.{SITE}.{GW}.cmd"),
             ("pub", "$JS.API.STREAM.DELETE.$MQTT_msgs"), ("pub", "$JS.API.CONSUMER.MSG.NEXT.$MQTT_msgs.other")]
    seen = []
    for op, subject in tries:
        if op == "sub":
            conn.subscribe(subject)
        else:
            conn.publish(subject, b"x")
        try:
            conn.flush(5)
            m = conn.next_msg(time.monotonic() + 1)
            raise AssertionError(f"ingest user: {op} {subject} was not refused ({m})")
        except NatsError as e:
            assert "Permissions Violation" in str(e), f"ingest user: {op} {subject}: {e}"
            assert subject in str(e), f"ingest user: {op} {subject}: {e}"
            seen.append(f"{op} {subject}")
        conn.subs.clear()
    conn.close()
    return seen


class IngestWorker:
    def __init__(self, work, name, cluster, out, dsn, codegen):
        self.name, self.err = name, work.file(f"{name}.log")
        c = out / "clients" / name
        # Each worker starts at a different node; the one that survives (ingest-2) at nats-1,
        # where the agent connects first: the node kill then cuts both.
        i = (len(WORKERS) - 1 - WORKERS.index(name)) % len(cluster.nodes)
        nodes = cluster.nodes[i:] + cluster.nodes[:i]
        urls = ",".join(f"tls://127.0.0.1:{n.client_port}" for n in nodes)
        self.args = [sys.executable, str(INGEST), "run", "--nats", urls, "--ca-file", str(c / "ca.crt"),
                     "--cert-file", str(c / f"{name}.crt"), "--key-file", str(c / f"{name}.key"),
                     "--dsn", dsn, "--name", name, "--durable", DURABLE, "--inbox-prefix", f"_INBOX.{name}",
                     "--ack-wait-s", str(ACK_WAIT_S), "--health-interval-s", str(HEALTH_S),
                     "--overdue-check-s", "1", "--stats-every-s", "2", "--codegen-dir", codegen,
                     "--batch", "128", "--expires-s", "0.5"]
        self.proc = None

    def start(self):
        self.proc = h.spawn(self.args, stdout=subprocess.DEVNULL, stderr=open(self.err, "ab"))
        return self

    def events(self):
        try:
            with open(self.err) as f:
                return [json.loads(line) for line in f if line.startswith("{")]
        except FileNotFoundError:
            return []

    def has_consumer(self):
        return any(e.get("event") == "consumer" for e in self.events())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def last(self, event):
        found = [e for e in self.events() if e.get("event") == event]
        return found[-1] if found else {}


def test_cloud_ingest(work):
    wd = Path(work.path)
    (wd / "site.toml").write_text(INVENTORY)
    out = wd / "out"
    gen = subprocess.run([str(BROKER_CONFIG / "eport-broker"), "gen", str(wd / "site.toml"), str(out),
                          "--cluster-conf-dir", CONF_DIR], capture_output=True, text=True)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    inv = inventory.load(wd / "site.toml")
    cluster = natsrun.Cluster(inv, out, wd / "cluster", CONF_DIR)
    CLUSTERS.append(cluster)
    cluster.start()
    up = cluster.wait_ready(READY_S, "the three nodes healthy with a meta leader")
    h.log(f"cluster up in {up:.1f} s")

    refused = ingest_grant_refusals(out, cluster.nodes[1])
    h.log(f"an ingest user is refused: {', '.join(refused)}")

    pg = pgtest.TempPostgres().start()
    PGS.append(pg)
    import eport_consumer as ec
    from eport_ingest import db
    codegen = work.file("codegen")
    ec.load_codec(cache_dir=codegen)            # generated once, before the workers start
    conn = db.connect(pg.dsn)
    db.init_schema(conn)

    workers = [IngestWorker(work, name, cluster, out, pg.dsn, codegen).start() for name in WORKERS]
    # $MQTT_msgs exists once the first MQTT client connected: the agent. The workers retry
    # creating their consumer until then; no reading is sent before it exists (the stream's
    # interest retention keeps a message only for a consumer that exists).
    agent = h.Agent(work, "unused")
    agent_config(out, agent, [n.mqtt_uri for n in cluster.nodes])
    agent.start()
    h.wait_until(lambda: connected_port(agent) is not None, READY_S, "the agent connected to a node")
    h.wait_until(lambda: all(w.has_consumer() for w in workers), READY_S, "both workers on the durable consumer")
    h.log("agent connected, both workers attached to the durable consumer")

    acked_log = work.file("acked.jsonl")
    sim = h.run_sim(agent, units=UNITS, rate=RATE, count=COUNT, acked_log=acked_log, background=True,
                    drain_timeout=SIM_S)

    def acked_count():
        return h.complete_lines(acked_log)
    h.wait_until(lambda: acked_count() >= KILL_WORKER_AFTER or sim.poll() is not None, SIM_S,
                 f"{KILL_WORKER_AFTER} readings acknowledged")
    assert sim.poll() is None, "the sim finished before the kills: make the run longer"
    workers[0].kill9()
    h.log(f"{workers[0].name} killed with SIGKILL after {acked_count()} acknowledged readings")
    h.wait_until(lambda: acked_count() >= KILL_NODE_AFTER or sim.poll() is not None, SIM_S,
                 f"{KILL_NODE_AFTER} readings acknowledged")
    assert sim.poll() is None, "the sim finished before the node kill: make the run longer"
    victim = cluster.node_of_port(connected_port(agent))
    victim.kill9()
    h.log(f"{victim.name} (the agent's node) killed with SIGKILL after {acked_count()} acknowledged readings")

    out_s, err_s = sim.communicate(timeout=SIM_S)
    assert sim.returncode == 0, out_s + err_s
    t_sim = time.monotonic()
    acked = h.read_jsonl(acked_log)
    assert len(acked) == UNITS * COUNT, f"{len(acked)} acknowledged, expected {UNITS * COUNT}"
    want = {(r["source"], r["seq"]) for r in acked}

    def stored():
        return {(s, q) for s, q in conn.execute("SELECT source, seq FROM eport.reading WHERE gateway = %s "
                                                "AND kind <> 'event'", (GW,))}
    h.wait_until(lambda: want <= stored() or time.sleep(0.5), DELIVERY_S, "every acknowledged reading in PostgreSQL")
    h.log(f"every acknowledged reading in PostgreSQL {time.monotonic() - t_sim:.1f} s after the sim finished")

    # Exactly once, with the reading's own time and kind.
    rows = conn.execute("SELECT source, seq, count(*), min((extract(epoch FROM time) * 1000)::bigint), min(kind) "
                        "FROM eport.reading WHERE gateway = %s GROUP BY source, seq", (GW,)).fetchall()
    by_key = {(s, q): (n, t, k) for s, q, n, t, k in rows}
    twice = [k for k, v in by_key.items() if v[0] != 1]
    assert not twice, f"stored more than once: {twice[:5]}"
    for r in acked:
        n, t, k = by_key[(r["source"], r["seq"])]
        assert t == r["time_utc_ms"] and k == r["kind"], f"{r} stored as time {t} kind {k}"
    # Completeness: no undeclared hole for any unit.
    holes = conn.execute("SELECT source, undeclared_gaps FROM eport.source_completeness WHERE gateway = %s "
                         "AND undeclared_gap_seqs > 0", (GW,)).fetchall()
    assert not holes, f"undeclared holes: {holes[:5]}"
    units = {r["source"] for r in acked}
    complete = conn.execute("SELECT count(*) FROM eport.source_completeness WHERE gateway = %s AND source = ANY(%s) "
                            "AND undeclared_gap_seqs = 0", (GW, list(units))).fetchone()[0]
    assert complete == len(units), f"{complete} of {len(units)} units in source_completeness"
    # Custody: the agent's custody source, in its own table too, without holes.
    events = conn.execute("SELECT count(*), count(DISTINCT event) FROM eport.custody_event WHERE gateway = %s",
                          (GW,)).fetchone()
    assert events[0] > 0, "no custody event stored (custody is on)"
    dup = conn.execute("SELECT sum(duplicates) FROM eport.source_stats WHERE gateway = %s", (GW,)).fetchone()[0]
    # Liveness from the heartbeat: online now.
    live = conn.execute("SELECT state FROM eport.gateway_liveness WHERE site = %s AND gateway = %s",
                        (SITE, GW)).fetchone()
    assert live and live[0] == "online", f"liveness of {GW}: {live}"

    assert workers[1].terminate() == 0
    s = workers[1].last("stopped")
    attached = [e.get("url") for e in workers[1].events() if e.get("event") == "consumer"]
    lost = [e.get("error") for e in workers[1].events() if e.get("event") == "nats_lost"]
    port_of = {f"tls://127.0.0.1:{n.client_port}": n.name for n in cluster.nodes}
    # The agent stops: its heartbeat ends, and a worker marks it offline after 3 intervals.
    assert agent.terminate() == 0
    w3 = IngestWorker(work, WORKERS[0], cluster, out, pg.dsn, codegen).start()
    h.wait_until(lambda: conn.execute("SELECT state FROM eport.gateway_liveness WHERE gateway = %s",
                                      (GW,)).fetchone()[0] == "offline" or time.sleep(0.5), 60,
                 "the gateway marked offline once its health is overdue")
    assert w3.terminate() == 0
    total = conn.execute("SELECT count(*) FROM eport.reading").fetchone()[0]
    by_killed = total - (s.get("readings_stored") or 0) - (w3.last("stopped").get("readings_stored") or 0)
    cluster.stop()
    h.log(f"cloud ingest: {len(acked)} acknowledged readings all in PostgreSQL exactly once; {workers[0].name} "
          f"(which had stored {by_killed}) "
          f"and {victim.name} killed with SIGKILL mid-run; {events[0]} custody events ({events[1]} kinds); "
          f"{dup} duplicates dropped; surviving worker: {s.get('readings_stored')} stored, "
          f"{s.get('redelivered')} redelivered messages, attached to {[port_of.get(u, u) for u in attached]}, "
          f"connection losses {lost[:2]}; "
          f"gateway offline after its health stopped")


CLUSTERS, PGS = [], []

if __name__ == "__main__":
    what = missing()
    if what:
        print(f"SKIP: needs {what}")
        sys.exit(SKIP)
    problem = natsrun.version_problem(natsrun.find_nats_server())
    if problem:
        print(f"FAIL: {problem}")
        sys.exit(1)
    try:
        h.main(test_cloud_ingest)
    except BaseException:
        for c in CLUSTERS:
            print(c.logs(), flush=True)
        raise
    finally:
        for c in CLUSTERS:
            c.stop()
        for p in PGS:
            p.stop()
