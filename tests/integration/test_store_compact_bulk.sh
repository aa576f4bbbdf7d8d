#!/usr/bin/env bash
# `store compact` after one large analyze run (docs/SEARCH.md, "Options and commands"): the run
# is one checkpoint generation, and each of its two hours sealed several hot segments of up to
# 48 MiB of records each, more than one merge's 16 MiB bound. What a user sees:
#   - before: each hour is several hot segments; after `store compact` (the two hours' merges
#     side by side on two threads): one cold segment an hour, no hot one left, and fewer bytes
#     on disk than before;
#   - a search prints the same bytes before and after (newest and oldest first: events of the
#     same second keep their order), and `store verify` accepts the store.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator"
need_subcommand "$bin" store
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/bench/gen" cloudtrail --records 70000 --start 2024-06-03T10:00:00Z --span-hours 1.9 \
    --out "$work/ct.jsonl" --quiet
"$bin" analyze --no-progress -q --no-geoip --db "$work/s.db" "$work/ct.jsonl" >/dev/null
hour_segs() { ls "$work/s.db.events" | grep -c "^cloudtrail-$1-.*\.seg$" || true; }
stat_of() { # column of the cloudtrail row of store stats --format json
    "$bin" store stats --db "$work/s.db" --format json |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print([s for s in d["sources"] if s["source"]=="cloudtrail"][0][sys.argv[1]])' "$1"
}
for h in 477058 477059; do
    [ "$(hour_segs $h)" -ge 2 ] || fail "expected the run to seal several segments in hour $h, found $(hour_segs $h)"
done
before=$(ls "$work/s.db.events" | grep -c '^cloudtrail-.*\.seg$')
[ "$(stat_of hot_segments)" = "$before" ] || fail "expected every segment of the run hot: $(stat_of hot_segments) of $before"
bytes0=$(stat_of bytes)
for o in desc asc; do
    "$bin" search 'event.action exists' --db "$work/s.db" --sort "$o" --format jsonl \
        --limit 1000000 >"$work/before.$o" 2>/dev/null
done
[ "$(wc -l <"$work/before.desc")" = 70000 ] || fail "the search before compaction: $(wc -l <"$work/before.desc") events"

"$bin" store compact --db "$work/s.db" >"$work/compact.out" ||
    fail "store compact failed: $(cat "$work/compact.out")"
for h in 477058 477059; do
    [ "$(hour_segs $h)" = 1 ] ||
        fail "after store compact hour $h is $(hour_segs $h) segments, not one: $(cat "$work/compact.out")"
done
[ "$(stat_of hot_segments)" = 0 ] || fail "after store compact $(stat_of hot_segments) segments are still hot"
bytes1=$(stat_of bytes)
[ "$bytes1" -lt "$bytes0" ] || fail "store compact did not shrink the store: $bytes0 -> $bytes1 bytes"
for o in desc asc; do
    "$bin" search 'event.action exists' --db "$work/s.db" --sort "$o" --format jsonl \
        --limit 1000000 >"$work/after.$o" 2>/dev/null
    cmp -s "$work/before.$o" "$work/after.$o" ||
        fail "--sort $o prints other bytes after store compact ($(diff "$work/before.$o" "$work/after.$o" | head -n 2 | cut -c1-160))"
done
"$bin" store verify --db "$work/s.db" >"$work/verify.out" || fail "store verify: $(cat "$work/verify.out")"
echo "store compact bulk: ok ($before hot segments, $bytes0 -> $bytes1 bytes)"
