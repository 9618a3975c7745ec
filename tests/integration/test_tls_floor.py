"""The agent's own TLS floor (Paho C 1.3.12 ignores the requested version and
sets OpenSSL security level 1): real mosquitto brokers that a permissive
client (Python's ssl, checked first as a control) can talk to, but the agent
must refuse, each with a log line naming the reason:
  - a broker that speaks only TLS 1.1;
  - a broker whose certificate has an RSA-1024 key (generated here);
  - a broker whose certificate names another host.
With mqtt.verify_hostname = false (allowed only by
mqtt.insecure_skip_verify_hostname = true) the last one is accepted, with a
warning at start."""
import os
import warnings
import socket
import ssl
import subprocess
import time

import harness as h

warnings.filterwarnings("ignore", category=DeprecationWarning)  # ssl.TLSVersion.TLSv1_1

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PKI = os.path.join(SOURCE, "broker-config", "pki", "eport-pki")


def pki(*args, env=None):
    p = subprocess.run([PKI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert p.returncode == 0, f"eport-pki {args}: {p.stderr}"


def server_cert(pkidir, name, keyalg, san):
    """A server certificate from the test CA with any key and SAN."""
    key, crt, csr = (os.path.join(pkidir, "issued", f"{name}.{e}") for e in ("key", "crt", "csr"))
    subprocess.run(["openssl", "genpkey", *keyalg, "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "ca", "-config", "openssl.cnf", "-batch", "-notext", "-days", "30",
                    "-extensions", "server_ext", "-in", csr, "-out", crt],
                   cwd=pkidir, check=True, capture_output=True, env={**os.environ, "EPORT_PKI_SAN": san})
    os.chmod(key, 0o644)  # mosquitto drops to its own user before reading it
    return key, crt


def tls_broker(name, pkidir, key, crt, version, ciphers=None, max_protocol=None):
    """mosquitto's tls_version is a minimum: a maximum comes from an OpenSSL
    configuration (system_default MaxProtocol) given to that mosquitto only."""
    work = h.Workdir(name)
    b = h.Broker(work)
    with open(b.conf, "w") as f:
        f.write(f"listener {b.port} 127.0.0.1\ncafile {pkidir}/ca.crt\ncertfile {crt}\nkeyfile {key}\n"
                f"tls_version {version}\nallow_anonymous true\nuser root\n" +
                (f"ciphers {ciphers}\n" if ciphers else ""))
    saved = os.environ.get("OPENSSL_CONF")
    if max_protocol:
        conf = work.file("openssl.cnf")
        with open(conf, "w") as f:
            f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n[sys]\n"
                    f"MaxProtocol = {max_protocol}\nCipherString = DEFAULT:@SECLEVEL=0\n")
        os.environ["OPENSSL_CONF"] = conf
    try:
        b.start()
    finally:
        if saved is None:
            os.environ.pop("OPENSSL_CONF", None)
        else:
            os.environ["OPENSSL_CONF"] = saved
    return b


def handshake(port, ca, min_version=None, max_version=None, ciphers=None, check_hostname=True):
    """A permissive Python client: returns the negotiated version, or raises."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = check_hostname
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.version()


def agent_log(work, name, broker, ca, extra=""):
    sub = h.Workdir(name)
    a = h.Agent(sub, f"ssl://127.0.0.1:{broker.port}")
    with open(a.config) as f:
        text = f.read()
    with open(a.config, "w") as f:
        f.write(text.replace("[mqtt]\n", f'[mqtt]\nca_file = "{ca}"\nconnect_timeout_s = 3\n{extra}'))
    a.start()
    h.wait_until(lambda: "connected to" in a.read_log() or " failed: " in a.read_log(), 20,
                 f"{name}: a connect attempt")
    time.sleep(0.5)
    log = a.read_log()
    assert a.terminate() == 0, log[-2000:]
    sub.cleanup()
    return log


def test_tls_floor(work):
    pkidir = work.file("pki")
    pki("init", pkidir)
    pki("server", pkidir, "broker", "127.0.0.1")
    ca = f"{pkidir}/ca.crt"
    good_key, good_crt = f"{pkidir}/issued/broker.key", f"{pkidir}/issued/broker.crt"
    os.chmod(good_key, 0o644)
    weak_key, weak_crt = server_cert(pkidir, "weak", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
                                     "IP:127.0.0.1,DNS:localhost")
    other_key, other_crt = server_cert(pkidir, "other", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                                       "DNS:broker.other.example")

    # TLS 1.1 only. The control shows the broker really speaks it.
    old = tls_broker("tls11", pkidir, good_key, good_crt, "tlsv1.1", ciphers="DEFAULT:@SECLEVEL=0",
                     max_protocol="TLSv1.1")
    v = handshake(old.port, ca, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0")
    assert v == "TLSv1.1", v
    try:
        v = handshake(old.port, ca, ssl.TLSVersion.TLSv1_2)
        raise AssertionError(f"the TLS 1.1 broker accepted {v}")
    except ssl.SSLError:
        pass
    log = agent_log(work, "a-tls11", old, ca)
    assert "connected to" not in log, log[-2000:]
    assert "TLS floor: TLS 1.2+" in log, log[-2000:]
    line = next((l for l in log.splitlines() if "TLS handshake with" in l), "no reason logged")
    assert "protocol" in line, line  # "unsupported protocol" / "tlsv1 alert protocol version"
    h.log(f"TLS 1.1 broker refused: {line}")

    # RSA-1024 broker key: a client at security level 1 (Paho's) accepts it.
    weak = tls_broker("rsa1024", pkidir, weak_key, weak_crt, "tlsv1.2", ciphers="DEFAULT:@SECLEVEL=0")
    v = handshake(weak.port, ca, ciphers="DEFAULT:@SECLEVEL=1")
    assert v in ("TLSv1.2", "TLSv1.3"), v
    log = agent_log(work, "a-rsa1024", weak, ca)
    assert "connected to" not in log, log[-2000:]
    line = next((l for l in log.splitlines() if "TLS handshake with" in l), "no reason logged")
    assert "key too weak" in line or "too small" in line, line
    h.log(f"RSA-1024 broker key refused: {line}")

    # A certificate for another host: valid chain (control), wrong name.
    other = tls_broker("otherhost", pkidir, other_key, other_crt, "tlsv1.2")
    v = handshake(other.port, ca, check_hostname=False)
    assert v in ("TLSv1.2", "TLSv1.3"), v
    log = agent_log(work, "a-otherhost", other, ca)
    assert "connected to" not in log, log[-2000:]
    line = next((l for l in log.splitlines() if "TLS handshake with" in l), "no reason logged")
    assert "hostname mismatch" in line or "IP address mismatch" in line, line
    h.log(f"certificate for another host refused: {line}")

    # verify_hostname = false needs the insecure key, and then warns at start.
    log = agent_log(work, "a-noverify", other, ca,
                    "verify_hostname = false\ninsecure_skip_verify_hostname = true\n")
    assert "connected to ssl://127.0.0.1" in log, log[-2000:]
    assert "mqtt.verify_hostname = false" in log and "WARN" in log.upper(), log[-2000:]

    # The good broker: the floor does not get in the way of TLS 1.2+ with a P-256 key.
    good = tls_broker("good", pkidir, good_key, good_crt, "tlsv1.2")
    log = agent_log(work, "a-good", good, ca)
    assert "connected to ssl://127.0.0.1" in log and "TLS handshake with" not in log, log[-2000:]
    for b in (old, weak, other, good):
        b.stop()
        b.work.cleanup()


if __name__ == "__main__":
    h.main(test_tls_floor)
