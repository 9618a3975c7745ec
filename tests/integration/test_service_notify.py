"""The real agent under a stand-in for systemd's notification socket, as a
Type=notify unit with WatchdogSec= runs it (docs/operators.md): the test binds
the datagram socket itself (SO_PASSCRED, as systemd does), starts eport-agent
with NOTIFY_SOCKET and WATCHDOG_USEC (1 s), and checks what arrives: READY=1
with a status once the agent accepts units, WATCHDOG=1 at about half the
interval, and STOPPING=1 on SIGTERM; every datagram sent by the agent's own
pid (what systemd's NotifyAccess=main checks). Once with a path, once with an
abstract name (@...), both of which systemd may hand out."""
import os
import signal
import socket
import struct
import time

import harness as h


class NotifySocket:
    """A datagram socket that records (pid, text) of every notification."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.got = []

    def drain(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                return self.got
            pid = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, _, _ = struct.unpack("iII", value[:12])
            self.got.append((pid, data.decode()))

    def texts(self):
        return [t for _, t in self.drain()]


def run_case(work, address, env_value):
    broker = h.Broker(work)
    broker.start()
    notify = NotifySocket(address)
    env = dict(os.environ, NOTIFY_SOCKET=env_value, WATCHDOG_USEC="1000000")
    agent = h.Agent(work, broker.uri)
    agent.start(env=env)
    h.wait_until(lambda: any(t.startswith("READY=1") for t in notify.texts()), 10, "READY=1")
    ready = next(t for t in notify.got if t[1].startswith("READY=1"))
    assert ready[1].startswith("READY=1\nSTATUS=running: gateway gw-test-01, broker "), ready
    t0 = time.monotonic()
    time.sleep(2.6)
    pings = [t for t in notify.texts() if t == "WATCHDOG=1"]
    h.log(f"{len(pings)} watchdog pings in {time.monotonic() - t0:.1f} s after READY")
    assert len(pings) >= 4, f"{len(pings)} WATCHDOG=1 in 2.6 s with WatchdogSec=1 (one every 0.5 s expected)"
    assert any(t.startswith("STATUS=running: ") and t.endswith(" readings waiting") for _, t in notify.got)
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=20) == 0
    texts = notify.texts()
    assert "STOPPING=1\nSTATUS=SIGTERM: shutting down" in texts, texts[-3:]
    pids = {pid for pid, _ in notify.got}
    assert pids == {agent.proc.pid}, f"notifications from pids {pids}, the agent is {agent.proc.pid}"
    notify.sock.close()
    broker.stop()


def test_service_notify(work):
    path = work.file("notify.sock")
    run_case(work, path, path)
    name = f"eport-test-notify-{os.getpid()}"
    run_case(work, "\0" + name, "@" + name)


if __name__ == "__main__":
    h.main(test_service_notify)
