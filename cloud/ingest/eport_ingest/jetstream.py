"""jetstream: a JetStream pull consumer over eport_ingest.nats, enough for the ingest:
create (or find) a durable consumer on a stream, fetch a batch, acknowledge messages.
JetStream API (nats-server 2.9): requests to $JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>
and $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>; each delivered message carries a reply
subject $JS.ACK.<stream>.<durable>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>,
and publishing "+ACK" to it acknowledges it. A pull that runs out ends with a status-only
message (404 No Messages, 408 Request Timeout, 409 ...)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .nats import Connection, Msg, NatsError, new_id

STREAM_NOT_FOUND = 10059


class JsApiError(NatsError):
    def __init__(self, what: str, code: int, err_code: int, description: str):
        super().__init__(f"{what}: {description} (code {code}, err_code {err_code})")
        self.code, self.err_code = code, err_code


@dataclass
class ConsumerConfig:
    stream: str = "$MQTT_msgs"
    durable: str = "eport-ingest"
    filter_subject: str = "$MQTT.msgs.eport.v1.>"
    ack_wait_s: float = 30.0
    max_ack_pending: int = 20000
    max_deliver: int = -1          # never give up on a reading
    replicas: int = 0              # 0: the stream's


@dataclass
class Delivery:
    msg: Msg
    stream_seq: int
    delivered: int                 # 1 the first time, more on redelivery


def parse_ack_subject(reply: str) -> tuple[int, int]:
    """(delivered count, stream seq) from a $JS.ACK reply subject (the 9-token 2.9 form
    $JS.ACK.<stream>.<durable>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, or the 12-token
    form with domain and account hash of later servers)."""
    t = reply.split(".")
    if len(t) < 9 or t[0] != "$JS" or t[1] != "ACK":
        raise NatsError(f"not a JetStream ack subject: {reply[:120]!r}")
    if len(t) == 9:
        return int(t[4]), int(t[5])
    return int(t[6]), int(t[7])


class PullConsumer:
    def __init__(self, conn: Connection, cfg: ConsumerConfig, inbox_prefix: str = "_INBOX"):
        self.conn, self.cfg = conn, cfg
        self.inbox_prefix = inbox_prefix
        self.inbox = ""
        self.inbox_sid = 0

    def attach(self) -> None:
        """After every (re)connect: the inbox subscription (kept across reconnects by the
        connection) is made once."""
        if not self.inbox_sid:
            self.inbox = f"{self.inbox_prefix}.{new_id()}.*"
            self.inbox_sid = self.conn.subscribe(self.inbox)

    def api(self, subject: str, body: dict, timeout_s: float = 5.0) -> dict:
        """One JetStream API request (any $JS.API subject) on this consumer's inbox."""
        m = self.conn.request(subject, json.dumps(body).encode(), (self.inbox_sid, self.inbox), timeout_s)
        if m.status == 503:
            raise NatsError(f"{subject}: no responders (JetStream not ready on {self.conn.url})")
        try:
            r = json.loads(m.data or b"{}")
        except ValueError as e:
            raise NatsError(f"{subject}: reply is not JSON: {m.data[:100]!r}") from e
        if "error" in r:
            e = r["error"]
            raise JsApiError(subject, e.get("code", 0), e.get("err_code", 0), e.get("description", ""))
        return r

    def ensure(self, timeout_s: float = 5.0) -> dict:
        """Creates the durable consumer, or finds it with the same configuration (the
        server answers a create with an identical config with the existing consumer)."""
        c = self.cfg
        config = {"durable_name": c.durable, "deliver_policy": "all", "ack_policy": "explicit",
                  "ack_wait": int(c.ack_wait_s * 1e9), "max_deliver": c.max_deliver,
                  "filter_subject": c.filter_subject, "replay_policy": "instant",
                  "max_ack_pending": c.max_ack_pending, "max_waiting": 512}
        if c.replicas:
            config["num_replicas"] = c.replicas
        return self.api(f"$JS.API.CONSUMER.DURABLE.CREATE.{c.stream}.{c.durable}",
                         {"stream_name": c.stream, "config": config}, timeout_s)

    def info(self, timeout_s: float = 5.0) -> dict:
        return self.api(f"$JS.API.CONSUMER.INFO.{self.cfg.stream}.{self.cfg.durable}", {}, timeout_s)

    def fetch(self, batch: int, expires_s: float) -> list[Delivery]:
        """Up to batch messages; waits at most about expires_s for the first ones."""
        reply = self.inbox[:-1] + new_id()
        req = {"batch": batch, "expires": int(expires_s * 1e9)}
        self.conn.publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.cfg.stream}.{self.cfg.durable}",
                          json.dumps(req).encode(), reply)
        out = []
        deadline = time.monotonic() + expires_s + 1.0
        while len(out) < batch:
            m = self.conn.next_msg(deadline)
            if m is None:
                break
            if m.status and not m.data:
                if m.subject == reply:   # this pull is over (404, 408, 409)
                    break
                continue                 # the end of an earlier pull
            if not m.reply.startswith("$JS.ACK."):
                continue
            delivered, sseq = parse_ack_subject(m.reply)
            out.append(Delivery(m, sseq, delivered))
        return out

    def ack(self, deliveries: list[Delivery]) -> None:
        self.conn.publish_many([(d.msg.reply, b"+ACK") for d in deliveries])

    def nak(self, deliveries: list[Delivery]) -> None:
        """Hands the messages back now (to any worker) instead of after ack_wait."""
        self.conn.publish_many([(d.msg.reply, b"-NAK") for d in deliveries])
