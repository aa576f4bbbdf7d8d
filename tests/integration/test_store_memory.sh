#!/usr/bin/env bash
# The event store's memory stays flat in the time span of the input (issue 14, "Memory stays
# flat in file size"): logs read in time order keep the open segments of the last hours only,
# not one per hour since the start of the run. The same rate of CloudTrail records over 2 and
# over 12 hours is read with the store and with --no-store; the store's share of the peak RSS
# (store minus --no-store) must not grow by more than 30 MB from the short run to the long one.
# Before the fix every hour of the run stayed open until the end (+117 MB at this rate).
# The long run's segments are one per hour, and a search finds every event.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator and the peak RSS measure"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/bench/gen" cloudtrail --records 20000 --span-hours 2 --out "$work/short.jsonl" --quiet
python3 "$src/bench/gen" cloudtrail --records 120000 --span-hours 12 --out "$work/long.jsonl" --quiet

# Peak RSS in KiB of one analyze run on a fresh store (the child's ru_maxrss).
peak() {
    local input=$1
    shift
    rm -rf "$work/s.db" "$work/s.db-wal" "$work/s.db-shm" "$work/s.db.seen" "$work/s.db.events"
    peak_rss_kib "$bin" analyze --no-progress -q --no-geoip --threads 1 --db "$work/s.db" \
        --events /dev/null "$@" "$input"
}

s_store=$(peak "$work/short.jsonl")
s_none=$(peak "$work/short.jsonl" --no-store)
l_none=$(peak "$work/long.jsonl" --no-store)
l_store=$(peak "$work/long.jsonl")
growth=$(( (l_store - l_none) - (s_store - s_none) ))
echo "peak RSS KiB: short store $s_store, short --no-store $s_none, long store $l_store, long --no-store $l_none; the store's share grew by $growth KiB"
[ "$growth" -lt $((30 * 1024)) ] ||
    fail "the event store's memory grew by $((growth / 1024)) MB from 2 to 12 hours of input"

segs=$(ls "$work/s.db.events" | grep -c '\.seg$')
[ "$segs" -ge 12 ] && [ "$segs" -le 14 ] || fail "expected one segment an hour (12 to 14), found $segs"
n=$("$bin" search 'event.action exists' --db "$work/s.db" --count-by event.provider --format json \
    2>&1 >/dev/null | sed -n 's/^\([0-9]*\) events matched.*/\1/p')
[ "$n" = 120000 ] || fail "search counted $n events of 120000"
echo "ok: the store's peak RSS grew by $((growth / 1024)) MB from 2 to 12 hours; $segs segments, $n events found"
