"""Passwords of the local users of a gateway's bridge broker: a random
password per user (kept across gen runs), and the mosquitto password file
hashed by mosquitto's own mosquitto_passwd. A password file that still
matches the passwords is kept as it is, so a second gen changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
from pathlib import Path

MOSQUITTO_PASSWD_CANDIDATES = ("/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd")


class PasswdError(Exception):
    pass


def find_mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd") or next(
        (p for p in MOSQUITTO_PASSWD_CANDIDATES if os.access(p, os.X_OK)), None)
    if not found:
        raise PasswdError("mosquitto_passwd not found: gen hashes the bridge brokers' password files with it "
                          "(Debian package mosquitto: apt-get install mosquitto)")
    return found


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def password(path: Path) -> str:
    """The password in path (first line), or a new random one written there
    0600. 43 URL-safe characters: 256 bits, nothing to quote anywhere."""
    if path.is_file():
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        if first and first[0]:
            os.chmod(path, 0o600)
            return first[0]
    value = secrets.token_urlsafe(32)
    _write_private(path, (value + "\n").encode())
    return value


def _matches(hashed: str, plain: str) -> bool:
    """True if hashed is mosquitto 2.0's $7$ hash of plain:
    $7$<iterations>$<salt b64>$<PBKDF2-HMAC-SHA512 b64>. Any other form is
    hashed again."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
        got = hashlib.pbkdf2_hmac("sha512", plain.encode(), salt, int(parts[2]), len(digest))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, digest)


def _current(path: Path, users: dict[str, str]) -> bool:
    if not path.is_file():
        return False
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            name, _, hashed = line.partition(":")
            entries[name] = hashed
    return entries.keys() == users.keys() and all(_matches(entries[u], p) for u, p in users.items())


def password_file(path: Path, users: dict[str, str]) -> bool:
    """Write path as mosquitto's password_file for users (name -> password),
    hashed by `mosquitto_passwd -U` (the passwords never appear on a command
    line). Returns False if the existing file already matched."""
    if _current(path, users):
        os.chmod(path, 0o600)
        return False
    tool = find_mosquitto_passwd()
    tmp = path.with_name(path.name + ".plain.tmp")
    _write_private(tmp, "".join(f"{u}:{p}\n" for u, p in users.items()).encode())
    try:
        r = subprocess.run([tool, "-U", str(tmp)], capture_output=True, text=True)
        if r.returncode != 0 or not _current(tmp, users):
            raise PasswdError(f"{tool} -U {tmp} failed ({r.returncode}): {(r.stdout + r.stderr).strip()}")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return True
