#!/usr/bin/python3
"""eport-broker validate: accepts a generated config (TLS probe, client
without certificate refused, gateway certificate accepted) and fails with a
clear message on the known traps: no listener (local-only mode),
use_identity_as_username without require_certificate, files unreadable by
the user mosquitto drops to. Also shows the second trap on a real broker.
Expiry: the broker certificate, every client certificate in use (--pki) and
a CRL whose nextUpdate falls within --warn-days (default 30) make validate
exit 3 and name what to renew; --strict exits 3 on any warning."""

import grp
import os
import re

from harness import BROKER_CONFIG, Client, Site, eb, main, run

EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")
EPORT_PKI = str(BROKER_CONFIG / "pki" / "eport-pki")


def _has_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def validate(*args):
    return run([EPORT_BROKER, "validate", *map(str, args)], check=False)


def test(workdir, t):
    site = Site(workdir)
    crt, key = site.cert("gw-a")
    v = validate("--as-root", "--cert", crt, "--key", key, site.conf)
    t.check(v.returncode == 0, "validate accepts the generated config", v.stdout + v.stderr)
    for needle in ("broker certificate verified", "client without certificate refused",
                   "client certificate CN=gw-a accepted"):
        t.check(needle in v.stdout, f"validate reports '{needle}'")

    # The production config is untouched: no port rewritten, no pid file written.
    t.check("listener 8883" in site.conf.read_text(), "the validated config itself still says listener 8883")

    # Trap: no listener line at all.
    no_listener = workdir / "no-listener.conf"
    no_listener.write_text(re.sub(r"(?m)^listener .*$", "", site.conf.read_text()))
    v = validate(no_listener)
    t.check(v.returncode == 1 and "local-only mode" in v.stdout, "validate refuses a config without listener",
            v.stdout)

    # Trap: use_identity_as_username without require_certificate.
    no_req = workdir / "no-require.conf"
    no_req.write_text(site.conf.read_text().replace("require_certificate true", "require_certificate false"))
    v = validate(no_req)
    t.check(v.returncode == 1 and "needs require_certificate true" in v.stdout,
            "validate refuses use_identity_as_username without require_certificate", v.stdout)
    broker, copy = eb.start_copy(no_req, workdir / "no-require-broker", stay_root=True)
    try:
        c = Client(next(iter(copy.ports.values())), site.ca, crt, key, client_id="gw-a")
        t.check(not c.connect() and "not authorised" in broker.log(),
                "...and such a broker refuses even a valid gateway certificate as not authorised")
    finally:
        broker.stop()

    # Trap: mosquitto started as root drops to user mosquitto before reading
    # the ACL, certificates and key. Our temp dir is root-only (0700).
    if os.geteuid() == 0 and _has_group("mosquitto"):
        os.chmod(workdir, 0o700)
        v = validate(site.conf)
        t.check(v.returncode == 1 and "switched to user 'mosquitto'" in v.stdout,
                "validate (as root, config says user mosquitto) explains unreadable files", v.stdout)
        # The documented install: directories traversable, key root:mosquitto 0640.
        os.chmod(workdir, 0o755)
        for d in (site.out, site.out / "broker"):
            os.chmod(d, 0o755)
        # Installed as a file of its own (the CA directory pki/ stays 0700).
        crl = site.out / "broker" / "crl.pem"
        data = crl.read_bytes()
        crl.unlink()
        crl.write_bytes(data)
        os.chmod(crl, 0o644)
        os.chown(site.out / "broker" / "broker.key", 0, grp.getgrnam("mosquitto").gr_gid)
        os.chmod(site.out / "broker" / "broker.key", 0o640)
        v = validate("--cert", crt, "--key", key, site.conf)
        t.check(v.returncode == 0 and "(as user mosquitto)" in v.stdout,
                "with the key root:mosquitto 0640 the broker runs as user mosquitto and validate passes",
                v.stdout)
    else:
        print("  info: not root or no mosquitto group: privilege-drop checks skipped")

    # A wrong key is found before starting anything.
    broken = workdir / "broken.conf"
    broken.write_text(site.conf.read_text().replace("broker.key", "gw-a.key").replace(
        f"{site.out}/broker/gw-a.key", str(key)))
    v = validate(broken)
    t.check(v.returncode == 1 and "does not belong to certfile" in v.stdout,
            "validate names a keyfile that does not match the certificate", v.stdout)

    check_expiry(workdir / "expiry", t)


def check_expiry(workdir, t):
    workdir.mkdir()
    site = Site(workdir)
    pki = site.out / "pki"
    v = validate("--pki", pki)
    t.check(v.returncode == 0 and "certificate(s) in use valid for more than 30 days" in v.stdout
            and "crl.pem valid until" in v.stdout,
            "validate --pki: every certificate in use and the CRL are far from expiry: exit 0", v.stdout + v.stderr)

    # A gateway certificate 10 days from expiry (a rotation that issued it so).
    run([EPORT_PKI, "client", str(pki), "gw-c", "--reissue"], env=dict(os.environ, EPORT_PKI_CERT_DAYS="10"))
    v = validate("--pki", pki)
    t.check(v.returncode == 3 and re.search(r"warning: .*certificate of gw-c \(serial [0-9A-F]+\) expires in 9 days "
                                            r"\(\d{4}-\d\d-\d\dT[\d:]+Z, within the 30-day margin\); rotate it", v.stdout)
            and v.stdout.count("warning:") == 1 and "EXPIRING" in v.stdout,
            "validate --pki exits 3 for a client certificate expiring within 30 days, naming it and how to "
            "rotate it (its previous certificate, being replaced, is not counted)", v.stdout)
    v = validate("--pki", pki, "--warn-days", "5")
    t.check(v.returncode == 0 and "gw-c" not in v.stdout.split("first to expire")[0],
            "with --warn-days 5 the same PKI passes", v.stdout)
    v = validate("--pki", pki, "--warn-days", "12")
    t.check(v.returncode == 3, "with --warn-days 12 it does not", v.stdout)

    # The CRL: nextUpdate in 10 days.
    run([EPORT_PKI, "crl", str(pki)], env=dict(os.environ, EPORT_PKI_CRL_DAYS="10"))
    v = validate("--as-root", site.conf)
    t.check(v.returncode == 3 and re.search(r"warning: .*crlfile .*crl.pem \(nextUpdate\) expires in 9 days", v.stdout)
            and "eport-pki crl" in v.stdout,
            "validate CONFIG exits 3 for a CRL whose nextUpdate is within 30 days, and says to run eport-pki crl",
            v.stdout)
    v = validate("--as-root", "--warn-days", "5", site.conf)
    t.check(v.returncode == 0 and "CRL valid until" in v.stdout, "...and passes with --warn-days 5", v.stdout)
    run([EPORT_PKI, "crl", str(pki)])

    # The broker certificate: reissued for 10 days.
    run([EPORT_BROKER, "revoke", str(site.out), "broker"])
    run([EPORT_PKI, "server", str(pki), "broker", "mqtt.test.invalid"],
        env=dict(os.environ, EPORT_PKI_CERT_DAYS="10"))
    run([EPORT_BROKER, "gen", str(site.inv), str(site.out), "--conf-dir", str(site.out / "broker")])
    v = validate("--as-root", site.conf)
    t.check(v.returncode == 3 and re.search(r"warning: .*certfile .*broker.crt \(broker certificate\) expires in 9 days",
                                            v.stdout) and "mosquitto started" in v.stdout,
            "validate CONFIG exits 3 for a broker certificate within the margin (after all probes ran)", v.stdout)
    v = validate("--pki", pki)
    t.check(v.returncode == 3 and "broker certificate of broker" in v.stdout and "gw-c" in v.stdout,
            "validate --pki reports the broker certificate and gw-c", v.stdout)

    # --strict: any warning (here a TLS listener without crlfile) exits 3.
    no_crl = workdir / "no-crl.conf"
    no_crl.write_text(re.sub(r"(?m)^crlfile .*$", "", site.conf.read_text()))
    v = validate("--as-root", "--warn-days", "5", no_crl)
    t.check(v.returncode == 0 and "no crlfile" in v.stdout, "a warning that is not about expiry: exit 0", v.stdout)
    v = validate("--as-root", "--warn-days", "5", "--strict", no_crl)
    t.check(v.returncode == 3 and "(--strict)" in v.stdout, "...exit 3 with --strict", v.stdout)


if __name__ == "__main__":
    main(test)
