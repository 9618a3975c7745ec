#!/usr/bin/python3
"""eport-pki's evidence signing keys and device registry (docs/evidence.md
section 14), checked from outside with openssl and Python's hashlib and
cryptography, none of which shares code with eport-pki: every key file is
0600; the registry lists each key's source, kid (the first 8 bytes of
SHA-256 over the raw public key), COSE alg, raw public key (the one in the
key's PEM), validity, status and pairing authority; its detached signature
verifies with the CA certificate's key and fails for a registry changed by
one byte; --rotate supersedes the old key and --revoke records the reason;
the refusals (a second key without --rotate, nothing to revoke, a bad id,
algorithm or reason) change nothing. When epb-evidence is built
(EPORT_BIN_DIR), a demo chain signed with an issued key verifies with the
registry's public key under the registry's kid."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from harness import BROKER_CONFIG, Checks, main, run

EPORT_PKI = str(BROKER_CONFIG / "pki" / "eport-pki")
BIN = Path(os.environ.get("EPORT_BIN_DIR", BROKER_CONFIG.parent / "build" / "agent"))
EPB_EVIDENCE = BIN.parent / "firmware-bridge" / "epb-evidence"
INTEROP = BROKER_CONFIG.parent / "firmware-bridge" / "tests" / "evidence_interop.py"

try:
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover
    print("SKIP: python3-cryptography is not installed")
    sys.exit(77)


def pki(*args, check=True):
    return run([EPORT_PKI, *map(str, args)], check=check)


def raw_public(pub_pem: Path) -> bytes:
    key = serialization.load_pem_public_key(pub_pem.read_bytes())
    try:
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    except ValueError:  # P-256: the uncompressed point
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def registry_verifies(p: Path, ca_pub: Path) -> bool:
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(ca_pub), "-signature",
                        str(p / "registry.json.sig"), str(p / "registry.json")], capture_output=True, text=True)
    return r.returncode == 0 and "Verified OK" in r.stdout


def test(workdir: Path, t: Checks) -> None:
    p = workdir / "pki"
    pki("init", p, "Port of Test CA")
    ca_pub = workdir / "ca.pub.pem"
    ca_pub.write_text(run(["openssl", "x509", "-in", str(p / "ca.crt"), "-pubkey", "-noout"]).stdout)

    pki("evidence-key", p, "tcu-0001", "--pairing-authority", "COSCO Shipping")
    pki("evidence-key", p, "gw-quay-01", "--alg", "es256", "--days", "30")
    reg = json.loads((p / "registry.json").read_text())
    t.check(reg["format"] == "eport-evidence-registry-1" and reg["issuer"] == "Port of Test CA",
            "the registry names its format and issuer")
    keys = {k["source"]: k for k in reg["keys"]}
    t.check(set(keys) == {"tcu-0001", "gw-quay-01"}, "one key per source")
    t.check(keys["tcu-0001"]["alg"] == -8 and keys["gw-quay-01"]["alg"] == -7, "COSE alg -8 (EdDSA), -7 (ES256)")
    for src, k in keys.items():
        pub = p / "evidence" / "keys" / f"{src}-{k['kid']}.pub.pem"
        key = p / "evidence" / "keys" / f"{src}-{k['kid']}.key.pem"
        raw = raw_public(pub)
        t.check(k["public_key"] == raw.hex() and len(raw) == (32 if k["alg"] == -8 else 65),
                f"{src}: the registry's public key is the raw key of its PEM")
        t.check(k["kid"] == hashlib.sha256(raw).digest()[:8].hex(), f"{src}: kid = SHA-256(raw key)[:8]")
        t.check(oct(key.stat().st_mode & 0o777) == "0o600", f"{src}: the private key is 0600")
        t.check(k["status"] == "valid" and k["not_before"] < k["not_after"], f"{src}: valid, with its validity")
    t.check(keys["tcu-0001"].get("pairing_authority") == "COSCO Shipping" and
            "pairing_authority" not in keys["gw-quay-01"], "the pairing authority, where given")
    t.check(registry_verifies(p, ca_pub), "the registry's signature verifies with the CA's key")
    original = (p / "registry.json").read_bytes()
    (p / "registry.json").write_bytes(original.replace(b"COSCO", b"COSCX"))
    t.check(not registry_verifies(p, ca_pub), "a registry changed by one byte does not verify")
    (p / "registry.json").write_bytes(original)

    # Refusals change nothing.
    before = (p / "evidence" / "index").read_text()
    for args, why in ((("tcu-0001",), "has a valid evidence key already"),
                      (("tcu-0009", "--revoke", "keyCompromise"), "has no valid evidence key"),
                      (("tcu 9",), "is not topic-safe"),
                      (("tcu-0009", "--alg", "rsa"), "--alg: ed25519 or es256"),
                      (("tcu-0001", "--revoke", "lost"), "--revoke REASON")):
        r = pki("evidence-key", p, *args, check=False)
        t.check(r.returncode != 0 and why in r.stderr, f"refused: {' '.join(args)} ({why})")
    t.check((p / "evidence" / "index").read_text() == before, "refusals left the index as it was")

    # Rotation and revocation.
    old_kid = keys["tcu-0001"]["kid"]
    pki("evidence-key", p, "tcu-0001", "--rotate")
    pki("evidence-key", p, "gw-quay-01", "--revoke", "keyCompromise")
    reg = json.loads((p / "registry.json").read_text())
    unit = [k for k in reg["keys"] if k["source"] == "tcu-0001"]
    t.check(len(unit) == 2 and unit[0]["kid"] == old_kid and unit[0]["status"] == "superseded" and
            unit[0].get("superseded_utc") and unit[1]["status"] == "valid" and unit[1]["kid"] != old_kid,
            "--rotate: the old key superseded (with its time), a new valid one")
    gw = [k for k in reg["keys"] if k["source"] == "gw-quay-01"]
    t.check(len(gw) == 1 and gw[0]["status"] == "revoked" and gw[0]["reason"] == "keyCompromise" and
            gw[0].get("revoked_utc"), "--revoke: revoked, with the reason and time")
    t.check(registry_verifies(p, ca_pub), "the registry is signed again after each change")

    # A chain signed with an issued key verifies under the registry's key.
    if os.access(EPB_EVIDENCE, os.X_OK):
        k = unit[1]
        out = workdir / "demo"
        out.mkdir()
        run([str(EPB_EVIDENCE), "demo", str(p / "evidence" / "keys" / f"tcu-0001-{k['kid']}.key.pem"), str(out), "40"])
        src, alg, kid, pub = (out / "key.txt").read_text().split()
        t.check(int(alg) == k["alg"] and kid == k["kid"] and pub == k["public_key"],
                "epb-evidence signs with the registry's kid and key")
        r = subprocess.run(["/usr/bin/python3", str(INTEROP), str(out)], capture_output=True, text=True)
        t.check(r.returncode == 0 or r.returncode == 77, f"the demo chain verifies independently: {r.stdout[-200:]}")
    else:
        print(f"  info: {EPB_EVIDENCE} not built: the signing check is skipped")


if __name__ == "__main__":
    main(test)
