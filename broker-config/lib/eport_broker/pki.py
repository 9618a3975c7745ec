"""PKI: thin wrapper around the bash script pki/eport-pki (which owns every
openssl ca call), plus read-only certificate inspection used by gen and
validate. Keeping issuance in one script means an operator who revokes by
hand and the generator produce the same database."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .render import BROKER_CONFIG_DIR

EPORT_PKI = BROKER_CONFIG_DIR / "pki" / "eport-pki"
SERVER_CN = "broker"


class PkiError(Exception):
    pass


def run_pki(*args: str, env: dict | None = None) -> str:
    proc = subprocess.run([str(EPORT_PKI), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise PkiError(proc.stderr.strip() or f"eport-pki {' '.join(args)} failed ({proc.returncode})")
    return proc.stdout


def openssl(*args: str, input_text: str | None = None) -> str:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, input=input_text)
    if proc.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class IndexEntry:
    status: str   # V valid, R revoked, E expired
    serial: str
    cn: str
    not_after: dt.datetime
    reason: str = ""  # revocation reason (RFC 5280 name) of an R entry


def _index_time(value: str) -> dt.datetime:
    """UTCTime YYMMDDHHMMSSZ (or GeneralizedTime from 2050) of index.txt."""
    fmt = "%y%m%d%H%M%SZ" if len(value) == 13 else "%Y%m%d%H%M%SZ"
    return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.timezone.utc)


def index(pki_dir: Path) -> list[IndexEntry]:
    """The CA database (openssl ca's index.txt), one entry per issued certificate."""
    out = []
    path = pki_dir / "index.txt"
    try:
        text = path.read_text()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror} (is {pki_dir} a PKI directory?)") from None
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) >= 6:
            cn = f[5].rsplit("CN=", 1)[-1]
            reason = f[2].split(",", 1)[1] if "," in f[2] else ("unspecified" if f[2] else "")
            out.append(IndexEntry(f[0], f[3], cn, _index_time(f[1]), reason))
    return out


def previous(pki_dir: Path) -> list[tuple[str, str]]:
    """(CN, serial) of every certificate replaced by `eport-pki client --reissue`
    and not yet revoked (pki/previous/CN-SERIAL.crt)."""
    d = pki_dir / "previous"
    return sorted(tuple(p.stem.rsplit("-", 1)) for p in d.glob("*.crt")) if d.is_dir() else []


def san(cert: Path) -> set[str]:
    """SAN entries as 'DNS:name' / 'IP:addr' / 'URI:uri' strings."""
    text = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    entries = set()
    for line in text.splitlines()[1:]:
        for item in line.split(","):
            item = item.strip()
            if item.startswith(("DNS:", "URI:")):
                entries.add(item)
            elif item.startswith("IP Address:"):
                entries.add("IP:" + item.split(":", 1)[1])
    return entries


def _parse_openssl_date(value: str) -> dt.datetime:
    # "Nov 26 11:50:30 2027 GMT"
    return dt.datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.timezone.utc)


def cert_not_after(cert: Path) -> dt.datetime:
    return _parse_openssl_date(openssl("x509", "-in", str(cert), "-noout", "-enddate").split("=", 1)[1])


def cert_cn(cert: Path) -> str:
    subject = openssl("x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "multiline")
    for line in subject.splitlines():
        if "commonName" in line:
            return line.split("=", 1)[1].strip()
    return ""


def crl_next_update(crl: Path) -> dt.datetime:
    return _parse_openssl_date(openssl("crl", "-in", str(crl), "-noout", "-nextupdate").split("=", 1)[1])


def crl_signed_by(crl: Path, ca: Path) -> bool:
    proc = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(ca), "-noout"],
                          capture_output=True, text=True)
    return proc.returncode == 0 and "verify OK" in (proc.stdout + proc.stderr)


def key_matches_cert(key: Path, cert: Path) -> bool:
    a = openssl("x509", "-in", str(cert), "-noout", "-pubkey")
    b = openssl("pkey", "-in", str(key), "-pubout")
    return a.strip() == b.strip()
