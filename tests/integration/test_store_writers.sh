#!/usr/bin/env bash
# The event store compresses a segment's blocks on several writer threads at once (local.c): a
# block waits only for its segment's block 0, whose records are its dictionary, and a segment's
# write waits for every block before it. The files must not depend on how many threads did the
# work: the same records written with one writer thread and with four give byte-identical
# segments (names and contents), `store verify` accepts them, and a search finds every event.
# A block compressed before its block 0 was ready, or a segment written before its last blocks
# were compressed, would change bytes or fail verify.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 40,000 records over 3 hours: about 50 blocks of 256 records in each hour's segment.
python3 "$src/bench/gen" cloudtrail --records 40000 --span-hours 3 --out "$work/in.jsonl" --quiet

for n in 1 4; do
    COINHOUND_STORE_WRITERS=$n "$bin" analyze --no-progress -q --no-geoip --threads 1 \
        --db "$work/w$n.db" --events /dev/null "$work/in.jsonl" ||
        fail "analyze with $n writer threads failed"
done
a=$(cd "$work/w1.db.events" && ls | grep '\.seg$' | sort)
b=$(cd "$work/w4.db.events" && ls | grep '\.seg$' | sort)
[ -n "$a" ] || fail "no segments written"
[ "$a" = "$b" ] || fail "segment names differ between 1 and 4 writer threads: $a / $b"
for f in $a; do
    cmp -s "$work/w1.db.events/$f" "$work/w4.db.events/$f" ||
        fail "segment $f differs between 1 and 4 writer threads"
done
"$bin" store verify --db "$work/w4.db" >/dev/null || fail "store verify refused the 4-thread store"
n=$("$bin" search 'event.action exists' --db "$work/w4.db" --no-index --count-by event.provider \
    --format json 2>&1 >/dev/null | sed -n 's/^\([0-9]*\) events matched.*/\1/p')
[ "$n" = 40000 ] || fail "search counted $n events of 40000"
echo "ok: $(echo "$a" | wc -l) segments identical with 1 and 4 writer threads; $n events found"
