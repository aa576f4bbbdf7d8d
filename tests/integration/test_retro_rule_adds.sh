#!/usr/bin/env bash
# Indicators learned from the logs by a rule reach back to the events stored before them. A
# building-block rule learns the addresses a listed pool domain resolves to (a `refset`
# response into the pack's address set mining_pool_ips). bob's instance reached one of those
# addresses at 10:06, before any log said what the address was; the DNS query that resolves the
# pool domain to it comes at 10:30. After `analyze --db`, bob's offense holds CJ-MINE-03 for the
# 10:06 flow with `retro: true` and the flow's own time, and a second run raises nothing twice;
# without the learning rule (the pack as shipped) no CJ-MINE-03 names the flow. `serve` does the
# same for records ingested over HTTP, and a value learned before a kill -9 is still hunted after
# the restart.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the rule-adds retro-hunt test"
need_cmd jq "the rule-adds retro-hunt test"
need_cmd python3 "the rule-adds retro-hunt test"
with_servers serve.log
t=$src/content/cryptojacking-aws/tests

# A copy of the pack with the learning rule.
cp -r "$src/content/cryptojacking-aws" "$work/pack"
cat >"$work/pack/rules/CJ-BB-POOL-ADDR.yml" <<'EOF'
id: CJ-BB-POOL-ADDR
title: "Building block: the addresses a listed mining-pool domain resolves to"
severity: 0
credibility: 0
relevance: 0
risk: 0
where: event.dataset == "route53resolver" and dns.question.name in $mining_domains
  and dns.answers exists
responses:
  - refset: {name: mining_pool_ips, field: dns.answers, ttl: 30d, type: ip}
EOF
mkdir -p "$work/logs"
cp "$t/CJ-MINE-03-launch.jsonl" "$work/logs/launch.jsonl"
cp "$t/CJ-MINE-03-flow.log" "$work/logs/flow.log" # 10:06 to 203.0.113.77
sed -e 's/2024-06-03T10:05:00Z/2024-06-03T10:30:00Z/' -e 's/"Rdata":"192.0.2.10"/"Rdata":"203.0.113.77"/' \
  "$t/CJ-MINE-03-dns.jsonl" >"$work/logs/dns.jsonl"
grep -q 203.0.113.77 "$work/logs/dns.jsonl" || fail "the DNS record was not rewritten"

# mine03 DB -> "COUNT FIRST_SEEN EVIDENCE" of CJ-MINE-03 in bob's offense, or "none"; the
# evidence is the last hit's, the flow's (destination.ip) or the query's (dns.answers.data).
mine03() {
  local id
  id=$("$bin" offenses list --db "$1" --format json | jq -r '.offenses[] | select(.index.value == "bob") | .id')
  [ -n "$id" ] || { echo none; return; }
  "$bin" offenses show "$id" --db "$1" --format json |
    jq -r '[.rules[] | select(.id == "CJ-MINE-03") | "\(.count) \(.first_seen) \(.evidence)"] | first // "none"' |
    sed 's/ (dns.answers.data) / (ADDR) /; s/ (destination.ip) / (ADDR) /'
}

"$bin" analyze --no-progress -q --no-geoip --pack "$work/pack" --db "$work/a.db" "$work/logs" \
  >/dev/null 2>"$work/a.err" || fail "analyze: $(cat "$work/a.err")"
grep -q "raised CJ-MINE-03 (retro)" "$work/a.err" || fail "analyze did not report the hunt: $(cat "$work/a.err")"
# Two hits: the 10:06 flow (at its own time) and the 10:30 query that answered the address.
m=$(mine03 "$work/a.db")
case $m in
"2 2024-06-03T10:06:00Z retro: true; intel: 203.0.113.77 (ADDR) in mining_pool_ips (feed CJ-BB-POOL-ADDR)") ;;
*) fail "expected CJ-MINE-03 (retro) from the 10:06 flow on, got: $m" ;;
esac
"$bin" analyze --no-progress -q --no-geoip --pack "$work/pack" --db "$work/a.db" "$work/logs" >/dev/null 2>&1
[ "$(mine03 "$work/a.db")" = "$m" ] || fail "a second run changed CJ-MINE-03: $(mine03 "$work/a.db")"

"$bin" analyze --no-progress -q --no-geoip --db "$work/b.db" "$work/logs" >/dev/null 2>&1
[ "$(mine03 "$work/b.db")" = none ] || fail "without the learning rule CJ-MINE-03 fired: $(mine03 "$work/b.db")"

# serve: the flow first, then the DNS record that teaches the address; killed with SIGKILL once
# the value is learned and checkpointed but before its hunt is due, restarted, hunted.
db=$work/s.db
"$bin" token create t-ingest --role ingest --db "$db" >"$work/ingest.tok"
cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $db
pack: $work/pack
no_geoip: true
journal: {dir: $work/journal}
checkpoint: 100ms
EOF
post() { # post FILE
  curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$work/ingest.tok")" \
    --data-binary @"$1" "http://127.0.0.1:$port/api/v1/ingest" || fail "ingest $1"
}
serve_start "$bin" "$work/serve.yaml" "$work/serve.log" json
post "$work/logs/launch.jsonl"
post "$work/logs/flow.log"
serve_settled
# Ingest that does not pause defers the hunt (to once a minute) while checkpoints (100 ms) save
# the learned value: the kill lands between the two.
post "$work/logs/dns.jsonl"
for _ in $(seq 12); do
  post "$work/logs/launch.jsonl" # a duplicate: dropped, but the server is busy
  sleep 0.15
done
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
! grep -q '"retro_hunt"' "$work/serve.log" || fail "the hunt ran before the kill; the test proves nothing"
[ "$(mine03 "$db")" = none ] || fail "CJ-MINE-03 before the hunt: $(mine03 "$db")"
serve_start "$bin" "$work/serve.yaml" "$work/serve.log" json
for _ in $(seq 100); do
  grep -q '"retro_hunt".*sets by rules' "$work/serve.log" && break
  sleep 0.1
done
grep '"retro_hunt".*sets by rules' "$work/serve.log" | grep -q "2 raised CJ-MINE-03" ||
  fail "the restarted server did not hunt the learned address: $(grep retro_hunt "$work/serve.log")"
[ "$(mine03 "$db")" = "$m" ] || fail "serve's CJ-MINE-03 differs from analyze's: $(mine03 "$db")"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
serve_start "$bin" "$work/serve.yaml" "$work/serve.log" json
sleep 2
! grep -q '"retro_hunt"' "$work/serve.log" || fail "a restart hunted a value already hunted: $(grep retro_hunt "$work/serve.log")"
# The learned address is still known after those restarts: three more flows to it make the pool
# rule CJ-MINE-02 fire (port 443 is no Stratum port: only the learned address can do it).
{
  head -n1 "$work/logs/flow.log"
  for s in 1717412400 1717412460 1717412520; do
    echo "2 111122223333 eni-0000def0000000301 172.31.5.10 203.0.113.77 50440 443 6 12 2400 $s $((s + 60)) ACCEPT OK"
  done
} >"$work/more.log"
post "$work/more.log"
serve_settled
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
"$bin" offenses list --db "$db" --format json | jq -e '.offenses[] | select(.index.value == "bob") | .rules[] | select(.id == "CJ-MINE-02")' >/dev/null ||
  fail "after two restarts the learned address was forgotten (CJ-MINE-02 did not fire)"
echo "ok: a pool address learned by a rule found the earlier flow, in analyze and in serve (over a kill -9)"
