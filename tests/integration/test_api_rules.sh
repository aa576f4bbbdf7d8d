#!/usr/bin/env bash
# test_api_rules.sh BIN SRC - rules and intel feeds over the REST API of a running
# `coinhound serve`, with curl, as an administrator and an analyst meet them:
#   - GET /rules and /rules/{id} show `enabled`; POST /rules/{id} {"enabled":false} (admin only)
#     stops the rule at once (a login it would flag raises nothing), is in the audit log with
#     before and after, survives SIGHUP and a SIGKILL and restart, and `coinhound rules disable|enable` on
#     the same database is what `analyze --db` honours;
#   - POST /rules/test runs a rule sent as YAML, or a loaded rule by id, over records: the hits
#     name the record they fired on and the offense it would raise, nothing reaches the
#     server's store, and a bad rule is a 422 naming rule:LINE:COL;
#   - GET /intel/feeds lists a configured TAXII feed with its last pull and what it added, and
#     POST /intel/pull (admin) pulls it at once instead of at its next scheduled time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=$1 src=$2
need_cmd curl "the rules API test"
need_cmd jq "the rules API test"
need_cmd python3 "the rules API test"
need_subcommand "$bin" intel serve
with_servers serve.log taxii.log
db=$work/store.db
pack=$src/content/cryptojacking-aws
login=$pack/tests/auth-01-two-countries.jsonl

for r in viewer analyst admin ingest; do
  "$bin" token create "t-$r" --role $r --db "$db" >"$work/$r.tok" 2>/dev/null || fail "token create $r"
done
tok() { cat "$work/$1.tok"; }

# The intel feed: coinhound's own TAXII server over a store with one shared domain set.
"$bin" refset add pools supportxmr.com --type domain --db "$work/src.db" >/dev/null || fail "refset add"
"$bin" refset share pools --db "$work/src.db" >/dev/null || fail "refset share"
printf 'scribe\n' >"$work/taxii.pw"
chmod 600 "$work/taxii.pw"
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COINHOUND_TAXII_USER=sub COINHOUND_TAXII_PASSWORD=scribe \
  "$bin" intel serve --listen "127.0.0.1:$tport" --db "$work/src.db" --refresh 1 \
  2>"$work/taxii.log" &
tpid=$!

cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $db
no_geoip: true
journal: {dir: $work/journal}
checkpoint: 1s
intel:
  pull:
    - {url: "http://127.0.0.1:$tport/", every: 1h, user: sub, password_file: $work/taxii.pw}
EOF
start() {
  : >"$work/serve.log"
  "$bin" serve --config "$work/serve.yaml" 2>>"$work/serve.log" >>"$work/serve.out" &
  pid=$!
  port=
  for _ in $(seq 150); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | tail -n1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    port=
    sleep 0.1
  done
  [ -n "$port" ] || fail "server did not start"
  base=http://127.0.0.1:$port
}
stop() {
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}
# req METHOD PATH ROLE [curl args...] -> status in $code, body in $work/out
req() {
  local m=$1 p=$2 r=$3
  shift 3
  code=$(curl -s -o "$work/out" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $(tok "$r")" "$@" "$base$p")
}
# A console login without MFA for user $1 at minute $2 (CJ-AUTH-05 fires on it).
login_of() {
  jq -c --arg u "$1" --arg t "2024-06-03T10:$2:00Z" \
    'select(.eventID == "evt-000002") | .userIdentity.userName = $u | .userIdentity.arn = "arn:aws:iam::111122223333:user/" + $u | .eventTime = $t | .eventID = "evt-" + $u | .additionalEventData.MFAUsed = "No"' "$login"
}
ingest() {
  req POST /api/v1/ingest ingest --data-binary "$1"
  [ "$code" = 202 ] || fail "ingest: $code $(cat "$work/out")"
}
# Wait until the pipeline has read the journal to its end.
settle() {
  for _ in $(seq 100); do
    req GET /api/v1/ingest/status viewer
    [ "$(jq '.journal_lag_bytes // .lag_bytes // 0' "$work/out")" = 0 ] && sleep 0.3 && return 0
    sleep 0.1
  done
  fail "the pipeline did not catch up: $(cat "$work/out")"
}
offense_for() { # the ids of offenses indexed on user $1 that name CJ-AUTH-05
  req GET /api/v1/offenses viewer
  jq -r --arg u "$1" '[.[] | select(.index.value == $u) | select(any(.rules[]; (.id // .) == "CJ-AUTH-05"))] | length' "$work/out"
}

start

# ---- enabled in the rule resources ----------------------------------------------------------
req GET /api/v1/rules viewer
[ "$code" = 200 ] && jq -e 'length > 5 and all(.[]; .enabled == true)' "$work/out" >/dev/null ||
  fail "GET /rules: every rule enabled at first: $code $(head -c 300 "$work/out")"
req GET /api/v1/rules/CJ-AUTH-05 viewer
jq -e '.enabled == true and (.cases | length) >= 2' "$work/out" >/dev/null || fail "GET /rules/CJ-AUTH-05: $(cat "$work/out")"

# An enabled rule fires.
ingest "$(login_of alice 01)"
settle
[ "$(offense_for alice)" -ge 1 ] || fail "CJ-AUTH-05 fires while enabled: $(cat "$work/out")"

# ---- toggle: roles, body checks, effect, audit ----------------------------------------------
req POST /api/v1/rules/CJ-AUTH-05 analyst -H 'Content-Type: application/json' --data '{"enabled":false}'
[ "$code" = 403 ] || fail "an analyst may not toggle a rule: $code"
req POST /api/v1/rules/CJ-AUTH-05 admin -H 'Content-Type: application/json' --data '{"enabled":"no"}'
[ "$code" = 400 ] && jq -e '.message | test("enabled")' "$work/out" >/dev/null || fail "bad toggle body: $code $(cat "$work/out")"
req POST /api/v1/rules/CJ-NOPE-99 admin -H 'Content-Type: application/json' --data '{"enabled":false}'
[ "$code" = 404 ] || fail "toggle of an unknown rule: $code"
req POST /api/v1/rules/CJ-AUTH-05 admin -H 'Content-Type: application/json' --data '{"enabled":false}'
[ "$code" = 200 ] && jq -e '.id == "CJ-AUTH-05" and .enabled == false' "$work/out" >/dev/null ||
  fail "disable: $code $(cat "$work/out")"
req GET /api/v1/rules/CJ-AUTH-05 viewer
jq -e '.enabled == false' "$work/out" >/dev/null || fail "GET shows it disabled"
req GET /api/v1/rules viewer
jq -e '[.[] | select(.enabled == false) | .id] == ["CJ-AUTH-05"]' "$work/out" >/dev/null || fail "the list shows it disabled"
# It stops firing at once: bob's login raises nothing.
ingest "$(login_of bob 02)"
settle
[ "$(offense_for bob)" = 0 ] || fail "a disabled rule fired: $(cat "$work/out")"
req GET /api/v1/audit admin
jq -e '[.[] | select(.action == "rule.disable" and .object == "CJ-AUTH-05" and .before.enabled == true and .after.enabled == false and .actor == "t-admin")] | length == 1' "$work/out" >/dev/null ||
  fail "the toggle is audited with before/after: $(cat "$work/out")"

# SIGHUP reloads the pack and keeps it disabled.
kill -HUP "$pid"
for _ in $(seq 100); do grep -q 'reloaded' "$work/serve.log" && break; sleep 0.1; done
grep -q 'reloaded' "$work/serve.log" || fail "reload after SIGHUP"
ingest "$(login_of carol 03)"
settle
[ "$(offense_for carol)" = 0 ] || fail "disabled after a reload"

# A restart after SIGKILL keeps it disabled: it was in the database before the 200.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
start
req GET /api/v1/rules/CJ-AUTH-05 viewer
jq -e '.enabled == false' "$work/out" >/dev/null || fail "disabled after a restart: $(cat "$work/out")"
ingest "$(login_of dave 04)"
settle
[ "$(offense_for dave)" = 0 ] || fail "a disabled rule fired after a restart"

# Enabled again: fires at once.
req POST /api/v1/rules/CJ-AUTH-05 admin -H 'Content-Type: application/json' --data '{"enabled":true}'
[ "$code" = 200 ] && jq -e '.enabled == true' "$work/out" >/dev/null || fail "enable: $code"
ingest "$(login_of erin 05)"
settle
[ "$(offense_for erin)" -ge 1 ] || fail "CJ-AUTH-05 fires again once enabled"
req GET /api/v1/audit admin
jq -e '[.[] | select(.action == "rule.enable" and .before.enabled == false and .after.enabled == true)] | length == 1' "$work/out" >/dev/null ||
  fail "enable audited"

# ---- rule tests ------------------------------------------------------------------------------
login_of frank 06 >"$work/frank.json"
printf '{"eventVersion":"1.09","eventName":"Nothing"}\n' >"$work/junk.json"
yaml=$(cat <<'Y'
id: CJ-TEST-01
title: Console login by frank
severity: 5
credibility: 5
relevance: 5
where: event.action == "ConsoleLogin" and user.name == "frank"
offense: {index: user.name}
Y
)
jq -n --arg r "$yaml" --slurpfile a "$work/frank.json" --slurpfile b "$work/junk.json" \
  '{rule: $r, events: ($b + $a)}' >"$work/test1.json"
req POST /api/v1/rules/test viewer -H 'Content-Type: application/json' --data-binary "@$work/test1.json"
[ "$code" = 403 ] || fail "a viewer may not run rule tests: $code"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data-binary "@$work/test1.json"
[ "$code" = 200 ] || fail "rule test: $code $(cat "$work/out")"
jq -e '.rule == "CJ-TEST-01" and .fired == true and .matched == [1] and .fired_on == [1] and .records == 2 and
       (.hits | length) == 1 and .hits[0].record == 1 and .hits[0].index_value == "frank" and .bad_records == 1 and
       (.errors[0] | test("^coinhound: events\\[0\\]")) and
       ([.offenses[] | select(.index.value == "frank")] | length) == 1' "$work/out" >/dev/null ||
  fail "the YAML rule fired on record 1 with an offense for frank: $(cat "$work/out")"
# Isolated: nothing reached the server.
req GET /api/v1/offenses viewer
jq -e '[.[] | select(.index.value == "frank")] | length == 0' "$work/out" >/dev/null || fail "a rule test reached the server's offenses"
req GET /api/v1/rules/CJ-TEST-01 viewer
[ "$code" = 404 ] || fail "a tested rule is not loaded into the server"
# By id, over records it must stay silent on (MFA was used).
jq -c 'select(.eventID == "evt-000002")' "$login" >"$work/mfa.json"
jq -n --slurpfile a "$work/mfa.json" '{id: "CJ-AUTH-05", events: $a}' >"$work/test2.json"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data-binary "@$work/test2.json"
[ "$code" = 200 ] && jq -e '.rule == "CJ-AUTH-05" and .fired == false and .matched == [] and .fired_on == [] and .hits == []' "$work/out" >/dev/null ||
  fail "by id, silent on an MFA login: $code $(cat "$work/out")"
jq -n --slurpfile a "$work/frank.json" '{id: "CJ-AUTH-05", events: $a}' >"$work/test3.json"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data-binary "@$work/test3.json"
jq -e '.fired == true and .matched == [0] and .fired_on == [0]' "$work/out" >/dev/null || fail "by id, fires on a password-only login: $(cat "$work/out")"
# The pack's own test cases give the same verdicts through the API as `rules test` (the image
# catalogue, images.yaml, and the sequence of a DescribeImages then a launch included).
for c in "ec2-01-kali-described:true" "ec2-01-ubuntu-described:false" "ec2-01-kali-product-code:true" "ec2-01-kali:false"; do
  f=${c%%:*} want=${c##*:}
  jq -s '{id: "CJ-EC2-01", events: .}' "$pack/tests/$f.jsonl" >"$work/case.json"
  req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data-binary "@$work/case.json"
  [ "$code" = 200 ] && [ "$(jq .fired "$work/out")" = "$want" ] ||
    fail "CJ-EC2-01 on the pack's $f: fired should be $want: $code $(head -c 600 "$work/out")"
done
# A threshold rule: the records its where selects are matched, but two of three do not fire it.
login_of frank 07 >"$work/frank2.json"
yaml3=$(printf 'id: CJ-TEST-03\ntitle: three logins\nseverity: 5\ncredibility: 5\nrelevance: 5\nwhere: event.action == "ConsoleLogin"\ncorrelate: {type: threshold, by: [user.name], count: 3, within: 1h}\noffense: {index: user.name}\n')
jq -n --arg r "$yaml3" --slurpfile a "$work/frank.json" --slurpfile b "$work/junk.json" --slurpfile c "$work/frank2.json" \
  '{rule: $r, events: ($a + $b + $c)}' >"$work/test5.json"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data-binary "@$work/test5.json"
[ "$code" = 200 ] && jq -e '.fired == false and .matched == [0, 2] and .fired_on == [] and .hits == []' "$work/out" >/dev/null ||
  fail "a threshold not reached: matched records, no hit: $code $(cat "$work/out")"
# A bad rule: 422 naming rule:LINE:COL.
bad=$(printf 'id: CJ-BAD-01\ntitle: bad\nseverity: 5\ncredibility: 5\nrelevance: 5\nwhere: event.action == \n')
jq -n --arg r "$bad" --slurpfile a "$work/frank.json" '{rule: $r, events: $a}' >"$work/test4.json"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data-binary "@$work/test4.json"
[ "$code" = 422 ] && jq -e '.code == "bad_rule" and (.details.errors | length) >= 1 and (.details.errors[0] | test("^rule:6:[0-9]+: CJ-BAD-01"))' "$work/out" >/dev/null ||
  fail "a bad rule names rule:LINE:COL: $code $(cat "$work/out")"
grep -q "coinhound-ruletest" "$work/out" && fail "the temporary pack's path leaked into the answer"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data '{"id":"CJ-AUTH-05","events":[]}'
[ "$code" = 400 ] || fail "no events: $code"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data '{"id":"CJ-NOPE","events":[{}]}'
[ "$code" = 404 ] || fail "unknown id: $code"
req POST /api/v1/rules/test analyst -H 'Content-Type: application/json' --data '{"rule":"x","id":"y","events":[{}]}'
[ "$code" = 400 ] || fail "rule and id: $code"
ls "${TMPDIR:-/tmp}" | grep -q "^coinhound-ruletest-" && fail "temporary packs left behind: $(ls "${TMPDIR:-/tmp}" | grep coinhound-ruletest)"

# ---- intel feeds -----------------------------------------------------------------------------
pulled() { "$bin" refset show intel_domains --db "$db" 2>/dev/null | awk 'NR > 1 {print $1}' | sort | tr '\n' ' '; }
for _ in $(seq 150); do
  req GET /api/v1/intel/feeds viewer
  [ "$(jq -r '.[0].status' "$work/out")" = ok ] && break
  sleep 0.1
done
jq -e --arg u "http://127.0.0.1:$tport/" 'length == 1 and .[0].url == $u and .[0].index == 0 and
   .[0].status == "ok" and .[0].every_ms == 3600000 and .[0].auth == "basic" and
   .[0].last_pull > 0 and .[0].next_pull > .[0].last_pull + 3500000 and .[0].pulls >= 1 and
   .[0].error == null' "$work/out" >/dev/null || fail "GET /intel/feeds after the start's pull: $(cat "$work/out")"
first_pull=$(jq '.[0].last_pull' "$work/out")
pulls=$(jq '.[0].pulls' "$work/out")
grep -q "password\|scribe" "$work/out" && fail "feed credentials shown"
# A domain published now would wait an hour; POST /intel/pull fetches it at once.
"$bin" refset add pools xmrpool.eu --db "$work/src.db" >/dev/null
sleep 1.5 # the publisher's catalog refresh
req POST /api/v1/intel/pull analyst -H 'Content-Type: application/json' --data '{}'
[ "$code" = 403 ] || fail "an analyst may not pull: $code"
req POST /api/v1/intel/pull admin -H 'Content-Type: application/json' --data '{"feed": 3}'
[ "$code" = 404 ] || fail "no feed 3: $code"
req POST /api/v1/intel/pull admin -H 'Content-Type: application/json' --data '{"feed": "http://elsewhere/"}'
[ "$code" = 404 ] || fail "no such feed URL: $code"
req POST /api/v1/intel/pull admin -H 'Content-Type: application/json' --data '{"feed": true}'
[ "$code" = 400 ] || fail "feed: true: $code"
req POST /api/v1/intel/pull admin -H 'Content-Type: application/json' --data "{\"feed\": \"http://127.0.0.1:$tport/\"}"
[ "$code" = 202 ] && jq -e --arg u "http://127.0.0.1:$tport/" '.queued == [$u]' "$work/out" >/dev/null ||
  fail "pull now: $code $(cat "$work/out")"
for _ in $(seq 100); do
  req GET /api/v1/intel/feeds viewer
  [ "$(jq ".[0].pulls > $pulls and .[0].status == \"ok\"" "$work/out")" = true ] && break
  sleep 0.1
done
jq -e ".[0].pulls == $pulls + 1 and .[0].last_pull > $first_pull and .[0].indicators_added >= 1" "$work/out" >/dev/null ||
  fail "the pull ran at once and added the new indicator: $(cat "$work/out")"
case "$(pulled)" in *xmrpool.eu*) ;; *) fail "xmrpool.eu pulled: $(pulled)" ;; esac
req GET /api/v1/audit admin
jq -e --arg u "http://127.0.0.1:$tport/" '[.[] | select(.action == "intel.pull" and .object == $u and .actor == "t-admin")] | length == 1' "$work/out" >/dev/null ||
  fail "the pull is audited: $(cat "$work/out")"
# Every feed, with an empty body.
req POST /api/v1/intel/pull admin
[ "$code" = 202 ] && jq -e '.queued | length == 1' "$work/out" >/dev/null || fail "pull every feed: $code $(cat "$work/out")"
# A feed that is down: the status says failed with the reason.
kill -9 "$tpid"
wait "$tpid" 2>/dev/null || true
tpid=
sleep 0.5
req POST /api/v1/intel/pull admin --data '{"feed":0}'
[ "$code" = 202 ] || fail "pull of a dead feed is still queued: $code"
for _ in $(seq 100); do
  req GET /api/v1/intel/feeds viewer
  [ "$(jq -r '.[0].status' "$work/out")" = failed ] && break
  sleep 0.1
done
jq -e '.[0].status == "failed" and .[0].failures_in_a_row >= 1 and (.[0].error | length) > 0 and .[0].next_pull != null' "$work/out" >/dev/null ||
  fail "a failed pull shows in the status: $(cat "$work/out")"
stop

# ---- the command line on the same database, and analyze --db --------------------------------
"$bin" rules disable CJ-AUTH-05 --db "$db" >"$work/cli.out" || fail "rules disable"
grep -q "CJ-AUTH-05: disabled (was enabled)" "$work/cli.out" || fail "rules disable says: $(cat "$work/cli.out")"
"$bin" rules state --db "$db" | grep -q "^CJ-AUTH-05 *disabled" || fail "rules state"
set +e
"$bin" rules disable CJ-NOPE-1 --db "$db" 2>"$work/err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "has no rule CJ-NOPE-1" "$work/err" || fail "unknown id refused: $rc $(cat "$work/err")"
"$bin" audit --db "$db" | grep -q "cli *rule.disable *CJ-AUTH-05" || fail "CLI toggle audited"
login_of gina 07 >"$work/gina.jsonl"
"$bin" analyze --db "$db" --no-geoip --format json "$work/gina.jsonl" >"$work/an.json" 2>/dev/null || fail "analyze"
jq -e '[.offenses[] | select(.index.value == "gina")] | length == 0' "$work/an.json" >/dev/null ||
  fail "analyze --db honours the disabled rule: $(head -c 400 "$work/an.json")"
"$bin" rules enable CJ-AUTH-05 --db "$db" >/dev/null || fail "rules enable"
login_of hank 08 >"$work/hank.jsonl"
"$bin" analyze --db "$db" --no-geoip --format json "$work/hank.jsonl" >"$work/an.json" 2>/dev/null || fail "analyze"
jq -e '[.offenses[] | select(.index.value == "hank")] | length == 1' "$work/an.json" >/dev/null ||
  fail "enabled again on the command line, analyze fires it: $(head -c 400 "$work/an.json")"
echo OK
