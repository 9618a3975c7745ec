"""The agent against RabbitMQ's MQTT plugin instead of Mosquitto: every reading
eport-sim had acknowledged reaches eport-tail (subscribed to RabbitMQ's MQTT
port) field by field, a cloud command (eport-cmd get-config) is answered,
and the retained status shows online, then the last will after kill -9. It
also records whether a $share/<group>/ subscription receives anything.
Skips (exit 77) only where RabbitMQ cannot start: not installed, not root.

RabbitMQ runs as in shared/PLATFORM.md (Debian's rabbitmq-server drops to the
rabbitmq user, so its directory belongs to it), on free loopback ports, with
its own epmd on a free port so that a system RabbitMQ is never touched; both
are stopped at the end by their process ids."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import harness as h

SKIP = 77
NODE = "eptest@localhost"
START_TIMEOUT_S = 60
CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")
UNITS, RATE, COUNT = 10, 100, 200   # 2000 readings over 2 s
SUB = shutil.which("mosquitto_sub")


def mqtt_connack(port, timeout=1.0):
    """True if an MQTT 3.1.1 CONNECT on 127.0.0.1:port gets CONNACK 0."""
    cid = b"eport-probe"
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(cid).to_bytes(2, "big") + cid
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(bytes([0x10, len(body)]) + body)
            data = s.recv(4)
            s.sendall(b"\xe0\x00")  # DISCONNECT
            return len(data) == 4 and data[0] == 0x20 and data[3] == 0
    except OSError:
        return False


class Rabbit:
    """A RabbitMQ node with the MQTT plugin, started as in shared/PLATFORM.md."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="eport-rabbitmq-")
        os.chmod(self.dir, 0o755)
        ports = set()
        while len(ports) < 4:
            ports.add(h.free_port())
        self.amqp_port, self.mqtt_port, self.dist_port, self.epmd_port = sorted(ports)
        self.epmd = self.server = None
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
                    f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}\n"
                    "mqtt.allow_anonymous = true\nloopback_users = none\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        shutil.chown(self.dir, "rabbitmq", "rabbitmq")
        for name in os.listdir(self.dir):
            shutil.chown(os.path.join(self.dir, name), "rabbitmq", "rabbitmq")
        self.env = {**os.environ, "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
                    "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
                    "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"), "RABBITMQ_NODENAME": NODE,
                    "RABBITMQ_DIST_PORT": str(self.dist_port), "ERL_EPMD_PORT": str(self.epmd_port),
                    "HOME": self.dir}
        self.log_path = os.path.join(self.dir, "server.log")

    def start(self):
        """Returns the seconds until MQTT answered, or None if it never did."""
        t0 = time.monotonic()
        # Our own epmd in the foreground, so its pid is ours to stop.
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.server = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=open(self.log_path, "w"),
                                       stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - t0 < START_TIMEOUT_S:
            if self.server.poll() is not None:
                return None
            if mqtt_connack(self.mqtt_port):
                return time.monotonic() - t0
            time.sleep(0.25)
        return None

    def log_tail(self, n=3000):
        logs = os.path.join(self.dir, "log")
        paths = [self.log_path] + ([os.path.join(logs, f) for f in sorted(os.listdir(logs))]
                                   if os.path.isdir(logs) else [])
        text = ""
        for path in paths:
            try:
                with open(path, errors="replace") as f:
                    text += f"--- {path} ---\n{f.read()[-n:]}\n"
            except OSError:
                pass
        return text

    def stop(self):
        """rabbitmqctl stop (clean), then our epmd; by pid only if they hang."""
        if self.server is not None and self.server.poll() is None:
            subprocess.run(["rabbitmqctl", "-n", NODE, "stop"], env=self.env, capture_output=True, timeout=60)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)  # its own session: only our node's processes
                self.server.wait()
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            self.epmd.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def skip_reason():
    if not shutil.which("rabbitmq-server", path=os.environ.get("PATH", "") + ":/usr/sbin"):
        return "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    if os.geteuid() != 0:
        return "Debian's rabbitmq-server must be started as root (it switches to the rabbitmq user)"
    try:
        import pwd
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return "no rabbitmq user"
    if not shutil.which("epmd"):
        return "epmd (erlang-base) is not installed"
    return None


def test_rabbitmq(work):
    uri = f"tcp://127.0.0.1:{RABBIT.mqtt_port}"
    tail = h.Tail(work, uri)
    # Shared subscriptions (how cloud readers scale out on Mosquitto): is a
    # $share/<group>/ filter served? Recorded, not required: the readings are
    # checked through eport-tail's ordinary subscription.
    counters = {}
    if SUB:
        for name, topic in (("plain", "eport/v1/+/+/data/#"), ("share", "$share/analytics/eport/v1/+/+/data/#")):
            counters[name] = subprocess.Popen([SUB, "-h", "127.0.0.1", "-p", str(RABBIT.mqtt_port), "-q", "1",
                                               "-t", topic, "-F", "%t"], stdout=open(work.file(f"{name}.out"), "w"),
                                              stderr=subprocess.DEVNULL)
        time.sleep(1)
    agent = h.Agent(work, uri)
    agent.start()
    h.wait_until(lambda: "connected to" in agent.read_log(), 15, "the agent connected to RabbitMQ")
    acked_log = work.file("acked.jsonl")
    t0 = time.monotonic()
    p = h.run_sim(agent, units=UNITS, rate=RATE, count=COUNT, acked_log=acked_log)
    assert p.returncode == 0, p.stdout + p.stderr
    h.log(p.stdout.strip())
    acked = h.read_jsonl(acked_log)
    assert len(acked) == UNITS * COUNT, f"{len(acked)} acknowledged, expected {UNITS * COUNT}"
    want = {h.key(r) for r in acked}
    h.wait_until(lambda: want <= {h.key(r) for r in tail.readings()}, 30, "every acked reading via RabbitMQ")
    t_all = time.monotonic() - t0
    shared = "not checked (no mosquitto_sub)"
    if counters:
        time.sleep(0.5)
        seen = {}
        for name, proc in counters.items():
            proc.terminate()
            proc.wait(timeout=10)
            with open(work.file(f"{name}.out")) as f:
                seen[name] = sum(1 for line in f if line.strip())
        assert seen["plain"] > 0, "mosquitto_sub on eport/v1/+/+/data/# received nothing"
        shared = (f"a $share/analytics/ subscription was granted and received {seen['share']} of the "
                  f"{seen['plain']} envelopes a plain subscription received")

    # A cloud command and its reply, also through RabbitMQ.
    reply = subprocess.run([CMD, "--broker", uri, "--site", "cnsha", "--gateway", "gw-test-01", "--timeout", "10",
                            "get-config"], capture_output=True, text=True, timeout=30)
    assert reply.returncode == 0, f"eport-cmd: {reply.returncode} {reply.stdout} {reply.stderr}"
    config = json.loads(reply.stdout)["result"]["config"]
    assert config["mqtt.uri"] == uri, config

    # Gateway presence: the retained birth message, then the last will.
    presence = "not checked (no mosquitto_sub)"
    if SUB:
        status = retained_status()
        assert status.get("state") == "online" and status.get("gateway") == "gw-test-01", status
        agent.kill9()
        h.wait_until(lambda: retained_status().get("state") == "offline", 10, "the last will (offline) retained")
        presence = "retained status online, then the last will (offline) after kill -9"
    else:
        assert agent.terminate() == 0
    tail.stop()
    assert not tail.errors(), tail.errors()[:3]
    dups = h.check_all_arrived(acked, tail.readings())
    h.log(f"RabbitMQ MQTT: all {len(acked)} acknowledged readings arrived field by field in {t_all:.1f} s, "
          f"{dups} duplicates; get-config answered through RabbitMQ; {presence}; {shared}")


def retained_status():
    """The retained status a subscriber that connects now gets ({} if none), checked against
    schema/json/status.schema.json."""
    topic = "eport/v1/cnsha/gw-test-01/status"
    p = subprocess.run([SUB, "-h", "127.0.0.1", "-p", str(RABBIT.mqtt_port), "-q", "1", "-t",
                        topic, "-C", "1", "-W", "3"], capture_output=True, text=True)
    return h.check_json(topic, p.stdout) if p.returncode == 0 and p.stdout.strip() else {}


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    t_start = time.monotonic()
    RABBIT = Rabbit()
    try:
        up = RABBIT.start()
        if up is None:
            print(f"SKIP: RabbitMQ did not start within {START_TIMEOUT_S} s (MQTT port {RABBIT.mqtt_port} never "
                  f"answered CONNECT):\n{RABBIT.log_tail()}")
            sys.exit(SKIP)
        h.log(f"RabbitMQ {NODE} with the MQTT plugin up in {up:.1f} s (MQTT on {RABBIT.mqtt_port})")
        try:
            h.main(test_rabbitmq)
        except BaseException:
            print(RABBIT.log_tail(), flush=True)
            raise
    finally:
        t_stop = time.monotonic()
        RABBIT.stop()
        h.log(f"RabbitMQ and its epmd stopped in {time.monotonic() - t_stop:.1f} s; "
              f"test {time.monotonic() - t_start:.1f} s")
