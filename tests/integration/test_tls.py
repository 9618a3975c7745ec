"""TLS to a real mosquitto that requires client certificates (mutual TLS,
identity from the certificate): the agent with the right CA and its own
certificate delivers everything; with the wrong CA, or with an expired
client certificate, it is refused and says why in its log, and delivers
nothing until fixed. Certificates come from broker-config/pki/eport-pki."""
import json
import os
import shutil
import subprocess
import time

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PKI = os.path.join(SOURCE, "broker-config", "pki", "eport-pki")


def pki(*args, env=None):
    p = subprocess.run([PKI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert p.returncode == 0, f"eport-pki {args}: {p.stderr}"


def tls_broker(work, pkidir):
    b = h.Broker(work)
    with open(b.conf, "w") as f:
        f.write(f"""per_listener_settings false
listener {b.port} 127.0.0.1
cafile {pkidir}/ca.crt
certfile {pkidir}/issued/broker.crt
keyfile {pkidir}/issued/broker.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
allow_anonymous false
user root
""")
    # A plain listener for the test's own subscriber.
    b.plain_port = h.free_port()
    with open(b.conf, "a") as f:
        f.write(f"listener {b.plain_port} 127.0.0.1\nallow_anonymous true\n")
    return b


def expired_client(pkidir, cn, out_key, out_crt):
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", out_key],
                   check=True, capture_output=True)
    csr = out_crt + ".csr"
    subprocess.run(["openssl", "req", "-new", "-key", out_key, "-subj", f"/CN={cn}", "-out", csr], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "ca", "-config", "openssl.cnf", "-batch", "-notext", "-extensions", "client_ext",
                    "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-in", csr, "-out", out_crt],
                   cwd=pkidir, check=True, capture_output=True, env={**os.environ, "EPORT_PKI_SAN": "DNS:localhost"})


def agent_with(work, broker, ca, crt, key, name):
    sub = h.Workdir(name)
    a = h.Agent(sub, f"ssl://127.0.0.1:{broker.port}")
    with open(a.config) as f:
        text = f.read()
    text = text.replace("[mqtt]\n", f'[mqtt]\nca_file = "{ca}"\ncert_file = "{crt}"\nkey_file = "{key}"\n'
                                     'keepalive_s = 5\nconnect_timeout_s = 3\n')
    with open(a.config, "w") as f:
        f.write(text)
    return a, sub


def test_tls(work):
    good = work.file("pki")
    pki("init", good)
    pki("server", good, "broker", "127.0.0.1", env={"EPORT_PKI_CERT_DAYS": "30"})
    pki("client", good, "gw-test-01")
    pki("client", good, "reader-01")
    pki("client", good, "ops-01")
    other = work.file("pki-other")
    pki("init", other, "someone else's CA")
    expired_client(good, "gw-test-01", work.file("old.key"), work.file("old.crt"))

    broker = tls_broker(work, good)
    broker.start()
    tail = h.Tail(work, f"tcp://127.0.0.1:{broker.plain_port}")
    gk, gc = f"{good}/issued/gw-test-01.key", f"{good}/issued/gw-test-01.crt"

    # Wrong CA: the agent cannot verify the broker and says so.
    bad, bad_dir = agent_with(work, broker, f"{other}/ca.crt", gc, gk, "wrongca")
    bad.start()
    time.sleep(3)
    log = bad.read_log()
    assert bad.terminate() == 0
    assert "TLS" in log and "certificate verify failed" in log, log[-2000:]
    assert "connected to" not in log

    # Expired client certificate: the broker refuses the handshake.
    old, old_dir = agent_with(work, broker, f"{good}/ca.crt", work.file("old.crt"), work.file("old.key"), "expired")
    old.start()
    time.sleep(3)
    log = old.read_log()
    assert old.terminate() == 0
    # ... and the agent says so: its own certificate was refused (the TLS alert), not a generic failure.
    assert "the broker refused this gateway's certificate (certificate expired" in log and \
        "connected to" not in log, log[-2000:]
    with open(broker.work.file("mosquitto.log")) as f:
        blog = f.read()
    assert "certificate expired" in blog or "certificate has expired" in blog or "OpenSSL Error" in blog, blog[-2000:]

    # Our own tools speak mutual TLS with the agent's option names; without
    # the CA they refuse at once, saying what is missing.
    tls_uri = f"ssl://127.0.0.1:{broker.port}"
    ca = f"{good}/ca.crt"
    for tool, extra in ((h.TAIL, []), (os.path.join(h.BIN, "tools", "eport-cmd"), ["--site", "cnsha", "--gateway",
                                                                                    "gw-test-01", "get-config"])):
        p = subprocess.run([tool, "--broker", tls_uri] + extra, capture_output=True, text=True, timeout=10)
        assert p.returncode == 64 and "give the broker's CA with --ca-file" in p.stderr, (tool, p.returncode, p.stderr)
    reader_args = ["--ca-file", ca, "--cert-file", f"{good}/issued/reader-01.crt", "--key-file",
                   f"{good}/issued/reader-01.key"]
    tls_tail = subprocess.Popen([h.TAIL, "--broker", tls_uri, "--count", "1000", "--duration", "60"] + reader_args,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def broker_log():
        with open(broker.work.file("mosquitto.log")) as f:
            return f.read()
    # Connected as reader-01 (the certificate's CN); the subscription follows at once.
    h.wait_until(lambda: "reader-01" in broker_log(), 10, "eport-tail connected over TLS")
    time.sleep(0.5)

    # Right CA and a valid certificate: everything arrives.
    agent, agent_dir = agent_with(work, broker, f"{good}/ca.crt", gc, gk, "good")
    agent.start()
    p = h.run_sim(agent, units=10, rate=100, count=100, acked_log=work.file("acked.jsonl"))
    assert p.returncode == 0, p.stdout + p.stderr
    acked = h.read_jsonl(work.file("acked.jsonl"))
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked), 30, "every reading over TLS")
    out, err = tls_tail.communicate(timeout=70)
    assert tls_tail.returncode == 0, err
    over_tls = [json.loads(line) for line in out.splitlines() if line.startswith('{"source"')]
    h.check_all_arrived(acked, over_tls)
    cmd = subprocess.run([os.path.join(h.BIN, "tools", "eport-cmd"), "--broker", tls_uri, "--ca-file", ca,
                          "--cert-file", f"{good}/issued/ops-01.crt", "--key-file", f"{good}/issued/ops-01.key",
                          "--site", "cnsha", "--gateway", "gw-test-01", "get-config"],
                         capture_output=True, text=True, timeout=30)
    assert cmd.returncode == 0 and '"ok":true' in cmd.stdout, (cmd.returncode, cmd.stdout, cmd.stderr)
    assert agent.terminate() == 0
    assert "connected to ssl://127.0.0.1" in agent.read_log()
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    for d in (bad_dir, old_dir, agent_dir):
        d.cleanup()
    h.log(f"mutual TLS: {len(acked)} readings delivered ({dups} duplicates), also to eport-tail over TLS; eport-cmd "
          "over TLS answered; wrong CA and expired certificate refused")


if __name__ == "__main__":
    h.main(test_tls)
