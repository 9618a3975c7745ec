"""Command line of eport-broker: gen (inventory -> broker config, ACL,
certificates, per-gateway agent and bridge configs), validate (start a
config on a free loopback port and probe it; expiry of the broker
certificate, the CRL and, with --pki, every certificate in use), revoke
(current or --serial, with an RFC 5280 reason), keys. Every failure
ends in one "eport-broker <cmd>: error: ..." line naming the input, exit
status 1; validate exits 3 when nothing is broken but something expires
within its margin."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import broker, cluster, passwd, pki, render
from .inventory import InventoryError, keys_help, load

# validate's default margin: a certificate or CRL that expires within this
# many days is reported (and validate exits 3). --warn-days changes it.
WARN_DAYS = 30
# validate's exit status when nothing is broken but something expires within
# the margin (or, with --strict, on any warning); 1 is an error.
EXIT_EXPIRING = 3


class Failure(Exception):
    pass


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _copy(src: Path, dst: Path, mode: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(src.read_bytes())
    os.chmod(tmp, mode)
    os.replace(tmp, dst)


# ---------------------------------------------------------------- gen

def cmd_gen(args) -> int:
    inv = load(args.inventory)
    out = Path(args.outdir).resolve()
    pki_dir = out / "pki"
    out.mkdir(parents=True, exist_ok=True)

    if not (pki_dir / "private" / "ca.key").exists():
        pki.run_pki("init", str(pki_dir), inv.ca_name)
        print(f"created CA '{inv.ca_name}' in {pki_dir}")

    wanted_san = {f"DNS:{h}" if not _is_ip(h) else f"IP:{h}" for h in [inv.broker_host, *inv["broker.alt_names"]]}
    wanted_san |= {"DNS:localhost", "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1"}
    wanted_san = {"IP:0:0:0:0:0:0:0:1" if s == "IP:::1" else "DNS:" + s[4:].lower() if s.startswith("DNS:")
                  else s for s in wanted_san}
    server_crt = pki_dir / "issued" / f"{pki.SERVER_CN}.crt"
    if not server_crt.exists():
        pki.run_pki("server", str(pki_dir), pki.SERVER_CN, inv.broker_host, *inv["broker.alt_names"])
        print(f"issued broker certificate for {inv.broker_host}")
    else:
        have = {"DNS:" + s[4:].lower() if s.startswith("DNS:") else s for s in pki.san(server_crt)}
        missing = {s for s in wanted_san if s not in have}
        if missing:
            raise Failure(f"the existing broker certificate {server_crt} lacks {sorted(missing)}; run "
                          f"`eport-broker revoke {out} {pki.SERVER_CN}` and gen again to reissue it")

    for cn, role in inv.identities().items():
        crt = pki_dir / "issued" / f"{cn}.crt"
        uri = cluster.identity(inv, cn)
        if not crt.exists():
            pki.run_pki("client", str(pki_dir), cn, uri)
            print(f"issued {role} certificate {cn} ({uri})")
        elif f"URI:{uri}" not in pki.san(crt):
            print(f"warning: {crt} has no URI SAN {uri}: Mosquitto accepts it (CN), the NATS cluster refuses it. "
                  f"Rotate it: eport-pki client {pki_dir} {cn} {uri} --reissue (docs/operators.md section 7)",
                  file=sys.stderr)

    nodes = cluster.nodes(inv)
    for node in nodes:
        crt = pki_dir / "issued" / f"{node.name}.crt"
        if not crt.exists():
            pki.run_pki("node", str(pki_dir), node.name, node.host)
            print(f"issued cluster node certificate {node.name} for {node.host}")
        else:
            want = f"IP:{node.host}" if _is_ip(node.host) else f"DNS:{node.host}"
            if want not in pki.san(crt):
                raise Failure(f"the existing certificate of cluster node {node.name} ({crt}) lacks {want}; run "
                              f"`eport-broker revoke {out} {node.name}` and gen again to reissue it")

    known = set(inv.identities()) | {pki.SERVER_CN} | {n.name for n in nodes}
    stale = sorted({e.cn for e in pki.index(pki_dir) if e.status == "V" and e.cn not in known
                    and (pki_dir / "issued" / f"{e.cn}.crt").exists()})
    for cn in stale:
        print(f"warning: {cn} still has a valid certificate but is not in {inv.path}; it can still connect "
              f"(with no ACL rights). Revoke it: eport-broker revoke {out} {cn}", file=sys.stderr)
    for cn, serial in pki.previous(pki_dir):
        print(f"warning: {cn}'s previous certificate (serial {serial}) is still valid after its rotation. Once "
              f"{cn} runs with the new one, revoke it: eport-broker revoke {out} {cn} --serial {serial}",
              file=sys.stderr)

    issued = pki_dir / "issued"
    b = out / "broker"
    _write(b / "mosquitto.conf", render.broker_conf(inv, args.conf_dir))
    entries = pki.index(pki_dir)
    retired = tuple(sorted({e.cn for e in entries if e.status == "R" and e.cn not in known}
                           - {e.cn for e in entries if e.status == "V"}))
    _write(b / "acl", render.acl(inv, retired))
    _copy(pki_dir / "ca.crt", b / "ca.crt", 0o644)
    # One CRL: pki/crl.pem, the file eport-pki writes (revoke, crl) and the one
    # to install as the broker's crlfile. Earlier versions copied it here,
    # a second copy that a CRL renewal left stale.
    old_crl = b / "crl.pem"
    if old_crl.is_file() and not old_crl.is_symlink():
        old_crl.unlink()
        print(f"removed {old_crl}: install {pki_dir / 'crl.pem'} as the broker's crl.pem")
    _copy(issued / f"{pki.SERVER_CN}.crt", b / "broker.crt", 0o644)
    _copy(issued / f"{pki.SERVER_CN}.key", b / "broker.key", 0o600)

    for node in nodes:
        d = out / "cluster" / node.name
        _write(d / "nats-server.conf", cluster.node_conf(inv, node, args.cluster_conf_dir))
        _copy(pki_dir / "ca.crt", d / "ca.crt", 0o644)
        _copy(issued / f"{node.name}.crt", d / "node.crt", 0o644)
        _copy(issued / f"{node.name}.key", d / "node.key", 0o600)
    if (out / "cluster").exists():
        for d in (out / "cluster").glob("*"):
            if d.is_dir() and d.name not in {n.name for n in nodes}:
                shutil.rmtree(d)

    for gw in inv.gateways:
        g = out / "gateways" / gw
        _copy(pki_dir / "ca.crt", g / "ca.crt", 0o644)
        _copy(issued / f"{gw}.crt", g / f"{gw}.crt", 0o644)
        _copy(issued / f"{gw}.key", g / f"{gw}.key", 0o600)
        _write(g / "agent.toml", render.agent_config(inv, gw))
        _write(g / "cluster" / "agent.toml", cluster.agent_config(inv, gw))
        _write(g / "bridge" / "mosquitto.conf", render.bridge_conf(inv, gw))
        _write(g / "bridge" / "agent.toml", render.agent_config(inv, gw, via_bridge=True))
        _write(g / "bridge" / "acl", render.bridge_acl(inv, gw))
        _bridge_passwords(inv, gw, g / "bridge")
        # Earlier versions wrote a snippet with key names the agent never had.
        old_snippet = g / "agent-tls.toml"
        if old_snippet.exists():
            old_snippet.unlink()
            print(f"removed {old_snippet} (replaced by {g / 'agent.toml'})")
    for cn in (*inv.readers, *inv.commanders, *inv.monitors, *inv.ingesters):
        c = out / "clients" / cn
        _copy(pki_dir / "ca.crt", c / "ca.crt", 0o644)
        _copy(issued / f"{cn}.crt", c / f"{cn}.crt", 0o644)
        _copy(issued / f"{cn}.key", c / f"{cn}.key", 0o600)
    # Output of identities removed from the inventory must not linger.
    cloud = set(inv.readers) | set(inv.commanders) | set(inv.monitors) | set(inv.ingesters)
    for sub, names in (("gateways", set(inv.gateways)), ("clients", cloud)):
        for d in (out / sub).glob("*") if (out / sub).exists() else []:
            if d.is_dir() and d.name not in names:
                shutil.rmtree(d)
    print(f"site {inv.site}: broker config in {b}/, {len(inv.gateways)} gateway(s) in {out}/gateways/, "
          f"{len(inv.readers) + len(inv.commanders) + len(inv.monitors) + len(inv.ingesters)} cloud account(s) in {out}/clients/, "
          f"{len(nodes)} NATS cluster node(s) in {out}/cluster/. "
          f"Keep {pki_dir}/ (the CA key) off the broker.")
    return 0


def _bridge_passwords(inv, gw: str, d: Path) -> None:
    """The local users of gw's bridge broker: bridge/agent.password for the
    agent (user gw), bridge/local-readers/<name>.password for each local
    reader, each kept across runs, and bridge/passwd with their hashes."""
    users = {}
    for name, role in render.bridge_users(inv, gw).items():
        users[name] = passwd.password(d / "agent.password" if role == "agent"
                                      else d / "local-readers" / f"{name}.password")
    readers = d / "local-readers"
    for f in readers.glob("*.password") if readers.is_dir() else []:
        if f.stem not in users:
            f.unlink()
    if passwd.password_file(d / "passwd", users):
        print(f"wrote {d / 'passwd'} ({len(users)} local user(s) of {gw}'s bridge broker)")


def _is_ip(text: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- revoke

def cmd_revoke(args) -> int:
    out = Path(args.outdir).resolve()
    pki_dir = out / "pki"
    extra = (["--serial", args.serial] if args.serial else []) + (["--reason", args.reason] if args.reason else [])
    print(pki.run_pki("revoke", str(pki_dir), args.name, *extra).rstrip())
    if args.serial:
        print(f"revoked a certificate of {args.name} (serial {args.serial}). Next: install {pki_dir}/crl.pem on "
              "the broker as its crl.pem, then `systemctl reload mosquitto`.")
    else:
        print(f"revoked {args.name}. Next: remove it from the inventory and run gen (drops its ACL block), install "
              f"{pki_dir}/crl.pem and {out}/broker/acl on the broker, then `systemctl reload mosquitto` (refuses "
              "new connections with that certificate) or `systemctl restart mosquitto` (also cuts an open one).")
    return 0


# ---------------------------------------------------------------- validate

class Report:
    def __init__(self, warn_days: int = WARN_DAYS):
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.expiring: list[str] = []   # warnings about a certificate or CRL expiring within the margin
        self.warn_days = warn_days
        self.now = dt.datetime.now(dt.timezone.utc)

    def expiry(self, what: str, when: dt.datetime, fix: str) -> bool:
        """Error if `when` has passed, warning (counted as expiring) within
        the margin; True if neither."""
        left = when - self.now
        if left.total_seconds() <= 0:
            self.error(f"{what} expired at {when:%Y-%m-%dT%H:%M:%SZ}; {fix}")
            return False
        if left.days < self.warn_days:
            self.expiring.append(what)
            self.warn(f"{what} expires in {left.days} days ({when:%Y-%m-%dT%H:%M:%SZ}, within the "
                      f"{self.warn_days}-day margin); {fix}")
            return False
        return True

    def ok(self, msg):
        print(f"ok: {msg}")

    def warn(self, msg):
        self.warnings.append(msg)
        print(f"warning: {msg}")

    def error(self, msg):
        self.errors.append(msg)
        print(f"error: {msg}")


def _static_checks(cfg: broker.Config, rep: Report) -> None:
    if not cfg.listeners:
        rep.error(f"{cfg.path}: no 'listener' line: mosquitto 2.0 would start in local-only mode "
                  "(loopback port 1883, anonymous) instead of this service")
        return
    anonymous = (cfg.options.get("allow_anonymous") or ["false"])[-1] == "true"
    for lst in cfg.listeners:
        where = f"{cfg.path}:{lst.line} (listener {lst.port})"
        o = lst.options
        if o.get("use_identity_as_username") == "true" and o.get("require_certificate") != "true":
            rep.error(f"{where}: use_identity_as_username true needs require_certificate true: without it "
                      "the broker never asks for a client certificate and refuses every client as not authorised")
        if anonymous and lst.address not in ("127.0.0.1", "::1", "localhost"):
            rep.warn(f"{where}: allow_anonymous true on a listener that is not loopback-only")
        if not lst.tls:
            if lst.address not in ("127.0.0.1", "::1", "localhost"):
                rep.warn(f"{where}: plain MQTT (no TLS) on a listener that is not loopback-only")
            continue
        files = {k: Path(o[k]) for k in ("cafile", "certfile", "keyfile", "crlfile") if k in o}
        for k in ("cafile", "certfile", "keyfile"):
            if k not in files:
                rep.error(f"{where}: TLS listener without {k}")
        for k, f in files.items():
            if not f.is_file():
                rep.error(f"{where}: {k} {f} does not exist")
        if any(not f.is_file() for f in files.values()) or len(files) < 3:
            continue
        try:
            if not pki.key_matches_cert(files["keyfile"], files["certfile"]):
                rep.error(f"{where}: keyfile {files['keyfile']} does not belong to certfile {files['certfile']}")
            not_after = pki.cert_not_after(files["certfile"])
            if rep.expiry(f"{where}: certfile {files['certfile']} (broker certificate)", not_after,
                          "reissue it: eport-pki server PKIDIR broker HOST... after revoking the old one "
                          "(docs/operators.md section 7)"):
                rep.ok(f"broker certificate valid until {not_after:%Y-%m-%dT%H:%M:%SZ}")
            if "crlfile" in files:
                crl = files["crlfile"]
                nu = pki.crl_next_update(crl)
                if rep.expiry(f"{where}: crlfile {crl} (nextUpdate)", nu,
                              "after it mosquitto refuses EVERY client certificate: run `eport-pki crl PKIDIR` "
                              "and install PKIDIR/crl.pem as this crlfile, then reload mosquitto"):
                    rep.ok(f"CRL valid until {nu:%Y-%m-%dT%H:%M:%SZ}")
                if not pki.crl_signed_by(crl, files["cafile"]):
                    rep.error(f"{where}: crlfile {crl} is not signed by cafile {files['cafile']}")
            elif o.get("require_certificate") == "true":
                rep.warn(f"{where}: no crlfile: a certificate cannot be revoked")
        except pki.PkiError as exc:
            rep.error(f"{where}: {exc}")
    for key in ("acl_file", "password_file"):
        f = (cfg.options.get(key) or [None])[-1]
        if f and not Path(f).is_file():
            rep.error(f"{cfg.path}: {key} {f} does not exist")


def _pki_checks(pki_dir: Path, rep: Report) -> None:
    """Every certificate of the site CA that is valid and in use (issued/,
    not a previous one that a rotation replaces) and pki/crl.pem, against
    the margin: on the administration machine, where pki/ lives."""
    previous = set(pki.previous(pki_dir))
    current = [e for e in pki.index(pki_dir) if e.status == "V" and (e.cn, e.serial) not in previous]
    fine = 0
    for e in sorted(current, key=lambda e: e.not_after):
        kind = "broker certificate" if e.cn == pki.SERVER_CN else "certificate"
        fix = (f"rotate it: eport-pki client {pki_dir} {e.cn} --reissue (docs/operators.md section 7)"
               if e.cn != pki.SERVER_CN else "reissue it (docs/operators.md section 7)")
        fine += rep.expiry(f"{pki_dir}: {kind} of {e.cn} (serial {e.serial})", e.not_after, fix)
    if current:
        first = min(current, key=lambda e: e.not_after)
        rep.ok(f"{pki_dir}: {fine} of {len(current)} certificate(s) in use valid for more than {rep.warn_days} days; "
               f"the first to expire: {first.cn} on {first.not_after:%Y-%m-%dT%H:%M:%SZ}")
    crl = pki_dir / "crl.pem"
    if not crl.is_file():
        rep.error(f"{pki_dir}: no crl.pem")
        return
    nu = pki.crl_next_update(crl)
    if rep.expiry(f"{crl} (nextUpdate)", nu, f"run `eport-pki crl {pki_dir}`, install it as the broker's crl.pem and "
                  "reload mosquitto; after nextUpdate mosquitto refuses EVERY client certificate"):
        rep.ok(f"{crl} valid until {nu:%Y-%m-%dT%H:%M:%SZ}")


def _verdict(rep: Report, args, what: str) -> int:
    if rep.errors:
        print(f"FAILED: {len(rep.errors)} error(s), {len(rep.warnings)} warning(s)")
        return 1
    if rep.expiring or (args.strict and rep.warnings):
        n = len(rep.warnings) if args.strict else len(rep.expiring)
        print(f"EXPIRING: {what}: {n} warning(s) need action"
              + (f" ({len(rep.expiring)} expire within {rep.warn_days} days)" if rep.expiring else " (--strict)"))
        return EXIT_EXPIRING
    print(f"OK: {what} ({len(rep.warnings)} warning(s))")
    return 0


def cmd_validate(args) -> int:
    if args.warn_days < 0:
        raise Failure(f"--warn-days must be 0 or more, got {args.warn_days}")
    rep = Report(args.warn_days)
    if args.pki:
        _pki_checks(Path(args.pki).resolve(), rep)
    if not args.config:
        return _verdict(rep, args, str(args.pki))
    try:
        cfg = broker.parse_config(args.config)
    except broker.BrokerError as exc:
        raise Failure(str(exc)) from None
    _static_checks(cfg, rep)
    if rep.errors:
        print(f"FAILED: {len(rep.errors)} error(s) before starting mosquitto")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="eport-validate-"))
    user = None if args.as_root else broker.drop_user(cfg)
    try:
        try:
            m, copy = broker.start_copy(cfg.path, workdir, stay_root=args.as_root)
        except broker.BrokerError as exc:
            msg = str(exc)
            hint = ""
            if user and ("Permission denied" in msg or "Unable to open" in msg or "Unable to load" in msg):
                hint = (f"\nhint: mosquitto switched to user '{user}' before reading its files; make "
                        f"certificates, key, CRL and ACL readable by that user (key: root:{user} 0640)")
            rep.error(f"mosquitto did not start with {cfg.path}:\n{msg.rstrip()}{hint}")
            print(f"FAILED: {len(rep.errors)} error(s)")
            return 1
        try:
            rep.ok(f"mosquitto started from a copy of {cfg.path}" + (f" (as user {user})" if user else ""))
            for lst in cfg.listeners:
                port = copy.ports[lst.port]
                label = f"listener {lst.port} (probed on 127.0.0.1:{port})"
                o = lst.options
                if not lst.tls:
                    accepted, detail = broker.mqtt_probe(port, None)
                    rep.ok(f"{label}: plain MQTT, anonymous CONNECT: {detail}")
                    continue
                ca = args.ca or o["cafile"]
                # Anonymous TLS client: proves the server certificate, and that
                # require_certificate refuses clients without one.
                accepted, detail = broker.mqtt_probe(port, broker.tls_context(ca))
                if "broker certificate not accepted" in detail:
                    rep.error(f"{label}: {detail} (checked against {ca} for name 127.0.0.1)")
                    continue
                rep.ok(f"{label}: TLS handshake, broker certificate verified against {ca} for 127.0.0.1")
                if o.get("require_certificate") == "true":
                    if accepted:
                        rep.error(f"{label}: a client WITHOUT a certificate was accepted ({detail})")
                    else:
                        rep.ok(f"{label}: client without certificate refused ({detail})")
                elif accepted:
                    rep.warn(f"{label}: accepts TLS clients without a certificate")
                if args.cert:
                    ok, detail = broker.mqtt_probe(port, broker.tls_context(ca, args.cert, args.key))
                    cn = pki.cert_cn(Path(args.cert))
                    if ok:
                        rep.ok(f"{label}: client certificate CN={cn} accepted ({detail})")
                    else:
                        rep.error(f"{label}: client certificate CN={cn} refused: {detail}")
            if not m.running():
                rep.error(f"mosquitto stopped during the probes:\n{m.log()}")
        finally:
            m.stop()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    return _verdict(rep, args, str(cfg.path))


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="eport-broker", description="eport-edge site broker generator and validator")
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("gen", help="render broker config, ACL, certificates and per-gateway agent/bridge configs from an inventory")
    g.add_argument("inventory")
    g.add_argument("outdir")
    g.add_argument("--conf-dir", help="directory the broker config refers to for certs and ACL "
                                      "(default: the inventory's paths.conf_dir)")
    g.add_argument("--cluster-conf-dir", help="directory the NATS node configs refer to for their certificates "
                                              "(default: the inventory's paths.cluster_conf_dir)")
    g.set_defaults(func=cmd_gen)

    v = sub.add_parser("validate", help="start mosquitto with CONFIG on a free loopback port and probe it; "
                                        "with --pki check every certificate of the site CA and its CRL. Exit 0 ok, "
                                        "1 error, 3 something expires within --warn-days (or any warning, --strict)")
    v.add_argument("config", nargs="?", help="mosquitto.conf to check (on the broker host: the installed one)")
    v.add_argument("--pki", help="the site's PKI directory (OUTDIR/pki, on the administration machine): warn "
                                 "about every certificate in use and the CRL expiring within the margin")
    v.add_argument("--warn-days", type=int, default=WARN_DAYS,
                   help=f"margin in days for certificate and CRL expiry (default {WARN_DAYS})")
    v.add_argument("--strict", action="store_true", help=f"exit {EXIT_EXPIRING} on any warning, not only on expiry")
    v.add_argument("--cert", help="also CONNECT with this client certificate (needs --key)")
    v.add_argument("--key")
    v.add_argument("--ca", help="CA to verify the broker certificate with (default: the listener's cafile)")
    v.add_argument("--as-root", action="store_true", help="run the copy with 'user root' instead of the config's user")
    v.add_argument("--keep", action="store_true", help="keep the temporary copy and its log")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("revoke", help="revoke NAME's certificate and renew OUTDIR/pki/crl.pem")
    r.add_argument("outdir")
    r.add_argument("name")
    r.add_argument("--serial", help="revoke this certificate of NAME (a previous one after a rotation) "
                                    "instead of the current one")
    r.add_argument("--reason", help="RFC 5280 reason: unspecified, keyCompromise, CACompromise, affiliationChanged, "
                                    "superseded, cessationOfOperation (default: cessationOfOperation, or "
                                    "superseded with --serial of a previous certificate)")
    r.set_defaults(func=cmd_revoke)

    k = sub.add_parser("keys", help="list the inventory keys, defaults and meaning")
    k.set_defaults(func=lambda a: print(keys_help()) or 0)

    args = ap.parse_args(argv)
    if getattr(args, "cert", None) and not args.key:
        ap.error("--cert needs --key")
    if args.cmd == "validate" and not args.config and not args.pki:
        ap.error("validate needs CONFIG, --pki PKIDIR or both")
    try:
        return args.func(args)
    except (Failure, InventoryError, pki.PkiError, broker.BrokerError, render.RenderError,
            passwd.PasswdError) as exc:
        print(f"eport-broker {args.cmd}: error: {exc}", file=sys.stderr)
        return 1
