#!/usr/bin/env bash
# Rewrites the key table in docs/config.md from `eport-agent --config-reference`
# (the table between "## Every key" and the next heading). Run after adding a key;
# tests/integration/test_agent_cli.py fails until the doc matches.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=$(build/agent/app/eport-agent --config-reference)
REF="$ref" /usr/bin/python3 - <<'PY'
import os, re
path = "docs/config.md"
doc = open(path).read()
start = doc.index("## Every key\n") + len("## Every key\n")
end = doc.index("\n## ", start)
doc = doc[:start] + "\n" + os.environ["REF"] + "\n" + doc[end:]
open(path, "w").write(doc)
PY
echo "docs/config.md updated"
