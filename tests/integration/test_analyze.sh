#!/usr/bin/env bash
# Integration test of `coinhound analyze` as a user runs it: exit codes, the JSON report's
# contract (stats.records/events/errors/by_type), events written as JSON Lines, bad input
# reported and counted without losing the good records around it.
# Args: coinhound-binary source-dir corpora-dir. The corpora part is left out when the corpora
# folder is absent (outside CI); any other missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2 corpora=$3
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
need_cmd jq "reading the report"
jqv() { jq -r "$1" "$work/report.json"; }
run() { "$bin" analyze --no-progress --no-geoip --no-rules --format json "$@" >"$work/report.json" 2>"$work/stderr"; }

# Usage errors exit 2.
set +e
"$bin" analyze >/dev/null 2>&1; [ $? -eq 2 ] || fail "no input should exit 2"
"$bin" analyze --format xml x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --format should exit 2"
"$bin" analyze --type nosuch x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --type should exit 2"
"$bin" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command should exit 2"
set -e
# (Captured first: with pipefail, `cmd | grep -q` can fail on SIGPIPE when grep stops early.)
grep -q analyze <<<"$("$bin" --help)" || fail "--help lists analyze"
grep -q -- "--events" <<<"$("$bin" analyze --help)" || fail "analyze --help documents --events"
grep -q "CC BY 4.0" <<<"$("$bin" --version)" || fail "--version credits the GeoIP data"

# A good CloudTrail file (S3 shape, gzip'd under a name that does not say so), a JSON Lines file,
# and a file with a broken record between two good ones.
rec() { printf '{"eventVersion":"1.08","eventTime":"2024-08-02T08:5%d:24Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"81.2.69.142","userIdentity":{"type":"IAMUser","userName":"alice","principalId":"AIDA1"},"additionalEventData":{"MFAUsed":"No"},"responseElements":{"ConsoleLogin":"Success"},"eventID":"e%d"}' "$1" "$1"; }
mkdir -p "$work/in/sub"
{ printf '{"Records":['; rec 1; printf ','; rec 2; printf ']}'; } | gzip >"$work/in/a.json"
{ rec 3; echo; rec 4; echo; } >"$work/in/sub/b.jsonl"
{ rec 5; echo; echo '{"eventVersion":"1.08","eventTime":"2024-08-02T08:56:24Z",,}'; rec 6; echo; } >"$work/in/sub/c.jsonl"

run --events "$work/events.jsonl" "$work/in" || fail "analyze exit status $?"
[ "$(jqv .stats.records)" = 7 ] || fail "records: $(jqv .stats.records)"
[ "$(jqv .stats.events)" = 6 ] || fail "events: $(jqv .stats.events)"
[ "$(jqv .stats.errors)" = 1 ] || fail "errors: $(jqv .stats.errors)"
[ "$(jqv .stats.by_type.cloudtrail)" = 6 ] || fail "by_type.cloudtrail"
[ "$(jqv .stats.by_type.vpcflow)" = 0 ] || fail "by_type.vpcflow"
[ "$(jqv .stats.by_type.route53resolver)" = 0 ] || fail "by_type.route53resolver"
[ "$(jqv .stats.errors_by_reason.json_syntax)" = 1 ] || fail "json_syntax counted"
grep -q "c.jsonl:2: json_syntax" "$work/stderr" || fail "message names file and line: $(cat "$work/stderr")"
[ "$(wc -l <"$work/events.jsonl")" = 6 ] || fail "6 event lines"
# Stable order: a.json, then sub/b.jsonl, then sub/c.jsonl; the broken record is no event.
ids=$(jq -r '.event.id' "$work/events.jsonl" | tr '\n' ' ')
[ "$ids" = "e1 e2 e3 e4 e5 e6 " ] || fail "event order/ids: $ids"
# ECS names and original paths on the same line.
line=$(head -1 "$work/events.jsonl")
[ "$(jq -r '.["@timestamp"]' <<<"$line")" = "2024-08-02T08:51:24Z" ] || fail "@timestamp"
[ "$(jq -r '.event.dataset' <<<"$line")" = cloudtrail ] || fail "event.dataset"
[ "$(jq -r '.event.action' <<<"$line")" = ConsoleLogin ] || fail "event.action"
[ "$(jq -r '.event.outcome' <<<"$line")" = success ] || fail "event.outcome"
[ "$(jq -r '.user.name' <<<"$line")" = alice ] || fail "user.name"
[ "$(jq -r '.source.ip' <<<"$line")" = 81.2.69.142 ] || fail "source.ip"
[ "$(jq -r '.additionalEventData.MFAUsed' <<<"$line")" = No ] || fail "original field kept"

# Files delivered out of time order come out merged by event time.
mkdir -p "$work/merge"
{ rec 1; echo; rec 3; echo; rec 5; echo; } >"$work/merge/1-late-file.jsonl"
{ rec 2; echo; rec 4; echo; rec 6; echo; } >"$work/merge/2-early-file.jsonl"
run --events "$work/merged.jsonl" "$work/merge"
[ "$(jq -r '.event.id' "$work/merged.jsonl" | tr '\n' ' ')" = "e1 e2 e3 e4 e5 e6 " ] || fail "merge order"
run --max-open 1 --events "$work/merged.jsonl" "$work/merge"
[ "$(jqv .stats.events)" = 6 ] || fail "merge with one open input keeps every event"
[ "$(jqv .stats.merge.late_opens)" = 1 ] || fail "late open counted: $(jqv .stats.merge)"

# Bad inputs, each one message and one count; the run completes with status 0.
: >"$work/bad-empty.json"
head -c 4096 /dev/urandom >"$work/bad-garbage.bin"
printf 'hello, this is not a log\n' >"$work/bad-text.txt"
{ printf '{"Records":['; for i in 1 2 3 4 5 6 7 8; do rec $i; printf ','; done; rec 9; printf ']}'; } | gzip >"$work/full.gz"
head -c $(( $(stat -c %s "$work/full.gz") - 30 )) "$work/full.gz" >"$work/bad-truncated.gz"
run "$work/bad-empty.json" "$work/bad-garbage.bin" "$work/bad-text.txt" "$work/bad-truncated.gz" ||
  fail "bad input must not fail the run"
[ "$(jqv .stats.errors_by_reason.empty_file)" = 1 ] || fail "empty file counted"
[ "$(jqv '.stats.errors_by_reason.unrecognized_format')" = 2 ] || fail "garbage and text counted: $(cat "$work/report.json")"
[ "$(jqv .stats.by_type.cloudtrail)" -ge 1 ] || fail "records before the gzip damage kept"
grep -q "bad-truncated.gz" "$work/stderr" || fail "truncated gzip named"

# An input that cannot be read at all: exit 1, the other inputs still processed.
set +e
run "$work/does-not-exist" "$work/in/sub/b.jsonl"; st=$?
set -e
[ $st -eq 1 ] || fail "missing input should exit 1, got $st"
[ "$(jqv .stats.events)" = 2 ] || fail "other inputs processed"
grep -q "does-not-exist" "$work/stderr" || fail "missing input named"

# stdin.
rec 7 | "$bin" analyze --no-geoip --no-rules --format json --events - - >"$work/stdin.jsonl" 2>/dev/null &&
  fail "--events - with --format json must be refused" || true
rec 7 | "$bin" analyze --no-geoip --no-rules --type cloudtrail --events - - >"$work/stdin.jsonl" 2>/dev/null
grep -q '"e7"' "$work/stdin.jsonl" || fail "stdin events"

# analyze maps neither libcurl nor libmicrohttpd (and the 27 libraries behind them): they are
# loaded when a command first makes or serves an HTTP request (src/core/dynlib.h), and they were
# most of every command's start-up. LD_DEBUG=files names each object the loader maps.
libs=$(rec 8 | LD_DEBUG=files "$bin" analyze --no-geoip --no-rules --type cloudtrail - 2>&1 >/dev/null)
grep -q 'file=libsqlite3' <<<"$libs" || fail "LD_DEBUG=files should list the libraries mapped"
! grep -qE 'file=lib(curl|microhttpd|gnutls|ssl)' <<<"$libs" ||
  fail "analyze loaded an HTTP library: $(grep -oE 'file=lib(curl|microhttpd|gnutls|ssl)[^ ]*' <<<"$libs" | sort -u | tr '\n' ' ')"

# The real corpus, when the corpora folder is there.
if corpora_present "$corpora" cloudtrail/stratus_red_team_detonation_logs \
    vpcflow_route53/elastic_integrations; then
  run --type cloudtrail "$corpora"/cloudtrail/stratus_red_team_detonation_logs/*.json
  [ "$(jqv .stats.events)" = 310 ] || fail "stratus: 310 events, got $(jqv .stats.events)"
  [ "$(jqv .stats.errors)" = 0 ] || fail "stratus: 0 errors"
  run "$corpora/vpcflow_route53/elastic_integrations" || fail "elastic samples"
  [ "$(jqv .stats.by_type.vpcflow)" -gt 0 ] || fail "vpcflow detected"
  [ "$(jqv .stats.by_type.route53resolver)" -gt 0 ] || fail "route53 detected"
fi
echo "test_analyze: ok"
