#!/usr/bin/python3
"""A revoked gateway's retained status stays truthful instead of vanishing:
after `eport-broker revoke`, removal from the inventory, gen and a reload it
is still connected and "online"; the restart that cuts its connection makes
mosquitto send its last will, and from then on every new subscriber gets
"offline". Gen keeps a status-only ACL block for the revoked gateway; without
it check_retain_source hides the status (the old behaviour, shown too)."""

import signal
import time

from harness import BROKER_CONFIG, Client, Site, eb, main, run, wait_for

EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")


def test(workdir, t):
    site = Site(workdir)
    broker, copy = eb.start_copy(site.conf, workdir / "broker", stay_root=True)
    port = next(iter(copy.ports.values()))
    topic = site.topic("gw-b", "status")
    clients = []

    def client(cn, **kw):
        crt, key = site.cert(cn)
        c = Client(port, site.ca, crt, key, client_id=cn, **kw)
        clients.append(c)
        return c

    def late_status(reader):
        """What a subscriber that connects now gets as gw-b's retained status."""
        c = client(reader)
        assert c.connect(), f"{reader} connects"
        c.subscribe(topic)
        time.sleep(0.5)  # a retained message comes with the SUBACK or not at all
        got = c.received(topic)
        c.close()
        return got

    try:
        gw_b = client("gw-b", will=(topic, "offline", 1, True))
        t.check(gw_b.connect(), "gw-b connects")
        gw_b.publish(topic, "online", retain=True)

        run([EPORT_BROKER, "revoke", str(site.out), "gw-b"])
        site.inv.write_text(site.inv.read_text().replace('"gw-b", ', ""))
        g = run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        acl = (site.out / "broker" / "acl").read_text()
        block = acl.split("\nuser gw-b\n", 1)[1].split("\n\n", 1)[0].strip().splitlines() if "\nuser gw-b\n" in acl else []
        t.check(block == [f"topic write {topic}"] and "still has a valid certificate" not in g.stderr,
                "gen keeps only gw-b's status line in the ACL once gw-b is revoked and out of the inventory",
                repr(block))
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        t.check(late_status("reader-1") == [b"online"] and not gw_b.disconnected.is_set(),
                "after the reload gw-b is still connected, and its status says online (true)")

        broker.stop()  # systemctl restart mosquitto: cuts the open connection
        broker.start()
        revoked = next((site.out / "pki" / "revoked").glob("gw-b-*.crt"))
        again = Client(port, site.ca, revoked, revoked.with_suffix(".key"), client_id="gw-b")
        clients.append(again)
        t.check(not again.connect(), "after the restart the revoked certificate is refused")
        t.check(late_status("reader-2") == [b"offline"],
                "a new subscriber gets gw-b's retained status 'offline' (its last will, sent at the restart)")

        # Without the status line (the generator's old ACL) it disappears.
        acl_file = site.out / "broker" / "acl"
        acl_file.write_text(acl_file.read_text().replace("\nuser gw-b\n", "\nuser gw-b-gone\n"))
        broker.signal(signal.SIGHUP)
        time.sleep(0.5)
        t.check(late_status("reader-3") == [],
                "without that ACL line check_retain_source hides the status: nothing, neither online nor offline")
        run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        broker.signal(signal.SIGHUP)
        wait_for(lambda: late_status("reader-1") == [b"offline"], "offline again after gen and reload")
        t.check(True, "gen restores the line; after a reload 'offline' is readable again")
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        broker.stop()
        if t.failed:
            print(broker.log()[-3000:])


if __name__ == "__main__":
    main(test)
