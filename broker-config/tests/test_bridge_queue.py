#!/usr/bin/python3
"""Gateway bridge config against two real brokers (no agent needed): the
generated gateways/gw-a/bridge/mosquitto.conf connects to the generated
cloud broker with gw-a's certificate; gw-a's topics go out, its cmd topic
comes in, nothing else crosses; and while the cloud is unreachable the
bridge queue holds max_queued_messages and DROPS the rest although the local
broker acknowledged every message (why the agent connects directly by
default)."""

import time

from harness import Client, Site, eb, main, wait_for

QUEUE = 5      # max_queued_messages of the gateway broker in this test
INFLIGHT = 2   # max_inflight_messages
SENT = 20


def test(workdir, t):
    site = Site(workdir)
    cloud, cloud_copy = eb.start_copy(site.conf, workdir / "cloud", stay_root=True)
    cloud_port = next(iter(cloud_copy.ports.values()))
    gw_dir = site.out / "gateways" / "gw-a"
    gateway, gw_copy = eb.start_copy(gw_dir / "bridge" / "mosquitto.conf", workdir / "gateway", stay_root=True,
                                     overrides=site.bridge_overrides("gw-a", cloud_port) | {
                                         "restart_timeout": "1",
                                         "max_queued_messages": str(QUEUE),
                                         "max_inflight_messages": str(INFLIGHT),
                                     })
    local_port = next(iter(gw_copy.ports.values()))
    clients = []

    def cloud_client(cn, **kw):
        c = Client(cloud_port, site.ca, *site.cert(cn), client_id=cn, **kw)
        clients.append(c)
        return c

    def local_client(user):
        c = Client(local_port, None, login=site.bridge_login("gw-a", user))
        clients.append(c)
        return c

    try:
        agent = local_client("gw-a")  # stands in for the agent on the gateway, with its local login
        t.check(agent.connect(), "the agent's local user connects to the gateway broker (no TLS, password)")
        monitor = local_client("local-1")  # a local reader: sees the bridge state
        t.check(monitor.connect(), "a local reader connects to the gateway broker")
        state_topic = "$SYS/broker/connection/gw-a/state"
        monitor.subscribe(state_topic)
        agent.subscribe(site.topic("gw-a", "cmd"))
        agent.subscribe(site.topic("gw-b", "cmd"))
        wait_for(lambda: monitor.received(state_topic)[-1:] == [b"1"], "bridge state 1")
        t.check(True, "the bridge connects to the cloud broker with gw-a's certificate (local state topic = 1)")
        t.check("u'gw-a'" in cloud.log(), "the cloud broker sees the bridge as user gw-a")

        reader = cloud_client("reader-1", clean_session=False)
        t.check(reader.connect(), "reader connects to the cloud with a persistent session")
        reader.subscribe("eport/v1/+/+/data/#")
        reader.subscribe("eport/v1/+/+/status")
        agent.publish(site.topic("gw-a", "data/telemetry"), "via-bridge")
        agent.publish(site.topic("gw-a", "status"), "online", retain=True)
        agent.publish(site.topic("gw-b", "data/telemetry"), "not-mine")
        cmd = cloud_client("cmd-1")
        t.check(cmd.connect(), "commander connects to the cloud")
        cmd.publish(site.topic("gw-a", "cmd"), "cmd-for-a")
        cmd.publish(site.topic("gw-b", "cmd"), "cmd-for-b")
        wait_for(lambda: reader.received(site.topic("gw-a", "data/telemetry")) == [b"via-bridge"], "bridged data")
        wait_for(lambda: agent.received(site.topic("gw-a", "cmd")) == [b"cmd-for-a"], "bridged command")
        time.sleep(1.0)
        t.check(True, "gw-a's data published locally reaches the cloud reader")
        t.check(reader.received(site.topic("gw-a", "status")) == [b"online"], "gw-a's status reaches the cloud")
        t.check(b"not-mine" not in reader.received(), "another gateway's topic published locally does not cross")
        t.check(agent.received(site.topic("gw-a", "cmd")) == [b"cmd-for-a"],
                "the commander's command for gw-a reaches the gateway broker exactly once")
        t.check(agent.received(site.topic("gw-b", "cmd")) == [], "gw-b's command does not reach gw-a's gateway")
        late = cloud_client("reader-2")
        late.connect()
        late.subscribe("eport/v1/+/+/status")
        wait_for(lambda: late.received(site.topic("gw-a", "status")) == [b"online"], "retained status")
        t.check(any(r for tp, _, r in late.messages), "the bridged status is retained on the cloud broker")

        # Outage: the cloud broker goes away; the reader's session is saved with it.
        reader.close()
        cloud.stop()
        wait_for(lambda: monitor.received(state_topic)[-1:] == [b"0"], "bridge state 0")
        for i in range(SENT):
            agent.publish(site.topic("gw-a", "data/telemetry"), f"outage-{i}")  # waits for each local PUBACK
        t.check(True, f"the gateway broker acknowledged all {SENT} messages published during the outage")
        cloud.start()
        wait_for(lambda: monitor.received(state_topic)[-1:] == [b"1"], "bridge state 1 again", timeout_s=10)
        back = cloud_client("reader-1", clean_session=False)
        t.check(back.connect(), "reader reconnects to its persistent session")
        got = lambda: [p for p in back.received() if p.startswith(b"outage-")]  # noqa: E731
        wait_for(lambda: len(got()) > 0, "queued messages after the outage")
        time.sleep(1.5)
        n = len(got())
        print(f"  info: {n} of {SENT} outage messages reached the cloud (max_queued_messages {QUEUE}, "
              f"max_inflight_messages {INFLIGHT})")
        t.check(0 < n <= QUEUE + INFLIGHT,
                f"the bridge kept at most max_queued_messages + max_inflight_messages and dropped the rest",
                f"{n} arrived")
        t.check("Outgoing messages are being dropped for client bridge-gw-a" in gateway.log(),
                "the gateway broker logs 'Outgoing messages are being dropped for client bridge-gw-a'")
        first = sorted(int(p.split(b"-")[1]) for p in got())
        t.check(first == list(range(n)), "what survived is the oldest messages; the newest were dropped", repr(first))
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        gateway.stop()
        cloud.stop()
        if t.failed:
            print("--- gateway broker log ---\n" + gateway.log()[-3000:])
            print("--- cloud broker log ---\n" + cloud.log()[-3000:])


if __name__ == "__main__":
    main(test)
