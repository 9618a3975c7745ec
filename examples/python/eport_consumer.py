#!/usr/bin/python3
# eport_consumer.py: an example cloud-side consumer of eport-edge data in Python 3 (docs/consuming.md).
# It subscribes over MQTT, unpacks zstd, checks and decodes the FlatBuffers envelopes of schema/telemetry.fbs
# with code that flatc generates at start, drops duplicates and prints one JSON line per reading like eport-tail.
"""Example consumer of eport-edge telemetry.

Runs on Debian 12's /usr/bin/python3 with python3-paho-mqtt (1.6),
python3-flatbuffers and python3-zstandard, and flatc (flatbuffers-compiler).

    eport_consumer.py --broker tcp://127.0.0.1:1883
    eport_consumer.py --broker ssl://cloud:8883 --cafile ca.pem --share ingest --client-id ingest-1

Output, one line each, on stdout:
    {"source":"tcu-0038",...}                      one per reading, the same bytes eport-tail prints
    {"envelope":{...},"readings":N,"bytes":N}      one per envelope, with --envelopes (as eport-tail --envelopes)
    {"status":{...},"topic":"..."}                 status, health and reply messages, as received, tagged
    {"error":"...","topic":"...","bytes":N}        a payload that was refused; the consumer carries on
A summary goes to stderr at the end.

The decoding, checks and completeness are the consumer kit's (the Python package eport in
consumers/python/, installed by python3-eport): this file is its MQTT command line.
Importable as before: load_codec() returns a Codec whose decode_payload(bytes) gives
(header, readings, problems) or raises DecodeError; json_line() renders them;
completeness(readings) tells, per source, received seqs from declared gaps
("kind":"gap" records) and from undeclared ones, and class_completeness(readings), per
source and class, the holes in the gateway's class counts (docs/consuming.md).

"""
import argparse
import collections
import json
import os
import re
import signal
import sys
import threading
import time
import uuid

PROG = "eport_consumer"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(HERE, "..", "..", "schema", "telemetry.fbs")
# From a source tree, the repository's kit comes first (else the installed python3-eport).
_KIT = os.path.join(HERE, "..", "..", "consumers", "python")
if os.path.isdir(os.path.join(_KIT, "eport")):
    sys.path.insert(0, os.path.normpath(_KIT))

from eport.completeness import class_completeness, completeness  # noqa: E402,F401
from eport.decode import (DECODED_READING_BYTES, FILE_IDENTIFIER, LAYOUT, SCHEMA_MAJOR,  # noqa: E402,F401
                          ZSTD_MAGIC, Codec, DecodeError, Limits, SetupError, generate_code, json_line,
                          parse_topic)
from eport import decode as _decode  # noqa: E402


def die(msg, code=1):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def import_or_die(module, debian_package):
    try:
        return _decode.import_or_die(module, debian_package)
    except SetupError as e:
        die(str(e), e.code)


def load_codec(schema=DEFAULT_SCHEMA, flatc="flatc", cache_dir=None, limits=None):
    """The kit's Codec, generated from schema (default: the repository's telemetry.fbs)."""
    return _decode.load_codec(schema, flatc, cache_dir, limits)


# ----------------------------------------------------------------------------------------------

class DedupWindow:
    """Remembers the last `size` (source_id, seq) keys. QoS 1 and the agent's resend after a
    reconnect deliver some readings twice, close together; a duplicate older than the window
    passes, so the store behind this should still be keyed (upsert) on (source_id, seq)."""

    def __init__(self, size):
        self.size = size
        self.keys = set()
        self.order = collections.deque()

    def __contains__(self, key):
        return key in self.keys

    def add(self, key):
        if self.size <= 0 or key in self.keys:
            return
        self.keys.add(key)
        self.order.append(key)
        if len(self.order) > self.size:
            self.keys.discard(self.order.popleft())



class Consumer:
    def __init__(self, args, codec):
        self.args = args
        self.codec = codec
        self.dedup = DedupWindow(args.dedup_window)
        self.out = sys.stdout.buffer
        self.counts = collections.Counter()
        self.last_message = time.monotonic()
        self.stop = threading.Event()

    def emit(self, line):
        if not self.args.quiet:
            self.out.write(line + b"\n")

    def error(self, msg, topic, size):
        self.counts["errors"] += 1
        self.emit(json_line({"error": msg, "topic": topic, "bytes": size}))

    # Runs on paho's network thread. paho 1.6 sends the PUBACK of a QoS 1 message only after
    # this returns: whatever is done here (print, store) happens before the broker forgets the
    # message, so a crash here means a redelivery, never a loss.
    def on_message(self, client, userdata, msg):
        self.last_message = time.monotonic()
        try:
            self.handle(msg.topic, msg.payload)
        except Exception as e:  # never let one message kill the consumer
            self.error(f"internal error: {type(e).__name__}: {e}", msg.topic, len(msg.payload))
        self.out.flush()
        if self.args.count and self.counts["readings"] >= self.args.count:
            self.stop.set()

    def handle(self, topic, payload):
        kind, site, gateway, cls = parse_topic(topic)
        if kind in ("status", "health", "reply"):
            self.counts[kind] += 1
            text = payload.strip()
            try:
                value = json.loads(text)
            except ValueError:
                return self.error(f"{kind} message is not JSON", topic, len(payload))
            if b"\n" in text:  # keep one line per message
                text = json.dumps(value, separators=(",", ":")).encode()
            return self.emit(json_line({kind: text, "topic": topic}))
        if kind != "data":
            return self.error("not an eport/v1 topic this consumer knows", topic, len(payload))
        try:  # v1 or v2; a v2 envelope takes its site and gateway from the topic
            header, readings, problems = self.codec.decode_payload(payload, topic)
        except DecodeError as e:
            return self.error(str(e), topic, len(payload))
        # The broker's ACLs bind a gateway to its own topics; the payload's claims are not
        # authenticated. Refuse an envelope that names another gateway than its topic.
        if (header["site"], header["gateway"], header["priority"]) != (site, gateway, cls):
            return self.error(f"envelope of {header['site']}/{header['gateway']}/{header['priority']} "
                              f"on another gateway's or class's topic", topic, len(payload))
        self.counts["envelopes"] += 1
        if payload[:4] == ZSTD_MAGIC:
            self.counts["zstd"] += 1
        if self.args.envelopes:
            self.emit(json_line({"envelope": header, "readings": len(readings) + len(problems),
                                 "bytes": len(payload)}))
        for p in problems:
            self.error(p, topic, len(payload))
        for r in readings:
            key = (r["source"], r["seq"])
            if key in self.dedup:
                self.counts["duplicates"] += 1
                continue
            self.emit(json_line(r))  # replace with your store's upsert keyed on (source_id, seq)
            self.dedup.add(key)
            self.counts["readings"] += 1


def parse_broker(uri):
    m = re.fullmatch(r"(tcp|mqtt|ssl|mqtts)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?/?", uri)
    if not m:
        die(f"bad --broker {uri!r}: use tcp://HOST:PORT or ssl://HOST:PORT", 64)
    tls = m.group(1) in ("ssl", "mqtts")
    return m.group(2).strip("[]"), int(m.group(3) or (8883 if tls else 1883)), tls


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("--broker", default="tcp://127.0.0.1:1883", help="tcp://HOST:PORT or ssl://HOST:PORT")
    ap.add_argument("--topic", action="append",
                    help="topic filter (repeatable); default: data, status and health of every gateway")
    ap.add_argument("--share", metavar="GROUP",
                    help="subscribe to data as $share/GROUP/...: the members of GROUP split the envelopes")
    ap.add_argument("--client-id", help="fixed client id and a persistent session (clean session off): "
                    "the broker queues QoS 1 messages while this consumer is away")
    ap.add_argument("--cafile", help="CA certificate(s) for ssl:// brokers")
    ap.add_argument("--cert", help="client certificate (mutual TLS)")
    ap.add_argument("--key", help="client key (mutual TLS)")
    ap.add_argument("--username")
    ap.add_argument("--password-file", help="file holding the password (kept off the command line)")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA, help="telemetry.fbs (default: the repository's)")
    ap.add_argument("--flatc", default="flatc")
    ap.add_argument("--codegen-dir", help="cache of the generated Python code (default ~/.cache/eport-consumer)")
    ap.add_argument("--dedup-window", type=int, default=100000, help="(source_id, seq) keys remembered; 0: off")
    ap.add_argument("--max-bytes", type=int, default=4 << 20, help="largest envelope accepted, after zstd")
    ap.add_argument("--max-readings", type=int, default=100000)
    ap.add_argument("--max-decoded-bytes", type=int, default=32 << 20,
                    help="most bytes one envelope may decode to (strings copied + 256 per reading)")
    ap.add_argument("--envelopes", action="store_true", help="also print one line per envelope header")
    ap.add_argument("--quiet", action="store_true", help="summary only")
    ap.add_argument("--count", type=int, default=0, help="exit after this many readings")
    ap.add_argument("--idle-exit", type=float, default=0, help="exit after this long without a message")
    args = ap.parse_args(argv)

    mqtt = import_or_die("paho.mqtt.client", "python3-paho-mqtt")
    limits = Limits(max_payload_bytes=args.max_bytes, max_bytes=args.max_bytes, max_readings=args.max_readings,
                    max_decoded_bytes=args.max_decoded_bytes)
    try:
        codec = load_codec(args.schema, args.flatc, args.codegen_dir, limits)
    except SetupError as e:
        die(str(e), e.code)
    host, port, tls = parse_broker(args.broker)
    topics = args.topic or ["eport/v1/+/+/data/#", "eport/v1/+/+/status", "eport/v1/+/+/health"]
    if args.share:
        # Only data is shared out between the group's members. Status and health stay plain
        # subscriptions: every member learns every gateway's state, and the retained status
        # reaches it (MQTT 5 lets a broker withhold retained messages from shared subscriptions).
        topics = [f"$share/{args.share}/{t}" if "/data/" in t else t for t in topics]
    consumer = Consumer(args, codec)

    persistent = bool(args.client_id)
    client = mqtt.Client(client_id=args.client_id or f"{PROG}-{uuid.uuid4().hex[:12]}", clean_session=not persistent)
    if tls or args.cafile:
        client.tls_set(ca_certs=args.cafile, certfile=args.cert, keyfile=args.key)
    if args.username:
        password = None
        if args.password_file:
            with open(args.password_file) as f:
                password = f.read().strip()
        client.username_pw_set(args.username, password)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client.on_message = consumer.on_message
    subscribe_mids = set()

    def on_connect(client, userdata, flags, rc):
        if rc != 0:
            print(f"{PROG}: connection refused: {mqtt.connack_string(rc)}", file=sys.stderr, flush=True)
            return
        # Subscribe on every connect: a clean session forgets subscriptions; with a persistent
        # session ("session present") subscribing again is harmless.
        result, mid = client.subscribe([(t, 1) for t in topics])
        subscribe_mids.add(mid)

    def on_subscribe(client, userdata, mid, granted_qos):
        if mid in subscribe_mids:
            refused = [t for t, q in zip(topics, granted_qos) if q not in (0, 1, 2)]
            if refused:
                print(f"{PROG}: broker refused {refused} (ACL?)", file=sys.stderr, flush=True)
            print(f"{PROG}: subscribed to {' '.join(topics)} on {args.broker}", file=sys.stderr, flush=True)

    def on_disconnect(client, userdata, rc):
        if rc != 0 and not consumer.stop.is_set():
            print(f"{PROG}: connection lost ({mqtt.error_string(rc)}), reconnecting", file=sys.stderr, flush=True)

    client.on_connect, client.on_subscribe, client.on_disconnect = on_connect, on_subscribe, on_disconnect
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: consumer.stop.set())
    try:
        client.connect(host, port, keepalive=20)
    except OSError as e:
        die(f"{args.broker}: {e}")
    client.loop_start()  # paho's network thread; this thread only waits for the end
    while not consumer.stop.wait(0.2):
        if args.idle_exit and time.monotonic() - consumer.last_message >= args.idle_exit:
            break
    client.disconnect()
    client.loop_stop()
    c = consumer.counts
    print(f"{PROG}: readings={c['readings']} envelopes={c['envelopes']} zstd={c['zstd']} errors={c['errors']} "
          f"duplicates={c['duplicates']} status={c['status']} health={c['health']}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
