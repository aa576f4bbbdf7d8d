#!/usr/bin/env bash
# Counts answered from the indexes alone (docs/SEARCH.md, "Counts from the index"): a search
# whose expression is `==` tests on indexed fields (and and/or of them), grouped by indexed
# fields or by hour, counts each segment's matches from the segment index's postings without
# decompressing a block. The counts must be the scan's:
#   - stores of segment format 3 and format 2, CloudTrail and Route 53 records over six hours:
#     --count-by on one and two indexed fields, --top, --histogram 1h and 1m (a segment
#     spanning several minute buckets falls back to the records), --from/--to cutting through
#     a segment (that segment falls back), each equal to the same search with --no-index,
#   - --explain says which segments were counted from the index, and a grouping field that is
#     not indexed, a raw path or an operator other than == keeps evaluating records,
#   - a damaged index frame is reported as damage (the segment skipped), never a crash.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator"
need_cmd jq "reading JSON output"
need_subcommand "$bin" search
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/bench/gen" cloudtrail --records 30000 --span-hours 6 --users 40 \
    --out "$work/ct.jsonl" --quiet
python3 "$src/bench/gen" route53 --records 8000 --span-hours 6 --out "$work/r53.jsonl" --quiet
opts=(--no-progress -q --no-geoip)
# Small segments: several per hour, so that one hour's segments and their time bounds matter.
export COINHOUND_STORE_SEAL_BYTES=4000000
"$bin" analyze "${opts[@]}" --db "$work/f3.db" "$work/ct.jsonl" "$work/r53.jsonl" >/dev/null
COINHOUND_STORE_FORMAT=2 "$bin" analyze "${opts[@]}" --db "$work/f2.db" "$work/ct.jsonl" \
    "$work/r53.jsonl" >/dev/null
unset COINHOUND_STORE_SEAL_BYTES
nseg=$(ls "$work/f3.db.events" | grep -c '\.seg$')
[ "$nseg" -ge 12 ] || fail "expected a dozen segments or more, found $nseg"

# Values: a user with few events, a frequent action, a source address, a queried name.
user=$("$bin" search 'user.name exists' --db "$work/f3.db" --top user.name --limit 1000 \
    --format csv 2>/dev/null | tail -n 1 | cut -d, -f1)
ip=$("$bin" search 'source.ip exists and event.dataset == "cloudtrail"' --db "$work/f3.db" \
    --top source.ip --limit 1 --format csv 2>/dev/null | tail -n 1 | cut -d, -f1)
dom=$("$bin" search 'dns.question.name exists' --db "$work/f3.db" --top dns.question.name \
    --limit 1 --format csv 2>/dev/null | tail -n 1 | cut -d, -f1)
[ -n "$user" ] && [ -n "$ip" ] && [ -n "$dom" ] || fail "no values to look up ($user $ip $dom)"
from=$(jq -r '.eventTime' "$work/ct.jsonl" | sort | sed -n 7000p)
to=$(jq -r '.eventTime' "$work/ct.jsonl" | sort | sed -n 21000p)

same() { # db expression args...: the index's answer equals the scan's, and is not empty
    local db=$1 e=$2
    shift 2
    local a b
    a=$("$bin" search "$e" --db "$db" --format csv "$@" 2>/dev/null)
    b=$("$bin" search "$e" --db "$db" --format csv --no-index "$@" 2>/dev/null)
    [ "$a" = "$b" ] || fail "$(basename "$db"): index and scan count differently: $e $*"
    [ "$(echo "$a" | wc -l)" -gt 1 ] || fail "$(basename "$db"): nothing counted: $e $*"
}
exprs=("user.name == \"$user\"" "event.action == \"RunInstances\"" "source.ip == $ip"
    "user.name == \"$user\" or event.action == \"RunInstances\""
    "user.name == \"$user\" and source.ip == $ip or dns.question.name == \"$dom\""
    "dns.question.name == \"$dom\"")
for db in "$work/f3.db" "$work/f2.db"; do
    # Format 2 reads the same indexes: three of the expressions are enough there.
    n=${#exprs[@]}
    [ "$db" = "$work/f3.db" ] || n=3
    for e in "${exprs[@]:0:$n}"; do
        same "$db" "$e" --count-by event.action
        same "$db" "$e" --count-by user.name,source.ip
        same "$db" "$e" --count-by dns.question.name,event.dataset
        same "$db" "$e" --top event.action --limit 3
        same "$db" "$e" --histogram 1h
        same "$db" "$e" --histogram 1m
        same "$db" "$e" --histogram 1h --count-by event.action
        same "$db" "$e" --count-by event.action --from "$from" --to "$to"
        same "$db" "$e" --histogram 1h --from "$from" --to "$to"
    done
done

# What --explain says (captured first: grep -q would end the pipe early under pipefail).
ex() { "$bin" search "$@" --db "$work/f3.db" --explain 2>&1 >/dev/null; }
x=$(ex "user.name == \"$user\"" --count-by event.action)
grep -q "counted from the index alone" <<<"$x" || fail "an exact count did not count from the index"
! grep -q "events evaluated" <<<"$x" || fail "an exact count over whole segments still evaluated records"
x=$(ex "user.name == \"$user\"" --histogram 1m)
grep -q "events evaluated" <<<"$x" ||
    fail "a segment spanning several minute buckets was counted from the index"
not_ix() { # expression args...: planned on the index, but its records still evaluated
    x=$(ex "$@")
    grep -q "index lookup" <<<"$x" || fail "no index lookup planned: $*"
    ! grep -q "counted from the index alone" <<<"$x" ||
        fail "counted from the index, which cannot answer it exactly: $*"
}
not_ix "user.name == \"$user\"" --count-by event.dataset
not_ix "user.name == \"$user\"" --count-by userAgent
not_ix "user.name =~ \"$user\"" --count-by event.action
not_ix "user.name in [\"$user\"]" --count-by event.action
not_ix "user.name == \"$user\" and event.outcome == \"success\"" --count-by event.action
not_ix "user.name == \"$user\"" --format jsonl

# A damaged index frame: reported, the segment skipped, no crash.
cp "$work/f3.db" "$work/d.db"
cp -r "$work/f3.db.events" "$work/d.db.events"
seg=$(ls "$work/d.db.events"/*.seg | sed -n 2p)
python3 - "$seg" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
ix = struct.unpack_from("<Q", b, 72)[0]
b[ix + 10] ^= 0x55
open(p, "wb").write(b)
PY
"$bin" search "event.action == \"RunInstances\"" --db "$work/d.db" --count-by event.action \
    --format csv >"$work/d.csv" 2>"$work/d.err" || fail "a count over a damaged index failed"
grep -q "$(basename "$seg")" "$work/d.err" || fail "the damaged index was not reported: $(cat "$work/d.err")"
echo "search index count: ok"
