#!/usr/bin/env bash
# The durability promise of `coinhound serve` under SIGKILL: a few hundred thousand records of
# a scenario arrive over HTTP (plain and gzip'd), Firehose and spool directories while the
# server is killed at random moments (at least 20 times) and restarted; at the end every
# acknowledged record is in the store exactly once and the offenses equal one `analyze` over
# the same logs. Loopback only; about two minutes on two cores (CH_TORTURE_USERS scales it).
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the serve tests"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$src/tests/integration/serve_torture.py" "$bin" "$src" "$work" \
  --users "${CH_TORTURE_USERS:-150}" --min-kills 20 || {
  echo "FAIL: see above; the server's log:" >&2
  tail -n 30 "$work/serve.log" >&2
  exit 1
}
