#!/usr/bin/python3
"""[ingest] The NATS protocol pieces of eport-ingest against a scripted fake server on a
loopback port (no nats-server needed): INFO/CONNECT/PING handshake, MSG and HMSG split
across reads, JetStream status-only replies ending a pull, PING answered, -ERR and a closed
connection raised as NatsError, failover to the next server, a message over the size
limit skipped unread; ack subjects of both forms."""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from eport_ingest import jetstream  # noqa: E402
from eport_ingest.nats import Connection, NatsError, parse_headers  # noqa: E402


class FakeServer:
    """Accepts one connection, sends INFO, answers the CONNECT's PING, then plays `script`:
    a list of bytes to send or callables(conn_file_lines) -> bytes."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.received = b""
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        c, _ = self.sock.accept()
        c.sendall(b'INFO {"server_id":"x","headers":true,"max_payload":1048576}\r\n')
        while b"PING\r\n" not in self.received:
            self.received += c.recv(4096)
        c.sendall(b"PONG\r\n")
        for step in self.script:
            if step is None:
                c.close()
                return
            if isinstance(step, float):
                time.sleep(step)
                continue
            c.sendall(step)
        time.sleep(1.0)
        try:
            self.received += c.recv(65536)
        except OSError:
            pass
        c.close()


class Protocol(unittest.TestCase):
    def test_messages_split_across_reads_and_status_replies(self):
        hdr = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n"
        srv = FakeServer([b"MSG a.b 1 $JS.ACK.S.D.1.7.7.0.0 5\r\nhel", 0.05, b"lo\r\n",
                          b"PING\r\n", b"HMSG _INBOX.x.y 1 %d %d\r\n" % (len(hdr), len(hdr)) + hdr + b"\r\n"])
        c = Connection([f"nats://127.0.0.1:{srv.port}"])
        c.connect()
        m = c.next_msg(time.monotonic() + 3)
        self.assertEqual((m.subject, m.reply, m.data), ("a.b", "$JS.ACK.S.D.1.7.7.0.0", b"hello"))
        m = c.next_msg(time.monotonic() + 3)
        self.assertEqual((m.status, m.description, m.data), (408, "Request Timeout", b""))
        self.assertEqual(m.headers["Nats-Pending-Messages"], "1")
        self.assertIsNone(c.next_msg(time.monotonic() + 0.2))
        srv.t.join(3)
        self.assertIn(b"PONG\r\n", srv.received)   # the server's PING was answered
        self.assertIn(b'"headers": true', srv.received)

    def test_an_oversized_message_is_skipped_and_the_next_one_read(self):
        big = b"x" * 300000
        srv = FakeServer([b"MSG big 1 $JS.ACK.S.D.1.1.1.0.0 %d\r\n" % len(big) + big + b"\r\n",
                          b"MSG small 1 $JS.ACK.S.D.1.2.2.0.0 2\r\nok\r\n"])
        c = Connection([f"127.0.0.1:{srv.port}"], max_message_bytes=100000)
        c.connect()
        m = c.next_msg(time.monotonic() + 3)
        self.assertEqual((m.subject, m.oversize, m.data, m.reply), ("big", 300000, b"", "$JS.ACK.S.D.1.1.1.0.0"))
        m = c.next_msg(time.monotonic() + 3)
        self.assertEqual((m.subject, m.data), ("small", b"ok"))

    def test_err_and_close_raise(self):
        srv = FakeServer([b"-ERR 'Authorization Violation'\r\n"])
        c = Connection([f"127.0.0.1:{srv.port}"])
        c.connect()
        with self.assertRaisesRegex(NatsError, "Authorization Violation"):
            c.next_msg(time.monotonic() + 3)
        srv = FakeServer([None])
        c = Connection([f"127.0.0.1:{srv.port}"])
        c.connect()
        with self.assertRaisesRegex(NatsError, "closed"):
            c.next_msg(time.monotonic() + 3)
        self.assertFalse(c.connected)

    def test_failover_to_the_next_server(self):
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()
        srv = FakeServer([])
        c = Connection([f"127.0.0.1:{port}", f"127.0.0.1:{srv.port}"], connect_timeout_s=2)
        self.assertEqual(c.connect(), f"127.0.0.1:{srv.port}")

    def test_headers_and_ack_subjects(self):
        self.assertEqual(parse_headers(b"NATS/1.0 404 No Messages\r\n\r\n")[:2], (404, "No Messages"))
        self.assertEqual(parse_headers(b"NATS/1.0\r\nNmqtt-Pub: 1\r\n\r\n"), (0, "", {"Nmqtt-Pub": "1"}))
        with self.assertRaises(NatsError):
            parse_headers(b"HTTP/1.1 200\r\n\r\n")
        self.assertEqual(jetstream.parse_ack_subject("$JS.ACK.$MQTT_msgs.eport-ingest.2.913.40.1796150876.5"), (2, 913))
        self.assertEqual(jetstream.parse_ack_subject("$JS.ACK.dom.ACCHASH.$MQTT_msgs.d.3.14.9.17.0.tok"), (3, 14))
        with self.assertRaises(NatsError):
            jetstream.parse_ack_subject("_INBOX.x")


if __name__ == "__main__":
    unittest.main(verbosity=1)
