"""Fault-injection TCP proxy for the uplink tests: listens on a free loopback
port in front of a broker and, on the test's command, drops, delays,
blackholes or cuts connections mid-packet, or refuses new ones.
Standard library only (Debian's /usr/bin/python3); runs in threads of the test.

    proxy = FaultProxy(broker.port).start()   # agent's mqtt.uri = proxy.uri
    proxy.drop()           # close every open connection now (a link flap)
    proxy.delay(300)       # add 300 ms each way to everything forwarded from now on
    proxy.blackhole()      # keep connections, forward nothing either way (half-open link)
    proxy.cut(10)          # next upstream chunk longer than 10 bytes: forward 10 bytes, close
    proxy.refuse()         # stop listening: new connections are refused
    proxy.passthrough()    # back to normal (closes connections that were blackholed)
    proxy.stop()

    proxy = FaultProxy(broker.port, record=True)  # also keep what each connection sent upstream:
    proxy.recorded()       # [bytes of connection 1, of connection 2, ...] (client -> broker)

Also a command-line tool for manual experiments:
    /usr/bin/python3 faultproxy.py TARGET_PORT [LISTEN_PORT]   then type commands
    (pass, drop, delay MS, blackhole, cut K [up|down|both], refuse, stats, quit) on stdin.
"""
import collections
import socket
import sys
import threading
import time

UP = "up"  # client -> broker
DOWN = "down"  # broker -> client


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _has_refusing_puback(data):
    """True if data holds an MQTT 5 PUBACK (0x40, remaining length 3 or 4,
    packet id, reason code) whose reason code is 0x80 or more. A scan of one
    chunk, for tests: a PUBACK split across chunks is not seen."""
    for i in range(len(data) - 4):
        if data[i] == 0x40 and data[i + 1] in (3, 4) and data[i + 4] >= 0x80:
            return True
    return False


class _Conn:
    """One proxied connection: a reader and a writer thread per direction. The
    writer sends each chunk at its due time, so a delay adds latency without
    limiting throughput."""

    def __init__(self, proxy, cid, client, server):
        self.proxy = proxy
        self.cid = cid
        self.client = client
        self.server = server
        self.closed = threading.Event()
        self.blackholed = False
        self.queues = {UP: collections.deque(), DOWN: collections.deque()}
        self.cond = threading.Condition()
        self.threads = [
            threading.Thread(target=self._read, args=(client, UP), daemon=True),
            threading.Thread(target=self._read, args=(server, DOWN), daemon=True),
            threading.Thread(target=self._write, args=(server, UP), daemon=True),
            threading.Thread(target=self._write, args=(client, DOWN), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def close(self, why):
        if self.closed.is_set():
            return
        self.closed.set()
        _close(self.client)
        _close(self.server)
        with self.cond:
            self.cond.notify_all()
        self.proxy._event(f"connection {self.cid} closed: {why}")
        self.proxy._forget(self)

    def _push(self, direction, item):
        with self.cond:
            self.queues[direction].append(item)
            self.cond.notify_all()

    def _read(self, src, direction):
        while not self.closed.is_set():
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._push(direction, None)  # end of stream: the writer closes after what is queued
                return
            p = self.proxy
            with p.lock:
                if p._blackhole:
                    self.blackholed = True
                    p.discarded += len(data)
                    continue
                keep = p._take_cut(direction, len(data))
                due = time.monotonic() + p._delay_s
                refusal = direction == DOWN and p._close_after_refusal > 0 and _has_refusing_puback(data)
                if refusal:
                    p._close_after_refusal -= 1
            if refusal:
                p._event(f"connection {self.cid}: closed after a refusing PUBACK")
                self._push(direction, (due, data, True))
                return
            if keep is not None:
                p._event(f"connection {self.cid}: cut {direction} after {keep} of {len(data)} bytes")
                self._push(direction, (due, data[:keep], True))
                return
            self._push(direction, (due, data, False))

    def _write(self, dst, direction):
        q = self.queues[direction]
        while True:
            with self.cond:
                while not q and not self.closed.is_set():
                    self.cond.wait(0.2)
                if self.closed.is_set():
                    return
                item = q.popleft()
            if item is None:
                self.close(f"{'client' if direction == UP else 'broker'} closed")
                return
            due, data, close_after = item
            while not self.closed.is_set():
                left = due - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, 0.05))
            if self.closed.is_set():
                return
            try:
                dst.sendall(data)
            except OSError as e:
                self.close(f"send {direction} failed: {e}")
                return
            with self.proxy.lock:
                if direction == UP:
                    self.proxy.bytes_up += len(data)
                    if self.proxy._record is not None:
                        self.proxy._record.setdefault(self.cid, bytearray()).extend(data)
                else:
                    self.proxy.bytes_down += len(data)
            if close_after:
                self.close(f"cut {direction}")
                return


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of target_host:target_port.

    Every method may be called from any thread at any time. Modes combine:
    a delay stays while blackholed; refuse() only affects new connections.

    Counters (read any time): connections (accepted in total), bytes_up,
    bytes_down (forwarded), discarded (bytes swallowed by the blackhole),
    cuts (connections cut), events (list of (monotonic time, text))."""

    def __init__(self, target_port, target_host="127.0.0.1", listen_port=0, record=False):
        self.target = (target_host, target_port)
        self._record = {} if record else None  # cid -> bytearray of what was forwarded upstream
        self.lock = threading.Lock()
        self.conns = {}
        self.next_id = 1
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.discarded = 0
        self.cuts = 0
        self.events = []
        self._delay_s = 0.0
        self._blackhole = False
        self._cut = {UP: [], DOWN: []}  # pending cuts: list of byte counts
        self._close_after_refusal = 0  # closes still armed by close_after_refusal()
        self._refusing = False
        self._stopping = False
        self._listener = None
        self._accept_thread = None
        self.port = listen_port
        self._listen()

    # ----- life cycle -----

    def start(self):
        """Starts accepting (if not refusing). Returns self."""
        with self.lock:
            self._stopping = False
        self._start_accepting()
        return self

    def stop(self):
        with self.lock:
            self._stopping = True
            lst, self._listener = self._listener, None
        if lst:
            _close(lst)
        self.drop()
        if self._accept_thread:
            self._accept_thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def uri(self):
        return f"tcp://127.0.0.1:{self.port}"

    # ----- faults -----

    def passthrough(self):
        """Normal forwarding: no delay, no blackhole, no pending cut, new
        connections accepted. Connections that lost data to the blackhole are
        closed (their byte streams are broken)."""
        with self.lock:
            self._delay_s = 0.0
            self._blackhole = False
            self._cut = {UP: [], DOWN: []}
            broken = [c for c in self.conns.values() if c.blackholed]
        for c in broken:
            c.close("was blackholed")
        self._event("mode pass")
        self.accept()

    def drop(self):
        """Closes every open connection now (both sides see the close). New
        connections are still accepted unless refuse() is on."""
        with self.lock:
            conns = list(self.conns.values())
        for c in conns:
            c.close("dropped")
        self._event(f"dropped {len(conns)} connection(s)")
        return len(conns)

    def delay(self, ms):
        """Adds ms milliseconds to every chunk forwarded from now on, each way
        (0: none). Latency only: throughput is not limited."""
        with self.lock:
            self._delay_s = ms / 1000.0
        self._event(f"delay {ms} ms")

    def blackhole(self):
        """Open and new connections stay up but nothing is forwarded in either
        direction: bytes are read and discarded, so only a keep-alive timeout
        can tell. passthrough() ends it and closes the connections it broke."""
        with self.lock:
            self._blackhole = True
        self._event("mode blackhole")

    def cut(self, k, direction=UP, count=1):
        """Arms count cuts: each takes the next chunk longer than k bytes in
        direction (UP = client to broker, DOWN, or "both": either), forwards
        its first k bytes and closes that connection: a packet cut in the
        middle. wait_cuts() waits until they happened."""
        with self.lock:
            for d in ([UP, DOWN] if direction == "both" else [direction]):
                self._cut[d].extend([k] * count)
        self._event(f"cut armed: {count} x {k} bytes {direction}")

    def close_after_refusal(self, count=1):
        """Arms count closes: each closes its connection right after
        forwarding a broker -> client chunk that holds an MQTT 5 PUBACK with
        a reason code of 0x80 or more (a refused publish), as a broker that
        disconnects after a refusal does."""
        with self.lock:
            self._close_after_refusal += count
        self._event(f"close after refusal armed: {count}")

    def refuse(self):
        """Stops listening: new connections get ECONNREFUSED (open ones go on)."""
        with self.lock:
            self._refusing = True
            lst, self._listener = self._listener, None
        if lst:
            _close(lst)
        if self._accept_thread:
            self._accept_thread.join(timeout=5)
        self._event("refusing new connections")

    def accept(self):
        """Listens again after refuse() (same port)."""
        with self.lock:
            was = self._refusing
            self._refusing = False
        if was:
            self._listen()
            self._start_accepting()
            self._event("accepting new connections")

    def retarget(self, target_port, target_host="127.0.0.1"):
        """New connections go to another broker from now on (open ones stay)."""
        with self.lock:
            self.target = (target_host, target_port)
        self._event(f"target {target_host}:{target_port}")

    # ----- observation -----

    def open_connections(self):
        with self.lock:
            return len(self.conns)

    def wait_connections(self, n, timeout):
        """Waits until at least n connections were accepted in total; returns bool."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connections >= n:
                return True
            time.sleep(0.02)
        return False

    def wait_cuts(self, n, timeout):
        """Waits until at least n cuts happened in total; returns bool."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cuts >= n:
                return True
            time.sleep(0.02)
        return False

    def recorded(self):
        """With record=True: the bytes each connection forwarded to the broker, by connection order."""
        with self.lock:
            return [bytes(self._record[cid]) for cid in sorted(self._record)]

    def stats(self):
        with self.lock:
            return {"connections": self.connections, "open": len(self.conns), "bytes_up": self.bytes_up,
                    "bytes_down": self.bytes_down, "discarded": self.discarded, "cuts": self.cuts,
                    "delay_ms": int(self._delay_s * 1000), "blackhole": self._blackhole, "refusing": self._refusing}

    # ----- internals -----

    def _event(self, text):
        with self.lock:
            self.events.append((time.monotonic(), text))

    def _forget(self, conn):
        with self.lock:
            self.conns.pop(conn.cid, None)

    def _take_cut(self, direction, length):
        """Called with the lock held: the byte count to keep if a cut applies."""
        pending = self._cut[direction]
        if pending and length > pending[0]:
            self.cuts += 1
            return pending.pop(0)
        return None

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        with self.lock:
            self._listener = s

    def _start_accepting(self):
        with self.lock:
            if self._refusing or self._listener is None:
                return
            if self._accept_thread and self._accept_thread.is_alive():
                return
            lst = self._listener
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(lst,), daemon=True)
        self._accept_thread.start()

    def _accept_loop(self, lst):
        while True:
            with self.lock:
                if self._stopping or self._listener is not lst:
                    return
            try:
                client, _ = lst.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self.lock:
                target = self.target
            try:
                server = socket.create_connection(target, timeout=5)
                server.settimeout(None)
            except OSError as e:
                self._event(f"upstream {target} unreachable: {e}")
                _close(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                cid = self.next_id
                self.next_id += 1
                self.connections += 1
            conn = _Conn(self, cid, client, server)
            with self.lock:
                if not conn.closed.is_set():
                    self.conns[cid] = conn
            self._event(f"connection {cid} accepted")


# ----- helpers for fault tests -----

def set_mqtt_keys(agent, **keys):
    """Adds keys to the [mqtt] section of a harness.Agent's config file before
    it starts, e.g. set_mqtt_keys(agent, keepalive_s=5). Values: int, bool or str."""
    def toml(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    with open(agent.config) as f:
        text = f.read()
    assert "[mqtt]\n" in text, "no [mqtt] section in the agent's config"
    lines = "".join(f"{k} = {toml(v)}\n" for k, v in keys.items())
    with open(agent.config, "w") as f:
        f.write(text.replace("[mqtt]\n", "[mqtt]\n" + lines, 1))


def _main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    proxy = FaultProxy(int(argv[1]), listen_port=int(argv[2]) if len(argv) > 2 else 0).start()
    print(f"proxy on {proxy.uri} -> 127.0.0.1:{argv[1]}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        try:
            if cmd[0] == "pass":
                proxy.passthrough()
            elif cmd[0] == "drop":
                proxy.drop()
            elif cmd[0] == "delay":
                proxy.delay(int(cmd[1]))
            elif cmd[0] == "blackhole":
                proxy.blackhole()
            elif cmd[0] == "cut":
                proxy.cut(int(cmd[1]), cmd[2] if len(cmd) > 2 else UP)
            elif cmd[0] == "refuse":
                proxy.refuse()
            elif cmd[0] == "stats":
                print(proxy.stats(), flush=True)
            elif cmd[0] == "quit":
                break
            else:
                print(f"unknown command {cmd[0]}", flush=True)
        except (IndexError, ValueError) as e:
            print(f"bad command: {e}", flush=True)
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
