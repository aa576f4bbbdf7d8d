#!/usr/bin/env bash
# Compaction of the event store under `serve` (local.c): every checkpoint seals the open
# segments, so an hour of events arrives as one small segment per checkpoint. The store merges
# an hour's newest 16 small segments into one while the hour is open, and all of the hour's
# segments into one once it has closed (two hours behind the newest event, and quiet for two
# checkpoints). What a user sees:
#  - 40 batches of one hour, each checkpointed on its own, end as at most a handful of
#    segments, not 40; once a later hour has arrived and settled, the hour is one segment;
#  - every record is found exactly once by a search, before and after, and `store verify`
#    accepts the store; with VPC Flow Logs and Route 53 queries in the same hour, a search
#    prints byte for byte the events of a store fed the same batches with compaction off;
#  - a SIGKILL just after a merged segment appears (its inputs still on disk) loses nothing and
#    doubles nothing: after the restart a search still finds each record once;
#  - checkpoints seal hot segments, and the merges of a closed hour write it cold: only the open
#    hour's segments are still hot, and `store compact` rewrites those.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve tests"
need_cmd python3 "the serve tests"
with_servers serve.log
tok=compact-test-token-0123456789
printf '%s\n' "$tok" >"$work/ingest.tok"
chmod 600 "$work/ingest.tok"

# Batches b0..b39: 50 records each, all in 2024-06-03 10:00-10:59; l0..l5: 10 records each at
# 13:xx, which closes hour 10.
python3 - "$work" <<'PY'
import json, sys
def rec(b, i, hh):
    return json.dumps({"eventVersion": "1.08", "eventTime": "2024-06-03T%02d:%02d:%02dZ" % (hh, b % 60, i % 60),
        "awsRegion": "eu-west-1", "eventID": "%08d-%04d-4000-8000-%012d" % (b, hh, i),
        "eventName": "DescribeInstances", "eventSource": "ec2.amazonaws.com",
        "recipientAccountId": "111122223333", "sourceIPAddress": "198.51.100.%d" % (i % 200),
        "userIdentity": {"type": "IAMUser", "userName": "u%d" % (i % 7), "accountId": "111122223333"}})
for b in range(40):
    with open("%s/b%d" % (sys.argv[1], b), "w") as f:
        f.write("".join(rec(b, i, 10) + "\n" for i in range(50)))
for b in range(6):
    with open("%s/l%d" % (sys.argv[1], b), "w") as f:
        f.write("".join(rec(b, i, 13) + "\n" for i in range(10)))
PY
# Three batches each of VPC Flow Logs (with their header line) and Route 53 Resolver queries
# in the same hour: a flow's original record is its columns, which a merge must carry too.
python3 "$src/bench/gen" vpcflow --records 300 --start 2024-06-03T10:00:00Z --span-hours 1 \
  --out "$work/vpc.txt" --quiet
python3 "$src/bench/gen" route53 --records 300 --start 2024-06-03T10:00:00Z --span-hours 1 \
  --out "$work/r53.jsonl" --quiet
for i in 0 1 2; do
  { head -n1 "$work/vpc.txt"; sed -n "$((i * 100 + 2)),$((i * 100 + 101))p" "$work/vpc.txt"; } >"$work/v$i"
  sed -n "$((i * 100 + 1)),$((i * 100 + 100))p" "$work/r53.jsonl" >"$work/r$i"
done

cat >"$work/s.yaml" <<EOF
listen: 127.0.0.1:0
db: $work/s.db
no_geoip: true
journal: {dir: $work/journal}
checkpoint: 100ms
tokens: {ingest: $work/ingest.tok}
EOF
start() { serve_start "$bin" "${1:-$work/s.yaml}" "$work/serve.log"; }
checkpoints() { curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "coinhound_checkpoints_total" {print $2}'; }
# post BATCH, then wait for the checkpoint that covers it, so each batch is its own segment
post() {
  local before after code
  before=$(checkpoints)
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" \
    --data-binary "@$work/$1" "http://127.0.0.1:$port/api/v1/ingest")
  [ "$code" = 202 ] || fail "batch $1: HTTP $code"
  for _ in $(seq 100); do
    after=$(checkpoints)
    [ "${after:-0}" -gt "${before:-0}" ] && return 0
    sleep 0.05
  done
  fail "no checkpoint after batch $1"
}
segments() { # the committed segments a search sees for CloudTrail
  "$bin" store stats --db "$work/s.db" --format json |
    python3 -c 'import json,sys; print(sum(s["segments"] for s in json.load(sys.stdin)["sources"] if s["source"] == "cloudtrail"))'
}
# found WANT WHEN: every stored record found exactly once (by event id), WANT of them
found() {
  "$bin" search 'event.dataset == "cloudtrail"' --db "$work/s.db" --format jsonl --limit 100000 2>/dev/null |
    python3 -c '
import json, sys
ids = [json.loads(l)["event"]["id"] for l in sys.stdin if l.strip()]
if len(ids) != len(set(ids)): sys.exit("duplicates: %d records, %d distinct" % (len(ids), len(set(ids))))
if len(ids) != int(sys.argv[1]): sys.exit("found %d records, want %s" % (len(ids), sys.argv[1]))
' "$1" || fail "search after $2"
}

start
for b in $(seq 0 19); do post "b$b"; done
# A merged segment is listed as soon as it is written, named for the generations it holds.
merged=
for _ in $(seq 100); do
  merged=$(ls "$work/s.db.events" | grep -E '^cloudtrail-[0-9]+(-[0-9a-f]+){4}\.seg$' | head -n1 || true)
  [ -n "$merged" ] && break
  sleep 0.05
done
[ -n "$merged" ] || fail "20 segments of one hour, no merged segment"
# SIGKILL with the merged segment and its inputs both on disk.
kill -9 $pid
wait $pid 2>/dev/null || true
pid=
files=$(ls "$work/s.db.events" | grep -c '\.seg$')
[ "$files" -gt 2 ] || fail "the inputs were gone before the next checkpoint ($files files)"
found 1000 "a SIGKILL with a merged segment and its inputs on disk"
start
for b in $(seq 20 39); do post "b$b"; done
for b in v0 r0 v1 r1 v2 r2; do post "$b"; done
n=$(segments)
# merged 16 at a time: at most 40/16 merged ones and 15 not yet merged
[ "$n" -le 17 ] || fail "40 checkpoints of one hour left $n segments (want 17 or fewer)"
found 2000 "40 batches"
for b in $(seq 0 5); do post "l$b"; done
# Hour 10 is closed now (13 is the newest hour, two checkpoints have passed): one segment per
# source once the merges are written (CloudTrail's 40, and the flows' and queries' three each;
# hour 13's six stay apart, fewer than 16 in an open hour).
hour10() {
  "$bin" search '@timestamp exists' --db "$work/s.db" --explain --count-by event.dataset \
    --from 2024-06-03T10:00:00Z --to 2024-06-03T10:59:59Z 2>&1 >/dev/null |
    sed -n 's/.*segments: \([0-9]*\) read.*/\1/p'
}
for _ in $(seq 100); do
  n=$(hour10)
  [ "$n" = 3 ] && break
  sleep 0.1
done
[ "$n" = 3 ] || fail "a closed hour of 46 checkpoints over three sources: $n segments read for it (want 3)"
all=$("$bin" search '@timestamp exists' --db "$work/s.db" --format jsonl --limit 100000 2>/dev/null | wc -l)
[ "$all" -ge 2500 ] || fail "the store holds $all events, want 2060 CloudTrail and the flows and queries"
found 2060 "the closed hour merged"
"$bin" store verify --db "$work/s.db" >/dev/null || fail "store verify refused the compacted store"
kill -TERM $pid
wait $pid || fail "SIGTERM: exit status $?"
pid=
found 2060 "a restart"
# Every checkpoint sealed its segments hot; the merges wrote the closed hour 10 cold, so what
# is still hot is the open hour 13's six CloudTrail segments, which `store compact` rewrites.
hot=$("$bin" store stats --db "$work/s.db" --format json | python3 -c 'import json,sys; print(sum(s["hot_segments"] for s in json.load(sys.stdin)["sources"]))')
[ "$hot" = 6 ] || fail "after serve's merges $hot segments are hot (want hour 13's 6)"
"$bin" store compact --db "$work/s.db" >/dev/null || fail "store compact failed on serve's store"
hot=$("$bin" store stats --db "$work/s.db" --format json | python3 -c 'import json,sys; print(sum(s["hot_segments"] for s in json.load(sys.stdin)["sources"]))')
[ "$hot" = 0 ] || fail "store compact left $hot hot segments in serve's store"
found 2060 "store compact"

# The same batches into a store that never compacts: a search prints the same events, byte for
# byte (sorted: the order of equal times may differ between segment layouts).
sed "s#$work/s\\.db#$work/ref.db#; s#$work/journal#$work/ref.journal#" "$work/s.yaml" >"$work/ref.yaml"
COINHOUND_STORE_COMPACT=0 start "$work/ref.yaml"
for b in $(seq 0 39); do post "b$b"; done
for b in v0 r0 v1 r1 v2 r2; do post "$b"; done
for b in $(seq 0 5); do post "l$b"; done
kill -TERM $pid
wait $pid || fail "SIGTERM: exit status $?"
pid=
for d in s ref; do
  "$bin" search '@timestamp exists' --db "$work/$d.db" --format jsonl --limit 100000 2>/dev/null |
    sort >"$work/$d.sorted"
done
[ "$(wc -l <"$work/s.sorted")" = "$all" ] || fail "the compacted store lost events after the restart"
cmp -s "$work/s.sorted" "$work/ref.sorted" ||
  fail "the compacted store prints other events than one never compacted: $(diff "$work/s.sorted" "$work/ref.sorted" | head -c 600)"
echo "ok: 46 checkpoints of one hour became one segment per source once it closed; the same events as a store never compacted; every record found once, also after a SIGKILL beside a merge"
