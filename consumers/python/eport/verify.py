"""eport.verify: checks the evidence of eport-edge telemetry (docs/evidence.md) from the
messages and the signed device registry alone, written from that document for a customs IT
team. It shares no code with the agent: Debian's python3-cbor2, python3-nacl (Ed25519) and
python3-cryptography (ES256, the registry's signature) and hashlib.

    registry = Registry.load("registry.json", "ca.crt")      # or Registry.from_key_file(...)
    reports = verify(readings, checkpoints, registry)       # {source: report}
    print(summary(reports))

readings: decoded reading dicts (eport.decode, eport-tail); checkpoints: COSE_Sign1 bytes
(a reading of kind "evidence" holds one in hex, "cose"). Per source it rebuilds each
reading's canonical bytes (section 3), the hash chain (section 4), and walks the checkpoints
in order (sections 5 and 7), with the keys of the registry (section 14). A report gives the
seq ranges verified, every problem by kind and the unverified tail. The command line is
examples/python/eport_verify.py (docs/evidence.md section 15).
"""
import hashlib
import json
import struct

import cbor2
import nacl.exceptions
import nacl.signing
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

GENESIS = b"eport-ev1 genesis"
LINK = b"eport-ev1 link"
MAX_CHECKPOINT = 336
SEAL_STATES = {"unknown": 0, "sealed": 1, "opened": 2, "tampered": 3}
DOOR_STATES = {"unknown": 0, "closed": 1, "open": 2}
KINDS = {"position": 0, "seal": 1, "door": 2, "sensor": 3}
SENSOR_FIELDS = [("temperature_centi_c", "<h"), ("humidity_centi_pct", "<H"), ("shock_milli_g", "<H"),
                 ("battery_mv", "<H"), ("battery_pct", "<B"), ("reefer_setpoint_centi_c", "<h")]
POSITION_OPTIONAL = [("speed_cm_s", "<H"), ("heading_cdeg", "<H"), ("hdop_centi", "<H")]
# Section 13.4: a custody event's canonical bytes (an event record).
EVENT_CODES = {name: i for i, name in enumerate([
    "unknown", "pairing", "unpairing", "geofence_entry", "geofence_exit", "motion_start", "motion_stop",
    "excursion_start", "excursion_end", "seal_mismatch", "seal_opened_outside_zone", "seal_tampered"])}
SEAL_CLASSES = {"unknown": 0, "indicative": 1, "security": 2, "high_security": 3}
EVENT_OPTIONAL = [("lat_e7", "<i"), ("lon_e7", "<i"), ("temperature_centi_c", "<h"), ("setpoint_centi_c", "<h"),
                  ("band_low_centi_c", "<h"), ("band_high_centi_c", "<h"), ("duration_ms", "<Q")]


class BadInput(Exception):
    pass


# ---- section 3: canonical bytes -------------------------------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _short_string(value):
    b = value.encode("utf-8", "surrogateescape")
    if len(b) > 255:
        raise BadInput(f"a string of {len(b)} bytes has no canonical form")
    return bytes([len(b)]) + b


def canonical_event(r):
    """R of a decoded custody event (docs/evidence.md section 13.4): the event record 02 40 ..."""
    time_ms = 0 if r.get("time_source") == "gateway_receive" else r["time_utc_ms"]
    code = EVENT_CODES.get(r.get("event"))
    if code is None:
        raise BadInput(f"{r.get('source')} seq {r.get('seq')}: unknown event {r.get('event')!r}")
    p = b"\x02\x40" + struct.pack("<QQB", r["seq"], time_ms, code)
    p += _short_string(r.get("container", "")) + _short_string(r.get("subject", ""))
    p += struct.pack("<QQ", r.get("first_seq", 0), r.get("caused_by_seq", 0)) + _short_string(r.get("zone", ""))
    present, tail = 0, b""
    for bit, (name, fmt) in enumerate(EVENT_OPTIONAL):
        if name in r:
            present |= 1 << bit
            tail += struct.pack(fmt, r[name])
    present |= (1 << 7 if r.get("interpolated") else 0) | (1 << 8 if r.get("ended_by_gap") else 0)
    p += struct.pack("<H", present) + tail + bytes([SEAL_CLASSES[r.get("seal_class", "unknown")]])
    p += _short_string(r.get("seal_id", "")) + _short_string(r.get("expected_seal_id", ""))
    p += _short_string(r.get("command_id", ""))
    return p + struct.pack("<I", crc32c(p))


def canonical_reading(r):
    """R of a decoded reading (docs/evidence.md section 3): the unsealed epb READING body."""
    if r.get("kind") == "event":
        return canonical_event(r)
    kind = KINDS.get(r.get("kind"))
    if kind is None:
        raise BadInput(f"{r.get('source')} seq {r.get('seq')}: a {r.get('kind')} record has no canonical bytes")
    time_ms = 0 if r.get("time_source") == "gateway_receive" else r["time_utc_ms"]
    p = struct.pack("<QQB", r["seq"], time_ms, kind)
    if kind == 0:
        present, tail = 0, b""
        for bit, (name, fmt) in enumerate(POSITION_OPTIONAL):
            if name in r:
                present |= 1 << bit
                tail += struct.pack(fmt, r[name])
        p += struct.pack("<iiBBB", r["lat_e7"], r["lon_e7"], r["fix"], r["satellites"], present) + tail
    elif kind == 1:
        seal = r.get("seal_id", "").encode("utf-8", "surrogateescape")
        p += struct.pack("<BB", SEAL_STATES[r["state"]], len(seal)) + seal
    elif kind == 2:
        p += struct.pack("<B", DOOR_STATES[r["state"]])
    else:
        present, tail = 0, b""
        for bit, (name, fmt) in enumerate(SENSOR_FIELDS):
            if name in r:
                present |= 1 << bit
                tail += struct.pack(fmt, r[name])
        p += struct.pack("<B", present) + tail
    body = b"\x02\x03" + p
    return body + struct.pack("<I", crc32c(body))


def reading_of_canonical(source, raw):
    """The decoded reading (eport-tail's JSON form) of canonical bytes: the inverse of canonical_reading."""
    body, crc = raw[:-4], struct.unpack("<I", raw[-4:])[0]
    if body[:2] != b"\x02\x03" or crc32c(body) != crc:
        raise BadInput("not a canonical reading")
    seq, time_ms, kind = struct.unpack_from("<QQB", body, 2)
    at = 19
    out = {"source": source, "seq": seq, "time_utc_ms": time_ms}
    if time_ms == 0:
        out["time_source"] = "gateway_receive"
    names = {v: k for k, v in KINDS.items()}
    out["kind"] = names[kind]
    if kind == 0:
        lat, lon, fix, sats, present = struct.unpack_from("<iiBBB", body, at)
        at += 11
        out.update(lat_e7=lat, lon_e7=lon)
        for bit, (name, fmt) in enumerate(POSITION_OPTIONAL):
            if present & (1 << bit):
                out[name] = struct.unpack_from(fmt, body, at)[0]
                at += struct.calcsize(fmt)
        out.update(fix=fix, satellites=sats)
    elif kind == 1:
        state, n = struct.unpack_from("<BB", body, at)
        out["seal_id"] = body[at + 2:at + 2 + n].decode("utf-8", "surrogateescape")
        out["state"] = {v: k for k, v in SEAL_STATES.items()}[state]
    elif kind == 2:
        out["state"] = {v: k for k, v in DOOR_STATES.items()}[body[at]]
    else:
        present = body[at]
        at += 1
        for bit, (name, fmt) in enumerate(SENSOR_FIELDS):
            if present & (1 << bit):
                out[name] = struct.unpack_from(fmt, body, at)[0]
                at += struct.calcsize(fmt)
    return out


# ---- section 14: the registry ---------------------------------------------------------------

class Registry:
    """The keys of a registry whose signature verified with the CA certificate's key."""

    def __init__(self, registry_bytes, signature, ca_pem):
        ca = x509.load_pem_x509_certificate(ca_pem)
        try:
            ca.public_key().verify(signature, registry_bytes, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise BadInput("the registry's signature does not verify with the CA's key")
        doc = json.loads(registry_bytes)
        if doc.get("format") != "eport-evidence-registry-1":
            raise BadInput(f"registry format {doc.get('format')!r} is not eport-evidence-registry-1")
        self.keys = doc["keys"]

    @classmethod
    def load(cls, registry_path, ca_path, signature_path=None):
        with open(registry_path, "rb") as f:
            data = f.read()
        with open(signature_path or registry_path + ".sig", "rb") as f:
            sig = f.read()
        with open(ca_path, "rb") as f:
            ca = f.read()
        return cls(data, sig, ca)

    def find(self, kid_hex):
        return [k for k in self.keys if k["kid"] == kid_hex]

    @classmethod
    def from_key_file(cls, path):
        """The keys of an agent's bridge.evidence_keys file, all valid, unsigned."""
        self = cls.__new__(cls)
        self.keys = []
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].split()
                if not line:
                    continue
                if len(line) != 4:
                    raise BadInput(f"{path}: a line is not UNIT_ID ALG KID PUBKEY_HEX")
                src, alg, kid, pub = line
                alg = {"ed25519": -8, "es256": -7, "-8": -8, "-7": -7}.get(alg.lower())
                if alg is None:
                    raise BadInput(f"{path}: unknown algorithm in the line of {src}")
                self.keys.append({"source": src, "kid": kid.lower(), "alg": alg, "public_key": pub.lower(),
                                  "status": "valid"})
        return self


# ---- section 5: checkpoints -----------------------------------------------------------------

class Checkpoint:
    def __init__(self, raw):
        if len(raw) > MAX_CHECKPOINT:
            raise BadInput(f"checkpoint of {len(raw)} bytes > {MAX_CHECKPOINT}")
        try:
            msg = cbor2.loads(raw)
        except Exception as e:  # noqa: BLE001 (cbor2 raises several kinds)
            raise BadInput(f"not CBOR: {e}")
        if not isinstance(msg, cbor2.CBORTag) or msg.tag != 18 or not isinstance(msg.value, list) or \
                len(msg.value) != 4:
            raise BadInput("not a tagged COSE_Sign1")
        if cbor2.dumps(msg, canonical=True) != raw:
            raise BadInput("not deterministic CBOR")
        protected, unprotected, payload, sig = msg.value
        hdr = cbor2.loads(protected)
        if not isinstance(hdr, dict) or set(hdr) != {1, 4} or hdr[1] not in (-8, -7) or unprotected != {}:
            raise BadInput("bad header")
        p = cbor2.loads(payload)
        if not isinstance(p, dict) or not {1, 2, 3, 4, 5, 6, 8} <= set(p) <= set(range(1, 10)) or \
                len(sig) != 64 or len(p[6]) != 32:
            raise BadInput("bad payload")
        self.raw, self.alg, self.kid, self.sig = raw, hdr[1], hdr[4], sig
        self.tbs = cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)
        self.id = hashlib.sha256(self.tbs).digest()
        self.src, self.n, self.first, self.last, self.count, self.head = p[1], p[2], p[3], p[4], p[5], p[6]
        self.prev, self.time, self.next_key = p.get(7), p[8], p.get(9)

    def signature_ok(self, public_key):
        try:
            if self.alg == -8:
                nacl.signing.VerifyKey(public_key).verify(self.tbs, self.sig)
            else:
                der = utils.encode_dss_signature(int.from_bytes(self.sig[:32], "big"),
                                                 int.from_bytes(self.sig[32:], "big"))
                ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key).verify(
                    der, self.tbs, ec.ECDSA(hashes.SHA256()))
            return True
        except (nacl.exceptions.BadSignatureError, InvalidSignature, ValueError):
            return False


def iso_ms(text):
    """ms since the epoch of a registry time (YYYY-MM-DDTHH:MM:SSZ)."""
    import calendar
    import time
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000


# ---- section 7: verifying -------------------------------------------------------------------

def verify(readings, checkpoints, registry):
    """Per source, what is verified and what is wrong. readings: decoded reading dicts (gaps
    included, other kinds ignored); checkpoints: COSE_Sign1 bytes. Returns {source: report}."""
    problems = {}

    def problem(src, kind, first=None, last=None, detail=""):
        problems.setdefault(src, []).append({"kind": kind, "first": first, "last": last, "detail": detail})

    by_source, gaps = {}, {}
    for r in readings:
        if r.get("kind") == "gap":
            gaps.setdefault(r["source"], []).append((r["first_seq"], r["seq"], r.get("reason")))
            continue
        if r.get("kind") not in KINDS and r.get("kind") != "event":
            continue
        raw = canonical_reading(r)
        seen = by_source.setdefault(r["source"], {})
        if r["seq"] in seen and seen[r["seq"]] != raw:
            problem(r["source"], "conflicting copies", r["seq"], r["seq"], "two different readings with one seq")
        seen.setdefault(r["seq"], raw)

    chains = {}
    for raw in checkpoints:
        try:
            c = Checkpoint(raw)
        except BadInput as e:
            problem("?", "malformed checkpoint", detail=str(e))
            continue
        keys = registry.find(c.kid.hex())
        own = [k for k in keys if k["source"] == c.src and k["alg"] == c.alg]
        if not own:
            if keys:
                problem(c.src, "key of another source", c.first, c.last,
                        f"checkpoint {c.n} signed with kid {c.kid.hex()} of {keys[0]['source']}")
            else:
                problem(c.src, "unknown key", c.first, c.last, f"checkpoint {c.n}: kid {c.kid.hex()}")
            continue
        key = own[0]
        if not c.signature_ok(bytes.fromhex(key["public_key"])):
            problem(c.src, "bad signature", c.first, c.last, f"checkpoint {c.n}")
            continue
        if key["status"] == "revoked" and (key.get("reason") == "keyCompromise" or
                                           c.time > iso_ms(key["revoked_utc"])):
            problem(c.src, "revoked key", c.first, c.last, f"checkpoint {c.n}: kid {key['kid']} ({key['reason']})")
            continue
        chain = chains.setdefault(c.src, {})
        if c.n in chain:
            if chain[c.n].id != c.id:
                problem(c.src, "replayed checkpoint", c.first, c.last,
                        f"two different checkpoints {c.n}: one is replayed from another chain")
            continue  # the same checkpoint again: a resend, no problem
        chain[c.n] = c

    reports = {}
    for src in sorted(set(by_source) | set(chains) | set(problems) - {"?"}):
        seqs = by_source.get(src, {})
        chain = chains.get(src, {})
        verified, covered, accepted = [], set(), None
        broken = []  # seq ranges between checkpoints where the checkpoint chain broke: reported as such
        current_kid = None
        for n in sorted(chain):
            c = chain[n]
            if accepted is None:
                ok_chain = c.n == 1 and c.prev is None or c.n > 1  # the first we hold may follow ones we lack
                if c.n > 1:
                    problem(src, "checkpoint chain broken", None, c.first - 1,
                            f"checkpoints before {c.n} are missing: readings before {c.first} are unverified")
                    broken.append((0, c.first - 1))
            else:
                ok_chain = c.n == accepted.n + 1 and c.prev == accepted.id and c.first == accepted.last + 1
                if not ok_chain:
                    problem(src, "checkpoint chain broken", accepted.last + 1, c.first - 1,
                            f"after checkpoint {accepted.n} comes {c.n}: a checkpoint is missing or the chain restarted")
                    broken.append((accepted.last + 1, c.first - 1))
            if current_kid is not None and c.kid != current_kid:
                problem(src, "bad signature", c.first, c.last, f"checkpoint {c.n} not under the announced key")
            current_kid = bytes(c.next_key[1]) if c.next_key else c.kid
            head = None
            in_range = [s for s in sorted(seqs) if c.first <= s <= c.last]
            if accepted is not None and ok_chain:
                head = accepted.head
            elif c.n == 1:
                head = hashlib.sha256(GENESIS + bytes([len(src)]) + src.encode()).digest()
            covered.update(in_range)
            if head is None:
                problem(src, "unverifiable", c.first, c.last, f"checkpoint {c.n}: its start head is unknown")
            else:
                for s in in_range:
                    head = hashlib.sha256(LINK + head + s.to_bytes(8, "little") + seqs[s]).digest()
                if len(in_range) < c.count:
                    declared = [g for g in gaps.get(src, []) if g[0] <= c.last and g[1] >= c.first]
                    holes = _holes(in_range, c.first, c.last)
                    undeclared = [h for h in holes if not any(g[0] <= h[0] and h[1] <= g[1] for g in declared)]
                    kind = "declared discarded" if not undeclared else "missing readings"
                    problem(src, kind, c.first, c.last, f"{c.count - len(in_range)} of {c.count} readings absent"
                            + (f" (seqs {_ranges(undeclared)})" if undeclared else " (a DISCARD covers them)"))
                elif len(in_range) > c.count or head != c.head:
                    problem(src, "altered", c.first, c.last,
                            f"checkpoint {c.n}: the readings do not give its head (altered, substituted or forged)")
                else:
                    verified.append([c.first, c.last])
            accepted = c
        stray = [s for s in sorted(seqs) if s not in covered and accepted is not None and s <= accepted.last
                 and not any(a <= s <= b for a, b in broken)]
        for a, b in _holes_to_runs(stray):
            problem(src, "not covered", a, b, "readings no checkpoint range holds (forged or misplaced)")
        tail = [s for s in sorted(seqs) if accepted is None or s > accepted.last]
        reports[src] = {
            "source": src, "checkpoints": len(chain), "verified": _merge(verified),
            "readings_verified": sum(1 for s in covered if any(a <= s <= b for a, b in verified)),
            "problems": problems.get(src, []),
            "unverified_tail": {"first": tail[0], "last": tail[-1], "readings": len(tail)} if tail else None,
        }
    if "?" in problems:
        reports["?"] = {"source": "?", "checkpoints": 0, "verified": [], "readings_verified": 0,
                        "problems": problems["?"], "unverified_tail": None}
    return reports


def _holes(present, first, last):
    out, expect = [], first
    for s in present:
        if s > expect:
            out.append((expect, s - 1))
        expect = s + 1
    if expect <= last:
        out.append((expect, last))
    return out


def _holes_to_runs(seqs):
    """Consecutive seqs as (first, last) runs."""
    out = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [tuple(r) for r in out]


def _ranges(pairs):
    return ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in pairs)


def _merge(ranges):
    out = []
    for a, b in sorted(ranges):
        if out and a == out[-1][1] + 1:
            out[-1][1] = b
        else:
            out.append([a, b])
    return out


def summary(reports):
    n_problems = sum(len(r["problems"]) for r in reports.values())
    covered = sum(r["readings_verified"] for r in reports.values())
    sources = sum(1 for r in reports.values() if r["verified"] and not r["problems"])
    return f"sources verified {sources} of {len(reports)}, readings covered {covered}, problems {n_problems}"
