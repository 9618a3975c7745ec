#!/usr/bin/python3
"""eport-broker gen: inventory errors name the key; the output has explicit
per-gateway ACL blocks (no pattern lines), 0600 keys, per-gateway agent.toml
files with the agent's real keys (test_agent_config runs eport-agent on
them); a rerun changes no certificate; adding a gateway issues one
certificate; removing one drops its ACL block and warns that its
certificate is still valid. Agent settings of the inventory ([agent.*],
[gateway.<id>.*]) land in the agent.toml files and survive every later gen;
keys the agent does not have, or that gen owns, are refused."""

import re
import stat
import subprocess
import tomllib

from harness import BROKER_CONFIG, INVENTORY, main, run

from eport_broker.inventory import topic_id_problem

EPORT_BROKER = str(BROKER_CONFIG / "eport-broker")


def gen(inv_text, workdir, name="inv.toml"):
    workdir.mkdir(parents=True, exist_ok=True)
    inv = workdir / name
    inv.write_text(inv_text)
    return run([EPORT_BROKER, "gen", str(inv), str(workdir / "out")], check=False)


def serials(out):
    return {p.name: run(["openssl", "x509", "-in", str(p), "-noout", "-serial"]).stdout
            for p in sorted((out / "pki" / "issued").glob("*.crt"))}


def check_topic_id_rule(t):
    """The Python twin of eport::model::topic_id_problem gives the same answers
    as the C++ table test (tests/unit/ids_test.cpp)."""
    rule = "(not allowed: + # / . * > space, control and non-ASCII bytes)"
    for ok in ("cnsha", "gw-yangshan-01", "GW_01", "x" * 64):
        t.check(topic_id_problem(ok) == "", f"{ok[:20]!r} is topic-safe", topic_id_problem(ok))
    cases = [("", "is empty"), ("x" * 65, "is 65 bytes long (at most 64)")]
    cases += [(f"gw{ch}01", f"contains '{ch}' at byte 3 {rule}") for ch in "+#/.*> "]
    cases += [("gw\t01", f"contains '\\x09' at byte 3 {rule}"), ("gw\x7f01", f"contains '\\x7F' at byte 3 {rule}"),
              ("caf\u00e9", f"contains '\\xC3' at byte 4 {rule}"), ("gw\x0001", f"contains '\\x00' at byte 3 {rule}")]
    for bad, expected in cases:
        got = topic_id_problem(bad)
        t.check(got == expected, f"{bad[:20]!r} is refused: {expected[:40]}", got)
    t.check(topic_id_problem("u" * 33, 32) == "is 33 bytes long (at most 32)", "unit ids: at most 32 bytes")


def test(workdir, t):
    check_topic_id_rule(t)
    base = INVENTORY.format(site="s1")
    bad_cases = [
        (base.replace('"gw-b"', '"gw_B"'), "gateways", "an id with '_' or capitals"),
        (base.replace('"gw-b"', '"gw/b"'), "gateways", "an id with '/'"),
        (base.replace('readers = ["reader-1", "reader-2", "reader-3"]', 'readers = ["gw-a"]'), "gw-a", "an id in two roles"),
        (base + "\nsurprise = 1\n", "surprise", "an unknown key"),
        (base.replace("port = 8883", "port = 88830"), "broker.port", "a port out of range"),
        (base.replace('site = "s1"\n', ""), "site", "a missing site"),
        (base.replace('"gw-c"', '"broker"'), "reserved", "the reserved name 'broker'"),
        (base.replace('site = "s1"', 'site = "s/1"'), "site", "a site id with '/'"),
        # Not topic-safe (docs/topics.md): the message names the id, the byte and the rule.
        (base.replace('"gw-b"', '"gw.b"'), "gateways: \"gw.b\" is not topic-safe: contains '.' at byte 3 "
         "(not allowed: + # / . * >", "a gateway id with '.'"),
        (base.replace('"gw-b"', '"gw b"'), "gateways: \"gw b\" is not topic-safe: contains ' ' at byte 3",
         "a gateway id with a space"),
        (base.replace('"gw-b"', '"gw+b"'), "\"gw+b\" is not topic-safe: contains '+'", "a gateway id with '+'"),
        (base.replace('"gw-b"', '""'), "gateways: \"\" is not topic-safe: is empty", "an empty gateway id"),
        (base.replace('"gw-b"', '"%s"' % ("g" * 65)), "is not topic-safe: is 65 bytes long (at most 64)",
         "a 65-byte gateway id"),
        (base.replace('site = "s1"', 'site = "cn.sha"'), "site: \"cn.sha\" is not topic-safe: contains '.'",
         "a site id with '.'"),
        (base.replace("port = 8883", 'port = 8883\nlog_dest = ["file log.txt"]'), "broker.log_dest",
         "a log_dest file that is not an absolute path"),
        (base.replace("port = 8883", 'port = 8883\nlog_dest = []'), "broker.log_dest", "an empty log_dest"),
        (base.replace('site = "s1"', 'site = "s\\t1"'), "site: \"s\\x091\" is not topic-safe: contains '\\x09'",
         "a site id with a tab, shown as \\x09"),
        # The NATS cluster (docs/cluster.md).
        (base + "[cluster]\nsize = 4\n", "cluster.size = 4: must be one of 3, 5", "a cluster of 4 nodes"),
        (base + '[cluster]\nhosts = ["n1.test", "n2.test"]\n', "cluster.hosts lists 2 node(s) but cluster.size is 3",
         "cluster.hosts of another length than cluster.size"),
        (base + '[cluster]\nhosts = ["n1.test", "n1.test", "n2.test"]\n', "every node needs its own host",
         "two nodes on one host"),
        (base.replace('host = "mqtt.test.invalid"', 'host = "10.0.0.1"'), "set cluster.hosts",
         "node names derived from an IP broker.host"),
        (base.replace('"gw-c"', '"nats-2"'), "reserved", "a node's name (nats-2) as a gateway id"),
    ]
    for i, (text, needle, what) in enumerate(bad_cases):
        r = gen(text, workdir / f"bad{i}")
        t.check(r.returncode == 1 and needle in r.stderr and "error:" in r.stderr,
                f"gen rejects {what}, naming '{needle}'", r.stderr.strip())

    site = workdir / "site"
    r = gen(base, site)
    t.check(r.returncode == 0, "gen succeeds on the test inventory", r.stderr)
    out = site / "out"
    acl = (out / "broker" / "acl").read_text()
    conf0 = (out / "broker" / "mosquitto.conf").read_text()
    rules = [l for l in acl.splitlines() if l and not l.startswith("#")]
    t.check(not any(l.startswith("pattern") for l in rules), "the ACL has no pattern lines")
    block = acl.split("user gw-a\n", 1)[1].split("\n\n", 1)[0].splitlines()
    t.check(block == ["topic write eport/v1/s1/gw-a/data/#", "topic write eport/v1/s1/gw-a/status",
                      "topic write eport/v1/s1/gw-a/health", "topic write eport/v1/s1/gw-a/reply",
                      "topic write eport/v1/s1/gw-a/evidence",
                      "topic read eport/v1/s1/gw-a/cmd"], "gw-a's ACL block names only its own topics", repr(block))
    t.check("\npid_file /run/mosquitto/mosquitto.pid\n" in conf0 and
            "\nlog_dest file /var/log/mosquitto/mosquitto.log\n" in conf0,
            "by default the broker config has Debian's pid file and log file")
    mon = acl.split("user monitor-1\n", 1)[1].split("\n\n", 1)[0].splitlines()
    t.check(mon == ["topic read $SYS/#"] and (out / "clients" / "monitor-1" / "monitor-1.crt").is_file(),
            "monitor-1 gets a certificate and an ACL block that reads $SYS/# and nothing else", repr(mon))
    conf = (out / "broker" / "mosquitto.conf").read_text()
    t.check(not re.search(r"@[A-Z_]+@", conf), "no placeholder is left in the broker config")
    for needle in ("require_certificate true", "use_identity_as_username true", "use_username_as_clientid true",
                   "allow_anonymous false", "tls_version tlsv1.2", "persistence true", "message_size_limit 4096",
                   "crlfile /etc/mosquitto/eport/crl.pem", "acl_file /etc/mosquitto/eport/acl", "sys_interval 10"):
        t.check(f"\n{needle}\n" in conf, f"broker config says '{needle}'")
    keys = list(out.rglob("*.key"))
    t.check(keys and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys),
            f"all {len(keys)} private keys in the output are 0600")
    agent = tomllib.loads((out / "gateways" / "gw-a" / "agent.toml").read_text())
    t.check(agent["gateway"] == {"id": "gw-a", "site": "s1"} and agent["mqtt"]["client_id"] == "gw-a"
            and agent["mqtt"]["uri"] == "ssl://mqtt.test.invalid:8883"
            and agent["mqtt"]["ca_file"] == "/etc/eport-edge/tls/ca.crt"
            and agent["mqtt"]["cert_file"] == "/etc/eport-edge/tls/gw-a.crt"
            and agent["mqtt"]["key_file"] == "/etc/eport-edge/tls/gw-a.key"
            and agent["mqtt"]["verify_hostname"] is True,
            "gw-a's agent.toml has its id, site, client id, ssl:// broker URI and TLS file paths", repr(agent))
    t.check(agent["publish"]["max_bytes"] == 2048,
            "the agent's publish.max_bytes is half the broker's message_size_limit (4096)", repr(agent["publish"]))
    # The NATS cluster (docs/cluster.md): the same agent.toml, every node in
    # mqtt.uri, each gateway starting at another node; URI identities.
    nodes = [f"ssl://nats-{i}.mqtt.test.invalid:8883" for i in (1, 2, 3)]
    c_a = tomllib.loads((out / "gateways" / "gw-a" / "cluster" / "agent.toml").read_text())
    c_b = tomllib.loads((out / "gateways" / "gw-b" / "cluster" / "agent.toml").read_text())
    t.check(agent["mqtt"].get("protocol_version") == "5" and "protocol_version" not in c_a["mqtt"],
            "agent.toml speaks MQTT 5 to Mosquitto, cluster/agent.toml 3.1.1 (the default) to nats-server",
            repr((agent["mqtt"], c_a["mqtt"])))
    t.check(c_a["mqtt"]["uri"] == nodes and c_b["mqtt"]["uri"] == nodes[1:] + nodes[:1]
            and {k: v for k, v in c_a["mqtt"].items() if k != "uri"} == {k: v for k, v in agent["mqtt"].items()
                                                                       if k not in ("uri", "protocol_version")},
            "cluster/agent.toml lists the three nodes (gw-a from nats-1, gw-b from nats-2), the rest as agent.toml",
            repr((c_a["mqtt"], c_b["mqtt"]["uri"])))
    san = subprocess.run(["openssl", "x509", "-in", str(out / "gateways" / "gw-a" / "gw-a.crt"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True).stdout
    t.check("URI:eport://s1/gateway/gw-a" in san, "gw-a's certificate carries its URI identity", san)
    users = re.findall(r'user: "([^"]+)"', (out / "cluster" / "nats-1" / "nats-server.conf").read_text())
    t.check(users == ["eport://s1/gateway/gw-a", "eport://s1/gateway/gw-b", "eport://s1/gateway/gw-c",
                      "eport://s1/reader/reader-1", "eport://s1/reader/reader-2", "eport://s1/reader/reader-3",
                      "eport://s1/commander/cmd-1"], "the cluster's users are the inventory's URI identities",
            repr(users))
    via = tomllib.loads((out / "gateways" / "gw-a" / "bridge" / "agent.toml").read_text())
    t.check(via["mqtt"] == {"uri": "tcp://127.0.0.1:1883", "username": "gw-a",
                            "password_file": "/etc/eport-agent/bridge.password"} and via["gateway"]["id"] == "gw-a",
            "the bridge variant of gw-a's agent.toml points at the local broker without TLS, as user gw-a with "
            "a password file", repr(via["mqtt"]))
    b = out / "gateways" / "gw-a" / "bridge"
    secrets = {"gw-a": (b / "agent.password").read_text().strip(),
               "local-1": (b / "local-readers" / "local-1.password").read_text().strip()}
    t.check(all(len(p) >= 40 for p in secrets.values()) and len(set(secrets.values())) == 2,
            "gen writes a random password for the agent and for each local reader")
    private = [b / "agent.password", b / "local-readers" / "local-1.password", b / "passwd"]
    t.check(all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in private),
            "bridge/agent.password, local-readers/local-1.password and passwd are 0600")
    hashed = (b / "passwd").read_text()
    t.check([l.split(":", 1)[0] for l in hashed.splitlines()] == ["gw-a", "local-1"]
            and all(l.split(":", 1)[1].startswith("$7$") for l in hashed.splitlines())
            and not any(p in hashed for p in secrets.values()),
            "bridge/passwd holds users gw-a and local-1, hashed ($7$, PBKDF2-SHA512), no plain password", hashed)
    other = (out / "gateways" / "gw-b" / "bridge" / "agent.password").read_text().strip()
    t.check(other != secrets["gw-a"], "each gateway's agent has its own password")
    bacl = [l for l in (b / "acl").read_text().splitlines() if l and not l.startswith("#")]
    t.check(bacl == ["user gw-a", "topic write eport/v1/s1/gw-a/data/#", "topic write eport/v1/s1/gw-a/status",
                     "topic write eport/v1/s1/gw-a/health", "topic write eport/v1/s1/gw-a/reply",
                     "topic write eport/v1/s1/gw-a/evidence", "topic read eport/v1/s1/gw-a/cmd",
                     "user local-1", "topic read eport/v1/s1/gw-a/data/#", "topic read eport/v1/s1/gw-a/status",
                     "topic read eport/v1/s1/gw-a/health", "topic read eport/v1/s1/gw-a/reply",
                     "topic read eport/v1/s1/gw-a/evidence", "topic read $SYS/broker/connection/gw-a/state"],
            "gw-a's bridge ACL: the agent writes its five topics and reads cmd; local-1 only reads", repr(bacl))
    t.check(not (out / "gateways" / "gw-a" / "agent-tls.toml").exists(), "no agent-tls.toml is written any more")
    bridge = (out / "gateways" / "gw-a" / "bridge" / "mosquitto.conf").read_text()
    for needle in ("topic eport/v1/s1/gw-a/data/# out 1", "topic eport/v1/s1/gw-a/evidence out 1",
                   "topic eport/v1/s1/gw-a/cmd in 1", "cleansession false",
                   "local_cleansession false", "queue_qos0_messages false", "max_queued_messages 100000",
                   "bridge_certfile /etc/eport-edge/tls/gw-a.crt", "address mqtt.test.invalid:8883",
                   "allow_anonymous false", "password_file /etc/mosquitto/eport-bridge/passwd",
                   "acl_file /etc/mosquitto/eport-bridge/acl", "use_username_as_clientid true",
                   "per_listener_settings false", "listener 1883 127.0.0.1"):
        t.check(f"\n{needle}\n" in bridge, f"gw-a's bridge config says '{needle}'")

    before = serials(out)
    r = gen(base, site)
    t.check(r.returncode == 0 and serials(out) == before and "issued" not in r.stdout,
            "a second gen with the same inventory issues nothing and changes no certificate")
    t.check((b / "passwd").read_text() == hashed and (b / "agent.password").read_text().strip() == secrets["gw-a"]
            and "passwd" not in r.stdout, "a second gen keeps the bridge passwords and passwd unchanged")
    r = gen(base.replace('local_readers = ["local-1"]', 'local_readers = ["local-2"]'), site)
    t.check(r.returncode == 0 and not (b / "local-readers" / "local-1.password").exists()
            and [l.split(":", 1)[0] for l in (b / "passwd").read_text().splitlines()] == ["gw-a", "local-2"]
            and (b / "agent.password").read_text().strip() == secrets["gw-a"],
            "renaming a local reader drops its password and hash and keeps the agent's password", r.stdout)
    for bad, needle in (('local_readers = ["gw-b"]', "bridge.local_readers: 'gw-b'"),
                        ('local_readers = ["bridge-gw-a"]', "bridge.local_readers: 'bridge-gw-a'")):
        r = gen(base.replace('local_readers = ["local-1"]', bad), workdir / "badbridge")
        t.check(r.returncode == 1 and needle in r.stderr, f"gen refuses {bad} (it would be a client id taken)",
                r.stderr)
    gen(base, site)

    grown = base.replace('"gw-c"]', '"gw-c", "gw-d"]')
    r = gen(grown, site)
    after = serials(out)
    t.check(set(after) - set(before) == {"gw-d.crt"} and all(after[k] == before[k] for k in before),
            "adding gw-d to the inventory issues exactly one new certificate", r.stdout)
    t.check("user gw-d\n" in (out / "broker" / "acl").read_text(), "gw-d gets an ACL block")

    shrunk = base.replace('"gw-b", ', "")
    r = gen(shrunk, site)
    t.check(r.returncode == 0 and "gw-b still has a valid certificate" in r.stderr and "revoke" in r.stderr,
            "removing gw-b warns that its certificate is still valid and says to revoke it", r.stderr)
    t.check("gw-b" not in (out / "broker" / "acl").read_text().split("# ----- gateways", 1)[1],
            "gw-b's ACL block is gone")
    t.check(not (out / "gateways" / "gw-b").exists(), "gw-b's gateway output directory is removed")
    r = run([EPORT_BROKER, "revoke", str(out), "gw-b"], check=False)
    r2 = gen(shrunk, site)
    t.check(r.returncode == 0 and "gw-b" not in r2.stderr, "after `eport-broker revoke` the warning is gone", r2.stderr)

    check_agent_settings(workdir / "agent-settings", t)

    # pid_file, log_dest and bind_address from the inventory; SAN entries once.
    custom = base.replace("port = 8883", 'port = 8883\nbind_address = "127.0.0.1"\n'
                          'alt_names = ["127.0.0.1", "localhost", "10.1.2.3", "::1"]\n'
                          'log_dest = ["syslog", "file /var/log/eport/broker.log"]')
    custom += '[paths]\npid_file = "/run/eport/broker.pid"\n'
    r = gen(custom, workdir / "custom")
    conf = (workdir / "custom" / "out" / "broker" / "mosquitto.conf").read_text()
    lines = [l for l in conf.splitlines() if l.startswith(("pid_file", "log_dest", "listener"))]
    t.check(r.returncode == 0 and lines == ["pid_file /run/eport/broker.pid", "log_dest syslog",
                                            "log_dest file /var/log/eport/broker.log", "listener 8883 127.0.0.1"],
            "paths.pid_file, broker.log_dest (two lines) and broker.bind_address reach the broker config",
            r.stderr + repr(lines))
    san = run(["openssl", "x509", "-in", str(workdir / "custom" / "out" / "pki" / "issued" / "broker.crt"), "-noout",
               "-ext", "subjectAltName"]).stdout.splitlines()[1].strip().split(", ")
    t.check(sorted(san) == sorted(["DNS:mqtt.test.invalid", "IP Address:127.0.0.1", "DNS:localhost",
                                   "IP Address:0:0:0:0:0:0:0:1", "IP Address:10.1.2.3"]),
            "alt_names repeating 127.0.0.1, localhost and ::1 give a broker SAN with each entry once", repr(san))
    r = gen(custom, workdir / "custom")
    t.check(r.returncode == 0 and "lacks" not in r.stderr, "a second gen accepts that broker certificate", r.stderr)


AGENT_SETTINGS = """
[agent.mqtt]
keepalive_s = 60
reconnect_max_ms = 90000
[agent.log]
level = "debug"
[gateway.gw-a.bridge]
serial_ports = ["/dev/ttyUSB0", "/dev/ttyUSB1"]
tcp_listen = "0.0.0.0:7700"
unit_keys = "/etc/eport-agent/unit-keys"
[gateway.gw-a.mqtt]
uri = ["ssl://mqtt.test.invalid:8883", "ssl://mqtt-b.test.invalid:8883"]
keepalive_s = 20
"""


def check_agent_settings(workdir, t):
    base = INVENTORY.format(site="s1") + AGENT_SETTINGS
    r = gen(base, workdir)
    t.check(r.returncode == 0, "gen accepts [agent.*] and [gateway.<id>.*] agent settings", r.stderr)
    out = workdir / "out"

    def agent(gw, bridge=False):
        return tomllib.loads((out / "gateways" / gw / ("bridge" if bridge else "") / "agent.toml").read_text())

    def settings_hold():
        a, b, via = agent("gw-a"), agent("gw-b"), agent("gw-a", bridge=True)
        return (a["mqtt"]["uri"] == ["ssl://mqtt.test.invalid:8883", "ssl://mqtt-b.test.invalid:8883"]
                and a["mqtt"]["keepalive_s"] == 20 and a["mqtt"]["reconnect_max_ms"] == 90000
                and a["bridge"]["serial_ports"] == ["/dev/ttyUSB0", "/dev/ttyUSB1"]
                and a["bridge"]["tcp_listen"] == "0.0.0.0:7700" and a["bridge"]["unit_keys"] == "/etc/eport-agent/unit-keys"
                and a["log"] == {"level": "debug"} and a["mqtt"]["client_id"] == "gw-a"
                and b["mqtt"]["uri"] == "ssl://mqtt.test.invalid:8883" and b["mqtt"]["keepalive_s"] == 60
                and "serial_ports" not in b["bridge"] and b["log"] == {"level": "debug"}
                and via["mqtt"]["uri"] == "tcp://127.0.0.1:1883" and via["mqtt"]["keepalive_s"] == 20
                and via["bridge"]["serial_ports"] == ["/dev/ttyUSB0", "/dev/ttyUSB1"])

    t.check(settings_hold(), "gw-a gets its failover URIs, serial ports, tcp_listen and keep-alive, gw-b the "
            "site-wide [agent.*] ones; the bridge variant keeps its local URI", repr(agent("gw-a")))
    text = (out / "gateways" / "gw-a" / "agent.toml").read_text()
    t.check("keepalive_s = 20  # [gateway.gw-a.mqtt] of inv.toml" in text and "Do not edit this file" in text,
            "each such line names the inventory table it comes from; the header says to edit the inventory")

    # A hand edit is lost at the next gen; the same setting in the inventory is not.
    f = out / "gateways" / "gw-b" / "agent.toml"
    f.write_text(f.read_text().replace("[publish]", "[health]\ninterval_s = 5\n\n[publish]"))
    r = gen(base.replace('"gw-c"]', '"gw-c", "gw-d"]'), workdir)
    t.check(r.returncode == 0 and "interval_s" not in f.read_text(), "a hand edit of agent.toml is overwritten by gen")
    t.check(settings_hold(), "the inventory's agent settings survive the next gen (with a gateway added)")
    r = gen(base.replace('"gw-c"]', '"gw-c", "gw-d"]') + '[gateway.gw-b.health]\ninterval_s = 5\n', workdir)
    t.check(r.returncode == 0 and agent("gw-b")["health"] == {"interval_s": 5} and settings_hold(),
            "the same edit in the inventory ([gateway.gw-b.health]) is in gw-b's agent.toml after gen")
    r = gen(base.replace('"gw-c"]', '"gw-c", "gw-d"]') + '[gateway.gw-b.health]\ninterval_s = 5\n', workdir)
    t.check(r.returncode == 0 and agent("gw-b")["health"] == {"interval_s": 5}, "...and after the gen after that")

    inv = INVENTORY.format(site="s1")
    for extra, needle, what in (
            ('[agent.mqtt]\nkeep_alive = 20\n', "mqtt.keep_alive is not a key of eport-agent", "an unknown agent key"),
            ('[agent.mqtt]\nkeepalive_s = 2\n', "mqtt.keepalive_s must be 5 .. 3600", "a value out of the agent's range"),
            ('[agent.store]\ndurability = "fast"\n', "must be one of full, normal", "a value not in the agent's list"),
            ('[agent.mqtt]\nkeepalive_s = "60"\n', "must be an integer", "a string for an integer"),
            ('[gateway.gw-a.mqtt]\nclient_id = "gw-b"\n', "mqtt.client_id is written by the generator",
             "a key gen owns (client id)"),
            ('[gateway.gw-a.mqtt]\ncert_file = "/x.crt"\n', "mqtt.cert_file is written by the generator",
             "a key gen owns (TLS file)"),
            ('[gateway.gw-a.gateway]\nid = "gw-x"\n', "gateway.id is written by the generator", "the gateway id"),
            ('[gateway.gw-z.mqtt]\nkeepalive_s = 20\n', "'gw-z' is not in gateways", "a gateway not in gateways"),
            ('[agent.mqtt]\nuri = ["tcp://mqtt.test.invalid:1883"]\n', "the cloud broker is TLS only",
             "a plain tcp:// broker URI"),
            ('[agent.publish]\nmax_bytes = 4000\n', "at most half of limits.message_size_limit (2048)",
             "publish.max_bytes above half the broker's limit")):
        r = gen(inv + extra, workdir / "bad-agent")
        t.check(r.returncode == 1 and needle in r.stderr, f"gen refuses {what}, saying '{needle}'", r.stderr.strip())


if __name__ == "__main__":
    main(test)
