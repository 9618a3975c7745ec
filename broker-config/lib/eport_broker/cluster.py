"""Cluster: the NATS JetStream cluster with its MQTT gateway (nats-server
2.9.10), rendered from the same inventory as the Mosquitto broker: one
nats-server.conf per node, the users and their subject permissions (the
Mosquitto ACL of render.acl translated to subjects), the identities that
the certificates' URI SANs carry, and the gateways' agent.toml that lists
every node. Pure functions, like render; cli.cmd_gen writes the files."""

from __future__ import annotations

from dataclasses import dataclass

from . import render
from .inventory import Inventory

CLUSTER_TEMPLATE = render.BROKER_CONFIG_DIR / "cluster" / "nats-server.conf.in"

# The nats-server version these configs are written and tested for
# (broker-config/tests/test_nats_version.py fails on any other).
PINNED_VERSION = "2.9.10"


@dataclass(frozen=True)
class Node:
    name: str   # server_name, certificate CN, directory under OUTDIR/cluster/
    host: str   # what gateways and the other nodes dial; in the certificate's SAN


def nodes(inv: Inventory) -> list[Node]:
    """The inventory's nodes: cluster.hosts, or nats-<i>.<broker.host>."""
    hosts = inv["cluster.hosts"] or [f"nats-{i}.{inv.broker_host}" for i in range(1, inv["cluster.size"] + 1)]
    return [Node(f"nats-{i}", h) for i, h in enumerate(hosts, 1)]


def identity(inv: Inventory, name: str) -> str:
    """The URI SAN of name's certificate, which is its NATS user:
    eport://<site>/<role>/<name>. A certificate of another site's CA never
    gets this far (ca_file); the site and role in the URI keep one name from
    meaning two things if several sites ever share a CA."""
    return f"eport://{inv.site}/{inv.identities()[name]}/{name}"


def subject(topic: str) -> str:
    """An MQTT topic filter as the NATS subject the gateway checks
    permissions on: '/' -> '.', '+' -> '*', '#' -> '>'. (A '.' in a topic is
    refused by NATS; topic-safe ids never have one.)"""
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


# Subscribe grant every MQTT QoS 1 subscriber needs: the server delivers a
# QoS 1 subscription from a JetStream consumer to "$MQTT.sub.<nuid>" on the
# client's own connection, and checks that subscription against the user's
# permissions (server/mqtt.go, processJSConsumer).
MQTT_QOS1_DELIVERY = "$MQTT.sub.>"

# The durable consumer on the MQTT layer's own stream that every eport-ingest
# worker shares (docs/cloud.md section 3), and the stream.
INGEST_DURABLE = "eport-ingest"
MQTT_MSGS_STREAM = "$MQTT_msgs"


def ingest_permissions(name: str) -> dict[str, list[str]]:
    """An ingest worker's grant: the JetStream API of the one durable consumer
    (create, info, next), its acks, and replies on the worker's own inbox
    (eport-ingest --inbox-prefix _INBOX.<name>). No stream can be changed,
    nothing published to MQTT, no $MQTT.sub.> delivery read."""
    api = f"$JS.API.CONSUMER.%s.{MQTT_MSGS_STREAM}.{INGEST_DURABLE}"
    return {"publish": [api % "DURABLE.CREATE", api % "INFO", api % "MSG.NEXT",
                        f"$JS.ACK.{MQTT_MSGS_STREAM}.{INGEST_DURABLE}.>"],
            "subscribe": [f"_INBOX.{name}.>"]}


def permissions(inv: Inventory) -> dict[str, dict[str, list[str]]]:
    """user (identity URI) -> {"publish": [...], "subscribe": [...]} in subject
    form; an empty publish list means publish nothing. The same rules as the
    Mosquitto ACL (render.acl). An MQTT subscription to a/b/# is two NATS
    subscriptions, a.b.> and a.b, so the readers' data/# grant has both."""
    out = {}
    for gw in inv.gateways:
        t = render.gateway_topics(inv, gw)
        out[identity(inv, gw)] = {
            "publish": [subject(t[k]) for k in ("data", "status", "health", "reply", "evidence")],
            "subscribe": [subject(t["cmd"]), MQTT_QOS1_DELIVERY]}
    for r in inv.readers:
        out[identity(inv, r)] = {
            "publish": [],
            "subscribe": [subject("eport/v1/+/+/data/#"), subject("eport/v1/+/+/data"),
                          *(subject(f"eport/v1/+/+/{leaf}") for leaf in ("status", "health", "reply", "evidence")),
                          MQTT_QOS1_DELIVERY]}
    for c in inv.commanders:
        out[identity(inv, c)] = {
            "publish": [subject("eport/v1/+/+/cmd")],
            "subscribe": [subject("eport/v1/+/+/reply"), subject("eport/v1/+/+/status"), MQTT_QOS1_DELIVERY]}
    for i in inv.ingesters:
        out[identity(inv, i)] = ingest_permissions(i)
    return out


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def accounts_block(inv: Inventory) -> str:
    roles = inv.identities()
    lines = ["  EPORT {", "    jetstream: enabled", "    users: ["]
    for user, perm in permissions(inv).items():
        name = user.rsplit("/", 1)[1]
        pub = ("{ deny: \">\" }" if not perm["publish"]
               else "{ allow: [" + ", ".join(_q(s) for s in perm["publish"]) + "] }")
        sub = "{ allow: [" + ", ".join(_q(s) for s in perm["subscribe"]) + "] }"
        lines += [f"      # {roles[name]} {name}",
                  f"      {{ user: {_q(user)}, permissions: {{",
                  f"          publish: {pub}",
                  f"          subscribe: {sub} }} }}"]
    lines += ["    ]", "  }", "  SYS {}"]
    return "\n".join(lines)


def node_conf(inv: Inventory, node: Node, conf_dir: str | None = None) -> str:
    others = [n for n in nodes(inv) if n != node]
    size = len(nodes(inv))
    route_port = inv["cluster.route_port"]
    values = {
        "NODE": node.name,
        "SITE": inv.site,
        "CLUSTER": inv["cluster.name"] or f"eport-{inv.site}",
        "CONF_DIR": (conf_dir or inv["paths.cluster_conf_dir"]).rstrip("/"),
        "CLIENT_PORT": str(inv["cluster.client_port"]),
        "MONITOR_PORT": str(inv["cluster.monitor_port"]),
        "MQTT_PORT": str(inv["broker.port"]),
        "MQTT_BIND": inv["broker.bind_address"] or "0.0.0.0",
        "ROUTE_PORT": str(inv["cluster.route_port"]),
        "ROUTE_BIND": inv["broker.bind_address"] or "0.0.0.0",
        "ROUTES": "\n".join(f"    {_q(f'tls://{n.host}:{route_port}')}" for n in others),
        "REPLICAS": str(size),
        "ACK_WAIT": inv["cluster.ack_wait"],
        "MAX_ACK_PENDING": str(inv["cluster.max_ack_pending"]),
        "MAX_PAYLOAD": str(inv["limits.message_size_limit"]),
        "MAX_FILE_STORE": str(inv["cluster.max_file_store"]),
        "STORE_DIR": inv["paths.cluster_store_dir"].rstrip("/"),
        "ACCOUNTS": accounts_block(inv),
    }
    return render.fill(CLUSTER_TEMPLATE.read_text(encoding="utf-8"), values, str(CLUSTER_TEMPLATE))


def agent_uris(inv: Inventory, gateway: str) -> list[str]:
    """mqtt.uri of gateway: every node, starting at a different node for
    each gateway (its place in the inventory), so that the gateways spread
    over the nodes and return to their own first node (failover_return_s)
    instead of all piling onto nats-1."""
    ns = nodes(inv)
    first = inv.gateways.index(gateway) % len(ns)
    return [f"ssl://{n.host}:{inv['broker.port']}" for n in ns[first:] + ns[:first]]


def agent_config(inv: Inventory, gateway: str) -> str:
    """The gateway's agent.toml for the cluster: render.agent_config with
    mqtt.uri listing every node (the agent fails over between them), the
    inventory's other agent settings kept."""
    return render.agent_config(inv, gateway, cluster_uris=agent_uris(inv, gateway))
