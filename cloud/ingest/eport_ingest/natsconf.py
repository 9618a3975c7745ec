"""natsconf: the NATS user an ingest worker needs, as a block for the EPORT account of
every node's nats-server.conf (docs/cloud.md section 3). broker-config does not generate
it yet; the integration test adds it to its test copies with this function, so the test
runs exactly what the doc tells an operator to add. The grant is narrow: the JetStream API
of one durable consumer on $MQTT_msgs (create, info, next), its acks, and the worker's own
reply subjects; nothing else can be published or read, no stream can be created or deleted."""

from __future__ import annotations


def ingest_user(site: str, name: str, durable: str = "eport-ingest", stream: str = "$MQTT_msgs",
                inbox_prefix: str | None = None) -> str:
    """The users: [...] entry of worker `name` (certificate URI eport://<site>/ingest/<name>).
    Its replies arrive under inbox_prefix (default _INBOX.<name>): pass the same prefix to
    eport-ingest --inbox-prefix."""
    inbox = inbox_prefix or f"_INBOX.{name}"
    api = "$JS.API.CONSUMER"
    pub = [f"{api}.DURABLE.CREATE.{stream}.{durable}", f"{api}.INFO.{stream}.{durable}",
           f"{api}.MSG.NEXT.{stream}.{durable}", f"$JS.ACK.{stream}.{durable}.>"]
    q = lambda s: '"' + s + '"'  # noqa: E731
    return (f"      # ingest {name}\n"
            f"      {{ user: \"eport://{site}/ingest/{name}\", permissions: {{\n"
            f"          publish: {{ allow: [{', '.join(q(s) for s in pub)}] }}\n"
            f"          subscribe: {{ allow: [{q(inbox + '.>')}] }} }} }}\n")


def add_users(conf_text: str, blocks: list[str]) -> str:
    """conf_text (a rendered node config) with blocks added to the EPORT account's users."""
    marker = "  EPORT {\n    jetstream: enabled\n    users: [\n"
    if marker not in conf_text:
        raise ValueError("no EPORT account with a users list in this nats-server.conf")
    return conf_text.replace(marker, marker + "".join(blocks), 1)
