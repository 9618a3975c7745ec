"""Inventory: the one file an operator edits per site (TOML, read with the
standard library's tomllib). One table of keys below drives parsing, range
checks, the error messages and `eport-broker keys`; every other module works
on the validated Inventory value, never on raw TOML."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import agent_keys

try:
    import tomllib  # Python 3.11+, Debian 12's /usr/bin/python3
except ModuleNotFoundError:  # pragma: no cover - depends on the machine
    tomllib = None

# Gateway, site, reader and commander ids. They become MQTT usernames, client
# ids, certificate CNs and whole topic levels, so no '/', '+', '#' or spaces.
ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")

# The project's topic-safe id rule, the same as eport::model::topic_id_problem
# (agent/model/include/eport/model/ids.h, docs/topics.md): 1..64 bytes, each
# printable ASCII 0x21..0x7E, none of + # / (MQTT) or . * > (NATS). Site and
# gateway ids must pass it (NATS's MQTT gateway drops a connection on a topic
# with '.' or a space); ID_RE above is stricter still.
MAX_TOPIC_ID_LENGTH = 64
TOPIC_ID_FORBIDDEN = frozenset(b"+#/.*>")
TOPIC_ID_RULE = "(not allowed: + # / . * > space, control and non-ASCII bytes)"


def topic_id_problem(ident: str, max_length: int = MAX_TOPIC_ID_LENGTH) -> str:
    """'' when ident is topic-safe, else why not, e.g. "contains '.' at byte 3
    (...)", "is empty", "is 70 bytes long (at most 64)". Counts UTF-8 bytes,
    and shows a byte that is not printable as \\xNN, as the C++ rule does."""
    data = ident.encode("utf-8", "surrogateescape")
    if not data:
        return "is empty"
    if len(data) > max_length:
        return f"is {len(data)} bytes long (at most {max_length})"
    for i, b in enumerate(data):
        if b < 0x21 or b > 0x7E or b in TOPIC_ID_FORBIDDEN:
            shown = chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02X}"
            return f"contains '{shown}' at byte {i + 1} {TOPIC_ID_RULE}"
    return ""


def _quoted(ident: str) -> str:
    """ident in double quotes, bytes outside 0x20..0x7E (and '"', '\\') as \\xNN."""
    data = ident.encode("utf-8", "surrogateescape")
    return '"' + "".join(chr(b) if 0x20 <= b <= 0x7E and b not in b'"\\' else f"\\x{b:02X}" for b in data) + '"'


HOST_RE = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
EXPIRY_RE = re.compile(r"[1-9][0-9]*[hdwmy]\Z")
DURATION_RE = re.compile(r"[1-9][0-9]*[sm]\Z")
# Names the generator uses for its own files.
# "broker" and the cluster's nodes (nats-1 .. nats-5) have certificates too.
RESERVED = {"broker"} | {f"nats-{i}" for i in range(1, 6)}


class InventoryError(Exception):
    """A problem in the inventory; the message names the file and the key."""


@dataclass(frozen=True)
class Key:
    section: str   # "" for top level
    name: str
    kind: type     # str, int, list (of str)
    default: object  # None = required
    check: str     # "id", "ids", "host", "hosts", "port", or "int:LO:HI", "expiry", "path", "text", "bind", "log_dest"
    doc: str

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name


KEYS: tuple[Key, ...] = (
    Key("", "site", str, None, "id", "site id, the third topic level: eport/v1/<site>/<gateway>/..."),
    Key("", "gateways", list, None, "ids", "gateway ids (= certificate CN, MQTT username and client id)"),
    Key("", "readers", list, [], "ids", "cloud reader accounts, one per consumer process: read data, status, health, reply"),
    Key("", "commanders", list, [], "ids", "command-service accounts, one per process: write cmd, read reply and status"),
    Key("", "monitors", list, [], "ids", "monitoring accounts, one per process: read the broker's $SYS/# metrics, nothing else"),
    Key("", "ingesters", list, [], "ids", "NATS cluster only: eport-ingest workers (docs/cloud.md), one per process: pull from the shared durable consumer of $MQTT_msgs and acknowledge, nothing else"),
    Key("broker", "host", str, None, "host", "name (or IP) gateways connect to; in the broker certificate's SAN"),
    Key("broker", "port", int, 8883, "port", "TLS listener port"),
    Key("broker", "bind_address", str, "", "bind", "address the listener binds to; empty = all interfaces"),
    Key("broker", "alt_names", list, [], "hosts", "more SAN entries (names or IPs); localhost, 127.0.0.1 and ::1 are always added"),
    Key("broker", "ca_name", str, "", "text", "CN of the site CA; default 'eport-edge <site> CA'"),
    Key("broker", "log_dest", list, ["file /var/log/mosquitto/mosquitto.log"], "log_dest",
        "cloud broker: where it logs, one log_dest line each: \"file /ABS/PATH\", \"syslog\", \"stderr\", \"stdout\", \"topic\", \"dlt\" or \"none\""),
    Key("limits", "max_queued_messages", int, 10000, "int:100:10000000", "cloud broker: QoS 1 messages queued per client before dropping"),
    Key("limits", "max_inflight_messages", int, 20, "int:1:65535", "cloud broker: unacknowledged outgoing QoS 1 messages per client"),
    Key("limits", "message_size_limit", int, 1048576, "int:1024:268435455", "cloud broker: largest payload in bytes; larger QoS 1 messages are acked and DROPPED"),
    Key("limits", "max_keepalive", int, 120, "int:10:65535", "cloud broker: longest keepalive (s) granted to MQTT v5 clients"),
    Key("limits", "persistent_client_expiration", str, "14d", "expiry", "cloud broker: forget persistent sessions unused this long (h d w m y)"),
    Key("limits", "sys_interval", int, 10, "int:1:3600", "cloud broker: seconds between updates of the $SYS/# metrics the monitors read"),
    Key("bridge", "local_readers", list, [], "ids", "gateway bridge: local read-only accounts on each gateway's bridge broker (that gateway's data, status, health, reply and the bridge state), one password per gateway"),
    Key("limits", "bridge_max_queued_messages", int, 100000, "int:1000:10000000", "gateway bridge: messages held while the cloud is unreachable"),
    Key("paths", "conf_dir", str, "/etc/mosquitto/eport", "path", "cloud broker: where ca.crt, broker.crt/.key, crl.pem and acl are installed"),
    Key("paths", "persistence_dir", str, "/var/lib/mosquitto/", "path", "cloud broker: persistence_location (writable by user mosquitto)"),
    Key("paths", "pid_file", str, "/run/mosquitto/mosquitto.pid", "path", "cloud broker: its pid file (Debian's systemd unit expects the default)"),
    Key("paths", "gateway_tls_dir", str, "/etc/eport-edge/tls", "path", "gateway: where ca.crt, <id>.crt and <id>.key are installed"),
    Key("paths", "gateway_bridge_dir", str, "/etc/mosquitto/eport-bridge", "path", "gateway bridge broker: where its passwd and acl files are installed"),
    Key("paths", "gateway_persistence_dir", str, "/var/lib/mosquitto/", "path", "gateway bridge broker: persistence_location"),
    Key("cluster", "size", int, 3, "oneof:3:5", "NATS cluster: nodes, 3 (one may fail) or 5 (two may fail); also the replicas of every MQTT stream and consumer"),
    Key("cluster", "hosts", list, [], "hosts", "NATS cluster: each node's host name or IP, as many as cluster.size; empty = nats-<i>.<broker.host>"),
    Key("cluster", "name", str, "", "name", "NATS cluster name, the same on every node; default 'eport-<site>'"),
    Key("cluster", "route_port", int, 6222, "port", "NATS cluster: TLS port of the routes between nodes"),
    Key("cluster", "client_port", int, 4222, "port", "NATS cluster: NATS protocol port (TLS), bound to 127.0.0.1 on each node"),
    Key("cluster", "monitor_port", int, 8222, "port", "NATS cluster: HTTP monitoring port (/healthz, /jsz), bound to 127.0.0.1"),
    Key("cluster", "ack_wait", str, "30s", "duration", "NATS cluster: an MQTT QoS 1 delivery not acknowledged is sent again after this long (s or m)"),
    Key("cluster", "max_ack_pending", int, 1024, "int:1:65535", "NATS cluster: QoS 1 messages in flight to one MQTT subscription"),
    Key("cluster", "max_file_store", int, 10737418240, "int:104857600:1099511627776", "NATS cluster: bytes of JetStream file storage per node"),
    Key("paths", "cluster_conf_dir", str, "/etc/nats-server/eport", "path", "NATS cluster node: where ca.crt, node.crt and node.key are installed"),
    Key("paths", "cluster_store_dir", str, "/var/lib/nats-server/jetstream", "path", "NATS cluster node: JetStream store_dir (writable by user nats)"),
)


# Keys whose ids become topic levels (eport/v1/<site>/<gateway>/...).
TOPIC_LEVEL_KEYS = ("site", "gateways")

# Agent settings in the inventory: [agent.<section>] for every gateway's
# agent.toml, [gateway.<id>.<section>] for one gateway (over [agent]); any
# key of the agent (docs/config.md) except those the generator owns, which
# follow from the identity, the PKI layout and the broker: a gateway's
# agent.toml is never edited by hand, so gen can rewrite it.
AGENT_OWNED = {
    "gateway.id": "the gateway id (the inventory's gateways list)",
    "gateway.site": "the inventory's site",
    "mqtt.client_id": "the gateway id (the certificate CN)",
    "mqtt.ca_file": "paths.gateway_tls_dir",
    "mqtt.cert_file": "paths.gateway_tls_dir",
    "mqtt.key_file": "paths.gateway_tls_dir",
    "mqtt.verify_hostname": "always true with the site CA",
    "mqtt.insecure_skip_verify_hostname": "never set by the generator",
    "mqtt.insecure_password_over_tcp": "never set by the generator",
    "mqtt.username": "the bridge variant's login (the gateway id)",
    "mqtt.password_file": "the bridge variant's password file",
}


@dataclass(frozen=True)
class Inventory:
    path: Path
    site: str
    gateways: tuple[str, ...]
    readers: tuple[str, ...]
    commanders: tuple[str, ...]
    values: dict  # dotted key -> validated value, defaults filled in
    # agent settings: "" -> {"section.key": value} of [agent.*], gateway id ->
    # those of [gateway.<id>.*]
    agent: dict = field(default_factory=dict)

    def __getitem__(self, dotted: str):
        return self.values[dotted]

    def agent_settings(self, gateway: str) -> dict[str, tuple[object, str]]:
        """The agent keys the inventory sets for gateway: "section.key" ->
        (value, where it comes from: "[agent.SECTION]" or "[gateway.ID.SECTION]")."""
        out = {k: (v, f"[agent.{k.split('.')[0]}]") for k, v in self.agent.get("", {}).items()}
        out.update({k: (v, f"[gateway.{gateway}.{k.split('.')[0]}]")
                    for k, v in self.agent.get(gateway, {}).items()})
        return out

    @property
    def broker_host(self) -> str:
        return self.values["broker.host"]

    @property
    def ca_name(self) -> str:
        return self.values["broker.ca_name"] or f"eport-edge {self.site} CA"

    def identities(self) -> dict[str, str]:
        """CN -> role ('gateway', 'reader', 'commander', 'monitor' or 'ingest')."""
        out = {g: "gateway" for g in self.gateways}
        out.update({r: "reader" for r in self.readers})
        out.update({c: "commander" for c in self.commanders})
        out.update({m: "monitor" for m in self.values["monitors"]})
        out.update({i: "ingest" for i in self.values["ingesters"]})
        return out

    @property
    def monitors(self) -> tuple[str, ...]:
        return tuple(self.values["monitors"])

    @property
    def ingesters(self) -> tuple[str, ...]:
        return tuple(self.values["ingesters"])


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(HOST_RE.match(value))


def _check(key: Key, value, where: str):
    """Return the value if it satisfies key.check, else raise InventoryError."""
    def fail(why: str):
        raise InventoryError(f"{where}: {key.dotted} = {value!r}: {why}")

    if key.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("must be an integer")
    elif key.kind is str:
        if not isinstance(value, str):
            fail("must be a string")
    elif key.kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail("must be a list of strings")

    c = key.check
    if key.dotted in TOPIC_LEVEL_KEYS:
        for v in ([value] if c == "id" else value):
            why = topic_id_problem(v)
            if why:
                raise InventoryError(f"{where}: {key.dotted}: {_quoted(v)} is not topic-safe: {why}")
    if c == "id" and not ID_RE.match(value):
        fail(f"must match {ID_RE.pattern[:-2]}")
    elif c == "ids":
        for v in value:
            if not ID_RE.match(v):
                fail(f"entry {v!r} must match {ID_RE.pattern[:-2]} (it becomes a username and a topic level)")
            if v in RESERVED:
                fail(f"entry {v!r} is reserved for the broker's own certificate")
        dup = sorted({v for v in value if value.count(v) > 1})
        if dup:
            fail(f"duplicate entries {dup}")
    elif c == "host" and not _is_host(value):
        fail("must be a host name or an IP address")
    elif c == "hosts":
        for v in value:
            if not _is_host(v):
                fail(f"entry {v!r} is neither a host name nor an IP address")
    elif c == "bind" and value and not _is_host(value):
        fail("must be empty or an address/host name")
    elif c == "port" and not 1 <= value <= 65535:
        fail("must be 1-65535")
    elif c.startswith("int:"):
        lo, hi = (int(x) for x in c.split(":")[1:])
        if not lo <= value <= hi:
            fail(f"must be {lo}-{hi}")
    elif c.startswith("oneof:") and value not in {int(x) for x in c.split(":")[1:]}:
        fail(f"must be one of {', '.join(c.split(':')[1:])}")
    elif c == "name" and value and not ID_RE.match(value):
        fail(f"must be empty or match {ID_RE.pattern[:-2]}")
    elif c == "duration" and not DURATION_RE.match(value):
        fail("must be a number followed by s or m (e.g. 30s)")
    elif c == "expiry" and not EXPIRY_RE.match(value):
        fail("must be a number followed by h, d, w, m or y (e.g. 14d)")
    elif c == "path" and (not value.startswith("/") or any(ch.isspace() for ch in value)):
        fail("must be an absolute path without spaces (mosquitto reads it unquoted)")
    elif c == "log_dest":
        if not value:
            fail('must name at least one destination ("none" for no log)')
        for v in value:
            kind, _, path = v.partition(" ")
            if v in ("syslog", "stderr", "stdout", "topic", "dlt", "none"):
                continue
            if kind != "file" or not path.startswith("/") or any(ch.isspace() for ch in path):
                fail(f"entry {v!r} must be \"file /ABS/PATH\" (no spaces in the path), syslog, stderr, stdout, "
                     "topic, dlt or none")
    elif c == "text" and ("\n" in value or "/" in value):
        fail("must be one line without '/'")
    return value


def parse(text: str, where: str = "<inventory>") -> Inventory:
    if tomllib is None:
        raise InventoryError("this Python has no tomllib (needs 3.11+): run eport-broker with /usr/bin/python3 on Debian 12")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{where}: not valid TOML: {exc}") from None

    sections = {k.section for k in KEYS if k.section}
    known = {k.dotted for k in KEYS}
    agent_raw = {"": raw.pop("agent", {})}
    per_gateway = raw.pop("gateway", {})
    for name, value in raw.items():
        if isinstance(value, dict):
            if name not in sections:
                raise InventoryError(f"{where}: unknown section [{name}] (known: "
                                     f"{', '.join(sorted(sections | {'agent', 'gateway'}))})")
            for sub in value:
                if f"{name}.{sub}" not in known:
                    raise InventoryError(f"{where}: unknown key {name}.{sub} in [{name}]")
        elif name not in known:
            raise InventoryError(f"{where}: unknown key {name!r} (see `eport-broker keys`)")

    values = {}
    for key in KEYS:
        table = raw.get(key.section, {}) if key.section else raw
        if key.name in table:
            values[key.dotted] = _check(key, table[key.name], where)
        elif key.default is None:
            raise InventoryError(f"{where}: missing required key {key.dotted} ({key.doc})")
        else:
            values[key.dotted] = key.default

    if not values["gateways"]:
        raise InventoryError(f"{where}: gateways is empty; list at least one gateway id")
    seen: dict[str, str] = {}
    for role in ("gateways", "readers", "commanders", "monitors", "ingesters"):
        for ident in values[role]:
            if ident in seen:
                raise InventoryError(
                    f"{where}: {ident!r} is listed in both {seen[ident]} and {role}; every identity "
                    "is one certificate CN and one MQTT username, so names must be unique")
            seen[ident] = role

    hosts = values["cluster.hosts"]
    if hosts and len(hosts) != values["cluster.size"]:
        raise InventoryError(f"{where}: cluster.hosts lists {len(hosts)} node(s) but cluster.size is "
                             f"{values['cluster.size']}: list one host per node (3 or 5)")
    if len(set(hosts)) != len(hosts):
        raise InventoryError(f"{where}: cluster.hosts: every node needs its own host")
    if not hosts and _is_ip(values["broker.host"]):
        raise InventoryError(f"{where}: broker.host is an IP address, so node names cannot be derived "
                             "from it: set cluster.hosts")

    for name in values["bridge.local_readers"]:
        if name in values["gateways"] or name.startswith("bridge-"):
            raise InventoryError(
                f"{where}: bridge.local_readers: {name!r} is a gateway id or starts with 'bridge-': on the "
                "gateway's broker the username is the client id, and those belong to the agent and the bridge")

    if not isinstance(per_gateway, dict):
        raise InventoryError(f"{where}: gateway must be a table of gateways: [gateway.<id>.<section>]")
    for gw, table in per_gateway.items():
        if gw not in values["gateways"]:
            raise InventoryError(f"{where}: [gateway.{gw}.*]: {gw!r} is not in gateways (a removed gateway's "
                                 "settings go with it: delete its [gateway.{gw}.*] tables too)".replace("{gw}", gw))
        agent_raw[gw] = table
    agent = {owner: _agent_settings(table, f"[agent.SECTION]" if owner == "" else f"[gateway.{owner}.SECTION]",
                                    where, values)
             for owner, table in agent_raw.items()}

    return Inventory(path=Path(where), site=values["site"], gateways=tuple(values["gateways"]),
                     readers=tuple(values["readers"]), commanders=tuple(values["commanders"]),
                     values=values, agent=agent)


def _agent_settings(table, form: str, where: str, values: dict) -> dict:
    """{"section.key": value} of one [agent.*] or [gateway.<id>.*] table,
    each key an agent key the generator does not own, each value of the
    agent's type and range."""
    out = {}
    if not isinstance(table, dict):
        raise InventoryError(f"{where}: {form.replace('.SECTION', '')} must be a table of agent sections, "
                             f"e.g. {form.replace('SECTION', 'mqtt')}")
    for section, keys in table.items():
        head = form.replace("SECTION", section)
        if not isinstance(keys, dict):
            raise InventoryError(f"{where}: {head.strip('[]')} must be a table {head} of agent keys "
                                 f"(docs/config.md), e.g. {form.replace('SECTION', 'mqtt')} keepalive_s = 60")
        for key, value in keys.items():
            dotted = f"{section}.{key}"
            if dotted in AGENT_OWNED:
                raise InventoryError(f"{where}: {head} {key}: {dotted} is written by the generator "
                                     f"({AGENT_OWNED[dotted]}); it cannot be set here")
            why = agent_keys.problem(dotted, value)
            if why:
                raise InventoryError(f"{where}: {head} {key} = {value!r}: {dotted} {why}")
            if dotted == "mqtt.uri":
                bad = [u for u in value if not u.startswith(("ssl://", "mqtts://"))]
                if bad or not 1 <= len(value) <= 8:
                    raise InventoryError(f"{where}: {head} uri = {value!r}: the cloud broker is TLS only: one to "
                                         "eight ssl:// or mqtts:// URIs, the preferred first")
            if dotted == "publish.max_bytes" and value > values["limits.message_size_limit"] // 2:
                raise InventoryError(f"{where}: {head} max_bytes = {value}: at most half of "
                                     f"limits.message_size_limit ({values['limits.message_size_limit'] // 2}): the "
                                     "broker acknowledges and drops a larger message")
            out[dotted] = value
    return out


def load(path: str | Path) -> Inventory:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {p}: {exc.strerror}") from None
    return parse(text, str(p))


def keys_help() -> str:
    """The key table as text, for `eport-broker keys` and the docs."""
    lines = []
    for k in KEYS:
        default = "(required)" if k.default is None else repr(k.default)
        lines.append(f"{k.dotted:40} {k.kind.__name__:5} {default:24} {k.doc}")
    lines += ["",
              "[agent.SECTION] KEY = VALUE            every gateway's agent.toml: any eport-agent key (docs/config.md),",
              "                                       e.g. [agent.mqtt] keepalive_s = 60",
              "[gateway.ID.SECTION] KEY = VALUE       one gateway's agent.toml, over [agent.SECTION], e.g.",
              "                                       [gateway.gw-quay-01.bridge] serial_ports = [\"/dev/ttyUSB0\"]",
              "  not settable (the generator writes them): " + ", ".join(sorted(AGENT_OWNED))]
    return "\n".join(lines)
