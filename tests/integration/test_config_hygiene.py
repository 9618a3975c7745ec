"""Configuration hygiene through the real binary: --check-config opens the
files the config names (a missing or non-PEM CA, certificate or key, or an
unreadable password file is refused, naming key and path); a password with a
non-TLS broker that is not loopback is refused (the loopback test parses the
host: tcp://127.attacker.example is not loopback); verify_hostname = false
needs mqtt.insecure_skip_verify_hostname; a key readable by others is warned
about. Then end to end: a 1500-byte password (longer than the 1023 bytes the
agent used to keep) authenticates at a real mosquitto, and the outbox the
agent creates under umask 022 is 0600."""
import os
import stat
import subprocess

import harness as h

AGENT = h.AGENT
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def check(work, name, mqtt):
    path = work.file(f"{name}.toml")
    with open(path, "w") as f:
        f.write(f'[gateway]\nid = "gw-test-01"\nsite = "cnsha"\n[bridge]\nunix_socket = "{work.file("s")}"\n'
                f'[mqtt]\n{mqtt}')
    p = subprocess.run([AGENT, "--check-config", path], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_config_hygiene(work):
    ca = write(work.file("ca.crt"), CERT, 0o644)
    crt = write(work.file("gw.crt"), CERT, 0o644)
    key = write(work.file("gw.key"), KEY)
    pw = write(work.file("pw"), "secret\n")
    missing = work.file("nowhere.pem")
    tls = 'uri = "ssl://broker.example:8883"\n'

    rc, out = check(work, "ok", tls + f'ca_file = "{ca}"\ncert_file = "{crt}"\nkey_file = "{key}"\n')
    assert rc == 0 and "valid" in out and "warning" not in out, out
    for k in ("ca_file", "cert_file", "key_file"):
        files = {"ca_file": ca, "cert_file": crt, "key_file": key, k: missing}
        rc, out = check(work, f"no-{k}", tls + "".join(f'{a} = "{b}"\n' for a, b in files.items()))
        assert rc == 2 and f"mqtt.{k}: cannot read {missing}" in out, out
    rc, out = check(work, "not-pem", tls + f'ca_file = "{pw}"\n')
    assert rc == 2 and f"mqtt.ca_file: {pw} holds no PEM certificate" in out, out
    rc, out = check(work, "no-pw", f'username = "gw"\npassword_file = "{missing}"\n')
    assert rc == 2 and f"mqtt.password_file: cannot read {missing}" in out, out

    # Passwords and plain MQTT.
    user = f'username = "gw"\npassword_file = "{pw}"\n'
    rc, out = check(work, "pw-fake-loopback", 'uri = "tcp://127.attacker.example:1883"\n' + user)
    assert rc == 2 and "in clear to tcp://127.attacker.example:1883" in out, out
    rc, out = check(work, "pw-mixed", f'uri = "ssl://a.example:8883,tcp://b.example:1883"\nca_file = "{ca}"\n' + user)
    assert rc == 2 and "in clear to tcp://b.example:1883" in out, out
    rc, out = check(work, "pw-mixed-allowed", f'uri = "ssl://a.example:8883,tcp://b.example:1883"\nca_file = "{ca}"\n'
                    + user + "insecure_password_over_tcp = true\n")
    assert rc == 0, out
    rc, out = check(work, "pw-loopback", 'uri = "tcp://127.0.0.1:1883"\n' + user)
    assert rc == 0, out

    # Host name verification.
    rc, out = check(work, "noverify", tls + f'ca_file = "{ca}"\nverify_hostname = false\n')
    assert rc == 2 and "mqtt.insecure_skip_verify_hostname = true" in out, out
    rc, out = check(work, "noverify-ok", tls + f'ca_file = "{ca}"\nverify_hostname = false\n'
                    "insecure_skip_verify_hostname = true\n")
    assert rc == 0, out

    # A key others may read: valid, with a warning naming it.
    os.chmod(key, 0o644)
    rc, out = check(work, "key-0644", tls + f'ca_file = "{ca}"\ncert_file = "{crt}"\nkey_file = "{key}"\n')
    assert rc == 0 and f"warning: mqtt.key_file: {key} is readable by every local user (mode 0644)" in out, out

    # End to end: a long password, and the outbox mode under umask 022.
    long_pw = "p" * 1500
    passwd = work.file("mosquitto.passwd")
    subprocess.run(["mosquitto_passwd", "-c", "-b", passwd, "gw", long_pw], check=True, capture_output=True)
    os.chmod(passwd, 0o644)
    b = h.Broker(work)
    with open(b.conf, "w") as f:
        f.write(f"listener {b.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nuser root\n")
    b.start()
    write(pw, long_pw + "\n")
    a = h.Agent(work, b.uri, extra="")
    with open(a.config) as f:
        text = f.read()
    with open(a.config, "w") as f:
        f.write(text.replace("[mqtt]\n", f'[mqtt]\nusername = "gw"\npassword_file = "{pw}"\n'))
    old = os.umask(0o022)
    try:
        a.start()
    finally:
        os.umask(old)
    h.wait_until(lambda: "connected to" in a.read_log() or "failed" in a.read_log(), 15, "a connect attempt")
    log = a.read_log()
    assert "connected to tcp://127.0.0.1" in log, log[-2000:]
    mode = stat.S_IMODE(os.stat(a.db).st_mode)
    assert mode == 0o600, oct(mode)
    assert a.terminate() == 0
    b.stop()
    h.log("config hygiene: files checked at --check-config, password rules, 1500-byte password, outbox 0600")


if __name__ == "__main__":
    h.main(test_config_hygiene)
