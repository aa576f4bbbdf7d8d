#!/usr/bin/env bash
# Hot segments and `coinhound store compact` (src/store/local.c): `analyze --db` seals its
# segments hot (cheap to write: an older readable format, its frames stored uncompressed within
# a budget and at zstd level 1 after it), and compaction rewrites them cold (format 6, full
# compression). What a user sees:
#  - a hot store answers every search (indexed lookups, the same lookups scanned, counts from the
#    index, a raw-path test, every event printed) exactly as a store written cold does, and
#    `store verify` accepts it; `store stats` counts its hot segments and bytes;
#  - `store compact` leaves no hot segment, the same answers, and fewer bytes than the cold store
#    (it orders each hour's records by user; in arrival order, the cold store's bytes); running
#    it again does nothing;
#  - `store hot` says auto by default; `store hot off` (saved in the database) makes the next
#    run seal cold, `store hot` says so;
#  - auto seals raw until its budget (COINHOUND_STORE_RAW_BUDGET here; by default the least of
#    4 GiB, an eighth of the free disk and an eighth of a size retention) is spent, and level 1
#    after: a run that crosses it takes more bytes than `store hot on`, fewer than raw, answers
#    as the cold store does and compacts to the bytes of any other hot store of the records;
#  - `store hot raw` (saved, and COINHOUND_STORE_HOT=raw) seals hot segments stored uncompressed:
#    `store hot` says raw, they take more bytes than the records hold, answer every search as
#    the cold store does, verify, and `store compact` turns them into the bytes the other hot
#    stores compact to;
#  - retention by size retires hot segments as it does cold ones, and stats count what is left;
#  - a kill -9 in the middle of `store compact` (a merged segment renamed, the next one still a
#    temporary file) leaves a store that verifies and answers the same, and a second `store
#    compact` finishes the job.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the corpus generator"
need_cmd jq "reading JSON output"
need_subcommand "$bin" store
need_subcommand "$bin" search
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/bench/gen" cloudtrail --records 6000 --span-hours 6 --out "$work/ct.jsonl" --quiet
python3 "$src/bench/gen" vpcflow --records 3000 --span-hours 6 --out "$work/vpc.txt" --quiet
opts=(--no-progress -q --no-geoip --events /dev/null)
stat_of() { "$bin" store stats --db "$work/$1" --format json | jq "[.sources[].$2] | add // 0"; }
hot_names() { ls "$work/$1.db.events" | grep -cE -- '-4[0-9a-f]{7}\.seg$' || true; }
user=$(head -n 200 "$work/ct.jsonl" | jq -r '.userIdentity.userName // empty' | sort | uniq -c | sort -n | tail -n1 | awk '{print $2}')
[ -n "$user" ] || fail "no user name in the generated records"
# answers DB: every search's output, each in its own file under $work/DB.answers
answers() {
    local d=$work/$1.answers i=0
    rm -rf "$d"
    mkdir "$d"
    while IFS='|' read -r expr extra; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        "$bin" search "$expr" --db "$work/$1.db" --limit 100000 $extra 2>/dev/null | sort >"$d/$i" ||
            fail "search '$expr' $extra failed on $1"
        [ -s "$d/$i" ] || fail "search '$expr' $extra found nothing on $1"
    done <<Q
user.name == "$user"|--format jsonl
user.name == "$user"|--format jsonl --no-index
event.action == "RunInstances" or user.name == "$user"|--count-by user.name,event.action
event.dataset == "vpcflow"|--count-by event.action
requestParameters.instanceType exists|--format jsonl --no-index
@timestamp exists|--format jsonl
Q
}
same_answers() { diff -r "$work/$1.answers" "$work/$2.answers" >"$work/diff" || fail "$3: $(head -c 600 "$work/diff")"; }

# ---- a hot store answers as a cold one ----
"$bin" analyze "${opts[@]}" --db "$work/h.db" "$work/ct.jsonl" "$work/vpc.txt" >/dev/null
COINHOUND_STORE_HOT=0 "$bin" analyze "${opts[@]}" --db "$work/c.db" "$work/ct.jsonl" "$work/vpc.txt" >/dev/null
segs=$(stat_of h.db segments) hot=$(stat_of h.db hot_segments)
[ "$segs" -ge 12 ] && [ "$hot" = "$segs" ] || fail "analyze sealed $hot hot segments of $segs (want all, 12 or more)"
[ "$(stat_of h.db hot_bytes)" = "$(stat_of h.db bytes)" ] || fail "store stats: hot bytes are not the hot store's bytes"
[ "$(hot_names h)" = "$segs" ] || fail "the hot segments' file names do not carry the hot mark"
[ "$(stat_of c.db hot_segments)" = 0 ] || fail "COINHOUND_STORE_HOT=0 sealed hot segments"
COINHOUND_STORE_HOT=off "$bin" analyze "${opts[@]}" --db "$work/c2.db" "$work/ct.jsonl" >/dev/null
[ "$(stat_of c2.db hot_segments)" = 0 ] || fail "COINHOUND_STORE_HOT=off sealed hot segments"
n=$(stat_of c.db events)
[ "$(stat_of h.db events)" = "$n" ] || fail "the hot store holds $(stat_of h.db events) events, the cold one $n"
"$bin" store verify --db "$work/h.db" >/dev/null || fail "store verify refused the hot store"
answers h
answers c
same_answers h c "the hot store answers otherwise than the cold one"
hot_bytes=$(stat_of h.db bytes) cold_bytes=$(stat_of c.db bytes)
[ "$hot_bytes" -gt "$cold_bytes" ] || fail "hot segments ($hot_bytes B) are not larger than cold ones ($cold_bytes B): not the cheap setting"
COINHOUND_STORE_HOT=1 "$bin" analyze "${opts[@]}" --db "$work/o.db" "$work/ct.jsonl" "$work/vpc.txt" >/dev/null
on_bytes=$(stat_of o.db bytes)
[ "$(stat_of o.db hot_segments)" = "$segs" ] || fail "store hot on: $(stat_of o.db hot_segments) hot segments of $segs"
[ "$on_bytes" -gt "$cold_bytes" ] || fail "level-1 hot segments ($on_bytes B) are not larger than cold ones ($cold_bytes B)"
[ "$hot_bytes" -gt $((2 * on_bytes)) ] ||
    fail "by default (auto, well within its budget) the hot store took $hot_bytes B, not the stored frames' (level 1: $on_bytes B)"

# ---- store compact ----
cp "$work/h.db" "$work/k.db"
cp -r "$work/h.db.events" "$work/k.db.events"
cp "$work/h.db" "$work/u.db"
cp -r "$work/h.db.events" "$work/u.db.events"
out=$("$bin" store compact --db "$work/h.db" --format json)
[ "$(jq .hot_inputs <<<"$out")" = "$segs" ] || fail "store compact took $(jq .hot_inputs <<<"$out") hot segments of $segs: $out"
[ "$(jq .events <<<"$out")" = "$n" ] || fail "store compact rewrote $(jq .events <<<"$out") events of $n"
[ "$(stat_of h.db hot_segments)" = 0 ] && [ "$(hot_names h)" = 0 ] || fail "hot segments left after store compact"
[ "$(stat_of h.db events)" = "$n" ] || fail "store compact changed the number of events"
"$bin" store verify --db "$work/h.db" >/dev/null || fail "store verify refused the compacted store"
answers h
same_answers h c "after store compact the store answers otherwise"
after=$(stat_of h.db bytes)
# Compaction orders each hour's records by user (compact.c): the same answers in fewer bytes than
# the arrival order a store written cold keeps; in arrival order (COINHOUND_STORE_CLUSTER=off),
# byte for byte the cold store.
[ "$after" -lt "$cold_bytes" ] || fail "compacted: $after bytes, not fewer than a store written cold: $cold_bytes"
COINHOUND_STORE_CLUSTER=off "$bin" store compact --db "$work/u.db" >/dev/null
[ "$(stat_of u.db bytes)" = "$cold_bytes" ] ||
    fail "compacted in arrival order: $(stat_of u.db bytes) bytes, a store written cold: $cold_bytes"
# What the order is for: printing a user's events reads few blocks of each hour. --explain's
# per-segment lines: "index: E of N events evaluated, B of T blocks read".
blocks_read() {
    "$bin" search "user.name == \"$user\"" --db "$work/$1.db" --explain --limit 100000 --format jsonl 2>&1 >/dev/null |
        sed -n 's/.*index: \([0-9]*\) of [0-9]* events evaluated, \([0-9]*\) of [0-9]* blocks read.*/\1 \2/p'
}
clustered=$(blocks_read h) arrival=$(blocks_read u)
[ -n "$clustered" ] || fail "search --explain printed no segment's blocks for $user"
awk '$2 > int($1 / 256) + 2 { bad = 1 } END { exit bad }' <<<"$clustered" || fail "after store compact, $user's events are spread: (events blocks)$(tr '\n' ' ' <<<"$clustered")"
sum2() { awk '{ s += $2 } END { print s + 0 }'; }
[ "$(sum2 <<<"$clustered")" -lt "$(sum2 <<<"$arrival")" ] ||
    fail "$user's events take $(sum2 <<<"$clustered") blocks after store compact, $(sum2 <<<"$arrival") in arrival order"
# A budget smaller than an hour's records (the ranges read the inputs again): the same bytes.
cp "$work/k.db" "$work/v.db"
cp -r "$work/k.db.events" "$work/v.db.events"
COINHOUND_STORE_CLUSTER_BUDGET=100000 "$bin" store compact --db "$work/v.db" >/dev/null
[ "$(stat_of v.db bytes)" = "$after" ] ||
    fail "compacted in ranges of 100 KB: $(stat_of v.db bytes) bytes, in one: $after"
again=$("$bin" store compact --db "$work/h.db" --format json)
[ "$(jq .merges <<<"$again")" = 0 ] || fail "a second store compact merged again: $again"

# ---- the setting ----
[ "$("$bin" store hot --db "$work/h.db")" = auto ] || fail "store hot: not auto by default"
"$bin" store hot --db "$work/h.db" off
[ "$("$bin" store hot --db "$work/h.db")" = off ] || fail "store hot off was not saved"
python3 "$src/bench/gen" route53 --records 500 --span-hours 2 --out "$work/r53.jsonl" --quiet
"$bin" analyze "${opts[@]}" --db "$work/h.db" "$work/r53.jsonl" >/dev/null
[ "$(stat_of h.db hot_segments)" = 0 ] || fail "with store hot off, analyze sealed hot segments"
[ "$("$bin" store stats --db "$work/h.db" --format json | jq '[.sources[] | select(.source == "route53resolver") | .events] | add')" = 500 ] ||
    fail "the run after store hot off stored no Route 53 events"
set +e
"$bin" store hot --db "$work/h.db" maybe 2>/dev/null
rc=$?
set -e
[ "$rc" = 2 ] || fail "store hot maybe: exit $rc, want 2"

# ---- store hot raw ----
: >"$work/empty.jsonl" # a run that only creates the database, for the setting to be saved in
"$bin" analyze "${opts[@]}" --db "$work/w.db" "$work/empty.jsonl" >/dev/null
"$bin" store hot --db "$work/w.db" raw
[ "$("$bin" store hot --db "$work/w.db")" = raw ] || fail "store hot raw was not saved"
"$bin" analyze "${opts[@]}" --db "$work/w.db" "$work/ct.jsonl" "$work/vpc.txt" >/dev/null
[ "$(stat_of w.db hot_segments)" = "$segs" ] || fail "store hot raw: $(stat_of w.db hot_segments) hot segments of $segs"
[ "$(stat_of w.db bytes)" -gt "$(stat_of w.db raw_bytes)" ] ||
    fail "store hot raw: $(stat_of w.db bytes) B for $(stat_of w.db raw_bytes) B of records: compressed, not stored"
[ "$(stat_of w.db bytes)" -gt $((2 * on_bytes)) ] || fail "store hot raw took $(stat_of w.db bytes) B, not much more than store hot on's $on_bytes"
"$bin" store verify --db "$work/w.db" >/dev/null || fail "store verify refused the raw hot store"
answers w
same_answers w c "the raw hot store answers otherwise than the cold one"
"$bin" store compact --db "$work/w.db" >/dev/null || fail "store compact of the raw hot store failed"
[ "$(stat_of w.db hot_segments)" = 0 ] || fail "raw hot segments left after store compact"
[ "$(stat_of w.db bytes)" = "$after" ] || fail "raw hot, compacted: $(stat_of w.db bytes) bytes, the level-1 hot store compacted: $after"
answers w
same_answers w c "the raw hot store, compacted, answers otherwise"
COINHOUND_STORE_HOT=raw "$bin" analyze "${opts[@]}" --db "$work/e.db" "$work/ct.jsonl" >/dev/null
[ "$(stat_of e.db bytes)" -gt "$(stat_of e.db raw_bytes)" ] || fail "COINHOUND_STORE_HOT=raw sealed compressed segments"

# ---- auto crosses its budget ----
# 200 KB of raw frames: the first segments are stored, the rest compressed at level 1.
COINHOUND_STORE_RAW_BUDGET=200000 "$bin" analyze "${opts[@]}" --db "$work/b.db" "$work/ct.jsonl" "$work/vpc.txt" >/dev/null
bb=$(stat_of b.db bytes)
[ "$(stat_of b.db hot_segments)" = "$segs" ] || fail "auto over budget: $(stat_of b.db hot_segments) hot segments of $segs"
[ "$bb" -gt "$on_bytes" ] && [ "$bb" -lt "$hot_bytes" ] ||
    fail "auto with a 200 KB budget took $bb B: want between level 1's $on_bytes and raw's $hot_bytes"
"$bin" store verify --db "$work/b.db" >/dev/null || fail "store verify refused the store that crossed its raw budget"
answers b
same_answers b c "the store that crossed its raw budget answers otherwise than the cold one"
# a second run's budget counts the hot segments already there: all of it goes level 1
COINHOUND_STORE_RAW_BUDGET=200000 "$bin" analyze "${opts[@]}" --db "$work/b.db" "$work/r53.jsonl" >/dev/null
r53=$("$bin" store stats --db "$work/b.db" --format json | jq '[.sources[] | select(.source == "route53resolver")] | add')
[ "$(jq .bytes <<<"$r53")" -lt "$(jq .raw_bytes <<<"$r53")" ] ||
    fail "a run after the budget was spent stored its frames uncompressed: $r53"
"$bin" store compact --db "$work/b.db" >/dev/null || fail "store compact of the budget-crossing store failed"
[ "$(stat_of b.db hot_segments)" = 0 ] || fail "hot segments left after compacting the budget-crossing store"
# compaction gives the budget back (to the next run at its open; to serve at its next commit):
# the next run stores its frames again
r53_of() { "$bin" store stats --db "$work/b.db" --format json | jq "[.sources[] | select(.source == \"route53resolver\") | .$1] | add"; }
raw0=$(r53_of raw_bytes)
python3 "$src/bench/gen" route53 --records 500 --span-hours 2 --seed 7 --out "$work/r53b.jsonl" --quiet
COINHOUND_STORE_RAW_BUDGET=200000 "$bin" analyze "${opts[@]}" --db "$work/b.db" "$work/r53b.jsonl" >/dev/null
[ "$(r53_of hot_bytes)" -gt $(($(r53_of raw_bytes) - raw0)) ] ||
    fail "after store compact, the next run's $(($(r53_of raw_bytes) - raw0)) B of records took $(r53_of hot_bytes) B hot: not stored uncompressed"

# ---- retention counts hot segments ----
"$bin" analyze "${opts[@]}" --db "$work/r.db" --retention 300KB "$work/ct.jsonl" >/dev/null
rs=$(stat_of r.db segments)
[ "$rs" -ge 1 ] && [ "$rs" -lt 6 ] || fail "retention 300KB kept $rs CloudTrail segments (want fewer than the 6 hours)"
[ "$(stat_of r.db hot_segments)" = "$rs" ] || fail "store stats: the segments retention kept are not counted hot"
[ "$(stat_of r.db bytes)" -le 300000 ] || fail "retention 300KB kept $(stat_of r.db bytes) bytes"

# ---- kill -9 in the middle of store compact ----
# Each merge holds its written temporary file for a second before its fsync and rename: once a
# merged segment shows and the next merge's temporary file too, one merge is visible (its
# inputs, hidden by it, still on disk) and the next is not.
merged() { ls "$work/k.db.events" | grep -cE '^[a-z0-9]+(-[0-9a-f]+){5}\.seg$' || true; }
COINHOUND_STORE_WRITE_DELAY_MS=1000 "$bin" store compact --db "$work/k.db" >/dev/null 2>&1 &
pid=$!
# Seen once is enough: checked again after the loop, a merge that renamed its file in between
# (the next not yet written: merges run side by side and finish together) read as "no merge".
seen=
for _ in $(seq 1 1000); do
    [ "$(merged)" -ge 1 ] && ls "$work/k.db.events" | grep -q '\.seg\.tmp$' && { seen=1; break; }
    sleep 0.02
done
[ -n "$seen" ] || fail "store compact wrote no merge before the kill"
kill -9 "$pid" 2>/dev/null || fail "store compact ended before it could be killed"
wait "$pid" 2>/dev/null || true
"$bin" store verify --db "$work/k.db" >/dev/null || fail "store verify refused the store a killed compaction left"
[ "$(stat_of k.db events)" = "$n" ] || fail "a killed compaction left $(stat_of k.db events) events visible, not $n"
[ "$(stat_of k.db hot_segments)" -gt 0 ] || fail "the killed compaction had no hot segment left to do"
answers k
same_answers k c "after a killed store compact the store answers otherwise"
"$bin" store compact --db "$work/k.db" >/dev/null || fail "store compact after a kill failed"
[ "$(stat_of k.db hot_segments)" = 0 ] || fail "hot segments left after the second store compact"
! ls "$work/k.db.events" | grep -q '\.tmp$' || fail "the killed merge's temporary file was left behind"
[ "$(ls "$work/k.db.events" | grep -c '\.seg$')" = "$segs" ] || fail "the inputs of the merges were not removed"
answers k
same_answers k c "after the second store compact the store answers otherwise"
echo "ok: hot store answers as a cold one; store compact leaves no hot segment, the same answers and the cold bytes; store hot off seals cold; store hot raw seals stored frames that answer alike and compact to the cold bytes; retention and stats count hot segments; a kill -9 in store compact loses nothing"
