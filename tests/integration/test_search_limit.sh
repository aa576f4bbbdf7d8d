#!/usr/bin/env bash
# A search with --limit reads no more segments than its newest (or, with --sort asc, oldest)
# matches need, down to the segments of one hour (docs/SEARCH.md, "Limits"):
#   - two runs of analyze write two segments into the same hour, the second one's events all
#     newer; `search --limit N` newest first keeps its N matches from the second and skips the
#     first by its header's time bounds (--explain says so), --sort asc the other way round,
#   - what it prints is exactly the first N lines of the same search without a limit.
# Those two read with --threads 1: two threads would read both segments side by side. With two
# threads (the default on this machine) over four hours' segments:
#   - the answer is byte for byte the one-thread answer, with and without a limit,
#   - once a thread has kept N matches no older segment is handed out: at most two are read.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator"
need_subcommand "$bin" search
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Two quarters of one hour, each in its own file and its own analyze run (one segment each).
python3 "$src/bench/gen" cloudtrail --records 3000 --start 2024-06-03T10:00:00Z --span-hours 0.25 \
    --jitter 0 --out "$work/early.jsonl" --quiet
python3 "$src/bench/gen" cloudtrail --records 3000 --start 2024-06-03T10:30:00Z --span-hours 0.25 \
    --jitter 0 --seed 2 --out "$work/late.jsonl" --quiet
opts=(--no-progress -q --no-geoip --db "$work/s.db")
"$bin" analyze "${opts[@]}" "$work/early.jsonl" >/dev/null
"$bin" analyze "${opts[@]}" "$work/late.jsonl" >/dev/null
segs=$(ls "$work/s.db.events" | grep -c '\.seg$')
[ "$segs" = 2 ] || fail "expected the two runs to write two segments, found $segs"

q='event.action exists'
for order in desc asc; do
    "$bin" search "$q" --db "$work/s.db" --sort "$order" --format jsonl --limit 100000 \
        >"$work/all.$order" 2>/dev/null
    "$bin" search "$q" --db "$work/s.db" --sort "$order" --format jsonl --limit 50 --explain \
        --threads 1 >"$work/top.$order" 2>"$work/explain.$order"
    head -n 50 "$work/all.$order" | cmp -s - "$work/top.$order" ||
        fail "--sort $order --limit 50 does not print the first 50 matches of the unlimited search"
    n=$(grep -c 'cannot improve the matches kept' "$work/explain.$order" || true)
    [ "$n" = 1 ] ||
        fail "--sort $order --limit 50: expected one segment skipped by its time bounds, --explain says: $(cat "$work/explain.$order")"
    grep -q 'segments: 1 read, 1 skipped' "$work/explain.$order" ||
        fail "--sort $order --limit 50 read more than one segment: $(tail -n 1 "$work/explain.$order")"
done
# The skipped segment is the one the order puts last: the early run's for newest first.
grep 'cannot improve' "$work/explain.desc" | grep -q -- "-0000000000000001-[0-9a-f]*\.seg" ||
    fail "newest first skipped the wrong segment: $(grep 'cannot improve' "$work/explain.desc")"

# Four segments, an hour apart.
opts=(--no-progress -q --no-geoip --db "$work/h.db")
for h in 0 1 2 3; do
    python3 "$src/bench/gen" cloudtrail --records 1500 --start "2024-06-04T1${h}:00:00Z" \
        --span-hours 0.5 --jitter 0 --seed "$((h + 5))" --out "$work/h$h.jsonl" --quiet
    "$bin" analyze "${opts[@]}" "$work/h$h.jsonl" >/dev/null
done
segs=$(ls "$work/h.db.events" | grep -c '\.seg$')
[ "$segs" = 4 ] || fail "expected four runs in four hours to write four segments, found $segs"
for order in desc asc; do
    for lim in 100000 50; do
        "$bin" search "$q" --db "$work/h.db" --sort "$order" --format jsonl --limit "$lim" \
            --threads 1 >"$work/one.$order.$lim" 2>/dev/null
        "$bin" search "$q" --db "$work/h.db" --sort "$order" --format jsonl --limit "$lim" \
            --threads 2 --explain >"$work/two.$order.$lim" 2>"$work/x2.$order.$lim"
        [ -s "$work/one.$order.$lim" ] || fail "--limit $lim --sort $order printed nothing"
        cmp -s "$work/one.$order.$lim" "$work/two.$order.$lim" ||
            fail "--threads 2 --sort $order --limit $lim prints other events than --threads 1"
    done
    r=$(sed -n 's/.*segments: \([0-9]*\) read.*/\1/p' "$work/x2.$order.50")
    [ -n "$r" ] && [ "$r" -le 2 ] ||
        fail "--threads 2 --sort $order --limit 50 read more than two of four segments: $(cat "$work/x2.$order.50")"
    grep -q '^stop: 50 matches kept' "$work/x2.$order.50" ||
        fail "--threads 2 --sort $order --limit 50: --explain does not say why it stopped: $(cat "$work/x2.$order.50")"
done
[ "$(wc -l <"$work/one.desc.100000")" = 6000 ] ||
    fail "four hours of 1,500 events: $(wc -l <"$work/one.desc.100000") printed"
echo "search limit: ok"
