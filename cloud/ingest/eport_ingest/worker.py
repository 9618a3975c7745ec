"""worker: one eport-ingest worker. It pulls batches from the shared JetStream durable
consumer on the MQTT layer's own $MQTT_msgs stream (docs/cluster.md section 6: never a
stream of our own), decodes them with eport.decode (consumers/python/eport: the one Python
decoder of the project, with its limits), writes each batch to PostgreSQL in one
transaction (db.store_batch) and only then acknowledges it. Any number of identical
workers share the consumer: JetStream hands each message to one of them, and a message
a dead worker did not acknowledge goes to another after ack_wait."""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass, field

import psycopg

from . import db
from .jetstream import ConsumerConfig, PullConsumer, JsApiError
from .nats import Connection, NatsError, TlsOptions

MQTT_MSGS_PREFIX = "$MQTT.msgs."
MAX_JSON_BYTES = 64 << 10        # health and status are small; refuse anything bigger


def load_decoder(schema: str | None = None, cache_dir: str | None = None):
    """(eport.decode, a Codec): the kit's decoder, from schema if given (else the installed
    generated code, or the repository's schema)."""
    from eport import decode as ec  # the project's Python decoder (consumers/python/eport)
    return ec, ec.load_codec(schema, cache_dir=cache_dir)


class Poison(Exception):
    """A batch that PostgreSQL refuses whatever the retries (the message says why)."""


def transient(e: psycopg.Error) -> bool:
    """Worth retrying the same batch: the connection, the server, a deadlock or a
    serialization failure; not a value the database refuses."""
    return isinstance(e, (psycopg.OperationalError, psycopg.errors.DeadlockDetected,
                          psycopg.errors.SerializationFailure, psycopg.InterfaceError)) and \
        not isinstance(e, (psycopg.errors.DataException,))


@dataclass
class Options:
    servers: list
    tls: TlsOptions | None
    dsn: str
    consumer: ConsumerConfig = field(default_factory=ConsumerConfig)
    name: str = "eport-ingest"
    batch: int = 256                 # messages (envelopes) per pull and per transaction
    expires_s: float = 1.0           # how long a pull waits for messages
    health_interval_s: int = 60      # the gateways' health.interval_s
    overdue_factor: float = 3.0      # offline after this many intervals without health
    overdue_check_s: float = 5.0
    partition: str = "month"
    inbox_prefix: str = "_INBOX"
    stats_every_s: float = 10.0


def log(name, **kv):
    print(json.dumps({"worker": name, "t": round(time.time(), 3), **kv}, separators=(",", ":")),
          file=sys.stderr, flush=True)


class Worker:
    def __init__(self, opts: Options, codec, ec):
        self.o, self.codec, self.ec = opts, codec, ec
        self.conn = Connection(opts.servers, opts.tls, name=opts.name)
        self.js = PullConsumer(self.conn, opts.consumer, opts.inbox_prefix)
        self.db = None
        self.partitions = db.Partitions(opts.partition)
        self.stop = False
        self.counts = {"messages": 0, "readings_stored": 0, "duplicates": 0, "rejected": 0, "health": 0,
                       "batches": 0, "redelivered": 0, "nats_reconnects": 0, "db_retries": 0, "gaps": 0,
                       "custody_events": 0, "checkpoints": 0, "handed_back": 0}
        self.t0 = time.monotonic()
        self.last_overdue = 0.0
        self.last_stats = time.monotonic()

    # -- message -> what to store ----------------------------------------------------------
    def decode(self, subject: str, payload: bytes):
        if not subject.startswith(MQTT_MSGS_PREFIX):
            return db.Rejected(subject, "not a subject of $MQTT_msgs", payload)
        topic = subject[len(MQTT_MSGS_PREFIX):].replace(".", "/")
        kind, site, gateway, cls = self.ec.parse_topic(topic)
        if kind == "data":
            try:
                header, readings, problems = self.codec.decode_payload(payload, topic)  # v2: ids from the topic
            except self.ec.DecodeError as e:
                return db.Rejected(subject, str(e), payload)
            # Trust the topic (the broker's permissions), not the payload's claims.
            if (header["site"], header["gateway"], header["priority"]) != (site, gateway, cls):
                return db.Rejected(subject, f"envelope of {header['site']}/{header['gateway']}/"
                                   f"{header['priority']} on another gateway's or class's topic", payload)
            out = [db.DataMessage(site, gateway, cls, header["envelope_seq"], readings)]
            out += [db.Rejected(subject, p, b"") for p in problems]
            return out
        if kind == "evidence":
            # Evidence checkpoints (docs/evidence.md 13): Alarm envelopes of checkpoint records only.
            try:
                header, readings, problems = self.codec.decode_payload(payload, topic)  # v2: ids from the topic
            except self.ec.DecodeError as e:
                return db.Rejected(subject, str(e), payload)
            if (header["site"], header["gateway"]) != (site, gateway):
                return db.Rejected(subject, f"envelope of {header['site']}/{header['gateway']} on another "
                                   "gateway's evidence topic", payload)
            if any(r.get("kind") != "evidence" or not str(r.get("source", "")).endswith(":ev") for r in readings):
                return db.Rejected(subject, "an envelope on the evidence topic holds a record that is not an "
                                   "evidence checkpoint", payload)
            out = [db.DataMessage(site, gateway, header["priority"], header["envelope_seq"], readings)]
            out += [db.Rejected(subject, p, b"") for p in problems]
            return out
        if kind in ("health", "status"):
            if len(payload) > MAX_JSON_BYTES:
                return db.Rejected(subject, f"{kind} of {len(payload)} bytes > {MAX_JSON_BYTES}", payload)
            try:
                value = json.loads(payload)
            except ValueError:
                return db.Rejected(subject, f"{kind} message is not JSON", payload)
            if not isinstance(value, dict):
                return db.Rejected(subject, f"{kind} message is not a JSON object", payload)
            if kind == "health":
                return db.HealthMessage(site, gateway, value)
            return db.StatusMessage(site, gateway, str(value.get("state", "")))
        return None   # reply, cmd: not the ingest's business; acknowledged

    # -- connections -----------------------------------------------------------------------
    def connect_nats(self) -> None:
        """Connects (next node on failure) and creates or finds the durable consumer. While the
        stream does not exist yet (10059: $MQTT_msgs appears when the first MQTT client
        connects) or JetStream cannot answer, it stays on the same node and asks again."""
        backoff = 0.2
        while not self.stop:
            try:
                if not self.conn.connected:
                    self.conn.connect()
                    self.js.attach()
                info = self.js.ensure()
                log(self.o.name, event="consumer", url=self.conn.url, durable=info.get("name"),
                    pending=info.get("num_pending"), ack_pending=info.get("num_ack_pending"))
                return
            except JsApiError as e:
                log(self.o.name, event="consumer_retry", error=str(e))
            except NatsError as e:
                log(self.o.name, event="nats_retry", error=str(e))
                if "no reply" not in str(e):   # a JetStream request timeout keeps the connection
                    self.conn.close()
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def connect_db(self) -> None:
        backoff = 0.2
        while not self.stop:
            try:
                self.db = db.connect(self.o.dsn)
                db.init_schema(self.db)
                return
            except psycopg.Error as e:
                log(self.o.name, event="db_retry", error=str(e).strip())
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # -- the loop --------------------------------------------------------------------------
    def store(self, messages) -> db.BatchResult | None:
        """Until committed (or stopped): a batch is never acknowledged before its commit.
        It is tried once even after SIGTERM (a batch already pulled is finished), and
        retried only while not stopped: returns None when stopped before a commit. A
        failure that retrying cannot cure (a value PostgreSQL refuses, such as a NUL byte
        in a string) raises Poison."""
        recheck_partitions = True
        while True:
            try:
                if self.db is None or self.db.closed:
                    self.connect_db()
                    if self.db is None:
                        return None
                return db.store_batch(self.db, self.partitions, messages, self.o.health_interval_s)
            except psycopg.Error as e:
                self.counts["db_retries"] += 1
                log(self.o.name, event="db_error", error=str(e).strip()[:300])
                try:
                    if self.db is not None and self.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        self.db.rollback()
                except psycopg.Error:
                    pass
                if not transient(e):
                    if recheck_partitions and self.partitions.known:
                        # a partition this process created may have been dropped since (retention)
                        recheck_partitions = False
                        self.partitions.known.clear()
                        continue
                    raise Poison(str(e).strip()) from e
                if isinstance(e, psycopg.OperationalError) and not isinstance(e, psycopg.errors.DeadlockDetected):
                    try:
                        self.db.close()
                    except Exception:  # noqa: BLE001
                        pass
                    self.db = None
                    time.sleep(0.5)
            except (UnicodeError, ValueError, TypeError, KeyError, OverflowError) as e:
                raise Poison(f"{type(e).__name__}: {e}") from e
            if self.stop:
                return None

    def store_groups(self, groups) -> db.BatchResult | None:
        """groups: [(subject, payload, [items decoded from it])]. The whole batch in one
        transaction; if it is refused for good, message by message, and a message that is
        refused alone goes to eport.rejected_message instead, so that one bad payload
        never blocks the consumer (it would be redelivered for ever)."""
        try:
            return self.store([m for _, _, items in groups for m in items])
        except Poison as e:
            log(self.o.name, event="batch_refused", error=str(e)[:300], messages=len(groups))
        total = db.BatchResult()
        for subject, payload, items in groups:
            try:
                r = self.store(items)
            except Poison as e:
                r = self.store([db.Rejected(subject, f"refused by the database: {e}"[:1000], payload)])
            if r is None:
                return None
            for k in ("stored", "duplicates", "gaps", "custody_events", "checkpoints", "rejected", "health"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
        return total

    def mark_overdue(self) -> None:
        """Gateways whose heartbeat is overdue become offline (any worker may do it)."""
        try:
            if self.db is None or self.db.closed:
                self.connect_db()
            with self.db.transaction():
                n = self.db.execute("SELECT eport.mark_overdue(%s::real)", (self.o.overdue_factor,)).fetchone()[0]
            if n:
                log(self.o.name, event="gateways_offline", count=n)
        except psycopg.Error as e:
            log(self.o.name, event="db_error", error=str(e).strip()[:300])
            if isinstance(e, psycopg.OperationalError):
                self.db = None

    def run(self, ready=None) -> int:
        """The worker until SIGTERM/SIGINT (stop): pull, decode, store, then acknowledge. A
        stop lets the batch in hand finish: it is committed and acknowledged, or, if the
        database cannot take it now, handed back (-NAK) uncommitted, never acknowledged.
        ready(): called once both connections are up (the benchmark starts its clock)."""
        self.connect_db()
        self.connect_nats()
        if ready is not None and not self.stop:
            ready()
        while not self.stop:
            try:
                if not self.conn.connected:
                    self.counts["nats_reconnects"] += 1
                    self.connect_nats()
                    continue
                deliveries = self.js.fetch(self.o.batch, self.o.expires_s)
            except NatsError as e:
                log(self.o.name, event="nats_lost", error=str(e))
                self.conn.close()
                continue
            if deliveries:
                groups = []
                for d in deliveries:
                    if d.delivered > 1:
                        self.counts["redelivered"] += 1
                    if d.msg.oversize:
                        m = db.Rejected(d.msg.subject, f"message of {d.msg.oversize} bytes > "
                                        f"{self.conn.max_message_bytes} (not read)", b"")
                    else:
                        m = self.decode(d.msg.subject, d.msg.data)
                    groups.append((d.msg.subject, d.msg.data, m if isinstance(m, list) else [m] if m else []))
                res = self.store_groups(groups)
                if res is None:
                    # Stopped while the database refused the batch: nothing of it is
                    # acknowledged; handed back, another worker gets it at once.
                    self.counts["handed_back"] += len(deliveries)
                    try:
                        self.js.nak(deliveries)
                    except NatsError:
                        pass   # then redelivered after ack_wait
                    break
                try:
                    self.js.ack(deliveries)
                except NatsError as e:
                    # Not acknowledged: redelivered after ack_wait, then dropped as duplicates.
                    log(self.o.name, event="ack_lost", error=str(e), messages=len(deliveries))
                    self.conn.close()
                c = self.counts
                c["messages"] += len(deliveries)
                c["batches"] += 1
                c["readings_stored"] += res.stored
                c["duplicates"] += res.duplicates
                c["rejected"] += res.rejected
                c["health"] += res.health
                c["gaps"] += res.gaps
                c["custody_events"] += res.custody_events
                c["checkpoints"] += res.checkpoints
            now = time.monotonic()
            if now - self.last_overdue >= self.o.overdue_check_s:
                self.last_overdue = now
                self.mark_overdue()
            if now - self.last_stats >= self.o.stats_every_s:
                self.last_stats = now
                log(self.o.name, event="stats", **self.counts)
        if self.conn.connected:
            try:
                self.conn.flush(2.0)   # the last acknowledgements reached the server before the close
            except NatsError as e:
                log(self.o.name, event="ack_lost", error=str(e))
        log(self.o.name, event="stopped", seconds=round(time.monotonic() - self.t0, 1), **self.counts)
        self.conn.close()
        return 0


def install_signals(worker: Worker) -> None:
    def handler(signum, frame):
        worker.stop = True
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
