"""Agent -> local gateway mosquitto (broker-config's generated bridge config)
-> mutual-TLS bridge -> generated cloud mosquitto (ACL, CRL, persistence) ->
a cloud reader with its own certificate, while eport-sim keeps sending:
1. cloud broker stopped 10 s and restarted: every acknowledged reading arrives;
2. the limit (why the direct connection is the default): cloud broker down and
   the GATEWAY broker killed -9 (a power cut): what its bridge had queued is
   lost, although the agent had deleted it from its outbox as delivered.

The reader: eport-tail speaks plain tcp:// only, so a paho client (Debian's
/usr/bin/python3) holds the cloud reader certificate (reader-1, persistent
session, QoS 1) and republishes each payload byte for byte to a plain
loopback mosquitto, where eport-tail decodes it and check_all_arrived compares
every field. The generated configs are used as rendered except what a test
must move: ports and files into the work dir, `user root`, and the bridge's
address (127.0.0.1, which is in the broker certificate's SAN). The gateway
broker is gated by the generated passwd and acl: the agent logs in as its
local user with the generated password file, the gateway monitor as the
local reader `monitor`, and an anonymous client is refused."""
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
BROKER_CONFIG = Path(SOURCE) / "broker-config"
sys.path.insert(0, str(BROKER_CONFIG / "lib"))
SKIP = 77

try:
    import paho.mqtt.client as mqtt
except ImportError:
    print(f"SKIP: python3-paho-mqtt is not installed for {sys.executable} (the TLS cloud reader needs it)")
    sys.exit(SKIP)

from eport_broker import broker as eb  # noqa: E402

SITE = "s1"
GW = "gw-test-01"
INVENTORY = f"""site = "{SITE}"
gateways = ["{GW}"]
readers = ["reader-1"]
[broker]
host = "mqtt.test.invalid"
[bridge]
local_readers = ["monitor"]
"""
UNITS, RATE, COUNT = 10, 40, 600   # 6000 readings over 15 s
OUTAGE_S = 10


class Recorder:
    """A paho client that records (time, topic, payload) and, given `forward`,
    republishes each data message to it at QoS 1 (the relay)."""

    def __init__(self, name, port, topics, tls=None, client_id="", clean_session=True, forward=None, login=None):
        self.name, self.topics, self.forward = name, topics, forward
        self.lock = threading.Lock()
        self.messages = []
        self.connects = 0
        self.c = mqtt.Client(client_id=client_id, clean_session=clean_session, protocol=mqtt.MQTTv311)
        if login:
            self.c.username_pw_set(*login)
        if tls:
            self.c.tls_set(ca_certs=str(tls[0]), certfile=str(tls[1]), keyfile=str(tls[2]))
        self.c.reconnect_delay_set(min_delay=1, max_delay=2)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()
        h.wait_until(lambda: self.connects > 0, 10, f"{name} connected")

    def _on_connect(self, c, userdata, flags, rc):
        if rc == 0:
            for t in self.topics:
                c.subscribe(t, 1)
            self.connects += 1

    def _on_message(self, c, userdata, msg):
        with self.lock:
            self.messages.append((time.monotonic(), msg.topic, msg.payload))
        if self.forward is not None and "/data/" in msg.topic:
            self.forward.publish(msg.topic, msg.payload, qos=1)

    def count(self, pred=lambda t, topic: True):
        with self.lock:
            return sum(1 for t, topic, _ in self.messages if pred(t, topic))

    def last(self, topic):
        with self.lock:
            return next(((t, p) for t, tp, p in reversed(self.messages) if tp == topic), (None, None))

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


class Subdir:
    """A harness.Workdir-like directory inside the test's work dir."""

    def __init__(self, work, name):
        self.path = work.file(name)
        os.makedirs(self.path, mode=0o777)

    def file(self, name):
        return os.path.join(self.path, name)


def generate(work):
    inv = work.file("site.toml")
    with open(inv, "w") as f:
        f.write(INVENTORY)
    out = Path(work.file("site"))
    p = subprocess.run([str(BROKER_CONFIG / "eport-broker"), "gen", inv, str(out), "--conf-dir",
                        str(out / "broker")], capture_output=True, text=True)
    assert p.returncode == 0, f"eport-broker gen: {p.stdout}{p.stderr}"
    # The broker's crlfile is the site's one CRL, pki/crl.pem (docs/operators.md section 4).
    (out / "broker" / "crl.pem").symlink_to(Path("..") / "pki" / "crl.pem")
    return out


def agent_from_generated(work, out, gateway_port):
    """harness.Agent, but with the generator's bridge/agent.toml as its
    config (paths moved into the work dir, the local broker's test port)."""
    agent = h.Agent(work, f"tcp://127.0.0.1:{gateway_port}", gateway=GW, site=SITE)
    text = (out / "gateways" / GW / "bridge" / "agent.toml").read_text()
    for key, value in (("unix_socket", agent.socket), ("path", agent.db),
                       ("uri", f"tcp://127.0.0.1:{gateway_port}"),
                       ("password_file", out / "gateways" / GW / "bridge" / "agent.password")):
        text, n = re.subn(rf"^{key} = .*$", f'{key} = "{value}"', text, count=1, flags=re.M)
        assert n == 1, f"generated bridge/agent.toml has no '{key} =' line"
    with open(agent.config, "w") as f:
        f.write(text)
    return agent


class Chain:
    """The whole path in its own directory: cloud broker, gateway broker,
    reader + relay, relay broker + eport-tail, agent, eport-sim."""

    STATE = f"$SYS/broker/connection/{GW}/state"

    def __init__(self, work, out, name):
        self.work, self.name = Subdir(work, name), name
        self.root = work
        gw_dir = out / "gateways" / GW
        self.cloud, copy = eb.start_copy(out / "broker" / "mosquitto.conf", Path(self.work.file("cloud")),
                                         stay_root=True)
        self.cloud_port = next(iter(copy.ports.values()))
        self.gateway, self.gw_copy = eb.start_copy(
            gw_dir / "bridge" / "mosquitto.conf", Path(self.work.file("gateway")), stay_root=True,
            overrides={"address": f"127.0.0.1:{self.cloud_port}", "bridge_cafile": str(gw_dir / "ca.crt"),
                       "bridge_certfile": str(gw_dir / f"{GW}.crt"), "bridge_keyfile": str(gw_dir / f"{GW}.key"),
                       "password_file": str(gw_dir / "bridge" / "passwd"),
                       "acl_file": str(gw_dir / "bridge" / "acl")})
        self.gw_port = next(iter(self.gw_copy.ports.values()))
        self.queue_limit = eb.parse_config(self.gw_copy.path).options["max_queued_messages"][-1]
        self.relay_broker = h.Broker(self.work)
        self.relay_broker.start()
        self.tail = h.Tail(self.work, self.relay_broker.uri, client_id="bridge-tail")
        self.clients, self.agent = [], None
        self.out_client = mqtt.Client(client_id="relay-out", protocol=mqtt.MQTTv311)
        self.out_client.connect("127.0.0.1", self.relay_broker.port)
        self.out_client.loop_start()
        monitor = (gw_dir / "bridge" / "local-readers" / "monitor.password").read_text().splitlines()[0]
        self.local = Recorder("gateway monitor", self.gw_port, [self.STATE, f"eport/v1/{SITE}/{GW}/data/#"],
                              login=("monitor", monitor))
        self.clients.append(self.local)
        self.wait_bridge(b"1", 15)
        self.reader = Recorder("cloud reader", self.cloud_port, ["eport/v1/+/+/data/#"],
                               tls=(out / "broker" / "ca.crt", out / "clients" / "reader-1" / "reader-1.crt",
                                    out / "clients" / "reader-1" / "reader-1.key"),
                               client_id="reader-1", clean_session=False, forward=self.out_client)
        self.clients.append(self.reader)
        accepted, detail = eb.mqtt_probe(self.gw_port, None)
        assert not accepted, f"the gateway broker accepted an anonymous client: {detail}"
        self.agent = agent_from_generated(self.work, out, self.gw_port)
        self.agent.start()
        h.wait_until(lambda: f"u'{GW}'" in self.gateway.log(), 10, f"the agent logged in as local user {GW}")
        h.log(f"{name}: cloud broker (generated, TLS) on {self.cloud_port}, gateway broker (generated bridge, "
              f"passwd and acl; anonymous CONNECT {detail}) on {self.gw_port}, agent logged in as {GW}")

    def wait_bridge(self, state, timeout):
        h.wait_until(lambda: self.local.last(self.STATE)[1] == state, timeout, f"bridge state {state.decode()}")
        return self.local.last(self.STATE)[0]

    def sim(self):
        self.acked_log = self.work.file("acked.jsonl")
        return h.run_sim(self.agent, units=UNITS, rate=RATE, count=COUNT, acked_log=self.acked_log,
                         background=True)

    def finish_sim(self, sim):
        out, err = sim.communicate(timeout=120)
        h.log(out.strip())
        assert sim.returncode == 0, f"eport-sim: {out} {err}"
        acked = h.read_jsonl(self.acked_log)
        assert len(acked) == UNITS * COUNT, f"eport-sim got {len(acked)} acks, expected {UNITS * COUNT}"
        return acked

    def envelopes_between(self, t0, t1):
        return self.local.count(lambda t, topic: t0 <= t <= t1 and "/data/" in topic)

    def stop_agent(self):
        """Stops the agent; returns the readings it still had in its outbox."""
        assert self.agent.terminate() == 0
        m = re.findall(r"(\d+) waiting in the outbox", self.agent.read_log())
        assert m, "the agent's stop line (... waiting in the outbox) is missing"
        return int(m[-1])

    def close(self):
        for c in self.clients:
            c.stop()
        self.out_client.disconnect()
        self.out_client.loop_stop()
        if self.agent and self.agent.proc and self.agent.proc.poll() is None:
            self.agent.proc.kill()
        if self.tail.proc.poll() is None:
            self.tail.stop()
        self.gateway.stop()
        self.cloud.stop()
        self.relay_broker.stop()
        # Into the work dir's top level, where harness.main prints *.log on failure.
        for what, m in (("gateway", self.gateway), ("cloud", self.cloud)):
            with open(self.root.file(f"{self.name}-{what}-mosquitto.log"), "w") as f:
                f.write(m.log())
        if self.agent and self.agent.starts:
            with open(self.root.file(f"{self.name}-agent.log"), "w") as f:
                f.write(self.agent.read_log())


def cloud_restart(work, out):
    """Cloud broker stopped for OUTAGE_S and started again: nothing lost."""
    c = Chain(work, out, "restart")
    try:
        sim = c.sim()
        time.sleep(2)
        c.cloud.stop()
        t_down = time.monotonic()
        h.log(f"cloud broker stopped for {OUTAGE_S} s")
        c.wait_bridge(b"0", 10)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
        c.cloud.start()
        t_up = time.monotonic()
        h.log("cloud broker started again")
        t_bridge = c.wait_bridge(b"1", 60)
        acked = c.finish_sim(sim)
        want = {h.key(r) for r in acked}
        h.wait_until(lambda: want <= {h.key(r) for r in c.tail.readings()}, 90,
                     "every acknowledged reading at the cloud reader")
        t_all = time.monotonic()
        assert c.stop_agent() == 0
        time.sleep(0.5)
        c.tail.stop()
        dups = h.check_all_arrived(acked, c.tail.readings())
        during = c.envelopes_between(t_down, t_bridge)
        h.log(f"restart: bridge down {t_bridge - t_down:.1f} s, reconnected {t_bridge - t_up:.1f} s after the "
              f"cloud broker came back (restart_timeout 5 30); the gateway broker accepted {during} of "
              f"{c.envelopes_between(0, t_all)} envelopes while the bridge was down (its queue limit: "
              f"{c.queue_limit} messages)")
        h.log(f"restart: all {len(acked)} acknowledged readings arrived at the cloud reader field by field, "
              f"{dups} duplicate deliveries, the last {t_all - t_up:.1f} s after the cloud restart; the reader "
              f"got {c.reader.count()} envelopes and reconnected {c.reader.connects - 1} time(s)")
        assert c.reader.connects >= 2, "the cloud reader never saw the outage"
        assert during > 0, "no envelope was published while the bridge was down: the outage tested nothing"
    finally:
        c.close()


def gateway_crash(work, out):
    """Cloud broker down, gateway broker killed -9 and restarted, cloud back:
    the bridge's queue (RAM; persistence is a snapshot every 60 s) is lost."""
    c = Chain(work, out, "crash")
    try:
        sim = c.sim()
        time.sleep(2)
        c.cloud.stop()
        t_down = time.monotonic()
        c.wait_bridge(b"0", 10)
        time.sleep(5)
        queued = c.envelopes_between(t_down, time.monotonic())
        c.gateway.proc.kill()
        c.gateway.proc.wait()
        h.log(f"cloud broker down; gateway broker SIGKILLed {time.monotonic() - t_down:.1f} s later, "
              f"after it had accepted {queued} envelopes for the bridge")
        time.sleep(1)
        c.gateway.start()
        time.sleep(3)
        c.cloud.start()
        c.wait_bridge(b"1", 60)
        acked = c.finish_sim(sim)
        want = {h.key(r) for r in acked}
        # Wait until nothing more arrives: the lost readings never will.
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 4:
            n = len(c.tail.readings())
            if n != last:
                last, quiet_since = n, time.monotonic()
            time.sleep(0.25)
        waiting = c.stop_agent()
        time.sleep(0.5)
        c.tail.stop()
        got = {h.key(r) for r in c.tail.readings()}
        lost = want - got
        h.log(f"crash: {len(lost)} of {len(acked)} acknowledged readings never reached the cloud; the agent's "
              f"outbox held {waiting} (it had deleted them when the gateway broker acknowledged them)")
        assert waiting == 0, f"the agent still had {waiting} readings waiting"
        assert lost, ("nothing was lost: the gateway broker kept its bridge queue across kill -9; "
                      "update docs/operators.md section 9")
    finally:
        c.close()


def test_gateway_bridge(work):
    t0 = time.monotonic()
    out = generate(work)
    cloud_restart(work, out)
    t1 = time.monotonic()
    gateway_crash(work, out)
    h.log(f"cloud restart scenario {t1 - t0:.1f} s, gateway crash scenario {time.monotonic() - t1:.1f} s")


if __name__ == "__main__":
    h.main(test_gateway_bridge)
