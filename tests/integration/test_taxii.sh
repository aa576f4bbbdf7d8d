#!/usr/bin/env bash
# Integration test of `coinhound intel serve` and `coinhound intel pull` as processes: the server
# refuses to start without credentials, starts on an ephemeral loopback port with them (from the
# environment), answers discovery only with basic auth, serves a pull, and exits 0 on SIGTERM.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# lib.sh's fail, plus what the server said.
fail() { echo "FAIL: $*" >&2; [ -f "$work/serve.err" ] && cat "$work/serve.err" >&2; exit 1; }

need_subcommand "$bin" intel serve
need_subcommand "$bin" intel pull
need_cmd curl "talking to the TAXII server"

printf 'supportxmr.com\nxmrpool.eu\n' >"$work/pools.txt"
"$bin" intel load "$work/pools.txt" --db "$work/src.db" >/dev/null || fail "intel load"

unset COINHOUND_TAXII_USER COINHOUND_TAXII_PASSWORD
set +e
"$bin" intel serve --listen 127.0.0.1:0 --db "$work/src.db" 2>/dev/null
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "serve without credentials exits 2 (got $rc)"

COINHOUND_TAXII_USER=sub COINHOUND_TAXII_PASSWORD=scribe \
    "$bin" intel serve --listen 127.0.0.1:0 --db "$work/src.db" 2>"$work/serve.err" &
pid=$!
port=
for _ in $(seq 1 50); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.err" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || fail "server did not report its port"

acc='Accept: application/taxii+json;version=2.1'
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$acc" "http://127.0.0.1:$port/taxii2/")
[ "$code" = 401 ] || fail "discovery without auth is 401 (got $code)"
code=$(curl -s -o "$work/disc.json" -w '%{http_code}' -u sub:scribe -H "$acc" \
    "http://127.0.0.1:$port/taxii2/")
[ "$code" = 200 ] || fail "discovery with auth is 200 (got $code)"
grep -q '/coinhound/' "$work/disc.json" || fail "discovery lists /coinhound/"
code=$(curl -s -o /dev/null -w '%{http_code}' -u sub:scribe -H 'Accept: application/json' \
    "http://127.0.0.1:$port/taxii2/")
[ "$code" = 406 ] || fail "wrong Accept is 406 (got $code)"

COINHOUND_TAXII_PASSWORD=scribe "$bin" intel pull --url "http://127.0.0.1:$port/" --user sub \
    --db "$work/dst.db" >"$work/pull.out" 2>"$work/pull.err" || { cat "$work/pull.err" >&2; fail "pull"; }
grep -q 'plain http' "$work/pull.err" || fail "pull warns about plain http"

kill -TERM "$pid"
set +e
for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
wait "$pid"
rc=$?
set -e
pid=
[ "$rc" -eq 0 ] || fail "serve exits 0 on SIGTERM (got $rc)"
grep -q 'stopping' "$work/serve.err" || fail "serve says it stops"
echo OK
