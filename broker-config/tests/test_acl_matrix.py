#!/usr/bin/python3
"""ACL matrix against a real mosquitto started from a generated site config:
each gateway publishes only under eport/v1/<site>/<own id>/ and reads only
its own cmd topic; readers share a subscription and see every gateway's
data; commanders reach one gateway's cmd; a monitor reads the broker's
$SYS/# metrics and nothing else, and nobody else reads them; client id
takeover, oversized payloads and the last will behave as docs/operators.md
says."""

import socket

from harness import QUIET_S, Client, Site, eb, main, mqtt, wait_for


def test(workdir, t):
    site = Site(workdir)
    # $SYS every second instead of limits.sys_interval's 10, so the metrics come soon.
    broker, copy = eb.start_copy(site.conf, workdir / "broker", stay_root=True, overrides={"sys_interval": "1"})
    port = next(iter(copy.ports.values()))
    clients = []

    def client(cn, **kw):
        crt, key = site.cert(cn)
        c = Client(port, site.ca, crt, key, client_id=kw.pop("client_id", cn), **kw)
        clients.append(c)
        return c

    try:
        # Two reader processes in one shared-subscription group, plus their own
        # plain subscriptions to status/health/reply.
        r1, r2 = client("reader-1"), client("reader-2")
        for r in (r1, r2):
            t.check(r.connect(), f"{r.c._client_id.decode()} connects with its certificate")
            t.check(r.subscribe("$share/analytics/eport/v1/+/+/data/#") == (1,),
                    "reader may subscribe to $share/analytics/eport/v1/+/+/data/#")
        r3 = client("reader-3")
        t.check(r3.connect(), "reader-3 connects")
        r3.subscribe("$share/archive/eport/v1/+/+/data/#")
        t.check(r1.subscribe("eport/v1/+/+/status") == (1,), "reader may subscribe to status")
        r1.subscribe("eport/v1/+/+/health")
        r1.subscribe("eport/v1/+/+/reply")
        r1.subscribe("eport/v1/+/+/evidence")

        gw_a = client("gw-a", will=(site.topic("gw-a", "status"), "offline", 1, True))
        gw_b = client("gw-b")
        t.check(gw_a.connect() and gw_b.connect(), "gateways connect with their certificates")
        t.check(gw_a.subscribe(site.topic("gw-a", "cmd")) == (1,), "gw-a may subscribe to its own cmd")
        # Mosquitto 2.0's acl_file grants this SUBSCRIBE; the read rule is
        # applied to each message instead (checked below: nothing arrives).
        print(f"  info: SUBACK for gw-b's cmd: {gw_a.subscribe(site.topic('gw-b', 'cmd'))}")
        gw_a.subscribe("#")  # whatever the SUBACK, the read rules decide delivery
        gw_b.subscribe(site.topic("gw-b", "cmd"))
        gw_b.subscribe("$SYS/#")
        r3.subscribe("$SYS/#")
        mon = client("monitor-1")
        t.check(mon.connect(), "monitor connects with its certificate")
        for topic in ("$SYS/#", "#", "eport/v1/+/+/status"):
            mon.subscribe(topic)
        mon.publish(site.topic("gw-a", "cmd"), "monitor-forges-cmd")
        mon.publish(site.topic("gw-a", "data/alarm"), "monitor-forges-data")

        # Gateway A: own topics are delivered ...
        for i in range(10):
            gw_a.publish(site.topic("gw-a", "data/telemetry"), f"a-own-{i}")
        gw_a.publish(site.topic("gw-a", "status"), "online", retain=True)
        gw_a.publish(site.topic("gw-a", "health"), "{}")
        gw_a.publish(site.topic("gw-a", "reply"), "r-1")
        # Its evidence checkpoints (docs/evidence.md 13): a denied QoS 1 publish is acknowledged
        # and dropped, so a gap in this rule would lose checkpoints the agent had deleted.
        gw_a.publish(site.topic("gw-a", "evidence"), "ev-1")
        gw_a.publish(site.topic("gw-b", "evidence"), "a-as-b-evidence")
        # ... foreign ones are acknowledged (MQTT 3.1.1 has no negative PUBACK) and dropped.
        gw_a.publish(site.topic("gw-b", "data/alarm"), "a-as-b")
        gw_a.publish("eport/v1/s2/gw-a/data/alarm", "a-other-site")
        gw_a.publish(site.topic("gw-b", "cmd"), "a-forges-cmd")
        gw_a.publish(site.topic("gw-a", "data/bulk"), b"x" * 5000)  # > message_size_limit 4096
        t.check(True, "denied and oversized QoS 1 publishes were all acknowledged (PUBACK)")

        # Commander reaches exactly one gateway's cmd; a reader cannot command.
        cmd = client("cmd-1")
        t.check(cmd.connect(), "commander connects")
        cmd.publish(site.topic("gw-a", "cmd"), "for-a")
        cmd.publish(site.topic("gw-b", "cmd"), "for-b")
        r1.publish(site.topic("gw-a", "cmd"), "reader-forges-cmd")
        r1.publish(site.topic("gw-a", "data/alarm"), "reader-forges-data")

        # Client id takeover: gw-c's certificate with client id "gw-b".
        gw_c = client("gw-c", client_id="gw-b")
        t.check(gw_c.connect(), "gw-c connects even when it asks for client id gw-b")
        gw_c.publish(site.topic("gw-b", "data/alarm"), "c-as-b")

        shared = lambda: r1.received() + r2.received()  # noqa: E731
        data = lambda: [p for p in shared() if p.startswith(b"a-own")]  # noqa: E731
        wait_for(lambda: len(data()) == 10, "10 gw-a data messages at the shared group")
        wait_for(lambda: gw_a.received(site.topic("gw-a", "cmd")) == [b"for-a"], "gw-a's command")
        wait_for(lambda: r1.received(site.topic("gw-a", "reply")) == [b"r-1"], "gw-a's reply at reader")
        # Everything that must NOT arrive has had QUIET_S to do so.
        import time
        time.sleep(QUIET_S)

        own = data()
        t.check(sorted(own) == sorted(f"a-own-{i}".encode() for i in range(10)),
                "shared group received each of gw-a's 10 data messages exactly once", repr(own))
        t.check(sorted(p for p in r3.received() if p.startswith(b"a-own")) ==
                sorted(f"a-own-{i}".encode() for i in range(10)),
                "a second group ($share/archive, one member) received its own full copy of all 10")
        n1 = len([p for p in r1.received() if p.startswith(b"a-own")])
        t.check(0 < n1 < 10, "the shared subscription spread them over both readers", f"reader-1 got {n1}/10")
        t.check(r1.received(site.topic("gw-a", "status")) == [b"online"], "reader sees gw-a's status")
        t.check(r1.received(site.topic("gw-a", "health")) == [b"{}"], "reader sees gw-a's health")
        t.check(r1.received(site.topic("gw-a", "evidence")) == [b"ev-1"], "reader sees gw-a's evidence checkpoints")
        t.check(r1.received(site.topic("gw-b", "evidence")) == [], "not delivered: gw-a's evidence under gw-b's id")
        for payload, why in ((b"a-as-b", "gw-a publishing under gw-b's id"),
                             (b"a-other-site", "gw-a publishing under another site id"),
                             (b"reader-forges-data", "a reader publishing data"),
                             (b"c-as-b", "gw-c (connected as client id gw-b) publishing as gw-b")):
            t.check(payload not in shared(), f"not delivered: {why}")
        t.check(not any(len(p) == 5000 for p in shared()),
                "not delivered: a payload above message_size_limit (although it was acknowledged)")
        t.check(gw_b.received(site.topic("gw-b", "cmd")) == [b"for-b"],
                "gw-b received only the commander's command (not gw-a's forged one)",
                repr(gw_b.received()))
        t.check(gw_a.received(site.topic("gw-a", "cmd")) == [b"for-a"],
                "gw-a received its own command once, not the reader's forged one", repr(gw_a.received()))
        foreign = [(tp, p) for tp, p, _ in gw_a.messages if tp != site.topic("gw-a", "cmd")]
        t.check(foreign == [], "gw-a subscribed to gw-b's cmd and to '#' but received nothing except its own cmd",
                repr(foreign))
        t.check("Denied PUBLISH" not in broker.log(),
                "with the default log types the broker does not log the denied publishes")
        t.check(not gw_b.disconnected.is_set(),
                "gw-b stayed connected when gw-c asked for its client id (use_username_as_clientid)")

        # The monitor: $SYS/# only.
        sys_topics = lambda c: {tp for tp, _, _ in c.messages if tp.startswith("$SYS/")}  # noqa: E731
        wait_for(lambda: {"$SYS/broker/version", "$SYS/broker/clients/connected"} <= sys_topics(mon),
                 "the broker's metrics at the monitor")
        # The first value may be the retained one from before the last clients
        # connected; the updates (sys_interval 1) catch up.
        wait_for(lambda: any(int(v) >= 8 for v in mon.received("$SYS/broker/clients/connected")),
                 "$SYS/broker/clients/connected counting the 8 clients of this test")
        t.check(True, "the monitor reads $SYS/# (version, clients connected: the 8 clients of this test)")
        t.check(not [tp for tp, _, _ in mon.messages if not tp.startswith("$SYS/")],
                "the monitor subscribed to '#' and to status but received nothing outside $SYS",
                repr([tp for tp, _, _ in mon.messages if not tp.startswith("$SYS/")][:5]))
        t.check(b"monitor-forges-data" not in shared() and b"monitor-forges-cmd" not in gw_a.received(),
                "a monitor's publishes (data, cmd) are not delivered")
        t.check(not sys_topics(r3) and not sys_topics(gw_b),
                "a reader and a gateway subscribed to $SYS/# receive nothing of it",
                repr(sorted(sys_topics(r3) | sys_topics(gw_b))[:5]))

        # Status: a late subscriber gets gw-a's retained status; the last will
        # announces an abnormal disconnect.
        late = client("cmd-1", client_id="cmd-1")
        cmd.close()
        t.check(late.connect(), "commander reconnects")
        late.subscribe("eport/v1/+/+/status")
        wait_for(lambda: late.received(site.topic("gw-a", "status")) == [b"online"], "retained status")
        t.check(any(r for tp, p, r in late.messages if tp == site.topic("gw-a", "status")),
                "late subscriber gets gw-a's status as a retained message")
        gw_a.c.socket().shutdown(socket.SHUT_RDWR)  # connection lost without DISCONNECT
        wait_for(lambda: b"offline" in r1.received(site.topic("gw-a", "status")), "gw-a's last will")
        t.check(True, "after gw-a's connection broke, readers got its last will status 'offline'")

        # One certificate in two processes: the broker forces client id = CN,
        # so the second connection closes the first.
        twin = client("reader-1", client_id="reader-1-second-process")
        t.check(twin.connect() and r1.disconnected.wait(3),
                "a second process with reader-1's certificate disconnects the first")
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        broker.stop()
        if t.failed:
            print(broker.log()[-4000:])


if __name__ == "__main__":
    main(test)
