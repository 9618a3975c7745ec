#!/usr/bin/env bash
# render.sh: write the development broker config (dev/mosquitto.conf) for
# another port, for tests and demo scripts that must not use a fixed port.
#
# Usage: broker-config/dev/render.sh PORT DIR
#   Writes DIR/mosquitto.conf: dev/mosquitto.conf with the listener on
#   127.0.0.1:PORT, plus `user root` when run as root (like every test
#   config: mosquitto would otherwise switch to user mosquitto). Prints the
#   file's path. Start it with: mosquitto -c "$(render.sh PORT DIR)"
set -euo pipefail

die() { echo "render.sh: $*" >&2; exit 1; }
[[ $# -eq 2 ]] || die "usage: render.sh PORT DIR"
port=$1 dir=$2
[[ $port =~ ^[0-9]+$ ]] && (( port >= 1 && port <= 65535 )) || die "PORT must be 1-65535, got '$port'"
mkdir -p -- "$dir"
src="$(dirname -- "${BASH_SOURCE[0]}")/mosquitto.conf"
[[ -f $src ]] || die "cannot find $src"
out="$dir/mosquitto.conf"
grep -q '^listener 1883 127.0.0.1$' "$src" || die "$src has no 'listener 1883 127.0.0.1' line to rewrite"
{
  sed "s/^listener 1883 127.0.0.1\$/listener $port 127.0.0.1/" "$src"
  if [[ $(id -u) -eq 0 ]]; then
    printf '\n# Added by render.sh: running as root, stay root.\nuser root\n'
  fi
} >"$out"
echo "$out"
