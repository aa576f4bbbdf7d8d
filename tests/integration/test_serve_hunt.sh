#!/usr/bin/env bash
# A reference set that gains values through the REST API is an indicator arriving: the running
# server searches its stored events for the new values and raises CJ-MINE-03 (retro) in the
# offense of the user that entity linking names. Here bob launches an instance that resolves
# pool.newly-listed.example; no rule knows the domain, so no offense names it. An analyst adds
# the domain to a domain set over the API: bob's offense gains CJ-MINE-03 with `retro: true`,
# the server logs the hunt, and adding the value again (or a restart) raises nothing twice. A
# hunt queued when the server is killed runs after the restart (bob's launch address, added to
# an ip set while the pipeline works through a large entry), once.
# A value of a string set is not an indicator and starts no hunt. The `retention` key reaches
# the store.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve tests"
need_cmd jq "the serve tests"
need_cmd python3 "the serve tests"
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/serve.log" ] && tail -n 20 "$work/serve.log" >&2; exit 1; }
db=$work/store.db
for r in analyst ingest viewer; do
  "$bin" token create "t-$r" --role $r --db "$db" >"$work/$r.tok" || fail "token create $r"
done
analyst=$(cat "$work/analyst.tok") ingest=$(cat "$work/ingest.tok") viewer=$(cat "$work/viewer.tok")

# The pack's launch and DNS test records, moved to two hours ago (hunts look 30 days back) and
# pointed at a domain nothing lists.
t=$src/content/cryptojacking-aws/tests
python3 - "$t" "$work" <<'EOF'
import datetime, sys
t, w = sys.argv[1], sys.argv[2]
base = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(hours=2)
fmt = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
launch = open(t + "/CJ-MINE-03-launch.jsonl").read().replace("2024-06-03T10:00:00Z", fmt(base))
dns = open(t + "/CJ-MINE-03-dns.jsonl").read()
dns = dns.replace("2024-06-03T10:05:00Z", fmt(base + datetime.timedelta(minutes=5)))
dns = dns.replace("xmr.minexmr.com.", "pool.newly-listed.example.")
assert "newly-listed" in dns and fmt(base) in launch
open(w + "/launch.jsonl", "w").write(launch)
open(w + "/dns.jsonl", "w").write(dns)
EOF

cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $db
no_geoip: true
journal: {dir: $work/journal}
checkpoint: 200ms
retention: 400d,1GB
EOF
# The store's retention from the configuration: checked, then saved in the store.
printf 'journal: {dir: %s/j}\nretention: 30 parsecs\n' "$work" >"$work/bad.yaml"
set +e
"$bin" serve --check-config "$work/bad.yaml" 2>"$work/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "bad.yaml:2:.*retention" "$work/err" || fail "bad retention refused ($rc): $(cat "$work/err")"
start() { serve_start "$bin" "$work/serve.yaml" "$work/serve.log" json; }
api() { # api METHOD PATH TOKEN [BODY] -> status in $code, body in $work/out
  local body=${4:-}
  code=$(curl -s -o "$work/out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${body:+--data-binary "$body"} "http://127.0.0.1:$port$2")
}
bob_retro() { # how many CJ-MINE-03 hits bob's offense holds
  api GET /api/v1/offenses "$viewer"
  jq '[.[] | select(.index.value == "bob") | .rules[]? | select(.id == "CJ-MINE-03") | .count] | add // 0' "$work/out"
}
hunt_logged() { grep -c '"event":"retro_hunt"' "$work/serve.log" || true; }

start
for f in launch dns; do
  code=$(curl -s -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $ingest" \
    --data-binary "@$work/$f.jsonl" "http://127.0.0.1:$port/api/v1/ingest")
  [ "$code" = 202 ] || fail "ingest $f: $code $(cat "$work/out")"
done
serve_settled
sleep 0.5
[ "$(bob_retro)" = 0 ] || fail "CJ-MINE-03 before any indicator: $(cat "$work/out")"

# A string set's values start no hunt.
api POST /api/v1/reference_sets "$analyst" '{"name":"notes","type":"string"}'
[ "$code" = 201 ] || fail "create string set: $code $(cat "$work/out")"
api POST /api/v1/reference_sets/notes/values "$analyst" '{"values":["pool.newly-listed.example"]}'
[ "$code" = 200 ] && jq -e '.added == 1 and .retro_hunt == null' "$work/out" >/dev/null ||
  fail "string set add: $code $(cat "$work/out")"

api POST /api/v1/reference_sets "$analyst" '{"name":"new_pools","type":"domain"}'
[ "$code" = 201 ] || fail "create domain set: $code $(cat "$work/out")"
api POST /api/v1/reference_sets/new_pools/values "$analyst" '{"values":["newly-listed.example"]}'
[ "$code" = 200 ] && jq -e '.added == 1 and .retro_hunt == "queued"' "$work/out" >/dev/null ||
  fail "domain set add: $code $(cat "$work/out")"
for _ in $(seq 100); do [ "$(hunt_logged)" -ge 1 ] && break; sleep 0.1; done
[ "$(hunt_logged)" -ge 1 ] || fail "no retro_hunt in the log"
grep '"event":"retro_hunt"' "$work/serve.log" | grep -q 'raised 1 CJ-MINE-03\|, 1 raised CJ-MINE-03' ||
  fail "the hunt did not raise one hit: $(grep retro_hunt "$work/serve.log")"
for _ in $(seq 50); do [ "$(bob_retro)" = 1 ] && break; sleep 0.1; done
[ "$(bob_retro)" = 1 ] || fail "bob's offense has no retro CJ-MINE-03: $(head -c 600 "$work/out")"
id=$(jq '.[] | select(.index.value == "bob") | .id' "$work/out")
"$bin" offenses show "$id" --db "$db" >"$work/show.txt" 2>&1 || true
grep -q "retro: true" "$work/show.txt" && grep -q "new_pools" "$work/show.txt" ||
  fail "the hit's evidence does not say retro: true in new_pools: $(grep -i mine-03 "$work/show.txt" | head -3)"

# The same value again: a second hunt, nothing raised twice.
api POST /api/v1/reference_sets/new_pools/values "$analyst" '{"values":["newly-listed.example"]}'
[ "$code" = 200 ] || fail "re-add: $code"
for _ in $(seq 100); do [ "$(hunt_logged)" -ge 2 ] && break; sleep 0.1; done
[ "$(hunt_logged)" -ge 2 ] || fail "no second retro_hunt in the log"
grep '"event":"retro_hunt"' "$work/serve.log" | tail -n1 | grep -q ', 0 raised CJ-MINE-03' ||
  fail "the second hunt raised again: $(grep retro_hunt "$work/serve.log" | tail -n1)"

# kill -9 and a restart: the raised hit is kept once.
kill -9 $pid
wait $pid 2>/dev/null || true
pid=
start
serve_settled
[ "$(bob_retro)" = 1 ] || fail "after kill -9 and restart bob has $(bob_retro) retro hits"
# A hunt queued when the server dies runs after the restart. The pipeline hunts between journal
# entries, so the add is sent while it works through one large entry (unique benign records)
# and the server is killed as soon as the add is acknowledged; if the hunt won that race, the
# next round sends an entry twice as large.
api POST /api/v1/reference_sets "$analyst" '{"name":"later_ips","type":"ip"}'
[ "$code" = 201 ] || fail "create ip set: $code $(cat "$work/out")"
n=10000 raced=
for round in 1 2 3 4; do
  python3 - "$work/bulk.jsonl" "$n" "$round" <<'EOF2'
import json, sys
path, n, rnd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"eventVersion": "1.09", "eventID": "bulk-%s-%d" % (rnd, i),
            "eventTime": "2024-06-03T09:%02d:%02dZ" % (i // 60 % 60, i % 60),
            "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
            "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.%d" % (i % 200 + 1),
            "userAgent": "aws-cli/2.15.30", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "userName": "carol", "accountId": "111122223333",
                             "arn": "arn:aws:iam::111122223333:user/carol"}}) + "\n")
EOF2
  code=$(curl -s -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $ingest" \
    --data-binary "@$work/bulk.jsonl" "http://127.0.0.1:$port/api/v1/ingest")
  [ "$code" = 202 ] || fail "bulk ingest: $code $(head -c 300 "$work/out")"
  # a new value each round, each holding bob's launch address
  cidr=(81.2.69.142 81.2.69.142/31 81.2.69.140/30 81.2.69.136/29)
  api POST /api/v1/reference_sets/later_ips/values "$analyst" "{\"values\":[\"${cidr[round - 1]}\"]}"
  [ "$code" = 200 ] || fail "ip set add: $code $(cat "$work/out")"
  kill -9 $pid
  wait $pid 2>/dev/null || true
  pid=
  if ! grep -q '"event":"retro_hunt".*later_ips' "$work/serve.log"; then raced=$round; break; fi
  n=$((n * 2))
  start
done
[ -n "$raced" ] || fail "the hunt always ran before the kill; the test proves nothing"
start
for _ in $(seq 300); do grep -q '"event":"retro_hunt".*later_ips' "$work/serve.log" && break; sleep 0.1; done
grep '"event":"retro_hunt".*later_ips' "$work/serve.log" | grep -q ' 1 match' ||
  fail "the hunt queued at the kill did not run after the restart: $(grep retro_hunt "$work/serve.log")"
serve_settled
[ "$(bob_retro)" = 2 ] || fail "bob's offense should hold two retro hits now, not $(bob_retro)"
kill -9 $pid
wait $pid 2>/dev/null || true
pid=
start
sleep 1
! grep -q '"event":"retro_hunt"' "$work/serve.log" || fail "a hunt that ran was run again: $(grep retro_hunt "$work/serve.log")"
kill -TERM $pid
wait $pid || fail "SIGTERM: exit status $?"
pid=
"$bin" store retention --db "$db" >"$work/ret.txt" 2>&1 || fail "store retention: $(cat "$work/ret.txt")"
grep -q "400d" "$work/ret.txt" || fail "serve's retention key was not saved: $(cat "$work/ret.txt")"

# The same hunt from the command line (what to run for a hunt a kill interrupted) finds the
# match in the stored set and raises nothing again.
"$bin" hunt --db "$db" --set new_pools >"$work/hunt.txt" 2>&1 || fail "hunt: $(cat "$work/hunt.txt")"
grep -q ' 1 match the intelligence now, 1 already raised, 0 raised' "$work/hunt.txt" ||
  fail "coinhound hunt --set new_pools: $(cat "$work/hunt.txt")"
echo "a domain added over the API raised CJ-MINE-03 (retro) in bob's offense once"
