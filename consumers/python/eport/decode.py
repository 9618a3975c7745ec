"""eport.decode: checks and decodes eport-edge telemetry payloads (zstd, then the FlatBuffers
envelope of schema/telemetry.fbs, schema versions 1.0 to 1.4, or envelope v2 of
schema/telemetry_v2.fbs, docs/schema.md "Envelope v2") into the readings eport-tail prints,
with the limits of eport::codec (agent/codec/include/eport/codec/codec.h).

    codec = load_codec()                      # the decoder flatc generated (see below)
    header, readings, problems = codec.decode_payload(payload, topic)   # or raises DecodeError
    sys.stdout.buffer.write(json_line(readings[0]) + b"\n")     # eport-tail's bytes

The decoder is generated with `flatc --python` from schema/telemetry.fbs, never committed:
an installed package (python3-eport) carries the code generated at build time in
eport/telemetry/v1/; in a source tree, load_codec() generates it from the repository's
schema once per schema and flatc version into ~/.cache/eport-consumer/ (or cache_dir).

The Python FlatBuffers runtime has no Verifier (unlike C++'s VerifyEnvelopeBuffer).
Codec.verify() does the equivalent checks by hand for every field this module reads:
identifier, every offset inside the buffer and aligned, vtables and strings inside the
buffer, strings terminated, vector lengths bounded, table count bounded. Decoding then
runs inside try/except as well.
"""
import codecs
import hashlib
import importlib
import inspect
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import eport

HERE = os.path.dirname(os.path.abspath(__file__))
# The repository's schema when this runs from a source tree (consumers/python/eport/); None when installed.
_REPO_SCHEMA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "schema", "telemetry.fbs"))
DEFAULT_SCHEMA = _REPO_SCHEMA if os.path.isfile(_REPO_SCHEMA) else None
# Where an installed package keeps the code flatc generated at build time.
BUNDLED_DIR = os.path.dirname(HERE)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
FILE_IDENTIFIER = b"EPT1"
SCHEMA_MAJOR = 1
# Envelope v2 (docs/schema.md "Envelope v2"): its identifier, and the zstd dictionary it is
# compressed with (a protocol constant, schema/eport_v2_dict_1.zdict), known by its id.
FILE_IDENTIFIER_V2 = b"EPT2"
V2_DICTIONARY_ID = 32769  # eport::codec::kV2DictionaryId
_REPO_V2_DICT = os.path.normpath(os.path.join(HERE, "..", "..", "..", "schema", "eport_v2_dict_1.zdict"))
V2_DICTIONARY = _REPO_V2_DICT if os.path.isfile(_REPO_V2_DICT) else os.path.join(HERE, "eport_v2_dict_1.zdict")

class SetupError(Exception):
    """The decoder cannot be set up (a Debian package or flatc missing, a schema unreadable).
    code: the sysexits value the command-line tools exit with (69: unavailable, 66: no input)."""

    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code

def import_or_die(module, debian_package):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise SetupError(f"needs the Python package {module!r}: apt-get install {debian_package} "
                         f"(and run this with /usr/bin/python3, which sees Debian's python3-* packages)", 69)

class DecodeError(Exception):
    """A payload that must be refused (the message says why)."""

# The same bounds as eport::codec (agent/codec/include/eport/codec/codec.h), with the same
# messages: ids longer than these refuse the envelope, and every decoded reading counts
# DECODED_READING_BYTES plus the bytes of the strings copied into it against
# Limits.max_decoded_bytes, checked before anything is copied.
DECODED_READING_BYTES = 384
MAX_SOURCE_ID_BYTES = 40
MAX_CONTAINER_ID_BYTES = 11  # ISO 6346
MAX_SEAL_ID_BYTES = 32
MAX_SUBJECT_ID_BYTES = 32  # CustodyEvent.subject_id: a unit id
MAX_ZONE_ID_BYTES = 64     # CustodyEvent.zone_id
MAX_COMMAND_ID_BYTES = 64  # CustodyEvent.command_id: a command id (codec::kMaxCommandIdBytes)

class Limits:
    """What a payload may cost. The defaults are eport::codec::DecodeLimits."""

    def __init__(self, max_payload_bytes=4 << 20, max_bytes=4 << 20, max_readings=100000, max_depth=16,
                 max_decoded_bytes=32 << 20):
        self.max_payload_bytes = max_payload_bytes  # as received (compressed or not)
        self.max_bytes = max_bytes                  # the envelope, after decompression
        self.max_readings = max_readings
        self.max_depth = max_depth
        self.max_decoded_bytes = max_decoded_bytes  # what decoding copies (see DECODED_READING_BYTES)

# ----------------------------------------------------------------------------------------------
# Generated code: flatc --python from schema/telemetry.fbs, once per schema and flatc version,
# into a cache directory (never committed). The generated package is "eport.telemetry.v1".

def generate_code(schema, flatc="flatc", cache_dir=None):
    """Returns the directory holding the generated package, generating it if needed."""
    flatc_path = shutil.which(flatc)
    if not flatc_path:
        raise SetupError(f"needs flatc to generate the decoder: apt-get install flatbuffers-compiler (looked for {flatc!r})", 69)
    try:
        with open(schema, "rb") as f:
            schema_bytes = f.read()
    except OSError as e:
        raise SetupError(f"cannot read the schema {schema}: {e.strerror} (give --schema)", 66)
    version = subprocess.run([flatc_path, "--version"], capture_output=True, text=True).stdout.strip()
    digest = hashlib.sha256(schema_bytes + version.encode()).hexdigest()[:16]
    if cache_dir is None:
        cache_dir = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "eport-consumer")
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError:
        cache_dir = os.path.join(tempfile.gettempdir(), f"eport-consumer-{os.getuid()}")
        os.makedirs(cache_dir, exist_ok=True)
    final = os.path.join(cache_dir, f"telemetry-{digest}")
    if os.path.isfile(os.path.join(final, "eport", "telemetry", "v1", "Envelope.py")):
        return final
    # Generate into a private directory, then rename: concurrent starts never see half a package.
    tmp = tempfile.mkdtemp(prefix="gen-", dir=cache_dir)
    p = subprocess.run([flatc_path, "--python", "-o", tmp, schema], capture_output=True, text=True)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SetupError(f"flatc --python {schema} failed: {p.stderr.strip() or p.stdout.strip()}")
    try:
        os.rename(tmp, final)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return final

# ----------------------------------------------------------------------------------------------
# Layout of the fields this consumer reads, for the hand-written verifier. Field i of a table
# sits in vtable slot 4 + 2*i (declaration order in telemetry.fbs). Names are the generated
# accessors; Codec.__init__ checks every entry against the generated code, so a schema change
# that this table does not follow stops the consumer at start instead of misreading data.
# Fields appended to the schema later are simply not read (and so need no check).
LAYOUT = {
    "Envelope": [("SchemaVersion", "u16"), ("SiteId", "string"), ("GatewayId", "string"),
                 ("EnvelopeSeq", "u64"), ("SentUtcMs", "u64"), ("Priority", "u8"),
                 ("Readings", "[table]", "Reading")],
    "Reading": [("SourceId", "string"), ("ContainerId", "string"), ("Seq", "u64"), ("TimeUtcMs", "u64"),
                ("PayloadType", "u8"), ("Payload", "union", "PayloadType"),
                ("TimeSource", "u8"),  # schema 1.1; a 1.0 writer's shorter vtable leaves it absent (Source)
                ("ClassSeq", "u64")],  # schema 1.5; absent: 0, not numbered
    "Position": [("LatE7", "i32"), ("LonE7", "i32"), ("SpeedCmS", "u16"), ("HeadingCdeg", "u16"),
                 ("Fix", "u8"), ("Satellites", "u8"), ("HdopCenti", "u16")],
    "SealEvent": [("SealId", "string"), ("State", "u8")],
    "DoorEvent": [("State", "u8")],
    "SensorSample": [("TemperatureCentiC", "i16"), ("HumidityCentiPct", "u16"), ("ShockMilliG", "u16"),
                     ("BatteryMv", "u16"), ("BatteryPct", "u8"), ("ReeferSetpointCentiC", "i16")],
    "SequenceGap": [("FirstSeq", "u64"), ("Reason", "u8")],  # schema 1.1
    "CustodyEvent": [("Code", "u8"), ("SubjectId", "string"), ("FirstSeq", "u64"), ("CausedBySeq", "u64"),
                     ("ZoneId", "string"), ("LatE7", "i32"), ("LonE7", "i32"), ("Interpolated", "bool"),
                     ("EndedByGap", "bool"), ("TemperatureCentiC", "i16"), ("SetpointCentiC", "i16"),
                     ("BandLowCentiC", "i16"), ("BandHighCentiC", "i16"), ("DurationMs", "u64"),  # schema 1.2
                     ("SealId", "string"), ("ExpectedSealId", "string"), ("SealClass", "u8"),
                     ("CommandId", "string")],  # schema 1.3
    "EvidenceCheckpoint": [("Cose", "[u8]"), ("N", "u64"), ("Check", "u8")],  # schema 1.4
}
# The outer table of envelope v2, read by hand (not by flatc's code): its columns are decoded here.
LAYOUT_V2 = {
    "EnvelopeV2": [("Columns", "[u8]"), ("V1Readings", "[table]", "Reading"), ("SiteId", "string"),
                   ("GatewayId", "string"), ("ClassSeqs", "[u8]")],  # ClassSeqs: schema 1.5
}
_SCALAR = {"bool": "<B", "u8": "<B", "u16": "<H", "i16": "<h", "i32": "<i", "u32": "<I", "u64": "<Q"}
_FLAGS = {"bool": "BoolFlags", "u8": "Uint8Flags", "u16": "Uint16Flags", "i16": "Int16Flags", "i32": "Int32Flags",
          "u32": "Uint32Flags", "u64": "Uint64Flags"}
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")

# Names as eport-tail prints them (agent/model/src/reading.cpp, agent/codec/src/codec.cpp).
PRIORITY_NAMES = {0: "bulk", 1: "telemetry", 2: "event", 3: "alarm"}
SEAL_STATE_NAMES = {1: "sealed", 2: "opened", 3: "tampered"}
DOOR_STATE_NAMES = {1: "closed", 2: "open"}
GAP_REASON_NAMES = {1: "flash_full", 2: "unit_reset", 3: "expired", 4: "rejected_malformed"}  # model::gap_reason_name
EVENT_CODE_NAMES = {1: "pairing", 2: "unpairing", 3: "geofence_entry", 4: "geofence_exit", 5: "motion_start",
                    6: "motion_stop", 7: "excursion_start", 8: "excursion_end", 9: "seal_mismatch",
                    10: "seal_opened_outside_zone", 11: "seal_tampered"}  # model::event_code_name
EVENT_DCSA_CODES = {1: "PAIRING", 2: "UNPAIRING", 3: "GEOFENCE_ENTRY", 4: "GEOFENCE_EXIT", 5: "MOTION_START",
                    6: "MOTION_STOP", 7: "MEASURED", 8: "MEASURED"}  # model::dcsa_code (none for seal events)
SEAL_CLASS_NAMES = {1: "indicative", 2: "security", 3: "high_security"}  # model::seal_class_name (ISO 17712)
EVIDENCE_CHECK_NAMES = {0: "unchecked", 1: "verified", 2: "bad_signature", 3: "broken_chain", 4: "malformed",
                        5: "wrong_key", 6: "other_source", 7: "replayed",
                        8: "seq_mismatch", 9: "readings_mismatch"}  # model::evidence_check_name
MAX_EVIDENCE_BYTES = 336  # EvidenceCheckpoint.cose: EPB_EV_CHECKPOINT_MAX
TIME_SOURCE_GATEWAY_RECEIVE = 1  # TimeSource.GatewayReceive; any other value reads as Source, as in the C++ codec

class _Verifier:
    """Bounds checks for one buffer, driven by LAYOUT (what C++'s Verifier does from generated code)."""

    def __init__(self, buf, limits, unions):
        self.buf = buf
        self.n = len(buf)
        self.limits = limits
        self.unions = unions  # union type field -> {type value: table name}
        self.tables = 0
        self.max_tables = limits.max_readings * 4 + 16

    def fail(self, what):
        raise DecodeError(f"envelope failed verification: {what}")

    def span(self, off, size, align, what):
        if off < 0 or size < 0 or off + size > self.n:
            self.fail(f"{what} at {off}+{size} outside the {self.n}-byte buffer")
        if align > 1 and off % align:
            self.fail(f"{what} at {off} not aligned to {align}")

    def deref(self, at, what):
        """The target of the uoffset stored at `at` (always forward, never 0)."""
        self.span(at, 4, 4, what)
        o = _U32.unpack_from(self.buf, at)[0]
        if o == 0 or o >= 1 << 31:
            self.fail(f"{what}: bad offset {o} at {at}")
        self.span(at + o, 1, 1, what)
        return at + o

    def string(self, pos, what):
        self.span(pos, 4, 4, what)
        length = _U32.unpack_from(self.buf, pos)[0]
        self.span(pos + 4, length + 1, 1, what)
        if self.buf[pos + 4 + length] != 0:
            self.fail(f"{what}: string at {pos} not terminated")

    def table(self, pos, name, depth):
        self.tables += 1
        if self.tables > self.max_tables or depth > self.limits.max_depth:
            self.fail(f"too many or too deeply nested tables ({self.tables}, depth {depth})")
        self.span(pos, 4, 4, f"{name} table")
        vt = pos - _I32.unpack_from(self.buf, pos)[0]
        self.span(vt, 4, 2, f"{name} vtable")
        vsize, tsize = _U16.unpack_from(self.buf, vt)[0], _U16.unpack_from(self.buf, vt + 2)[0]
        if vsize < 4 or vsize % 2:
            self.fail(f"{name} vtable at {vt}: bad size {vsize}")
        self.span(vt, vsize, 2, f"{name} vtable")
        self.span(pos, max(tsize, 4), 1, f"{name} table body")
        values = {}
        for i, (accessor, kind, *arg) in enumerate(LAYOUT[name] if name in LAYOUT else LAYOUT_V2[name]):
            slot = 4 + 2 * i
            if slot + 2 > vsize:
                break  # written by an older schema: the remaining fields are absent
            fo = _U16.unpack_from(self.buf, vt + slot)[0]
            if fo == 0:
                continue  # absent: default value or null
            what = f"{name}.{accessor}"
            at = pos + fo
            if kind in _SCALAR:
                fmt = _SCALAR[kind]
                size = struct.calcsize(fmt)
                if fo + size > tsize:
                    self.fail(f"{what}: field outside its table")
                self.span(at, size, size, what)
                values[accessor] = struct.unpack_from(fmt, self.buf, at)[0]
                continue
            if fo + 4 > tsize:
                self.fail(f"{what}: field outside its table")
            target = self.deref(at, what)
            if kind == "string":
                self.string(target, what)
            elif kind == "[u8]":
                self.span(target, 4, 4, what)
                count = _U32.unpack_from(self.buf, target)[0]
                self.span(target + 4, count, 1, what)
            elif kind == "[table]":
                self.span(target, 4, 4, what)
                count = _U32.unpack_from(self.buf, target)[0]
                if count > self.limits.max_readings:  # the message of eport::codec::decode_envelope
                    raise DecodeError(f"envelope holds {count} readings > limit {self.limits.max_readings}")
                self.span(target + 4, 4 * count, 4, what)
                for j in range(count):
                    self.table(self.deref(target + 4 + 4 * j, f"{what}[{j}]"), arg[0], depth + 1)
            elif kind == "union":
                member = self.unions[arg[0]].get(values.get(arg[0], 0))
                if member is not None and member in LAYOUT:
                    self.table(target, member, depth + 1)
                # An unknown member (newer schema) is not read: the decoder skips that reading.

    def envelope(self):
        if self.n >= 8 and self.buf[4:8] == FILE_IDENTIFIER_V2:
            self.table(self.deref(0, "root"), "EnvelopeV2", 1)
            return
        if self.n < 8 or self.buf[4:8] != FILE_IDENTIFIER:
            raise DecodeError("not an EPT1 envelope (missing file identifier)")
        self.table(self.deref(0, "root"), "Envelope", 1)

class Codec:
    """Decodes eport payloads with the generated code, after checking them."""

    def __init__(self, generated_dir, limits=None):
        self.limits = limits or Limits()
        _use_generated(generated_dir)
        mod = {name: importlib.import_module(f"eport.telemetry.v1.{name}")
               for name in ("Envelope", "Reading", "Payload", *LAYOUT)}
        self.Envelope = mod["Envelope"].Envelope
        self.Reading = mod["Reading"].Reading
        self._v2_dict = None  # zstandard.ZstdCompressionDict, loaded on the first v2 frame
        self.classes = {name: getattr(mod[name], name) for name in LAYOUT}
        payload_enum = mod["Payload"].Payload
        self.payload_members = {v: k for k, v in vars(payload_enum).items()
                                if not k.startswith("_") and isinstance(v, int) and v != 0}
        self.unions = {"PayloadType": self.payload_members}
        self._check_layout()
        self.zstandard = import_or_die("zstandard", "python3-zstandard")

    def _check_layout(self):
        """LAYOUT must agree with the generated code (slot and type of every field read)."""
        for table, fields in LAYOUT.items():
            cls = self.classes[table]
            for i, (accessor, kind, *_) in enumerate(fields):
                fn = getattr(cls, accessor, None)
                src = inspect.getsource(fn) if fn else ""
                slot = re.search(r"Offset\((\d+)\)", src)
                ok = slot and int(slot.group(1)) == 4 + 2 * i
                if kind in _FLAGS:
                    ok = ok and _FLAGS[kind] in src
                elif kind == "string":
                    ok = ok and ".String(" in src
                elif kind in ("[table]", "[u8]"):
                    ok = ok and ".Vector(" in src
                elif kind == "union":
                    ok = ok and ".Union(" in src
                if not ok:
                    raise RuntimeError(f"LAYOUT of {table}.{accessor} does not match the generated code: "
                                       f"update LAYOUT in {__file__} to schema/telemetry.fbs")

    # -- payload -> envelope bytes ------------------------------------------------------------
    def unwrap(self, payload):
        """The envelope bytes: decompressed (with a size limit) if the payload is a zstd frame."""
        if len(payload) > self.limits.max_payload_bytes:
            raise DecodeError(f"payload too large: {len(payload)} bytes > {self.limits.max_payload_bytes}")
        if payload[:4] != ZSTD_MAGIC:
            return payload, False
        zstandard = self.zstandard
        try:
            size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError as e:
            raise DecodeError(f"zstd payload: not a valid zstd frame ({e})")
        if size < 0:
            raise DecodeError("zstd payload: frame without content size")
        if size > self.limits.max_bytes:
            raise DecodeError(f"zstd payload: decompresses to {size} bytes > {self.limits.max_bytes}")
        try:
            dict_id = zstandard.get_frame_parameters(payload).dict_id
        except zstandard.ZstdError as e:
            raise DecodeError(f"zstd payload: not a valid zstd frame ({e})")
        if dict_id not in (0, V2_DICTIONARY_ID):
            raise DecodeError(f"zstd payload: compressed with dictionary {dict_id}, which this decoder does not "
                              f"have (it knows {V2_DICTIONARY_ID})")
        try:
            if dict_id == 0:
                plain = zstandard.ZstdDecompressor().decompress(payload, max_output_size=self.limits.max_bytes)
            else:
                plain = zstandard.ZstdDecompressor(dict_data=self._dictionary()).decompress(
                    payload, max_output_size=self.limits.max_bytes)
        except zstandard.ZstdError as e:
            raise DecodeError(f"zstd payload: {e}")
        if len(plain) != size:
            raise DecodeError("zstd payload: size mismatch")
        return plain, True

    def _dictionary(self):
        if self._v2_dict is None:
            try:
                with open(V2_DICTIONARY, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise SetupError(f"the v2 zstd dictionary {V2_DICTIONARY} cannot be read: {e}", 66)
            d = self.zstandard.ZstdCompressionDict(data)
            if d.dict_id() != V2_DICTIONARY_ID:
                raise SetupError(f"{V2_DICTIONARY} has dictionary id {d.dict_id()}, not {V2_DICTIONARY_ID}", 66)
            self._v2_dict = d
        return self._v2_dict

    def verify(self, envelope):
        if len(envelope) > self.limits.max_bytes:
            raise DecodeError(f"envelope too large: {len(envelope)} bytes > {self.limits.max_bytes}")
        _Verifier(envelope, self.limits, self.unions).envelope()

    # -- envelope bytes -> values --------------------------------------------------------------
    def decode_payload(self, payload, topic=None):
        """Returns (header, readings, problems): dicts in eport-tail's key order; problems lists
        readings that were skipped (e.g. a payload kind from a newer schema). Raises DecodeError.
        topic: the topic it arrived on; a v2 envelope without site and gateway ids takes them
        from it (and one whose ids differ from it is refused), as eport-tail does."""
        payload = bytes(payload)
        envelope, _ = self.unwrap(payload)
        self.verify(envelope)
        try:
            if envelope[4:8] == FILE_IDENTIFIER_V2:
                return _V2Decoder(self, envelope, topic).decode()
            return self._decode(envelope)
        except DecodeError:
            raise
        except Exception as e:  # the checks above should make this unreachable
            raise DecodeError(f"envelope could not be decoded: {type(e).__name__}: {e}")

    def _decode(self, buf):
        env = self.Envelope.GetRootAs(buf, 0)
        header = {"site": _text(env.SiteId()), "gateway": _text(env.GatewayId()),
                  "envelope_seq": env.EnvelopeSeq(), "sent_utc_ms": env.SentUtcMs(),
                  "priority": PRIORITY_NAMES.get(env.Priority(), "unknown"),
                  "schema_version": env.SchemaVersion()}
        if header["schema_version"] > SCHEMA_MAJOR:
            raise DecodeError(f"schema_version {header['schema_version']} is newer than {SCHEMA_MAJOR}")
        self._check_size(env)
        readings, problems = [], []
        for i in range(env.ReadingsLength()):
            r = env.Readings(i)
            try:
                readings.append(self._reading(r, header["priority"]))
            except DecodeError as e:
                problems.append(f"reading {i}: {e}")
        return header, readings, problems

    def _check_size(self, env):
        """What decoding will copy, added up and checked first, reading by reading, without copying
        anything (as eport::codec::decode_envelope does): a small envelope whose readings all
        share one string must not decode to gigabytes. Raises DecodeError."""
        limit = self.limits.max_decoded_bytes
        decoded = (_strlen(env._tab, "Envelope", "SiteId") or 0) + (_strlen(env._tab, "Envelope", "GatewayId") or 0)
        for i in range(env.ReadingsLength()):
            decoded += self._reading_cost(i, env.Readings(i))
            if decoded > limit:
                raise DecodeError(f"envelope decodes to more than {limit} bytes (limit reached at reading {i})")

    def _reading_cost(self, i, r):
        """What copying reading r (of a verified buffer) costs, its bounds checked; 0 for one of a
        payload kind not in LAYOUT (skipped without copying). Raises DecodeError."""
        kind = self.payload_members.get(r.PayloadType())
        if kind not in LAYOUT:
            return 0  # skipped without copying anything
        source = _strlen(r._tab, "Reading", "SourceId") or 0
        if source > MAX_SOURCE_ID_BYTES:
            raise DecodeError(f"reading {i}: source_id of {source} bytes > {MAX_SOURCE_ID_BYTES}")
        container = _strlen(r._tab, "Reading", "ContainerId") or 0
        if container > MAX_CONTAINER_ID_BYTES:
            raise DecodeError(f"reading {i}: container_id of {container} bytes > {MAX_CONTAINER_ID_BYTES}")
        if r.ClassSeq() > _MAX_SEQ:
            raise DecodeError(f"reading {i}: class_seq {r.ClassSeq()} > 2^53-1")
        tab = r.Payload()
        if tab is None:
            raise DecodeError(f"reading {i}: payload type {r.PayloadType()} ({kind}) without its table")
        seal = (_strlen(tab, "SealEvent", "SealId") or 0) if kind == "SealEvent" else 0
        if seal > MAX_SEAL_ID_BYTES:
            raise DecodeError(f"reading {i}: seal_id of {seal} bytes > {MAX_SEAL_ID_BYTES}")
        if kind == "CustodyEvent":
            subject = _strlen(tab, "CustodyEvent", "SubjectId") or 0
            if subject > MAX_SUBJECT_ID_BYTES:
                raise DecodeError(f"reading {i}: subject_id of {subject} bytes > {MAX_SUBJECT_ID_BYTES}")
            zone = _strlen(tab, "CustodyEvent", "ZoneId") or 0
            if zone > MAX_ZONE_ID_BYTES:
                raise DecodeError(f"reading {i}: zone_id of {zone} bytes > {MAX_ZONE_ID_BYTES}")
            seal += subject + zone
            for accessor, bound in (("SealId", MAX_SEAL_ID_BYTES), ("ExpectedSealId", MAX_SEAL_ID_BYTES),
                                    ("CommandId", MAX_COMMAND_ID_BYTES)):
                n = _strlen(tab, "CustodyEvent", accessor) or 0
                if n > bound:
                    raise DecodeError(f"reading {i}: {accessor} of {n} bytes > {bound}")
                seal += n
        if kind == "EvidenceCheckpoint":
            n = _veclen(tab, "EvidenceCheckpoint", "Cose") or 0
            if n == 0 or n > MAX_EVIDENCE_BYTES:
                raise DecodeError(f"reading {i}: evidence checkpoint of {n} bytes (1..{MAX_EVIDENCE_BYTES})")
            seal += n
        return DECODED_READING_BYTES + source + container + seal

    def _reading(self, r, priority=None):
        kind = self.payload_members.get(r.PayloadType())
        if kind not in LAYOUT:  # before anything is copied
            raise DecodeError(f"unknown or missing payload type {r.PayloadType()}: skipped")
        source = _text(r.SourceId())
        if not source:
            raise DecodeError("reading without source_id")
        out = {"source": source}
        container = _text(r.ContainerId())
        if container:
            out["container"] = container
        out["seq"] = r.Seq()
        class_seq = r.ClassSeq()
        if class_seq and priority is not None:  # schema 1.5: counted in the envelope's class
            out["class"] = priority
            out["class_seq"] = class_seq
        elif class_seq:
            out["class_seq"] = class_seq
        out["time_utc_ms"] = r.TimeUtcMs()
        if r.TimeSource() == TIME_SOURCE_GATEWAY_RECEIVE:
            out["time_source"] = "gateway_receive"  # the unit had no valid clock: the agent's receive time
        tab = r.Payload()
        if tab is None:  # refused by _check_size(); kept for callers of _reading alone
            raise DecodeError(f"unknown or missing payload type {r.PayloadType()}: skipped")
        p = self.classes[kind]()
        p.Init(tab.Bytes, tab.Pos)
        if kind == "Position":
            out["kind"] = "position"
            out["lat_e7"] = p.LatE7()
            out["lon_e7"] = p.LonE7()
            _opt(out, "speed_cm_s", p.SpeedCmS())
            _opt(out, "heading_cdeg", p.HeadingCdeg())
            out["fix"] = p.Fix()
            out["satellites"] = p.Satellites()
            _opt(out, "hdop_centi", p.HdopCenti())
        elif kind == "SealEvent":
            out["kind"] = "seal"
            out["seal_id"] = _text(p.SealId())
            out["state"] = SEAL_STATE_NAMES.get(p.State(), "unknown")
        elif kind == "DoorEvent":
            out["kind"] = "door"
            out["state"] = DOOR_STATE_NAMES.get(p.State(), "unknown")
        elif kind == "SequenceGap":
            out["kind"] = "gap"  # a declared gap: seqs first_seq .. seq of this source will never arrive
            out["first_seq"] = p.FirstSeq()
            out["reason"] = GAP_REASON_NAMES.get(p.Reason(), "unknown")
        elif kind == "SensorSample":
            out["kind"] = "sensor"
            _opt(out, "temperature_centi_c", p.TemperatureCentiC())
            _opt(out, "humidity_centi_pct", p.HumidityCentiPct())
            _opt(out, "shock_milli_g", p.ShockMilliG())
            _opt(out, "battery_mv", p.BatteryMv())
            _opt(out, "battery_pct", p.BatteryPct())
            _opt(out, "reefer_setpoint_centi_c", p.ReeferSetpointCentiC())
        elif kind == "CustodyEvent":
            out["kind"] = "event"  # derived by the gateway (docs/custody-events.md)
            code = p.Code()
            out["event"] = EVENT_CODE_NAMES.get(code, "unknown")
            if code in EVENT_DCSA_CODES:  # seal events have no DCSA code: no key
                out["dcsa"] = EVENT_DCSA_CODES[code]
            out["subject"] = _text(p.SubjectId())
            out["first_seq"] = p.FirstSeq()
            out["caused_by_seq"] = p.CausedBySeq()
            zone = _text(p.ZoneId())
            if zone:
                out["zone"] = zone
            _opt(out, "lat_e7", p.LatE7())
            _opt(out, "lon_e7", p.LonE7())
            if p.Interpolated():
                out["interpolated"] = True
            if p.EndedByGap():
                out["ended_by_gap"] = True
            _opt(out, "temperature_centi_c", p.TemperatureCentiC())
            _opt(out, "setpoint_centi_c", p.SetpointCentiC())
            _opt(out, "band_low_centi_c", p.BandLowCentiC())
            _opt(out, "band_high_centi_c", p.BandHighCentiC())
            _opt(out, "duration_ms", p.DurationMs())
            for key, text in (("seal_id", p.SealId()), ("expected_seal_id", p.ExpectedSealId())):
                if _text(text):
                    out[key] = _text(text)
            if p.SealClass() in SEAL_CLASS_NAMES:
                out["seal_class"] = SEAL_CLASS_NAMES[p.SealClass()]
            if _text(p.CommandId()):
                out["command_id"] = _text(p.CommandId())
        elif kind == "EvidenceCheckpoint":
            out["kind"] = "evidence"  # a unit's signed checkpoint (docs/evidence.md section 13)
            out["n"] = p.N()
            out["check"] = EVIDENCE_CHECK_NAMES.get(p.Check(), "unknown")
            out["cose"] = _vecbytes(tab, "EvidenceCheckpoint", "Cose").hex()
        else:  # in LAYOUT but not decoded here: a LAYOUT entry added without its decoder
            raise DecodeError(f"payload type {kind} is not decoded by this consumer: skipped")
        return out

# ----------------------------------------------------------------------------------------------
# Envelope v2 (docs/schema.md "Envelope v2"): the columns, read with the same checks and messages
# as eport::codec::decode_envelope_v2 (agent/codec/src/envelope_v2.cpp).
_V2_COLUMNS = (  # name, min, max, kind (0 position, 1 sensor), presence bit (None: always there)
    ("lat_e7", -(1 << 31), (1 << 31) - 1, 0, None), ("lon_e7", -(1 << 31), (1 << 31) - 1, 0, None),
    ("speed_cm_s", 0, 65535, 0, 0x01), ("heading_cdeg", 0, 65535, 0, 0x02), ("fix", 0, 255, 0, None),
    ("satellites", 0, 255, 0, None), ("hdop_centi", 0, 65535, 0, 0x04),
    ("temperature_centi_c", -32768, 32767, 1, 0x01), ("humidity_centi_pct", 0, 65535, 1, 0x02),
    ("shock_milli_g", 0, 65535, 1, 0x04), ("battery_mv", 0, 65535, 1, 0x08), ("battery_pct", 0, 255, 1, 0x10),
    ("reefer_setpoint_centi_c", -32768, 32767, 1, 0x20),
)
_V2_PRESENCE_RESERVED = {0: 0xF8, 1: 0xC0}
_MAX_SEQ = (1 << 53) - 1
_M64 = (1 << 64) - 1


def _unzigzag(u):
    return (u >> 1) ^ -(u & 1)


class _V2Decoder:
    def __init__(self, codec, buf, topic):
        self.codec, self.buf, self.topic = codec, buf, topic
        root = _U32.unpack_from(buf, 0)[0]
        vt = root - _I32.unpack_from(buf, root)[0]
        vsize = _U16.unpack_from(buf, vt)[0]
        self.fields = {}
        for i, (accessor, *_) in enumerate(LAYOUT_V2["EnvelopeV2"]):
            slot = 4 + 2 * i
            fo = _U16.unpack_from(buf, vt + slot)[0] if slot + 2 <= vsize else 0
            if fo:
                self.fields[accessor] = root + fo + _U32.unpack_from(buf, root + fo)[0]  # verified above

    def _string(self, accessor):
        at = self.fields.get(accessor)
        if at is None:
            return ""
        n = _U32.unpack_from(self.buf, at)[0]
        return _text(self.buf[at + 4:at + 4 + n])

    def varint(self, what, reading):
        v = 0
        for i in range(10):
            if self.p == self.end:
                raise DecodeError(f"{what}: columns end inside reading {reading}")
            byte = self.buf[self.p]
            self.p += 1
            if i == 9 and byte > 1:
                raise DecodeError(f"{what}: varint of reading {reading} overflows 64 bits")
            v |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return v
        raise DecodeError(f"{what}: varint of reading {reading} overflows 64 bits")  # not reached

    def byte(self, what, reading):
        if self.p == self.end:
            raise DecodeError(f"{what}: columns end inside reading {reading}")
        self.p += 1
        return self.buf[self.p - 1]

    def string(self, what, bound):
        n = self.varint(what, 0)
        if n > bound:
            raise DecodeError(f"{what} of {n} bytes > {bound}")
        if n > self.end - self.p:
            raise DecodeError(f"{what}: columns end inside it")
        self.p += n
        return _text(self.buf[self.p - n:self.p])

    def decode(self):
        limits = self.codec.limits
        site, gateway = self._string("SiteId"), self._string("GatewayId")
        if len(site.encode("utf-8", "surrogateescape")) > 64 or len(gateway.encode("utf-8", "surrogateescape")) > 64:
            raise DecodeError("site_id or gateway_id longer than 64 bytes")
        if "Columns" not in self.fields:
            raise DecodeError("v2 envelope without columns")
        at = self.fields["Columns"]
        self.p, self.end = at + 4, at + 4 + _U32.unpack_from(self.buf, at)[0]
        self.v1 = []
        if "V1Readings" in self.fields:
            vec = self.fields["V1Readings"]
            for j in range(_U32.unpack_from(self.buf, vec)[0]):
                r = self.codec.Reading()
                e = vec + 4 + 4 * j
                r.Init(self.buf, e + _U32.unpack_from(self.buf, e)[0])
                self.v1.append(r)
        self.next_v1 = 0
        self.class_seqs = None  # [position, end] in the buffer of the class_seqs stream (schema 1.5)
        if "ClassSeqs" in self.fields:
            cs = self.fields["ClassSeqs"]
            self.class_seqs = [cs + 4, cs + 4 + _U32.unpack_from(self.buf, cs)[0]]
        envelope_seq = self.varint("envelope_seq", 0)
        sent = self.varint("sent_utc_ms", 0)
        priority = self.byte("priority", 0)
        if priority > 3:
            raise DecodeError(f"priority {priority} unknown")
        if self.topic is not None:
            _, tsite, tgateway, _ = parse_topic(self.topic)
            if tsite is None:
                raise DecodeError(f"v2 envelope on a topic that names no site and gateway: {self.topic}")
            for name, value, want in (("site_id", site, tsite), ("gateway_id", gateway, tgateway)):
                if value and value != want:
                    raise DecodeError(f"v2 envelope's {name} {value} is not its topic's {want}")
            site, gateway = site or tsite, gateway or tgateway
        header = {"site": site, "gateway": gateway, "envelope_seq": envelope_seq, "sent_utc_ms": sent,
                  "priority": PRIORITY_NAMES[priority], "schema_version": 2}
        self.priority = header["priority"]
        groups = self.varint("group count", 0)
        if groups > limits.max_readings:
            raise DecodeError(f"envelope holds {groups} groups > limit {limits.max_readings}")
        self.budget_readings = limits.max_readings
        self.budget_bytes = limits.max_decoded_bytes - len(site) - len(gateway)
        readings, problems = [], []
        for g in range(groups):
            try:
                self.group(sent, readings, problems)
            except DecodeError as e:
                raise DecodeError(f"group {g}: {e}")
        if self.p != self.end:
            raise DecodeError(f"{self.end - self.p} bytes after the last group")
        if self.class_seqs is not None and self.class_seqs[0] != self.class_seqs[1]:
            raise DecodeError(f"{self.class_seqs[1] - self.class_seqs[0]} bytes of class_seqs after the last group")
        if self.next_v1 != len(self.v1):
            raise DecodeError(f"{len(self.v1)} v1 tables but {self.next_v1} readings of kind v1")
        return header, readings, problems

    def group(self, sent, readings, problems):
        source = self.string("source_id", MAX_SOURCE_ID_BYTES)
        if not source:
            raise DecodeError("empty source_id")
        container = self.string("container_id", MAX_CONTAINER_ID_BYTES)
        n = self.varint("count", 0)
        if n == 0:
            raise DecodeError("count 0")
        if n > self.budget_readings:
            raise DecodeError(f"count {n} exceeds the readings limit ({self.budget_readings} left)")
        if n > self.end - self.p:
            raise DecodeError(f"count {n} but only {self.end - self.p} bytes of columns left")
        if n > self.budget_bytes // DECODED_READING_BYTES:  # before allocating anything
            raise DecodeError(f"count {n}: envelope decodes to more than the limit")
        self.budget_readings -= n
        seq = [self.varint("seq", 0)]
        time = [(sent + _unzigzag(self.varint("time_utc_ms", 0))) & _M64]
        tags = []
        for i in range(n):
            t = self.byte("tags", i)
            if t & 0xF8:
                raise DecodeError(f"reading {i}: tag has reserved bits set")
            if t & 3 == 3:
                raise DecodeError(f"reading {i}: tag of unknown kind 3")
            tags.append(t)
        for i in range(1, n):
            seq.append((seq[-1] + 1 + _unzigzag(self.varint("seq", i))) & _M64)
        for i in range(1, n):
            time.append((time[-1] + _unzigzag(self.varint("time_utc_ms", i))) & _M64)
        for i, s in enumerate(seq):
            if s == 0 or s > _MAX_SEQ:
                raise DecodeError(f"reading {i}: seq {s} out of range 1..2^53-1")
        class_seq = [0] * n
        if self.class_seqs is not None:  # the group's class seqs, from their own stream
            saved = self.p, self.end
            self.p, self.end = self.class_seqs
            try:
                for i in range(n):
                    v = self.varint("class_seqs", i)
                    class_seq[i] = v if i == 0 else (class_seq[i - 1] + 1 + _unzigzag(v)) & _M64
                    if class_seq[i] > _MAX_SEQ:
                        raise DecodeError(f"reading {i}: class_seq {class_seq[i]} out of range 0..2^53-1")
                self.class_seqs[0] = self.p
            finally:
                self.p, self.end = saved
        bits = [0] * n
        for i in range(n):
            kind = tags[i] & 3
            if kind == 2:
                continue
            b = self.byte("presence", i)
            if b & _V2_PRESENCE_RESERVED[kind]:
                raise DecodeError(f"reading {i}: presence has reserved bits set")
            bits[i] = b
        values = [{} for _ in range(n)]
        for name, lo, hi, ckind, bit in _V2_COLUMNS:
            prev = 0
            for i in range(n):
                if tags[i] & 3 != ckind or (bit is not None and not bits[i] & bit):
                    continue
                v = ((prev + _unzigzag(self.varint(name, i))) & _M64)
                v = v - (1 << 64) if v >= 1 << 63 else v
                if v < lo or v > hi:
                    raise DecodeError(f"reading {i}: {name} {v} out of range {lo}..{hi}")
                values[i][name] = v
                prev = v
        v1s = sum(1 for t in tags if t & 3 == 2)
        if v1s > len(self.v1) - self.next_v1:
            raise DecodeError(f"{v1s} readings of kind v1 but only {len(self.v1) - self.next_v1} v1 tables left")
        for i in range(n):
            kind = tags[i] & 3
            cost = DECODED_READING_BYTES + len(source) + len(container)
            out = {"source": source}
            if container:
                out["container"] = container
            out["seq"] = seq[i]
            if class_seq[i]:
                out["class"] = self.priority
                out["class_seq"] = class_seq[i]
            out["time_utc_ms"] = time[i]
            if tags[i] & 0x04:
                out["time_source"] = "gateway_receive"
            if kind == 2:
                r = self.v1[self.next_v1]
                self.next_v1 += 1
                if self.codec.payload_members.get(r.PayloadType()) not in LAYOUT:
                    problems.append(f"reading {i}: unknown or missing payload type {r.PayloadType()}: skipped")
                    continue
                try:
                    cost = self.codec._reading_cost(i, r)
                    got = self.codec._reading(r)
                except DecodeError as e:
                    raise DecodeError(f"reading {i}: v1 table: {e}")
                if "class_seq" in got:
                    raise DecodeError(f"reading {i}: v1 table has a class_seq (v2 carries it in class_seqs)")
                if class_seq[i]:
                    got = {**{k: got[k] for k in ("source", "container", "seq") if k in got},
                           "class": self.priority, "class_seq": class_seq[i],
                           **{k: v for k, v in got.items() if k not in ("source", "container", "seq")}}
                if {k: got.get(k) for k in ("source", "container", "seq", "time_utc_ms", "time_source")} != \
                        {k: out.get(k) for k in ("source", "container", "seq", "time_utc_ms", "time_source")}:
                    raise DecodeError(f"reading {i}: v1 table's source, container, seq, time or time source "
                                      f"differ from the group's")
                out = got
            else:
                out["kind"] = "position" if kind == 0 else "sensor"
                for name, _, _, ckind, _ in _V2_COLUMNS:
                    if ckind == kind and name in values[i]:
                        out[name] = values[i][name]
            if cost > self.budget_bytes:
                raise DecodeError(f"reading {i}: envelope decodes to more than the limit")
            self.budget_bytes -= cost
            readings.append(out)


def _strlen(tab, table, accessor):
    """The length of a string field of a verified table, without copying it; None if absent."""
    slot = 4 + 2 * [f[0] for f in LAYOUT[table]].index(accessor)
    o = tab.Offset(slot)
    if not o:
        return None
    return _U32.unpack_from(tab.Bytes, tab.Indirect(tab.Pos + o))[0]

def _veclen(tab, table, accessor):
    """The length of a vector field of a verified table; None if absent."""
    o = tab.Offset(4 + 2 * [f[0] for f in LAYOUT[table]].index(accessor))
    return tab.VectorLen(o) if o else None

def _vecbytes(tab, table, accessor):
    """The bytes of a [ubyte] field of a verified table (b"" if absent)."""
    o = tab.Offset(4 + 2 * [f[0] for f in LAYOUT[table]].index(accessor))
    if not o:
        return b""
    start = tab.Vector(o)
    return bytes(tab.Bytes[start:start + tab.VectorLen(o)])

def _text(b):
    # surrogateescape keeps any byte: json_line() writes back exactly the bytes that were sent.
    return b.decode("utf-8", "surrogateescape") if b else ""

def _opt(out, key, value):
    if value is not None:  # optional scalar (= null in the schema): absent stays absent
        out[key] = value

def bundled():
    """True when flatc's code was installed with this package (python3-eport)."""
    return os.path.isfile(os.path.join(BUNDLED_DIR, "eport", "telemetry", "v1", "Envelope.py"))

def _use_generated(generated_dir):
    """Makes eport.telemetry.v1 (flatc's package) the one under generated_dir: the directory of
    the generated "eport" package joins this package's search path, in front."""
    pkg = os.path.join(generated_dir, "eport")
    if pkg in eport.__path__ and eport.__path__[0] == pkg:
        return
    if pkg in eport.__path__:
        eport.__path__.remove(pkg)
    eport.__path__.insert(0, pkg)
    for name in [m for m in sys.modules if m == "eport.telemetry" or m.startswith("eport.telemetry.")]:
        mod = sys.modules[name]
        if not (getattr(mod, "__file__", None) or "").startswith(pkg + os.sep):
            del sys.modules[name]  # generated from another schema: import again from generated_dir
    importlib.invalidate_caches()

def load_codec(schema=None, flatc="flatc", cache_dir=None, limits=None):
    """A Codec. schema None: the code installed with the package if there is some, else
    generated from the repository's schema/telemetry.fbs; a path: generated from that file."""
    import_or_die("flatbuffers", "python3-flatbuffers")
    if schema is None and bundled():
        return Codec(BUNDLED_DIR, limits)
    if schema is None:
        schema = DEFAULT_SCHEMA
        if schema is None:
            raise SetupError("no generated decoder installed and no schema/telemetry.fbs beside this package: "
                             "give the schema", 66)
    return Codec(generate_code(schema, flatc, cache_dir), limits)

# ----------------------------------------------------------------------------------------------
# JSON exactly as eport::codec::reading_to_json writes it (eport::json, agent/json/json.h):
# keys in order, no spaces, the same escapes (" and \ escaped, every control byte 0x00..0x1f
# and DEL as \u00XX, valid UTF-8 as is, each maximal ill-formed UTF-8 subpart as \ufffd).

_ESCAPE = re.compile(rb'[\x00-\x1f\x7f"\\]')
_ESCAPES = {b'"': b'\\"', b"\\": b"\\\\"}
_BAD_UTF8 = "\udcff"  # stands for one ill-formed subpart until it is written as \ufffd

def _mark_bad_utf8(err):
    # Python's decoder reports one maximal subpart per call, as eport::json replaces them.
    return _BAD_UTF8, err.end

codecs.register_error("eport_json_bad_utf8", _mark_bad_utf8)

def _escape(s):
    raw = s.encode("utf-8", "surrogateescape")
    # A lone surrogate never survives the decode as valid input, so the marker is unambiguous.
    text = raw.decode("utf-8", "eport_json_bad_utf8").encode("utf-8", "surrogatepass")
    out = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(), b"\\u%04x" % m.group()[0]), text)
    return b'"' + out.replace(_BAD_UTF8.encode("utf-8", "surrogatepass"), b"\\ufffd") + b'"'

def json_line(obj):
    """One JSON object as bytes; values are str, int, nested dicts or raw JSON (bytes)."""
    parts = []
    for k, v in obj.items():
        if isinstance(v, dict):
            val = json_line(v)
        elif isinstance(v, bytes):
            val = v
        elif isinstance(v, str):
            val = _escape(v)
        elif isinstance(v, bool):  # before int: eport-tail writes "interpolated":true, not 1
            val = b"true" if v else b"false"
        else:
            val = str(int(v)).encode()
        parts.append(b'"' + k.encode() + b'":' + val)
    return b"{" + b",".join(parts) + b"}"

# ----------------------------------------------------------------------------------------------
def parse_topic(topic):
    """("data", site, gateway, class) or (kind, site, gateway, None) for eport/v1/<site>/<gw>/<kind>."""
    levels = topic.split("/")
    if len(levels) >= 5 and levels[0] == "eport" and levels[1] == f"v{SCHEMA_MAJOR}":
        if levels[4] == "data" and len(levels) == 6:
            return "data", levels[2], levels[3], levels[5]
        if len(levels) == 5:
            return levels[4], levels[2], levels[3], None
    return None, None, None, None

