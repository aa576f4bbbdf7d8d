#!/usr/bin/env bash
# `coinhound serve` pulling threat intelligence (config intel.pull) from coinhound's own TAXII
# server (`coinhound intel serve`), as an operator meets it: a feed that is down is logged and
# retried on a growing backoff (1 s, 2 s, 4 s...) while the server keeps serving; once the feed
# is up its indicators arrive and the reference sets are reloaded; indicators published later
# arrive at the next scheduled pull (`every`), not before and not much after; and a server
# killed with SIGKILL and restarted resumes the feed without skipping any object (the TAXII
# server pages one object at a time, so a resume that lost its place would show).
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve intel test"
need_cmd python3 "the serve intel test"
need_subcommand "$bin" intel serve
with_servers serve.log taxii.log
now() { date +%s.%N; }
# Seconds (float) from $1 to $2.
since() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }

# The publisher: a shared domain set in its own store.
"$bin" refset add pools supportxmr.com --type domain --db "$work/src.db" >/dev/null ||
  fail "refset add"
"$bin" refset share pools --db "$work/src.db" >/dev/null || fail "refset share"
printf 'scribe\n' >"$work/taxii.pw"
chmod 600 "$work/taxii.pw"

# A free port for the feed, which stays down for now.
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ingest=ingest-token-0123456789abcdef
read=read-token-0123456789abcdefgh
printf '%s\n' "$ingest" >"$work/ingest.tok"
printf '%s\n' "$read" >"$work/read.tok"
chmod 600 "$work"/*.tok
cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $work/dst.db
no_geoip: true
journal: {dir: $work/journal}
checkpoint: 1s
tokens: {ingest: $work/ingest.tok, read: $work/read.tok}
intel:
  pull:
    - {url: "http://127.0.0.1:$tport/", every: 10s, user: sub, password_file: $work/taxii.pw}
EOF
"$bin" serve --check-config "$work/serve.yaml" >/dev/null || fail "check-config"

# user without password_file, and both kinds of credentials, are refused with their position.
sed 's/, password_file: [^}]*//' "$work/serve.yaml" >"$work/bad.yaml"
set +e
"$bin" serve --check-config "$work/bad.yaml" 2>"$work/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "bad.yaml:9:.*user and password_file go together" "$work/err" ||
  fail "user without password_file refused ($rc: $(cat "$work/err"))"

start() { # start [text|json]
  "$bin" serve --config "$work/serve.yaml" --log-format "${1:-text}" 2>>"$work/serve.log" >>"$work/serve.out" &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | tail -n1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    sleep 0.1
  done
  fail "server did not become ready"
}
# Wait up to $2 seconds for the log to hold at least $1 lines matching $3.
wait_log() {
  local want=$1 secs=$2 pat=$3
  for _ in $(seq $((secs * 10))); do
    [ "$(grep -c -- "$pat" "$work/serve.log" || true)" -ge "$want" ] && return 0
    sleep 0.1
  done
  return 1
}
# The domains the subscriber's store holds from the feed, one a line.
pulled() { "$bin" refset show intel_domains --db "$work/dst.db" 2>/dev/null | awk 'NR > 1 {print $1}' | sort; }
published() { "$bin" refset show pools --db "$work/src.db" 2>/dev/null | awk 'NR > 1 {print $1}' | sort; }
# Wait up to $1 seconds for the subscriber to hold every published domain.
wait_synced() {
  for _ in $(seq $(($1 * 10))); do
    [ "$(pulled)" = "$(published)" ] && return 0
    sleep 0.1
  done
  return 1
}

: >"$work/serve.log"
t0=$(now)
start
# 1. The feed is down: each failure logged, retried after 1 s, 2 s, 4 s.
wait_log 3 15 'intel_pull_failed: pull from .* failed' || fail "three failed pulls logged"
grep -q 'failed (1 in a row; see above); retry in 1000 ms' "$work/serve.log" || fail "first retry in 1 s"
grep -q 'failed (2 in a row; see above); retry in 2000 ms' "$work/serve.log" || fail "then 2 s"
grep -q 'failed (3 in a row; see above); retry in 4000 ms' "$work/serve.log" || fail "then 4 s"
t3=$(now)
el=$(since "$t0" "$t3")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 2.9 else 1)" "$el" ||
  fail "three tries took $el s: the backoff did not wait"
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "serve stays healthy while a feed fails"
grep -q 'intel_pulled' "$work/serve.log" && fail "nothing pulled from a feed that is down"

# 2. The feed comes up: the next retry (at most 8 s later) pulls, and the sets are reloaded.
COINHOUND_TAXII_USER=sub COINHOUND_TAXII_PASSWORD=scribe \
  "$bin" intel serve --listen "127.0.0.1:$tport" --db "$work/src.db" --refresh 1 --page-size 1 \
  2>"$work/taxii.log" &
tpid=$!
wait_log 1 20 'intel_pulled: pull from' || fail "the feed pulled once it was up"
t_first=$(now)
wait_log 1 10 'reloaded' || fail "reference sets reloaded after the pull"
[ "$(pulled)" = "supportxmr.com" ] || fail "the indicator is in the store: $(pulled)"
m=$(curl -sf "http://127.0.0.1:$port/metrics")
grep -q '^coinhound_reloads_total{result="ok"} [1-9]' <<<"$m" || fail "reload counted"

# 3. On schedule: a domain published now arrives with the pull due `every` (10 s) after the
# first, neither at once nor much later (the publisher re-reads its catalog every second).
"$bin" refset add pools xmrpool.eu --db "$work/src.db" >/dev/null
wait_log 2 25 'intel_pulled: pull from' || fail "a second scheduled pull"
t_second=$(now)
gap=$(since "$t_first" "$t_second")
python3 -c "import sys; g = float(sys.argv[1]); sys.exit(0 if 8.5 <= g <= 14 else 1)" "$gap" ||
  fail "the second pull came $gap s after the first (every: 10s)"
wait_synced 5 || fail "the new domain arrived: have [$(pulled)], published [$(published)]"

# 4. Resume: SIGKILL, publish several more (one object a page), restart: every object arrives,
# none skipped, and the old ones are not loaded again.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
for d in pool.minexmr.com xmr.nanopool.org gulf.moneroocean.stream monerohash.com; do
  "$bin" refset add pools "$d" --db "$work/src.db" >/dev/null
done
sleep 1.5 # the publisher's catalog refresh
: >"$work/serve.out"
# This run logs JSON: the pull's own lines (its summary, the retro-hunt) are log lines too, so
# stderr stays one JSON object per line and stdout stays empty.
mark=$(wc -l <"$work/serve.log")
start json
wait_log 1 20 '"event":"intel_pulled"' || fail "a pull after the restart"
wait_synced 5 || fail "resume skipped objects: have [$(pulled)], published [$(published)]"
[ "$(pulled | wc -l)" = 6 ] || fail "six domains: $(pulled)"
tail -n +"$((mark + 1))" "$work/serve.log" >"$work/json.log"
grep -q '"event":"intel_pull".*4 loaded' "$work/json.log" ||
  fail "the resumed pull loaded the 4 new ones only: $(grep intel_pull "$work/json.log")"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$work/json.log" ||
  fail "--log-format json: a line that is not JSON: $(grep -v '^{' "$work/json.log" | head -3)"
[ ! -s "$work/serve.out" ] || fail "the pull printed to stdout: $(head -3 "$work/serve.out")"

# 5. SIGTERM during the schedule: exits 0 promptly, the pull thread does not hold it up.
kill -TERM "$pid"
set +e
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; rc=$?
set -e
pid=
[ $rc = 0 ] || fail "SIGTERM exits 0 (got $rc)"
echo OK
