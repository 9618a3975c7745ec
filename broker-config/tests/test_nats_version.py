#!/usr/bin/python3
"""The guard of the clustered broker: the installed nats-server is the version
broker-config's cluster is written and tested for (cluster.PINNED_VERSION),
or this test fails saying what to do; every node config that gen writes, for
3 and for 5 nodes, passes `nats-server -t`; and a 5-node cluster started from
them creates the MQTT layer's streams ($MQTT_msgs, $MQTT_sess, $MQTT_rmsgs)
with 5 replicas when the first gateway connects. An upgrade of nats-server
must pass this test, test_nats_permissions and integration.nats_cluster
(ctest -L nats) before PINNED_VERSION changes (docs/cluster.md)."""

import re
import subprocess
import sys
import time

from harness import SKIP, Client, Site, main
from eport_broker import cluster, inventory, natsrun

EXE = natsrun.find_nats_server()
if not EXE:
    print("SKIP: nats-server is not installed (apt-get install nats-server)")
    sys.exit(SKIP)

FIVE = """\
site = "s5"
gateways = ["gw-a"]
readers = ["reader-1"]
ingesters = ["ingest-1"]
[broker]
host = "mqtt.test.invalid"
[cluster]
size = 5
hosts = ["n1.test.invalid", "n2.test.invalid", "n3.test.invalid", "n4.test.invalid", "10.20.0.5"]
"""
MQTT_STREAMS = ("$MQTT_msgs", "$MQTT_sess", "$MQTT_rmsgs")


def test(workdir, t):
    fake = workdir / "nats-server-2.10.0"
    fake.write_text("#!/bin/sh\necho 'nats-server: v2.10.0'\n")
    fake.chmod(0o755)
    other = natsrun.version_problem(str(fake))
    t.check("2.10.0" in other and cluster.PINNED_VERSION in other and "ctest -L nats" in other,
            "another version is refused with a message naming both versions and the tests to re-run", other)
    problem = natsrun.version_problem(EXE)
    t.check(not problem, f"nats-server is the pinned {cluster.PINNED_VERSION}", problem)
    if problem:
        return

    for sub in ("three", "five"):
        (workdir / sub).mkdir()
    three = Site(workdir / "three")
    five = Site(workdir / "five", site="s5", inventory=FIVE)
    for site, size in ((three, 3), (five, 5)):
        inv = inventory.load(site.inv)
        confs = sorted((site.out / "cluster").glob("*/nats-server.conf"))
        t.check(len(confs) == size, f"gen writes {size} node configs for cluster.size = {size}", repr(confs))
        text = confs[0].read_text()
        t.check(f"stream_replicas: {size}" in text and f"consumer_replicas: {size}" in text,
                f"{size} nodes: MQTT streams and consumers with {size} replicas")
        t.check(len(re.findall(r'^\s+"tls://', text, re.M)) == size - 1, f"{size} nodes: routes to the {size - 1} others")
        if size == 5:   # the ingest grant (docs/cloud.md section 3) is in the configs nats-server -t checks
            t.check('user: "eport://s5/ingest/ingest-1"' in text and '"$JS.ACK.$MQTT_msgs.eport-ingest.>"' in text
                    and '"_INBOX.ingest-1.>"' in text, "an ingester's user and its JetStream grant are written")
        t.check(text.count("verify_and_map: true") == 2 and "verify: true" in text,
                "client and MQTT TLS map the user from the certificate; routes verify both ends")
        t.check('listen: "127.0.0.1:' in text and 'http: "127.0.0.1:' in text,
                "NATS protocol and monitoring ports bound to loopback")
        copy = natsrun.Cluster(inv, site.out, workdir / f"copy-{size}", inv["paths.cluster_conf_dir"])
        for node in copy.nodes:
            p = subprocess.run([EXE, "-t", "-c", str(node.conf)], capture_output=True, text=True, timeout=30)
            t.check(p.returncode == 0, f"nats-server -t accepts {node.name}'s config ({size} nodes)",
                    p.stdout + p.stderr)
        if size == 5:
            copy.start()
            try:
                copy.wait_ready(120)
                crt, key = site.cert("gw-a")
                gw = Client(copy.nodes[4].mqtt_port, site.ca, crt, key, client_id="gw-a")
                t.check(gw.connect(60), "gw-a connects to the fifth node (host given as an IP address)")
                gw.publish("eport/v1/s5/gw-a/status", b"online", retain=True)
                replicas = {}
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and len(replicas) < len(MQTT_STREAMS):
                    jsz = copy.nodes[0].monitor("jsz?accounts=true&streams=true") or {}
                    for acc in jsz.get("account_details") or []:
                        for st in acc.get("stream_detail") or []:
                            if st["name"] in MQTT_STREAMS:
                                replicas[st["name"]] = 1 + len((st.get("cluster") or {}).get("replicas") or [])
                    time.sleep(0.5)
                t.check(replicas == {s: 5 for s in MQTT_STREAMS}, "5 nodes: $MQTT_msgs, $MQTT_sess and $MQTT_rmsgs "
                        "have 5 replicas", repr(replicas))
                gw.close()
            finally:
                if t.failed:
                    print(copy.logs())
                copy.stop()


if __name__ == "__main__":
    main(test)
