"""The guarantee on the clustered broker: no reading the agent acknowledged is
lost across a kill -9 of the NATS node it is connected to. Three nats-server
2.9.10 nodes on loopback, from the configs `eport-broker gen` writes (only
ports, paths and route addresses moved into the test), mutual TLS with the
identities of the certificates' URI SANs; the real eport-agent with the
generated cluster/agent.toml (mqtt.uri lists the three nodes); eport-sim
units; a cloud reader (eport-tail, the reader-1 certificate) in a
persistent MQTT session on another node, whose JetStream consumer on the MQTT
layer's own $MQTT_msgs stream holds what it has not received yet. Mid-run the
node holding the agent's connection is killed with SIGKILL: every reading
eport-sim had been acknowledged reaches the reader (duplicates allowed), the
agent fails over to another node. Before the
kill a command (eport-cmd get-config with the commander certificate, on
another node than the agent's) is answered through the cluster; after it,
whether one is answered is recorded, and whether the restarted node becomes
healthy again (see the comments there). Hang guards only: no assertion on how fast anything happens.
Skips (77) when nats-server is not installed; fails when it is not the
pinned version."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
BROKER_CONFIG = Path(SOURCE) / "broker-config"
sys.path.insert(0, str(BROKER_CONFIG / "lib"))

from eport_broker import inventory, natsrun  # noqa: E402

SKIP = 77
CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")
CONF_DIR = "/etc/nats-server/eport-test"   # what the generated configs name; the copies point elsewhere
SITE, GW, READER, COMMANDER = "cnsha", "gw-test-01", "reader-1", "cmd-1"
INVENTORY = f"""\
site = "{SITE}"
gateways = ["{GW}", "gw-test-02"]
readers = ["{READER}"]
commanders = ["{COMMANDER}"]
[broker]
host = "mqtt.test.invalid"
"""
# 10 units x 600 readings at 40/s each: 6000 readings over about 15 s.
UNITS, RATE, COUNT = 10, 40, 600
KILL_AFTER_ACKED = 1500
# Hang guards (seconds): generous for a loaded 2-core machine.
READY_S, DELIVERY_S, SIM_S, REJOIN_S, AFTER_KILL_CMD_S = 120, 150, 240, 30, 45


def tls_args(out, cn, kind):
    d = out / kind / cn
    return ["--ca-file", str(d / "ca.crt"), "--cert-file", str(d / f"{cn}.crt"), "--key-file", str(d / f"{cn}.key")]


def agent_config(out, agent, uris):
    """The generated cluster agent.toml (h.cluster_agent_config), with health every 2 s."""
    h.cluster_agent_config(out, GW, agent, uris, "[health]\ninterval_s = 2\n")


def command(out, node, cid, timeout_s=30):
    """eport-cmd get-config via node; (exit status, stdout or the error)."""
    p = subprocess.run([CMD, "--broker", node.mqtt_uri, *tls_args(out, COMMANDER, "clients"), "--site", SITE,
                        "--gateway", GW, "--id", cid, "--timeout", str(timeout_s), "get-config"],
                       capture_output=True, text=True, timeout=timeout_s + 30)
    return p.returncode, p.stdout if p.returncode == 0 else f"{p.returncode} {p.stdout} {p.stderr}"


def connected_port(agent):
    """The MQTT port of the node the agent connected to last."""
    ports = re.findall(r"connected to ssl://127\.0\.0\.1:(\d+)", agent.read_log())
    return int(ports[-1]) if ports else None


def test_nats_cluster(work):
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
    h.log(f"cluster up in {up:.1f} s, meta leader {cluster.meta_leader()}; MQTT ports "
          + ", ".join(f"{n.name}={n.mqtt_port}" for n in cluster.nodes))
    n1, n2, n3 = cluster.nodes

    # The reader's persistent session exists before any reading is published:
    # $MQTT_msgs keeps a message only for a consumer whose filter matches it.
    tail = h.Tail(work, n2.mqtt_uri, client_id=READER, extra_args=tls_args(out, READER, "clients"),
                  timeout=READY_S)
    assert tail.proc.poll() is None, open(tail.err).read()

    agent = h.Agent(work, "unused")
    agent_config(out, agent, [n1.mqtt_uri, n2.mqtt_uri, n3.mqtt_uri])
    agent.start()
    h.wait_until(lambda: connected_port(agent) is not None, READY_S, "the agent connected to a node")
    first = cluster.node_of_port(connected_port(agent))
    h.log(f"agent connected to {first.name}")

    # Commands go in over MQTT QoS 1 (NATS-side publishes reach MQTT
    # subscribers at QoS 0): eport-cmd with the commander's certificate on
    # another node than the agent's, the reply back the same way.
    via = next(n for n in cluster.nodes if n is not first)
    rc, reply = command(out, via, "c-before")
    assert rc == 0, f"eport-cmd via {via.name}: {reply}"
    assert json.loads(reply)["result"]["config"]["gateway.id"] == GW, reply
    h.log(f"get-config answered through the cluster (eport-cmd on {via.name}, agent on {first.name})")

    acked_log = work.file("acked.jsonl")
    sim = h.run_sim(agent, units=UNITS, rate=RATE, count=COUNT, acked_log=acked_log, background=True,
                    drain_timeout=SIM_S)

    def acked_count():
        return h.complete_lines(acked_log)
    h.wait_until(lambda: acked_count() >= KILL_AFTER_ACKED or sim.poll() is not None, SIM_S,
                 f"{KILL_AFTER_ACKED} readings acknowledged to the sim")
    assert sim.poll() is None, "the sim finished before the kill: make the run longer"
    victim = cluster.node_of_port(connected_port(agent))
    at_kill = acked_count()
    victim.kill9()
    h.log(f"{victim.name} (holding the agent's connection) killed with SIGKILL after {at_kill} acknowledged readings")

    out_s, err_s = sim.communicate(timeout=SIM_S)
    assert sim.returncode == 0, out_s + err_s
    h.log(out_s.strip())
    acked = h.read_jsonl(acked_log)
    assert len(acked) == UNITS * COUNT, f"{len(acked)} acknowledged, expected {UNITS * COUNT}"
    want = {h.key(r) for r in acked}
    t_wait = time.monotonic()
    h.wait_until(lambda: want <= {h.key(r) for r in tail.readings()}, DELIVERY_S,
                 "every acknowledged reading at the reader")
    h.log(f"all acknowledged readings at the reader {time.monotonic() - t_wait:.1f} s after the sim finished")
    after = cluster.node_of_port(connected_port(agent))
    assert after is not victim, f"the agent's last connection is still to the killed {victim.name}"

    # After the failover: is the agent's cmd subscription in place again?
    # 2.9.10 refuses it (SUBACK 0x80) while JetStream cannot create its
    # consumer (no meta leader yet), and the agent does not check its SUBACK,
    # so it may stay without commands until its next reconnect (docs/cluster.md,
    # "Failure modes"). Recorded, not asserted: it depends on the timing.
    # New MQTT connections (eport-cmd's) fail too while JetStream has no
    # leader ("TCP connect completion failure"), so eport-cmd tries again
    # until it is answered or the guard runs out.
    via = next(n for n in cluster.nodes if n is not victim and n is not after)
    t_cmd, attempts = time.monotonic(), 0
    while True:
        attempts += 1
        rc, detail = command(out, via, f"c-after-{attempts}", timeout_s=10)
        if rc == 0 or time.monotonic() - t_cmd > AFTER_KILL_CMD_S:
            break
    refused = [n.name for n in cluster.nodes
               if f'subscription on "eport.v1.{SITE}.{GW}.cmd"' in n.log() and "Unable to add JetStream consumer" in n.log()]
    after_kill = (f"answered (attempt {attempts})" if rc == 0 else
                  f"NOT answered in {attempts} attempts over {AFTER_KILL_CMD_S} s; the agent's cmd subscription was "
                  f"refused by: {', '.join(refused) or 'no node (it logged nothing)'}; last error: {detail.strip()[:160]}")
    h.log(f"get-config after the failover via {via.name}: {after_kill}")

    # The killed node comes back. Recorded, not asserted: 2.9.10 sometimes
    # keeps a restarted node unhealthy ("consumer ... is not current") for
    # minutes (docs/cluster.md, "Failure modes"); the guarantee above does not
    # depend on it.
    victim.start()
    try:
        back = cluster.wait_ready(REJOIN_S, f"{victim.name} healthy again after its restart")
        rejoin = f"healthy again {back:.1f} s after its restart"
    except natsrun.NatsError:
        rejoin = f"still unhealthy {REJOIN_S} s after its restart: {(victim.monitor('healthz') or {}).get('error')}"
        # Does a second, clean restart of that node clear it? (Recorded.)
        victim.stop()
        victim.start()
        try:
            again = cluster.wait_ready(REJOIN_S, f"{victim.name} healthy after a second restart")
            rejoin += f"; healthy {again:.1f} s after a second (clean) restart"
        except natsrun.NatsError:
            rejoin += f"; still unhealthy {REJOIN_S} s after a second (clean) restart"
    h.log(f"{victim.name} {rejoin}")

    assert agent.terminate() == 0
    tail.stop()
    cluster.stop()
    assert not tail.errors(), tail.errors()[:3]
    received = tail.readings()
    dups = h.check_all_arrived(acked, received)
    h.log(f"NATS cluster: {len(acked)} acknowledged readings, {len(want)} distinct (source, seq) all received by "
          f"the reader ({len(received)} deliveries, {dups} duplicates); kill -9 of {victim.name} after {at_kill} "
          f"acknowledged; agent failed over to {after.name}; get-config after the failover {after_kill}; restarted {victim.name} {rejoin}")


CLUSTERS = []

if __name__ == "__main__":
    exe = natsrun.find_nats_server()
    if not exe:
        print("SKIP: nats-server is not installed (apt-get install nats-server; scripts/setup.sh --test)")
        sys.exit(SKIP)
    problem = natsrun.version_problem(exe)
    if problem:
        print(f"FAIL: {problem}")
        sys.exit(1)
    try:
        h.main(test_nats_cluster)
    except BaseException:
        for c in CLUSTERS:
            print(c.logs(), flush=True)
        raise
    finally:
        for c in CLUSTERS:
            c.stop()
