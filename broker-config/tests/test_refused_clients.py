#!/usr/bin/python3
"""Who the generated cloud broker refuses: a TLS client without a
certificate (anonymous), a plain-TCP client, a client whose certificate comes
from another CA (even with a known gateway's CN) and a client with a revoked
certificate. A valid gateway is accepted by the same broker, so a refusal is
the broker's decision and not a broken setup."""

from harness import BROKER_CONFIG, Client, Site, eb, main, run


def test(workdir, t):
    site = Site(workdir)
    # Revoke gw-c before the broker starts: its old certificate stays in pki/revoked/.
    run([str(BROKER_CONFIG / "eport-broker"), "revoke", str(site.out), "gw-c"])
    revoked = next((site.out / "pki" / "revoked").glob("gw-c-*.crt"))
    # A second, unrelated CA issuing a certificate for the CN "gw-a".
    rogue = workdir / "rogue-pki"
    run([str(BROKER_CONFIG / "pki" / "eport-pki"), "init", str(rogue), "rogue CA"])
    run([str(BROKER_CONFIG / "pki" / "eport-pki"), "client", str(rogue), "gw-a"])

    broker, copy = eb.start_copy(site.conf, workdir / "broker", stay_root=True)
    port = next(iter(copy.ports.values()))
    clients = []

    def attempt(**kw):
        c = Client(port, **kw)
        clients.append(c)
        return c, c.connect()

    try:
        crt, key = site.cert("gw-a")
        c, ok = attempt(ca=site.ca, cert=crt, key=key, client_id="gw-a")
        t.check(ok, "control: gw-a with its own certificate is accepted")
        c, ok = attempt(ca=site.ca, client_id="anon")
        t.check(not ok, "TLS client without a certificate is refused", f"error={c.error}")
        c, ok = attempt(ca=None, client_id="plain")
        t.check(not ok, "plain MQTT (no TLS) to the TLS port is refused", f"connack={c.connack}")
        c, ok = attempt(ca=site.ca, cert=rogue / "issued" / "gw-a.crt", key=rogue / "issued" / "gw-a.key",
                        client_id="gw-a")
        t.check(not ok, "certificate with CN gw-a from another CA is refused", f"error={c.error}")
        c, ok = attempt(ca=site.ca, cert=revoked, key=revoked.with_suffix(".key"), client_id="gw-c")
        t.check(not ok, "revoked certificate of gw-c is refused", f"error={c.error}")
        # The client may see the alert or only EOF (a race in TLS 1.3); the broker log is exact.
        t.check(broker.log().count("certificate verify failed") == 2,
                "broker logged 'certificate verify failed' for the foreign-CA and the revoked certificate")
        # Username/password cannot stand in for a certificate.
        c = Client(port, site.ca, client_id="gw-a")
        c.c.username_pw_set("gw-a", "secret")
        clients.append(c)
        t.check(not c.connect(), "TLS client with username gw-a and a password but no certificate is refused")
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
