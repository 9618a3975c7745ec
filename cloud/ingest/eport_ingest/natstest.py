"""natstest: a throw-away single nats-server with JetStream for the tests and the benchmark
(the NATS counterpart of pgtest.py; not shipped in the eport-ingest package). It listens
on a free loopback port without TLS and keeps its store in a temporary directory. Instead
of the MQTT layer's $MQTT_msgs it holds a stream of our own over the same subjects
($MQTT.msgs.eport.v1.>), with the same interest retention, so that the worker's decode,
pull and acknowledgement run unchanged (`run --stream NAME`); messages are published
into it with JetStream acknowledgements, so they are stored before a worker starts."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .jetstream import JsApiError, PullConsumer, ConsumerConfig
from .nats import Connection, NatsError, new_id

SUBJECTS = "$MQTT.msgs.eport.v1.>"


def missing() -> str:
    """'' if nats-server is installed, else what to install."""
    return "" if shutil.which("nats-server") else "nats-server (apt-get install nats-server)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempNats:
    def __init__(self, base: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="eport-nats-", dir=base))
        self.port = _free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> "TempNats":
        conf = self.dir / "nats.conf"
        conf.write_text(f'listen: "127.0.0.1:{self.port}"\n'
                        f'jetstream {{ store_dir: "{self.dir / "js"}", max_file_store: 2G, max_memory_store: 64M }}\n')
        self.proc = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "nats.log", "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c = Connection([self.url], name="natstest")
                c.connect()
                c.close()
                return self
            except NatsError:
                if self.proc.poll() is not None:
                    raise RuntimeError("nats-server exited: " + (self.dir / "nats.log").read_text()[-2000:])
                time.sleep(0.05)
        raise RuntimeError("nats-server did not come up within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Client:
    """A plain connection for the test side: the stream, publishing, consumer state."""

    def __init__(self, url: str, stream: str, durable: str = "eport-ingest"):
        self.conn = Connection([url], name="natstest-client")
        self.conn.connect()
        self.js = PullConsumer(self.conn, ConsumerConfig(stream=stream, durable=durable))
        self.js.attach()
        self.stream = stream

    def create_stream(self) -> None:
        """The stream anew (an old one of that name is deleted first)."""
        try:
            self.js.api(f"$JS.API.STREAM.DELETE.{self.stream}", {})
        except JsApiError:
            pass
        self.js.api(f"$JS.API.STREAM.CREATE.{self.stream}",
                    {"name": self.stream, "subjects": [SUBJECTS], "retention": "interest", "storage": "file",
                     "num_replicas": 1})

    def ensure_consumer(self, cfg: ConsumerConfig) -> dict:
        """The workers' durable consumer with their own code (PullConsumer.ensure), created
        before publishing: interest retention keeps a message only for a consumer that exists."""
        pc = PullConsumer(self.conn, cfg)
        pc.inbox, pc.inbox_sid = self.js.inbox, self.js.inbox_sid
        return pc.ensure()

    def publish(self, items, window: int = 256) -> list[int]:
        """[(subject, payload)] into the stream, each acknowledged by JetStream (stored);
        returns their stream sequence numbers in order."""
        seqs, pending = [], {}
        prefix = self.js.inbox[:-1]

        def drain(until: int) -> None:
            deadline = time.monotonic() + 10
            while len(pending) > until:
                m = self.conn.next_msg(deadline)
                if m is None:
                    raise NatsError(f"{len(pending)} publications not acknowledged by JetStream")
                if m.subject in pending:
                    r = json.loads(m.data or b"{}")
                    if "error" in r or "seq" not in r:
                        raise NatsError(f"publication refused: {r}")
                    seqs[pending.pop(m.subject)] = r["seq"]

        for i, (subject, payload) in enumerate(items):
            reply = prefix + new_id()
            pending[reply] = i
            seqs.append(0)
            self.conn.publish(subject, payload, reply)
            if len(pending) >= window:
                drain(window // 2)
        drain(0)
        return seqs

    def consumer_info(self, durable: str) -> dict:
        return self.js.api(f"$JS.API.CONSUMER.INFO.{self.stream}.{durable}", {})

    def stream_has(self, seq: int) -> bool:
        """Whether message seq is still in the stream (interest retention: not yet acknowledged)."""
        try:
            self.js.api(f"$JS.API.STREAM.MSG.GET.{self.stream}", {"seq": seq})
            return True
        except JsApiError as e:
            if e.code == 404:
                return False
            raise

    def close(self) -> None:
        self.conn.close()
