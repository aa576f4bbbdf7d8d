#!/usr/bin/env bash
# The journal under stress, as `coinhound serve` users see it:
#  - cap: a batch that does not fit under journal.max_bytes is answered 503 with Retry-After
#    and nothing of it is kept; once the pipeline has caught up the same batch is accepted;
#  - disk full: the journal on a tiny tmpfs (a private mount namespace, so nothing leaks) fills
#    up; the batch that hits ENOSPC is refused (507), never acknowledged, and none of its
#    records reach the store; every acknowledged record does, once; the server recovers when
#    a checkpoint frees space;
#  - corrupt tail: a byte flipped in the last journal entry after a SIGKILL is reported at its
#    segment and offset on restart, everything before it is kept, and ingest goes on.
# Args: coinhound-binary source-dir corpora-dir. The disk-full part is skipped (said so) where
# mount namespaces are not allowed.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve tests"
need_cmd python3 "the serve tests"
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/serve.log" ] && tail -n 20 "$work/serve.log" >&2; exit 1; }
tok=journal-test-token-0123456789
printf '%s\n' "$tok" >"$work/ingest.tok"
chmod 600 "$work/ingest.tok"

# Batches of 100 distinct CloudTrail records (~40 KB each), named b0 .. b19.
python3 - "$work" <<'PY'
import json, sys
for b in range(20):
    with open("%s/b%d" % (sys.argv[1], b), "w") as f:
        for i in range(100):
            f.write(json.dumps({"eventVersion": "1.08", "eventTime": "2024-06-03T10:%02d:%02dZ" % (b, i % 60),
                "awsRegion": "eu-west-1", "eventID": "%08d-0000-4000-8000-%012d" % (b, i),
                "eventName": "DescribeInstances", "eventSource": "ec2.amazonaws.com",
                "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.7",
                "userIdentity": {"type": "IAMUser", "userName": "u%d" % (i % 7), "accountId": "111122223333"},
                "requestParameters": {"padding": "x" * 60}}) + "\n")
PY

config() { # config NAME JOURNAL_DIR EXTRA
  cat >"$work/$1.yaml" <<EOF
listen: 127.0.0.1:0
db: $work/$1.db
no_geoip: true
journal: {dir: $2, segment_bytes: 4KiB$3}
checkpoint: 10s
tokens: {ingest: $work/ingest.tok}
EOF
}
wait_ready() {
  for _ in $(seq 100); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | head -n1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    sleep 0.1
  done
  fail "server did not become ready"
}
start() { # start CONFIG [wrapper...]
  local cfg=$1
  shift
  : >"$work/serve.log"
  "$@" "$bin" serve --config "$work/$cfg.yaml" 2>>"$work/serve.log" &
  pid=$!
  wait_ready
}
post() { # post BATCH -> $code, headers in $work/hdr
  code=$(curl -s -D "$work/hdr" -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
    --data-binary "@$work/$1" "http://127.0.0.1:$port/api/v1/ingest")
}
stop() {
  kill -TERM $pid
  local rc=0
  wait $pid || rc=$?
  pid=
  [ $rc = 0 ] || fail "SIGTERM: exit status $rc"
}
stored() { # the number of record identities in a store, or "duplicates" if one is there twice
  python3 - "$src/tests/integration" "$1" <<'PY'
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from serve_torture import seen_ids
ids = seen_ids(sys.argv[2])
print(len(ids) if len(ids) == len(set(ids)) else "duplicates")
PY
}

# ---- cap -----------------------------------------------------------------------------------
config cap "$work/j_cap" ", max_bytes: 64KiB"
start cap
post b0; [ "$code" = 202 ] || fail "first batch: $code"
post b1
[ "$code" = 503 ] || fail "over the cap: $code (wanted 503)"
grep -qi '^Retry-After: [0-9]' "$work/hdr" || fail "503 without Retry-After"
grep -q "full" "$work/out" || fail "503 says why: $(cat "$work/out")"
ok=
for _ in $(seq 50); do
  post b1
  [ "$code" = 202 ] && { ok=1; break; }
  [ "$code" = 503 ] || fail "while full: $code"
  sleep 0.2
done
[ -n "$ok" ] || fail "the journal never got room back"
full=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "coinhound_journal_full_total" {print $2}')
[ "${full:-0}" -ge 1 ] || fail "coinhound_journal_full_total"
stop
[ "$(stored "$work/cap.db")" = 200 ] || fail "cap: stored $(stored "$work/cap.db"), want 200"

# ---- disk full ------------------------------------------------------------------------------
ns=(unshare -m)
[ "$(id -u)" = 0 ] || ns=(unshare -rm)
if "${ns[@]}" sh -c "mount -t tmpfs -o size=200k tmpfs '$work'" 2>/dev/null; then
  mkdir "$work/j_full"
  config full "$work/j_full" ""
  # The tmpfs exists only inside the server's own mount namespace.
  : >"$work/serve.log"
  "${ns[@]}" sh -c "mount -t tmpfs -o size=200k tmpfs '$work/j_full' && exec '$bin' serve --config '$work/full.yaml'" \
    2>>"$work/serve.log" &
  pid=$!
  wait_ready
  acked=0 refused=
  for b in $(seq 2 12); do
    post "b$b"
    case $code in
    202) acked=$((acked + 100)) ;;
    507) refused=$b; grep -q "No space" "$work/out" || fail "507 says why: $(cat "$work/out")"; break ;;
    *) fail "disk full: batch $b answered $code $(cat "$work/out")" ;;
    esac
  done
  [ -n "$refused" ] || fail "the tmpfs never filled up"
  # A checkpoint (once the pipeline is idle) frees the space: ingest works again.
  ok=
  for _ in $(seq 50); do
    sleep 0.2
    post b15
    [ "$code" = 202 ] && { ok=1; acked=$((acked + 100)); break; }
  done
  [ -n "$ok" ] || fail "no recovery after the disk was full ($code)"
  stop
  n=$(stored "$work/full.db")
  [ "$n" = "$acked" ] || fail "disk full: stored $n records, acknowledged $acked (refused batch $refused must be absent)"
else
  echo "note: disk-full part skipped (no mount namespace here)" >&2
fi

# ---- corrupt tail ----------------------------------------------------------------------------
config tail "$work/j_tail" ""
start tail
post b16; [ "$code" = 202 ] || fail "b16"
post b17; [ "$code" = 202 ] || fail "b17"
post b18; [ "$code" = 202 ] || fail "b18"
kill -9 $pid
wait $pid 2>/dev/null || true
pid=
seg=$(ls "$work/j_tail"/*.jnl | sort | tail -n1)
size=$(stat -c %s "$seg")
python3 - "$seg" "$((size - 5))" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    c = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([c[0] ^ 0x20]))
PY
start tail
grep -q "journal_recovered: journal .*: a damaged entry at segment [0-9]* offset [0-9]* (.*checksum mismatch" \
  "$work/serve.log" || fail "the damaged entry is reported with its segment and offset"
post b19; [ "$code" = 202 ] || fail "ingest after recovery: $code"
stop
n=$(stored "$work/tail.db")
[ "$n" = 300 ] || [ "$n" = 400 ] || fail "corrupt tail: stored $n (b16, b17 and b19 must be there)"
echo "journal: cap (503 + recovery), disk full (refused, never acknowledged), corrupt tail OK"
