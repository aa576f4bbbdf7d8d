#!/usr/bin/env bash
# `coinhound serve` end to end, each source and route as a user meets them: --check-config;
# tokens by role (no token, a wrong one, the read token on ingest); every body format analyze
# reads over HTTP (JSON Lines, {"Records"} gzip'd, arrays, flow logs with a header, Route 53,
# ?type=), partial and total rejections with their reasons; Firehose as AWS sends it (the
# documented example, CloudWatch Logs payloads, the error shape); a spool file in a new
# directory picked up within seconds; offenses, metrics and health; SIGHUP keeps the offenses;
# SIGTERM exits 0; a restart keeps everything and a re-sent batch changes nothing.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd curl "the serve tests"
need_cmd python3 "the serve tests"
need_cmd jq "the serve tests"
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/serve.log" ] && tail -n 20 "$work/serve.log" >&2; exit 1; }
g=$src/tests/golden
ingest=ingest-token-0123456789abcdef
read=read-token-0123456789abcdefgh
printf '%s\n' "$ingest" >"$work/ingest.tok"
printf '%s\n' "$read" >"$work/read.tok"
chmod 600 "$work"/*.tok
mkdir "$work/spool"
cat >"$work/serve.yaml" <<EOF
listen: 127.0.0.1:0
db: $work/store.db
no_geoip: true
spool: [$work/spool]
journal: {dir: $work/journal, max_bytes: 64MiB}
checkpoint: 1s
max_body: 1MiB
tokens: {ingest: $work/ingest.tok, read: $work/read.tok}
EOF

# --check-config: 0 for a good file, 2 with the position for a bad one.
"$bin" serve --check-config "$work/serve.yaml" >/dev/null || fail "check-config of a good file"
printf 'journal: {dir: %s/j}\nlisten: 0.0.0.0:8440\n' "$work" >"$work/bad.yaml"
set +e
"$bin" serve --check-config "$work/bad.yaml" 2>"$work/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "not loopback" "$work/err" || fail "plain HTTP off loopback refused ($rc)"
printf 'journal: {dir: %s/j}\nfsync: sometimes\n' "$work" >"$work/bad.yaml"
set +e
"$bin" serve --check-config "$work/bad.yaml" 2>"$work/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "bad.yaml:2:1: unknown key" "$work/err" || fail "unknown key refused ($rc)"

start() {
  : >"$work/serve.log"
  "$bin" serve --config "$work/serve.yaml" --log-format "${1:-text}" 2>>"$work/serve.log" &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | head -n1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    sleep 0.1
  done
  fail "server did not become ready"
}
url() { echo "http://127.0.0.1:$port$1"; }
post() { # post PATH TOKEN FILE [curl args...] -> status in $code, body in $work/out
  local path=$1 tok=$2 file=$3
  shift 3
  code=$(curl -s -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
    --data-binary "@$file" "$@" "$(url "$path")")
}
metric() { curl -s "$(url /metrics)" | awk -v m="$1" '$1 == m {print $2}'; }

start json
head -n1 "$work/serve.log" | python3 -c 'import json,sys; json.loads(sys.stdin.readline())' ||
  fail "--log-format json writes one JSON object per line"

# Roles: no token, a wrong token, the read token on an ingest route, and the reverse.
post /api/v1/ingest "" "$g/cloudtrail/identities.jsonl"; [ "$code" = 401 ] || fail "no token: $code"
post /api/v1/ingest "wrong-token-0123456789" "$g/cloudtrail/identities.jsonl"
[ "$code" = 401 ] || fail "wrong token: $code"
post /api/v1/ingest "$read" "$g/cloudtrail/identities.jsonl"; [ "$code" = 403 ] || fail "read token ingests: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ingest" "$(url /api/v1/offenses)")
[ "$code" = 403 ] || fail "ingest token reads offenses: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url /nowhere)"); [ "$code" = 404 ] || fail "404: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url /api/v1/ingest)"); [ "$code" = 405 ] || fail "405: $code"
head -c 1100000 /dev/zero >"$work/big"
post /api/v1/ingest "$ingest" "$work/big"; [ "$code" = 413 ] || fail "body over max_body: $code"

# Every format analyze reads.
post /api/v1/ingest "$ingest" "$g/cloudtrail/identities.jsonl"
[ "$code" = 202 ] || fail "JSON Lines: $code $(cat "$work/out")"
n=$(jq .accepted "$work/out"); [ "$n" -gt 0 ] && [ "$(jq .rejected "$work/out")" = 0 ] || fail "JSON Lines counts"
post /api/v1/ingest "$ingest" "$g/cloudtrail/s3_delivery.json.gz" -H 'Content-Encoding: gzip'
[ "$code" = 202 ] && [ "$(jq .accepted "$work/out")" -gt 0 ] || fail "gzip'd Records: $code"
post /api/v1/ingest "$ingest" "$g/cloudtrail/array_pretty.json"
[ "$code" = 202 ] && [ "$(jq .accepted "$work/out")" = 3 ] || fail "array: $code $(cat "$work/out")"
post /api/v1/ingest "$ingest" "$g/vpcflow/v2_default.log"
[ "$code" = 202 ] && [ "$(jq .accepted "$work/out")" -gt 0 ] || fail "flow log: $code"
post /api/v1/ingest "$ingest" "$g/route53/resolver.jsonl"
[ "$code" = 202 ] || fail "route53: $code"
code=$(curl -s -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $ingest" \
  --data-binary "@$g/route53/resolver.jsonl" "$(url '/api/v1/ingest?type=route53resolver')")
[ "$code" = 202 ] || fail "?type=route53resolver: $code"
code=$(curl -s -o "$work/out" -w '%{http_code}' -H "Authorization: Bearer $ingest" \
  --data-binary "@$g/route53/resolver.jsonl" "$(url '/api/v1/ingest?type=syslog')")
[ "$code" = 400 ] || fail "?type=syslog refused: $code"
post /api/v1/ingest "$ingest" "$g/cloudtrail/malformed_middle.jsonl"
[ "$code" = 202 ] && [ "$(jq .accepted "$work/out")" = 2 ] && [ "$(jq .rejected "$work/out")" = 1 ] &&
  jq -r '.errors[0]' "$work/out" | grep -q json_syntax || fail "a bad record among good: $(cat "$work/out")"
printf 'this is not a log\n' >"$work/junk"
post /api/v1/ingest "$ingest" "$work/junk"
[ "$code" = 400 ] && jq -r '.errors[0]' "$work/out" | grep -q unrecognized_format ||
  fail "not a log: $code $(cat "$work/out")"
post /api/v1/ingest "$ingest" "$work/junk" -H 'Content-Encoding: gzip'
[ "$code" = 400 ] || fail "gzip claimed, not gzip: $code"

# Firehose: AWS's documented example (records that are not logs: acknowledged, counted as
# rejected), a CloudWatch Logs subscription payload, and a refused key in Firehose's shape.
cat >"$work/fh_example.json" <<'EOF'
{"requestId":"ed4acda5-034f-9f42-bba1-f29aea6d7d8f","timestamp":1578090901599,"records":[{"data":"aGVsbG8="},{"data":"aGVsbG8gd29ybGQ="}]}
EOF
fh() { # fh FILE KEY -> status in $code
  code=$(curl -s -o "$work/out" -w '%{http_code}' -H "X-Amz-Firehose-Access-Key: $2" \
    -H 'X-Amz-Firehose-Request-Id: ed4acda5-034f-9f42-bba1-f29aea6d7d8f' \
    -H 'X-Amz-Firehose-Protocol-Version: 1.0' -H 'Content-Type: application/json' \
    --data-binary "@$1" "$(url /api/v1/firehose)")
}
fh "$work/fh_example.json" "$ingest"
[ "$code" = 200 ] && [ "$(jq -r .requestId "$work/out")" = ed4acda5-034f-9f42-bba1-f29aea6d7d8f ] &&
  jq -e '.timestamp | type == "number"' "$work/out" >/dev/null || fail "firehose example: $code $(cat "$work/out")"
fh "$work/fh_example.json" "not-the-key-0123456789"
[ "$code" = 401 ] && [ "$(jq -r .requestId "$work/out")" = ed4acda5-034f-9f42-bba1-f29aea6d7d8f ] &&
  jq -e '.errorMessage | length > 0' "$work/out" >/dev/null || fail "firehose bad key: $code $(cat "$work/out")"
python3 - "$g/vpcflow/v2_default.log" "$work/fh_cwl.json" <<'PY'
import base64, gzip, json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines()[1:] if l]
doc = {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "vpc-flow",
       "logStream": "eni-1", "subscriptionFilters": ["f"],
       "logEvents": [{"id": str(i), "timestamp": 0, "message": l} for i, l in enumerate(lines)]}
ctl = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
       "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 0,
       "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}
recs = [{"data": base64.b64encode(gzip.compress(json.dumps(d).encode())).decode()} for d in (ctl, doc)]
json.dump({"requestId": "cwl-1", "timestamp": 1, "records": recs}, open(sys.argv[2], "w"))
print(len(lines), file=open(sys.argv[2] + ".n", "w"))
PY
gzip -k "$work/fh_cwl.json"
code=$(curl -s -o "$work/out" -w '%{http_code}' -H "X-Amz-Firehose-Access-Key: $ingest" \
  -H 'X-Amz-Firehose-Request-Id: cwl-1' -H 'Content-Encoding: gzip' \
  --data-binary "@$work/fh_cwl.json.gz" "$(url /api/v1/firehose)")
[ "$code" = 200 ] && [ "$(jq -r .requestId "$work/out")" = cwl-1 ] || fail "firehose CWL: $code"
[ "$(metric 'coinhound_records_received_total{source="firehose",format="vpcflow"}')" = "$(cat "$work/fh_cwl.json.n")" ] ||
  fail "firehose flow records counted: $(curl -s "$(url /metrics)" | grep firehose)"
[ "$(metric coinhound_firehose_control_messages_total)" = 1 ] || fail "control message counted"

# Spool: a file in a directory created after the start is read within seconds.
mkdir -p "$work/spool/AWSLogs/111122223333/CloudTrail/us-east-1"
cp "$g/cloudtrail/s3_delivery.json.gz" "$work/spool/AWSLogs/111122223333/CloudTrail/us-east-1/x.json.gz"
for _ in $(seq 50); do
  [ -n "$(metric 'coinhound_records_accepted_total{source="spool",format="cloudtrail"}')" ] && break
  sleep 0.1
done
[ -n "$(metric 'coinhound_records_accepted_total{source="spool",format="cloudtrail"}')" ] ||
  fail "spool file not picked up within 5 s"

# A growing plain file: its first lines (one broken) are read, then lines appended later are
# read on from where it stopped, never one twice; the broken one is counted by reason and the
# file named in the log.
wait_metric() { # wait_metric NAME VALUE: up to 5 s
  for _ in $(seq 50); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.1; done
  return 1
}
acc='coinhound_records_accepted_total{source="spool",format="cloudtrail"}'
a0=$(metric "$acc")
gd="$work/spool/AWSLogs/111122223333/CloudTrail/eu-west-1"
mkdir -p "$gd"
{ head -n 2 "$g/cloudtrail/identities.jsonl"; echo '{"eventVersion": "1.08", "eventTime": ]}'; } >"$work/grow.jsonl"
mv "$work/grow.jsonl" "$gd/grow.jsonl"
wait_metric "$acc" $((a0 + 2)) || fail "growing file: 2 records first ($(metric "$acc") - $a0)"
[ "$(metric 'coinhound_records_rejected_total{source="spool",reason="json_syntax"}')" = 1 ] ||
  fail "the broken spool line counted by reason: $(curl -s "$(url /metrics)" | grep 'rejected_total{source="spool"')"
grep -q "bad_records.*grow.jsonl: 1 records rejected" "$work/serve.log" ||
  fail "the bad spool line logged: $(grep bad_records "$work/serve.log")"
sed -n 3,8p "$g/cloudtrail/identities.jsonl" >>"$gd/grow.jsonl"
wait_metric "$acc" $((a0 + 8)) || fail "growing file read on: $(( $(metric "$acc") - a0 )) of 8"
sleep 1.5 # a rescan or two: nothing is read again
[ "$(metric "$acc")" = $((a0 + 8)) ] || fail "growing file read twice: $(( $(metric "$acc") - a0 ))"

# Offenses, health and metrics, once the pipeline has caught up (it checkpoints when idle).
for _ in $(seq 100); do
  curl -s "$(url /healthz)" | jq -e '.ready == true and .journal_lag_bytes == 0' >/dev/null && break
  sleep 0.1
done
curl -sf -H "Authorization: Bearer $read" "$(url /api/v1/offenses)" >"$work/off.json" || fail "offenses"
jq -e 'type == "array" and length > 0 and (.[0] | has("magnitude") and has("rules"))' "$work/off.json" >/dev/null ||
  fail "offenses shape: $(head -c 300 "$work/off.json")"
jq -e '.ready == true and .journal_lag_bytes == 0' <(curl -s "$(url /healthz)") >/dev/null || fail "healthz"
curl -s "$(url /metrics)" >"$work/metrics"
for m in coinhound_records_received_total coinhound_records_rejected_total coinhound_journal_bytes \
  coinhound_journal_lag_bytes coinhound_watermark_lag_seconds coinhound_rule_hits_total \
  coinhound_offenses_open coinhound_checkpoint_duration_seconds coinhound_http_requests_total; do
  grep -q "^# TYPE $m " "$work/metrics" || fail "metric $m missing"
done
grep -q '^coinhound_records_rejected_total{source="http",reason="json_syntax"} [1-9]' "$work/metrics" &&
  grep -q '^coinhound_records_rejected_total{source="http",reason="unrecognized_format"} 1$' "$work/metrics" ||
  fail "rejected by reason: $(grep rejected "$work/metrics")"
grep -q '^coinhound_http_requests_total{route="/api/v1/ingest",status="401"} 2$' "$work/metrics" &&
  grep -q '^coinhound_http_requests_total{route="/api/v1/ingest",status="403"} 1$' "$work/metrics" ||
  fail "requests by route and status: $(grep http_requests "$work/metrics")"

# SIGHUP reloads and keeps the offenses; SIGTERM drains and exits 0.
before=$(jq length "$work/off.json")
kill -HUP $pid
for _ in $(seq 50); do grep -q '"event":"reloaded"' "$work/serve.log" && break; sleep 0.1; done
grep -q '"event":"reloaded"' "$work/serve.log" || fail "SIGHUP reload logged"
after=$(curl -s -H "Authorization: Bearer $read" "$(url /api/v1/offenses)" | jq length)
[ "$before" = "$after" ] || fail "offenses kept over a reload ($before -> $after)"
kill -TERM $pid
set +e
wait $pid; rc=$?
set -e
pid=
[ $rc = 0 ] || fail "SIGTERM: exit status $rc"
grep -q '"event":"drained"' "$work/serve.log" || fail "drain logged"

# A restart keeps everything; a batch sent again changes nothing but the duplicate counter.
start
curl -s -H "Authorization: Bearer $read" "$(url /api/v1/offenses)" >"$work/off2.json"
[ "$(jq length "$work/off2.json")" = "$after" ] || fail "offenses after restart"
post /api/v1/ingest "$ingest" "$g/cloudtrail/identities.jsonl"; [ "$code" = 202 ] || fail "re-send"
for _ in $(seq 100); do
  [ "$(metric coinhound_duplicates_skipped_total)" -gt 0 ] && break
  sleep 0.1
done
[ "$(metric coinhound_duplicates_skipped_total)" -gt 0 ] || fail "duplicates counted"
curl -s -H "Authorization: Bearer $read" "$(url /api/v1/offenses)" >"$work/off3.json"
cmp -s <(jq -S '[.[] | {index, event_count, magnitude}]' "$work/off2.json") \
  <(jq -S '[.[] | {index, event_count, magnitude}]' "$work/off3.json") || fail "a re-sent batch changed offenses"
kill -TERM $pid
wait $pid
pid=

# TLS (libmicrohttpd with GnuTLS): HTTPS answers, plain HTTP on the same port does not.
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" \
    -out "$work/cert.pem" 2>/dev/null
  chmod 600 "$work/key.pem"
  printf 'tls: {cert: %s/cert.pem, key: %s/key.pem}\n' "$work" "$work" >>"$work/serve.yaml"
  : >"$work/serve.log"
  "$bin" serve --config "$work/serve.yaml" 2>>"$work/serve.log" &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.log" | head -n1)
    [ -n "$port" ] && curl -sf --cacert "$work/cert.pem" "https://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  grep -q "with TLS" "$work/serve.log" || fail "TLS listening"
  curl -sf --cacert "$work/cert.pem" -H "Authorization: Bearer $read" \
    "https://127.0.0.1:$port/api/v1/offenses" | jq -e 'type == "array"' >/dev/null || fail "offenses over TLS"
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && fail "plain HTTP answered on the TLS port"
  kill -TERM $pid
  wait $pid
  pid=
fi
echo "serve: sources, routes, roles, TLS, signals and restart OK"
