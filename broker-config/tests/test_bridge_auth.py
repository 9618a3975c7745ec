#!/usr/bin/python3
"""The gateway bridge broker is gated (issue 11): with the generated
bridge/mosquitto.conf, passwd and acl on a real mosquitto bridged to the
generated cloud broker, a local client without the agent's password is
refused (it can neither publish into the cloud under the gateway's
certificate nor read commands); the agent's local user publishes only its
gateway's data/#, status, health and reply and reads only its cmd; a local
reader reads those and the bridge state, publishes nothing and never sees a
command; no local user can take the agent's client id. Before, the listener
was anonymous with no ACL and every one of these crossed."""

import re
import time

from harness import QUIET_S, Client, Site, eb, main, wait_for

GW = "gw-a"


def test(workdir, t):
    site = Site(workdir)
    cloud, cloud_copy = eb.start_copy(site.conf, workdir / "cloud", stay_root=True)
    cloud_port = next(iter(cloud_copy.ports.values()))
    # log_type all: mosquitto logs "Denied PUBLISH from <client> (... '<topic>' ...)" only at debug.
    gateway, gw_copy = eb.start_copy(site.out / "gateways" / GW / "bridge" / "mosquitto.conf", workdir / "gateway",
                                     stay_root=True,
                                     overrides=site.bridge_overrides(GW, cloud_port) | {"log_type": "all"})
    local_port = next(iter(gw_copy.ports.values()))
    clients = []

    def client(port, ca=None, cert=None, key=None, **kw):
        c = Client(port, ca, cert, key, **kw)
        clients.append(c)
        return c

    def denied(client_id, tp):
        return re.search(rf"Denied PUBLISH from {re.escape(client_id)} \(.*'{re.escape(tp)}'", gateway.log())

    topic = lambda leaf: site.topic(GW, leaf)  # noqa: E731
    state = f"$SYS/broker/connection/{GW}/state"
    try:
        reader = client(cloud_port, site.ca, *site.cert("reader-1"), client_id="reader-1")
        t.check(reader.connect(), "a cloud reader connects to the cloud broker")
        reader.subscribe("eport/v1/+/+/data/#")
        for leaf in ("status", "health", "reply"):
            reader.subscribe(f"eport/v1/+/+/{leaf}")
        commander = client(cloud_port, site.ca, *site.cert("cmd-1"), client_id="cmd-1")
        t.check(commander.connect(), "a commander connects to the cloud broker")

        monitor = client(local_port, login=site.bridge_login(GW, "local-1"))
        t.check(monitor.connect(), "local reader local-1 logs in to the gateway broker with its generated password")
        monitor.subscribe(state)
        wait_for(lambda: monitor.received(state)[-1:] == [b"1"], "bridge state 1", timeout_s=15)
        t.check(True, "the bridge connects to the cloud (its own connection is not held to the local ACL)")

        # --- refused: no login, a wrong password, the agent's user without a password
        user, secret = site.bridge_login(GW, GW)
        for what, login in (("an anonymous local client", None), ("the agent's user with a wrong password",
                            (user, secret + "x")), ("the agent's user without a password", (user, None)),
                            ("an unknown user", ("intruder", secret))):
            c = client(local_port, login=login, client_id="intruder")
            ok = c.connect()
            t.check(not ok and c.connack not in (None, 0), f"{what} is refused (CONNACK {c.connack})")
            if ok:  # what the old anonymous listener allowed: publish into the cloud, read commands
                c.subscribe(topic("cmd"))
                c.publish(topic("data/telemetry"), "forged")
        commander.publish(topic("cmd"), "cmd-while-intruders")
        time.sleep(QUIET_S)
        t.check(b"forged" not in reader.received(), "nothing a refused client sent reached the cloud")
        t.check(all(c.received() == [] for c in clients[3:]), "no refused client received a command")

        # --- the agent's user
        agent = client(local_port, login=(user, secret), client_id="whatever")
        t.check(agent.connect(), "the agent's user logs in with the password in bridge/agent.password")
        agent.subscribe(topic("cmd"))
        agent.subscribe("#")
        agent.subscribe(site.topic("gw-b", "cmd"))
        own = {"data/telemetry": "t1", "data/alarm": "a1", "status": "online", "health": "h1", "reply": "r1"}
        for leaf, payload in own.items():
            agent.publish(topic(leaf), payload, retain=leaf == "status")
        for leaf, payload in own.items():
            wait_for(lambda: payload.encode() in reader.received(topic(leaf)), f"{leaf} at the cloud reader")
        t.check(True, "the agent's user publishes data/telemetry, data/alarm, status, health and reply; "
                "all reach the cloud reader through the bridge")
        foreign = [site.topic("gw-b", "data/telemetry"), topic("cmd"), topic("other"),
                   f"eport/v1/s2/{GW}/data/telemetry", f"$SYS/broker/connection/{GW}/state"]
        for tp in foreign:
            agent.publish(tp, "not-allowed")
        commander.publish(topic("cmd"), "cmd-for-a")
        commander.publish(site.topic("gw-b", "cmd"), "cmd-for-b")
        wait_for(lambda: b"cmd-for-a" in agent.received(topic("cmd")), "gw-a's command at the agent")
        time.sleep(QUIET_S)
        for tp in foreign:
            t.check(denied(GW, tp), f"the agent's user may not publish on {tp} (mosquitto: Denied PUBLISH)")
        t.check(b"not-allowed" not in reader.received(), "none of those reached the cloud")
        t.check(agent.received(topic("cmd")) == [b"cmd-for-a"] and
                {tp for tp, _, _ in agent.messages} == {topic("cmd")},
                "the agent's user receives only its own cmd (its '#' and gw-b cmd subscriptions get nothing else, "
                "not even its own data or a command it published)", repr(agent.messages))

        # --- a local reader
        # The same user again, asking for another client id: use_username_as_clientid
        # makes it take over local-1's first connection.
        r2 = client(local_port, login=site.bridge_login(GW, "local-1"), client_id="another-id")
        t.check(r2.connect(), "local-1 logs in a second time")
        wait_for(lambda: monitor.disconnected.is_set(), "the first local-1 connection closed")
        t.check(True, "a second login as local-1 takes over the first (client id = username)")
        for tp in (topic("data/#"), topic("status"), topic("cmd"), state):
            r2.subscribe(tp)
        wait_for(lambda: r2.received(topic("status")) == [b"online"], "retained status at local-1")
        agent.publish(topic("data/telemetry"), "t2")
        wait_for(lambda: b"t2" in r2.received(topic("data/telemetry")), "data at local-1")
        t.check(r2.received(state)[-1:] == [b"1"], "local-1 reads the bridge state and the gateway's data and status")
        commander.publish(topic("cmd"), "cmd-2")
        wait_for(lambda: b"cmd-2" in agent.received(topic("cmd")), "second command at the agent")
        r2.publish(topic("data/telemetry"), "reader-forged")
        r2.publish(topic("reply"), "reader-forged")
        time.sleep(QUIET_S)
        t.check(r2.received(topic("cmd")) == [], "local-1 never receives a command")
        t.check(b"reader-forged" not in reader.received() and denied("local-1", topic("data/telemetry"))
                and denied("local-1", topic("reply")), "local-1 cannot publish into the cloud (Denied PUBLISH)")

        # --- client id takeover: a local reader asks for the agent's client id
        thief = client(local_port, login=site.bridge_login(GW, "local-1"), client_id=GW)
        t.check(thief.connect(), "local-1 connects asking for client id gw-a")
        time.sleep(QUIET_S)
        t.check(not agent.disconnected.is_set(), "the agent stays connected: its client id is its username")
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        gateway.stop()
        cloud.stop()
        if t.failed:
            print("--- gateway broker log ---\n" + gateway.log()[-4000:])


if __name__ == "__main__":
    main(test)
