#!/usr/bin/env bash
# `store hot raw` keeps the store's memory bounds as `store hot on` does (issue 10): the same
# 60,000 CloudTrail records over two hours are read with each mode, and the peak RSS of the raw
# run must not exceed the level-1 run's by more than 16 MB. A raw block is stored, not
# compressed, so a raw segment that held its blocks until its write held all its records
# (+59 MB at this size before its full blocks went to the segment's temporary file as they
# filled; -10 MB after). The raw store's segments then verify and answer a count as the level-1
# store does, and no temporary file is left. A raw run killed with -9 while its blocks sit in a
# segment's temporary files shows nothing it did not commit, and its rerun counts every event
# once.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator and the peak RSS measure"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/bench/gen" cloudtrail --records 60000 --span-hours 2 --out "$work/in.jsonl" --quiet

# Peak RSS in KiB of one analyze run with hot mode $1 on a fresh store $work/$1.db.
peak() {
    local mode=$1
    rm -rf "$work/$mode.db" "$work/$mode.db-wal" "$work/$mode.db-shm" "$work/$mode.db.seen" \
        "$work/$mode.db.events"
    COINHOUND_STORE_HOT=$mode peak_rss_kib "$bin" analyze --no-progress -q --no-geoip \
        --threads 1 --db "$work/$mode.db" --events /dev/null "$work/in.jsonl"
}

on=$(peak on)
raw=$(peak raw)
echo "peak RSS KiB: store hot on $on, store hot raw $raw"
[ "$raw" -le $((on + 16 * 1024)) ] ||
    fail "store hot raw peaked at $((raw / 1024)) MB against $((on / 1024)) MB for store hot on"

! compgen -G "$work/raw.db.events/*.tmp" >/dev/null || fail "a temporary file was left in the raw store"
"$bin" store verify --db "$work/raw.db" >/dev/null || fail "the raw store does not verify"
count() {
    "$bin" search 'event.action exists' --db "$work/$1.db" --count-by event.provider \
        --format json 2>/dev/null
}
[ "$(count raw)" = "$(count on)" ] || fail "the raw and level-1 stores count differently"
# ---- kill -9 while raw blocks are in a segment's temporary files ----
COINHOUND_STORE_HOT=raw "$bin" analyze --no-progress -q --no-geoip --threads 1 --db "$work/k.db" \
    --events /dev/null "$work/in.jsonl" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 500); do
    compgen -G "$work/k.db.events/*-t.seg.tmp" >/dev/null && break
    sleep 0.01
done
compgen -G "$work/k.db.events/*-t.seg.tmp" >/dev/null || fail "no raw block was spilled before the kill"
kill -9 "$pid" 2>/dev/null || fail "the run ended before it could be killed"
wait "$pid" 2>/dev/null || true
"$bin" store verify --db "$work/k.db" >/dev/null 2>&1 || fail "the killed raw store does not verify"
COINHOUND_STORE_HOT=raw "$bin" analyze --no-progress -q --no-geoip --threads 1 --db "$work/k.db" \
    --events /dev/null "$work/in.jsonl" >/dev/null
! compgen -G "$work/k.db.events/*.tmp" >/dev/null || fail "the killed run's temporary files were left"
[ "$(count k)" = "$(count on)" ] || fail "after kill -9 and a rerun the raw store counts differently"

echo "ok: store hot raw peaked at $((raw / 1024)) MB, store hot on at $((on / 1024)) MB"
