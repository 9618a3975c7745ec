"""Builds the TypeScript decoder package (consumers/typescript) for a test: a copy in the
test's work dir (with the v2 zstd dictionary copied in, as the package's build step does),
`npm ci` (the dependencies pinned in package-lock.json) and Debian's tsc.
Exits 77 (skip), saying why, only when node, npm or tsc is absent or npm cannot reach the
registry; any other failure fails the test."""
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness as h

PACKAGE = os.path.join(h.SOURCE_DIR, "consumers", "typescript")
FILES = ("package.json", "package-lock.json", "tsconfig.json", "src", "test")
# The v2 zstd dictionary, copied into the package as its build step does (scripts/copy-dictionary.mjs):
# the package loads it next to dist/, never from the source tree.
DICTIONARY = os.path.join(h.SOURCE_DIR, "schema", "eport_v2_dict_1.zdict")
# npm's codes for a registry it cannot reach (no network, no DNS, a proxy refusing, or a
# TLS-intercepting proxy whose CA this machine does not trust, as in a bare Debian root
# behind such a proxy).
UNREACHABLE = re.compile(r"\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|"
                         r"ERR_SOCKET_TIMEOUT|network request to .* failed|SELF_SIGNED_CERT_IN_CHAIN|"
                         r"UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|"
                         r"DEPTH_ZERO_SELF_SIGNED_CERT)\b")


def skip(msg):
    print(f"SKIP: {msg}", flush=True)
    sys.exit(77)


def tools():
    """{"node": path, "npm": path, "tsc": path}, or skip."""
    found = {name: shutil.which(name) for name in ("node", "npm", "tsc")}
    missing = [name for name, path in found.items() if not path]
    if missing:
        skip(f"the TypeScript decoder needs {', '.join(missing)}: apt-get install nodejs npm node-typescript "
             f"(Debian 12; scripts/setup.sh --test installs them)")
    return found


def build():
    """The built package's directory (dist/ and node_modules/ inside), in a temporary directory
    removed at exit. Called at import time of the test, before harness.main(), so that a skip
    is reported as one, not as a failure."""
    t = tools()
    tmp = tempfile.mkdtemp(prefix="eport-ts-package-")
    atexit.register(shutil.rmtree, tmp, True)
    out = os.path.join(tmp, "ts")
    os.makedirs(out)
    for name in FILES:
        src = os.path.join(PACKAGE, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(out, name))
    shutil.copy(DICTIONARY, os.path.join(out, os.path.basename(DICTIONARY)))
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false",
               npm_config_fetch_retries="1")
    p = subprocess.run([t["npm"], "ci", "--no-audit", "--no-fund"], cwd=out, capture_output=True, text=True,
                       timeout=180, env=env)
    if p.returncode != 0:
        text = p.stdout + p.stderr
        why = [line for line in text.splitlines() if UNREACHABLE.search(line)]
        if why:
            skip(f"npm ci cannot reach the registry: {why[0].strip()}")
        raise AssertionError(f"npm ci failed in {out}:\n{text[-3000:]}")
    p = subprocess.run([t["tsc"], "-p", "."], cwd=out, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"tsc -p . failed ({subprocess.run([t['tsc'], '--version'], capture_output=True, text=True).stdout.strip()}):\n{p.stdout}{p.stderr}"
    h.log(f"TypeScript decoder built in {out} (node {subprocess.run([t['node'], '--version'], capture_output=True, text=True).stdout.strip()})")
    return out
