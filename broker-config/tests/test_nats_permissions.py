#!/usr/bin/python3
"""The generated NATS cluster (3 nats-server 2.9.10 nodes, test copies of
cluster/<node>/nats-server.conf on loopback) enforces the roles of the
Mosquitto ACL in subject form, with identities from the certificates' URI
SANs: each gateway publishes only under its own prefix and reads only its
own cmd; readers only read; commanders write cmd and read reply and status;
a certificate without its URI SAN is refused. Also what the design rests on:
a reader's persistent session lives in the cluster (left on one node,
resumed on another), and a QoS 1 message published while
no subscription matches it is acknowledged and not kept. And the trial's
'.' in a topic: the connection is closed."""

import sys
import time

from harness import BROKER_CONFIG, QUIET_S, SKIP, Client, Site, main, run, wait_for
from eport_broker import inventory, natsrun

EXE = natsrun.find_nats_server()
if not EXE:
    print("SKIP: nats-server is not installed (apt-get install nats-server)")
    sys.exit(SKIP)
PROBLEM = natsrun.version_problem(EXE)
if PROBLEM:
    print(f"FAIL: {PROBLEM}")
    sys.exit(1)


def _wait(pred, timeout_s: float) -> bool:
    """pred() became true within timeout_s (a hang guard, not a speed check)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test(workdir, t):
    site = Site(workdir)
    inv = inventory.load(site.inv)
    cluster = natsrun.Cluster(inv, site.out, workdir / "cluster", inv["paths.cluster_conf_dir"])
    cluster.start()
    clients = []
    try:
        cluster.wait_ready(120)
        n1, n2, n3 = cluster.nodes

        def client(cn, node, **kw):
            crt, key = site.cert(cn)
            c = Client(node.mqtt_port, site.ca, crt, key, client_id=kw.pop("client_id", cn), **kw)
            clients.append(c)
            return c

        def connected(cn, node, **kw):
            c = client(cn, node, **kw)
            assert c.connect(30), f"{cn} could not connect to {node.name}: CONNACK {c.connack} {c.error}"
            return c

        # Nothing subscribed yet: a QoS 1 message is acknowledged and not kept.
        early = connected("gw-c", n1)
        early.publish(site.topic("gw-c", "data/telemetry"), b"before any reader")
        late = connected("reader-2", n2, clean_session=False)
        late.subscribe("eport/v1/+/+/data/#")
        time.sleep(QUIET_S)
        t.check(late.received() == [], "a QoS 1 message published while no subscription matched it is acknowledged "
                "and not kept (interest retention): readers' sessions must exist first", repr(late.received()))

        reader = connected("reader-1", n2)
        for leaf in ("data/#", "status", "health", "reply", "evidence"):
            t.check(reader.subscribe(f"eport/v1/+/+/{leaf}") == (1,), f"reader-1 may subscribe eport/v1/+/+/{leaf}")
        gw = connected("gw-a", n1)
        t.check(gw.subscribe(site.topic("gw-a", "cmd")) == (1,), "gw-a may subscribe its own cmd")
        t.check(gw.subscribe(site.topic("gw-b", "cmd")) == (128,), "gw-a's subscription to gw-b's cmd is refused (0x80)")
        t.check(gw.subscribe("#") == (128,), "gw-a's subscription to # is refused (0x80)")
        t.check(gw.subscribe("eport/v1/+/+/data/#") == (128,), "gw-a may not read data")

        own = {leaf: site.topic("gw-a", leaf) for leaf in ("data/alarm", "status", "health", "reply", "evidence")}
        for leaf, topic in own.items():
            gw.publish(topic, f"gw-a {leaf}".encode(), retain=(leaf == "status"))
        wait_for(lambda: all(reader.received(tp) for tp in own.values()), "gw-a's own topics at reader-1", 30)
        t.check(True, "gw-a's data, status, health, reply and evidence reach reader-1 through another node")

        forged = [site.topic("gw-b", "data/alarm"), "eport/v1/other-site/gw-a/data/alarm", site.topic("gw-a", "cmd"),
                  site.topic("gw-b", "status"), site.topic("gw-b", "evidence")]
        for topic in forged:
            gw.publish(topic, b"forged")  # waits for the PUBACK: a denied publish is still acknowledged
        time.sleep(QUIET_S)
        t.check(not any(reader.received(tp) for tp in forged) and not gw.received(site.topic("gw-a", "cmd")),
                "gw-a's publishes to gw-b's data and status, another site and its own cmd are acknowledged and dropped",
                repr(reader.messages[-3:]))
        t.check("Publish Violation" in n1.log(), "the node logs the denied publishes (Publish Violation)")

        gw_b = connected("gw-b", n3)
        gw_b.subscribe(site.topic("gw-b", "cmd"))
        commander = connected("cmd-1", n3)
        t.check(commander.subscribe(site.topic("gw-a", "reply")) == (1,), "cmd-1 may subscribe reply")
        t.check(commander.subscribe("eport/v1/+/+/status") == (1,), "cmd-1 may subscribe status")
        t.check(commander.subscribe("eport/v1/+/+/data/#") == (128,), "cmd-1 may not read data")
        commander.publish(site.topic("gw-a", "cmd"), b"cmd for gw-a")
        wait_for(lambda: gw.received(site.topic("gw-a", "cmd")), "gw-a's command", 30)
        time.sleep(QUIET_S)
        t.check(gw.received(site.topic("gw-a", "cmd")) == [b"cmd for gw-a"] and not gw_b.received(),
                "cmd-1's command (QoS 1, another node) reaches gw-a only", repr(gw_b.received()))
        reader.publish(site.topic("gw-b", "cmd"), b"reader's command")
        time.sleep(QUIET_S)
        t.check(not gw_b.received(), "a reader cannot send commands", repr(gw_b.received()))

        # Identity from the URI SAN only: a certificate of the same CA whose
        # CN is a gateway id but that has no URI is refused.
        run([str(BROKER_CONFIG / "pki" / "eport-pki"), "client", str(site.out / "pki"), "gw-nouri"])
        nouri = Client(n1.mqtt_port, site.ca, site.out / "pki" / "issued" / "gw-nouri.crt",
                       site.out / "pki" / "issued" / "gw-nouri.key", client_id="gw-nouri")
        clients.append(nouri)
        t.check(not nouri.connect(30) and nouri.connack == 5,
                "a certificate without a URI SAN (CN only) is refused: CONNACK 5", f"connack {nouri.connack}")
        nouri.close()

        # A reader's persistent session lives in the cluster: left on nats-2,
        # resumed on nats-3. Asserted: the session and its subscription are
        # there (messages published meanwhile arrive). Recorded, not asserted:
        # whether all 5 arrive; in 3 of 5 runs here 1 or 2 of the 5 had not
        # arrived 40-60 s later (ack_wait 30 s): cloud readers stay connected
        # (docs/cluster.md, "Failure modes").
        away = connected("reader-3", n2, clean_session=False)
        away.subscribe("eport/v1/+/+/data/#")
        away.close()
        sent = [f"while away {i}".encode() for i in range(5)]
        for payload in sent:
            gw.publish(site.topic("gw-a", "data/event"), payload)
        back = connected("reader-3", n3, clean_session=False)
        got = lambda: set(back.received(site.topic("gw-a", "data/event")))  # noqa: E731
        t.check(back.connack == 0 and _wait(lambda: got(), 60),
                "reader-3's persistent session, left on nats-2, resumed on nats-3: messages published while it was "
                "away arrive without subscribing again")
        _wait(lambda: got() >= set(sent), 40)
        print(f"  OBSERVED reader-3 received {len(got() & set(sent))} of the {len(sent)} messages published while "
              "it was away, within 40 s of resuming (ack_wait 30 s)")

        # The trial's '.' in a topic: the node closes the connection.
        dot = connected("gw-b", n1, client_id="gw-b-dot")
        dot.c.publish(site.topic("gw-b", "data/al.arm"), b"x", qos=1)
        t.check(dot.disconnected.wait(15), "a '.' in a topic makes the node close the connection")
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        if t.failed:
            print(cluster.logs())
        cluster.stop()


if __name__ == "__main__":
    main(test)
