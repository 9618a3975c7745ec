#!/usr/bin/python3
"""Backup and restore of docs/operators.md section 11, with its commands:
the administration machine's site directory (pki/ with the CA key and
database, the bridge passwords) and inventory as one tar file; the broker's
persistence (mosquitto.db, written on SIGUSR1 while the broker runs). After
both are lost and restored, gen issues nothing new, the broker accepts the
certificates the clients already have, still refuses a revoked one, gives a
persistent reader the messages queued for it and a late subscriber the
retained status, and a gateway added after the restore is issued by the same
CA and accepted."""

import os
import shutil
import signal
import subprocess

from harness import BROKER_CONFIG, Client, Site, eb, install_crl, main, run, wait_for

EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")


def sh(cmd: str, cwd) -> None:
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"{cmd}: {p.stdout}{p.stderr}"


def serials(out):
    return {p.name: run(["openssl", "x509", "-in", str(p), "-noout", "-serial"]).stdout
            for p in sorted((out / "pki" / "issued").glob("*.crt"))}


def start_broker(site, workdir, db=None):
    """The generated broker from a test copy; db: a mosquitto.db to restore
    into its persistence_location before it starts."""
    cfg = eb.parse_config(site.conf)
    copy = eb.write_test_copy(cfg, workdir, stay_root=True)
    if db:
        shutil.copy(db, workdir / "persistence" / "mosquitto.db")
    m = eb.Mosquitto(copy.path, list(copy.ports.values()), workdir / "mosquitto.log")
    return m.start(), next(iter(copy.ports.values()))


def test(workdir, t):
    site = Site(workdir)
    run([EPORT_BROKER, "revoke", str(site.out), "gw-c"])
    site.inv.write_text(site.inv.read_text().replace(', "gw-c"]', "]"))
    run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
    # What the gateways and cloud processes have installed (section 5 and 6).
    installed = workdir / "installed"
    for cn in ("gw-a", "reader-1"):
        for f in site.cert(cn):
            (installed / cn).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, installed / cn / f.name)
    revoked = next((site.out / "pki" / "revoked").glob("gw-c-*.crt"))
    shutil.copy(revoked, installed / "gw-c.crt")
    shutil.copy(revoked.with_suffix(".key"), installed / "gw-c.key")
    password = (site.out / "gateways" / "gw-a" / "bridge" / "agent.password").read_text()
    before = serials(site.out)

    broker, port = start_broker(site, workdir / "broker")
    status = site.topic("gw-a", "status")
    data = site.topic("gw-a", "data/event")
    clients = []
    try:
        reader = Client(port, site.ca, *site.cert("reader-1"), client_id="reader-1", clean_session=False)
        clients.append(reader)
        t.check(reader.connect(), "reader-1 connects with a persistent session")
        reader.subscribe("eport/v1/+/+/data/#")
        reader.close()
        gw = Client(port, site.ca, *site.cert("gw-a"), client_id="gw-a")
        clients.append(gw)
        t.check(gw.connect(), "gw-a connects")
        gw.publish(status, "online", retain=True)
        for i in range(5):
            gw.publish(data, f"queued-{i}")
        gw.close()

        # Backup, as section 11 says. Broker host: SIGUSR1 writes mosquitto.db now.
        persist = workdir / "broker" / "persistence" / "mosquitto.db"
        # Mosquitto writes mosquitto.db.new and renames it: once the name shows
        # a new file, that file is the complete snapshot.
        old = persist.stat().st_mtime_ns if persist.exists() else None
        broker.signal(signal.SIGUSR1)  # systemctl kill -s USR1 mosquitto
        wait_for(lambda: persist.exists() and persist.stat().st_mtime_ns != old, "mosquitto.db written on SIGUSR1")
        backup = workdir / "backup"
        backup.mkdir()
        sh(f"cp {persist} {backup}/mosquitto.db", workdir)
        # Administration machine: the site directory and the inventory.
        sh(f"tar -C {workdir} -czf {backup}/site.tar.gz {site.out.name} {site.inv.name}", workdir)
        broker.stop()

        # The disaster: both machines lose everything.
        shutil.rmtree(site.out)
        site.inv.unlink()
        shutil.rmtree(workdir / "broker")

        # Restore: unpack, run gen (it must issue nothing), install, restore the db.
        sh(f"tar -C {workdir} -xzf {backup}/site.tar.gz", workdir)
        g = run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        install_crl(site.out)
        t.check(serials(site.out) == before and "issued" not in g.stdout,
                "after the restore gen issues nothing and every certificate is the one from before", g.stdout)
        t.check((site.out / "gateways" / "gw-a" / "bridge" / "agent.password").read_text() == password,
                "the bridge passwords are the ones from before")
        broker, port = start_broker(site, workdir / "broker", db=backup / "mosquitto.db")

        reader = Client(port, site.ca, installed / "reader-1" / "reader-1.crt",
                        installed / "reader-1" / "reader-1.key", client_id="reader-1", clean_session=False)
        clients.append(reader)
        t.check(reader.connect(), "the restored broker accepts reader-1's installed certificate")
        wait_for(lambda: len(reader.received(data)) == 5, "the 5 messages queued for reader-1")
        t.check(sorted(reader.received(data)) == [f"queued-{i}".encode() for i in range(5)],
                "reader-1's persistent session comes back with the 5 messages queued for it")
        gw = Client(port, site.ca, installed / "gw-a" / "gw-a.crt", installed / "gw-a" / "gw-a.key", client_id="gw-a")
        clients.append(gw)
        t.check(gw.connect(), "the restored broker accepts gw-a's installed certificate")
        late = Client(port, site.ca, *site.cert("cmd-1"), client_id="cmd-1")
        clients.append(late)
        t.check(late.connect(), "cmd-1 connects")
        late.subscribe(status)
        wait_for(lambda: late.received(status) == [b"online"], "gw-a's retained status")
        t.check(True, "a late subscriber gets gw-a's retained status from the restored persistence")
        bad = Client(port, site.ca, installed / "gw-c.crt", installed / "gw-c.key", client_id="gw-c")
        clients.append(bad)
        t.check(not bad.connect(), "gw-c, revoked before the backup, is still refused (the CRL came back)")

        site.inv.write_text(site.inv.read_text().replace('"gw-b"]', '"gw-b", "gw-d"]'))
        g = run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
        broker.signal(signal.SIGHUP)
        new = Client(port, site.ca, *site.cert("gw-d"), client_id="gw-d")
        clients.append(new)
        t.check("issued gateway certificate gw-d" in g.stdout and new.connect(),
                "a gateway added after the restore gets a certificate of the same CA and is accepted", g.stdout)
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
