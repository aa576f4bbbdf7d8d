#!/usr/bin/env bash
# SIGHUP reloads the pack, context and reference sets of a running `coinhound serve` without
# losing correlation state: a threshold window half-filled before the reload completes after it.
# Six failed console logins for one user (CJ-AUTH-03 needs five within 15 minutes) arrive as three
# before a SIGHUP and three after; the offense must name CJ-AUTH-03. The control: the last three
# alone, on a fresh store, do not fire, so the first three really were carried over the reload.
# The reload must also apply: a context edited before the SIGHUP (alice on the watchlist) shows
# in the risk the later hit adds (twice the rule's risk).
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve tests"
need_cmd jq "the serve tests"
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/serve.log" ] && tail -n 20 "$work/serve.log" >&2; exit 1; }
ingest=ingest-token-0123456789abcdef
read=read-token-0123456789abcdefgh
printf '%s\n' "$ingest" >"$work/ingest.tok"
printf '%s\n' "$read" >"$work/read.tok"
chmod 600 "$work"/*.tok
brute=$src/content/cryptojacking-aws/tests/auth-03-brute.jsonl
[ "$(wc -l <"$brute")" = 6 ] || fail "the pack's brute-force test log changed: $brute"
head -n 3 "$brute" >"$work/first.jsonl"
tail -n 3 "$brute" >"$work/last.jsonl"
printf 'risk: {watchlist: [bob]}\n' >"$work/context.yaml"

config() { # config NAME -> a serve configuration with its own store and journal
  cat >"$work/$1.yaml" <<EOF
listen: 127.0.0.1:0
db: $work/$1.db
context: $work/context.yaml
no_geoip: true
journal: {dir: $work/$1-journal}
checkpoint: 200ms
tokens: {ingest: $work/ingest.tok, read: $work/read.tok}
EOF
}
start() { serve_start "$bin" "$work/$1.yaml" "$work/serve.log" json; }
stop() { kill -TERM $pid; wait $pid || fail "SIGTERM: exit status $?"; pid=; }
post() {
  local code
  code=$(curl -s -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $ingest" \
    --data-binary "@$1" "http://127.0.0.1:$port/api/v1/ingest")
  [ "$code" = 202 ] && jq -e '.accepted == 3' "$work/out" >/dev/null || fail "ingest $1: $code $(cat "$work/out")"
}
fired() { # does an offense name CJ-AUTH-03?
  curl -s -H "Authorization: Bearer $read" "http://127.0.0.1:$port/api/v1/offenses" >"$work/off.json"
  jq -e '[.[] | .rules[]? | (.id // .)] | index("CJ-AUTH-03") != null' "$work/off.json" >/dev/null
}

# The control: the last three failures alone stay under the threshold.
config control
start control
post "$work/last.jsonl"
serve_settled
sleep 0.5
! fired || fail "three failures alone fired CJ-AUTH-03: the test cannot tell a carried window"
stop

# Three, SIGHUP (with an edited context), three more: the window survives the reload.
config reload
start reload
post "$work/first.jsonl"
serve_settled
printf 'risk: {watchlist: [bob, alice]}\n' >"$work/context.yaml"
kill -HUP $pid
for _ in $(seq 100); do grep -q '"event":"reloaded"' "$work/serve.log" && break; sleep 0.1; done
grep -q '"event":"reloaded"' "$work/serve.log" || fail "SIGHUP reload logged"
! grep -q '"event":"reload_failed"' "$work/serve.log" || fail "reload failed"
post "$work/last.jsonl"
serve_settled
for _ in $(seq 50); do fired && break; sleep 0.1; done
fired || fail "the window did not survive the reload: no CJ-AUTH-03 in $(head -c 400 "$work/off.json")"
curl -s -H "Authorization: Bearer $read" "http://127.0.0.1:$port/api/v1/users/alice" >"$work/alice.json"
# CJ-AUTH-03 carries risk 15; a watched user's hits count twice (docs/RISK.md).
jq -e '[.recent_hits[] | select(.rule == "CJ-AUTH-03") | .delta] | length > 0 and all(. == 30)' \
  "$work/alice.json" >/dev/null ||
  fail "the reloaded context (alice on the watchlist) was not applied: $(head -c 400 "$work/alice.json")"
stop
echo "a threshold window half-filled before SIGHUP fired after it; the control stayed silent"
