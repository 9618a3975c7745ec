"""node_validators: the shared Node validators (../shared/standards/tools: validate-epcis.js
with Ajv 8 + ajv-formats, validate-dcsa.js --strict-codes) installed with npm into a
temporary copy (the shared folder is read-only), and run on files. install() returns the
directory or raises Unavailable saying why: no node or npm, or npm cannot reach or trust
the registry (as tests/integration/ts_package.py decides)."""
import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile

import standards

UNREACHABLE = re.compile(r"\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|"
                         r"ERR_SOCKET_TIMEOUT|network request to .* failed|SELF_SIGNED_CERT_IN_CHAIN|"
                         r"UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|"
                         r"DEPTH_ZERO_SELF_SIGNED_CERT|E401|E403|EINTEGRITY)\b")


class Unavailable(Exception):
    pass


def install() -> str:
    for exe in ("node", "npm"):
        if not shutil.which(exe):
            raise Unavailable(f"{exe} is not installed (apt-get install nodejs npm; scripts/setup.sh --test)")
    tmp = tempfile.mkdtemp(prefix="eport-standards-node-")
    atexit.register(shutil.rmtree, tmp, True)
    out = os.path.join(tmp, "tools")
    shutil.copytree(standards.TOOLS, out)
    for d, _, names in os.walk(out):
        os.chmod(d, 0o755)
        for n in names:
            os.chmod(os.path.join(d, n), 0o644)
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false",
               npm_config_fetch_retries="1")
    try:
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=out, capture_output=True, text=True,
                           timeout=180, env=env)
    except subprocess.TimeoutExpired:
        raise Unavailable("npm install did not finish within 180 s (registry unreachable?)") from None
    if p.returncode != 0:
        text = p.stdout + p.stderr
        why = [line for line in text.splitlines() if UNREACHABLE.search(line)]
        if why:
            raise Unavailable(f"npm install cannot reach or trust the registry: {why[0].strip()}")
        raise AssertionError(f"npm install failed in {out}:\n{text[-3000:]}")
    return out


def epcis(tools: str, paths: list) -> tuple:
    """(passed, failed, output) of validate-epcis.js over the files."""
    p = subprocess.run(["node", os.path.join(tools, "validate-epcis.js"), standards.EPCIS_SCHEMA, *paths],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"(\d+) passed, (\d+) failed", p.stdout)
    assert m, f"validate-epcis.js said:\n{p.stdout}{p.stderr}"
    return int(m.group(1)), int(m.group(2)), p.stdout


def dcsa(tools: str, doc: dict, work: str, name: str = "events.json") -> str:
    """validate-dcsa.js --strict-codes's verdict ('valid' or 'invalid ...') on {"events": [...]}."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    p = subprocess.run(["node", os.path.join(tools, "validate-dcsa.js"), standards.DCSA_OPENAPI, path,
                        "--strict-codes"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip(), f"validate-dcsa.js failed:\n{p.stdout}{p.stderr}"
    return p.stdout.strip()
