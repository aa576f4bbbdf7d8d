#!/usr/bin/env bash
# The event store and search (docs/SEARCH.md), on the generated account with the reference
# attack inside it and on the content pack's CJ-MINE-03 cases:
#   - every event analyze writes with --events comes back from `search --format jsonl`, byte
#     for byte; reading the same logs again stores nothing twice; --no-store stores nothing,
#   - the indexes give the scan's answer (--no-index) for ==, in, CIDR, suffix, case-insensitive
#     and or/and/not mixes, and an indexed lookup skips the segments that cannot match,
#   - --count-by, --top, --histogram, csv and json print what they should; an expression error
#     names line:column and exits 2,
#   - a damaged segment is reported and skipped by search and named by `store verify` (exit 1),
#   - stores of segment format 2 (whole records), format 3 (typed parts and original records in
#     two streams), format 4 (typed parts as columns), format 5 (format 4 with a checksum per
#     index field frame) and format 6 (the default: field frames cut into a dictionary, posting
#     chunks and a record -> term column) answer every search alike, format 4 in fewer bytes than
#     format 3; a lookup whose field frame is damaged in one segment reports it and answers as
#     the scan does; a count over normalized fields reads no
#     original record, and one whose original-record stream is damaged still counts every event
#     while a search that prints the damaged records reports the segment,
#   - kill -9 in the middle of a run that has already sealed segments loses and doubles nothing:
#     the rerun's store equals a clean run's,
#   - kill -9 after segments were sealed and handed to the writer thread but before any was
#     durable (the writer held in place by COINHOUND_STORE_WRITE_DELAY_MS) loses nothing either,
#   - analyze seals hot segments, which `store compact` rewrites cold with the same events,
#   - retention by size removes the oldest segments,
#   - raw-path tests no literal decides (matches, !=, =~, a number's compare, not) find what jq
#     finds in the records analyze wrote, with the key rule on and turned off,
#   - a retro-hunt gives the offense that loading the indicator first gives, and raises
#     nothing the second time.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the scenario generator"
need_cmd jq "reading JSON output"
need_subcommand "$bin" search
need_subcommand "$bin" store
need_subcommand "$bin" hunt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
T="$src/content/cryptojacking-aws/tests"

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 8 --hours 30 --seed 11 >/dev/null
opts=(--no-progress -q --no-geoip --context "$work/scn/context.yaml")

all() { "$bin" search 'event.dataset exists' --db "$1" --format jsonl --limit 100000000 2>/dev/null | sort; }

# ---- round trip, replay, --no-store ----
"$bin" analyze "${opts[@]}" --db "$work/a.db" --events "$work/ev.jsonl" "$work/scn" >/dev/null
n=$(wc -l <"$work/ev.jsonl")
[ "$n" -gt 40000 ] || fail "the scenario gave only $n events"
all "$work/a.db" >"$work/stored.jsonl"
sort "$work/ev.jsonl" | cmp -s - "$work/stored.jsonl" ||
    fail "search --format jsonl does not return the events analyze --events wrote"
events_in() { "$bin" store stats --db "$1" --format json | jq '[.sources[].events] | add // 0'; }
[ "$(events_in "$work/a.db")" = "$n" ] || fail "store stats counts $(events_in "$work/a.db") events, not $n"
"$bin" analyze "${opts[@]}" --db "$work/a.db" "$work/scn" >/dev/null
[ "$(events_in "$work/a.db")" = "$n" ] || fail "reading the same logs again changed the store"
"$bin" analyze "${opts[@]}" --db "$work/n.db" --no-store "$work/scn" >/dev/null
[ -z "$(ls "$work/n.db.events" 2>/dev/null | grep '\.seg$' || true)" ] || fail "--no-store wrote segments"
"$bin" store verify --db "$work/a.db" >/dev/null || fail "store verify fails on a healthy store"
# analyze sealed its segments hot (format 3, zstd level 1); `store compact` rewrites them cold
# (format 6), which the rest of this test compares the older formats against.
[ "$("$bin" store stats --db "$work/a.db" --format json | jq '[.sources[].hot_segments] | add')" -gt 0 ] ||
    fail "analyze sealed no hot segment"
"$bin" store compact --db "$work/a.db" >/dev/null || fail "store compact failed"
[ "$("$bin" store stats --db "$work/a.db" --format json | jq '[.sources[].hot_segments] | add')" = 0 ] ||
    fail "store compact left hot segments"
all "$work/a.db" | cmp -s - "$work/stored.jsonl" || fail "store compact changed the stored events"

# ---- index == scan ----
user=$(jq -r .attacker.user "$work/scn/ground_truth.json")
ip=$(jq -r 'select(.source.ip) | .source.ip' "$work/ev.jsonl" | sort | uniq -c | sort -n | sed -n 1p | awk '{print $2}')
dom=$(jq -r 'select(.dns.question.name) | .dns.question.name' "$work/ev.jsonl" | sed -n 1p | awk -F. '{print $(NF-1)"."$NF}')
for e in "user.name == \"$user\"" "user.name =~ \"$(echo "$user" | tr a-z A-Z)\"" \
    "source.ip == $ip" "source.ip in 10.0.0.0/8 and destination.ip in 0.0.0.0/1" \
    "dns.question.name endswith \"$dom\"" "event.action in [\"RunInstances\", \"ConsoleLogin\"]" \
    "user.name == \"$user\" and not event.action == \"ConsoleLogin\"" \
    "user.name == \"$user\" or dns.question.name endswith \"$dom\"" \
    "cloud.instance.id exists and event.dataset == \"vpcflow\""; do
    a=$("$bin" search "$e" --db "$work/a.db" --format jsonl --limit 100000000 2>/dev/null | md5sum)
    b=$("$bin" search "$e" --db "$work/a.db" --format jsonl --limit 100000000 --no-index 2>/dev/null | md5sum)
    [ "$a" = "$b" ] || fail "the indexes and the scan disagree on: $e"
done
m=$("$bin" search "user.name == \"$user\"" --db "$work/a.db" --format jsonl --limit 100000000 2>/dev/null | wc -l)
jm=$(jq -r --arg u "$user" 'select(.user.name == $u) | 1' "$work/ev.jsonl" | wc -l)
[ "$m" = "$jm" ] && [ "$m" -gt 0 ] || fail "user.name == $user: $m matches, jq finds $jm"
"$bin" search "user.name == \"nobody-at-all\"" --db "$work/a.db" --explain >/dev/null 2>"$work/x.txt"
grep -q "index lookup" "$work/x.txt" || fail "--explain does not say the index is used"
grep -q "skipped: the day's summary rules out" "$work/x.txt" || fail "an absent user did not skip segments through the day summaries"
! grep -q "skipped: the indexes rule out" "$work/x.txt" || fail "an absent user still opened segments the summaries rule out"
! grep -q "events evaluated" "$work/x.txt" || fail "an absent user still read records"

# ---- segment formats 2, 3, 4 and 5 against format 6 (the default) ----
COINHOUND_STORE_FORMAT=5 "$bin" analyze "${opts[@]}" --db "$work/f5.db" "$work/scn" >/dev/null
COINHOUND_STORE_FORMAT=2 "$bin" analyze "${opts[@]}" --db "$work/f2.db" "$work/scn" >/dev/null
COINHOUND_STORE_FORMAT=3 "$bin" analyze "${opts[@]}" --db "$work/f3.db" "$work/scn" >/dev/null
COINHOUND_STORE_FORMAT=4 "$bin" analyze "${opts[@]}" --db "$work/f4.db" "$work/scn" >/dev/null
fmt() { python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1], "rb").read(), 8)[0])' "$1"; }
[ "$(fmt "$(ls "$work/f2.db.events"/*.seg | sed -n 1p)")" = 2 ] || fail "COINHOUND_STORE_FORMAT=2 did not write format 2"
[ "$(fmt "$(ls "$work/f3.db.events"/*.seg | sed -n 1p)")" = 3 ] || fail "COINHOUND_STORE_FORMAT=3 did not write format 3"
[ "$(fmt "$(ls "$work/f4.db.events"/*.seg | sed -n 1p)")" = 4 ] || fail "COINHOUND_STORE_FORMAT=4 did not write format 4"
[ "$(fmt "$(ls "$work/f5.db.events"/*.seg | sed -n 1p)")" = 5 ] || fail "COINHOUND_STORE_FORMAT=5 did not write format 5"
[ "$(fmt "$(ls "$work/a.db.events"/*.seg | sed -n 1p)")" = 6 ] || fail "the store does not write format 6"
"$bin" store verify --db "$work/a.db" >/dev/null || fail "store verify fails on a format 6 store"
"$bin" store verify --db "$work/f5.db" >/dev/null || fail "store verify fails on a format 5 store"
"$bin" store verify --db "$work/f2.db" >/dev/null || fail "store verify fails on a format 2 store"
"$bin" store verify --db "$work/f3.db" >/dev/null || fail "store verify fails on a format 3 store"
"$bin" store verify --db "$work/f4.db" >/dev/null || fail "store verify fails on a format 4 store"
for e in "user.name == \"$user\"" "event.action in [\"RunInstances\", \"ConsoleLogin\"]" \
    "source.ip in 10.0.0.0/8 and destination.port > 1000" "requestParameters.instanceType exists" \
    "user_agent.original contains \"aws-cli\" or event.outcome == \"failure\""; do
    for x in "" --no-index; do
        a=$("$bin" search "$e" --db "$work/a.db" --format jsonl --limit 100000000 $x 2>/dev/null | md5sum)
        b=$("$bin" search "$e" --db "$work/f2.db" --format jsonl --limit 100000000 $x 2>/dev/null | md5sum)
        c=$("$bin" search "$e" --db "$work/f3.db" --format jsonl --limit 100000000 $x 2>/dev/null | md5sum)
        d=$("$bin" search "$e" --db "$work/f4.db" --format jsonl --limit 100000000 $x 2>/dev/null | md5sum)
        f=$("$bin" search "$e" --db "$work/f5.db" --format jsonl --limit 100000000 $x 2>/dev/null | md5sum)
        [ "$a" = "$f" ] || fail "formats 5 and 6 disagree on: $e $x"
        [ "$a" = "$b" ] || fail "formats 2 and 6 disagree on: $e $x"
        [ "$a" = "$c" ] || fail "formats 3 and 6 disagree on: $e $x"
        [ "$a" = "$d" ] || fail "formats 4 and 6 disagree on: $e $x"
    done
    a=$("$bin" search "$e" --db "$work/a.db" --count-by event.action,user.name --no-index 2>/dev/null | md5sum)
    b=$("$bin" search "$e" --db "$work/f2.db" --count-by event.action,user.name --no-index 2>/dev/null | md5sum)
    c=$("$bin" search "$e" --db "$work/f3.db" --count-by event.action,user.name --no-index 2>/dev/null | md5sum)
    d=$("$bin" search "$e" --db "$work/f4.db" --count-by event.action,user.name 2>/dev/null | md5sum)
    f=$("$bin" search "$e" --db "$work/f5.db" --count-by event.action,user.name 2>/dev/null | md5sum)
    g=$("$bin" search "$e" --db "$work/a.db" --count-by event.action,user.name 2>/dev/null | md5sum)
    [ "$a" = "$b" ] && [ "$a" = "$c" ] && [ "$a" = "$d" ] && [ "$a" = "$f" ] && [ "$a" = "$g" ] ||
        fail "formats 2, 3, 4, 5 and 6 count differently on: $e"
done
# Format 4 keeps the same events in fewer bytes than format 3.
b3=$("$bin" store stats --db "$work/f3.db" --format json | jq '[.sources[].bytes] | add')
b4=$("$bin" store stats --db "$work/f4.db" --format json | jq '[.sources[].bytes] | add')
[ "$b4" -lt "$b3" ] || fail "format 4 is not smaller than format 3 ($b4 against $b3 bytes)"
"$bin" search 'event.action exists' --db "$work/a.db" --count-by event.action --no-index --explain >/dev/null 2>"$work/x.txt"
grep -q "original records: 0 blocks" "$work/x.txt" || fail "a count over normalized fields read original records"
# An expression whose normalized fields rule records out before its raw path is read: only the
# records they leave open have their JSON inflated and parsed, with the same answer as the raw
# path's own count; none at all when no record passes them.
"$bin" search 'event.action == "NoSuchAction" and requestParameters.instanceType exists' --db "$work/a.db" \
    --no-index --explain >/dev/null 2>"$work/x.txt"
grep -q "original records: 0 blocks" "$work/x.txt" ||
    fail "a raw-path search read original records its normalized fields had ruled out: $(grep 'original records' "$work/x.txt")"
runs=$("$bin" search 'requestParameters.instanceType exists' --db "$work/a.db" --count-by event.action --format json 2>/dev/null |
    jq '[.. | objects | select(."event.action" == "RunInstances") | .count] | add // 0')
both=$("$bin" search 'event.action == "RunInstances" and requestParameters.instanceType exists' --db "$work/a.db" \
    --no-index --format jsonl --limit 100000000 2>/dev/null | wc -l)
[ "$runs" -gt 0 ] && [ "$both" = "$runs" ] ||
    fail "normalized field and raw path together found $both events, the raw path's count says $runs RunInstances"
# A normalized field compared with a raw path: the record's JSON is parsed for its other side.
same=$("$bin" search 'user.name == userIdentity.userName' --db "$work/a.db" --format jsonl --limit 100000000 2>/dev/null | wc -l)
[ "$same" -gt 0 ] || fail "user.name == userIdentity.userName found no event"
! grep -q "original records: [1-9]" "$work/x.txt" || fail "a count over normalized fields read original records"

# Raw-path tests that no literal of the record's text decides (a regular expression, a number's
# compare, !=, a case-insensitive compare) are ruled out by a text without the path's key before
# any parse, and turned off within a segment where that rarely rules anything out (a key every
# record holds): either way they match what jq finds in the records analyze wrote.
rawcount() { "$bin" search "$1" --db "$work/a.db" --format jsonl --limit 100000000 2>/dev/null | wc -l; }
jqcount() { jq -c "select($1)" "$work/ev.jsonl" | wc -l; }
for pair in \
    'requestParameters.instanceType matches "^[a-z][0-9]"|(.requestParameters.instanceType? | strings | test("^[a-z][0-9]"))' \
    'requestParameters.instanceType != "t3.micro"|(.requestParameters.instanceType? | strings | . != "t3.micro")' \
    'requestParameters.instanceType =~ "T3.MICRO"|(.requestParameters.instanceType? | strings | ascii_downcase == "t3.micro")' \
    'requestParameters.instancesSet.items.maxCount > 1|([.requestParameters.instancesSet.items[]?.maxCount? | numbers | select(. > 1)] | length > 0)' \
    'eventVersion matches "^1[.]"|(.eventVersion? | strings | test("^1[.]"))' \
    'not requestParameters.instanceType matches "^t"|([.requestParameters.instanceType? | strings | test("^t")] | any | not)'; do
    e=${pair%%|*} q=${pair#*|}
    s=$(rawcount "$e") j=$(jqcount "$q")
    [ "$s" = "$j" ] || fail "search finds $s events for <$e>, jq $j"
    [ "$s" -gt 0 ] || fail "no event for <$e>: the check proves nothing"
done

# ---- a damaged original-record stream ----
cp -r "$work/a.db" "$work/o.db"
cp -r "$work/a.db.events" "$work/o.db.events"
cp "$work/a.db-wal" "$work/o.db-wal" 2>/dev/null || true
oseg=$(ls -S "$work/o.db.events"/*.seg | sed -n 1p)
# Flip a byte inside block 0's original-record frame (block table entry: offset at +40).
python3 - "$oseg" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
bt = struct.unpack_from("<Q", b, 64)[0]
off = struct.unpack_from("<Q", b, bt + 40)[0]
b[off + 20] ^= 0x40
open(p, "wb").write(b)
PY
c3=$("$bin" search 'event.dataset exists' --db "$work/o.db" --count-by event.dataset 2>"$work/o.err" --no-index | md5sum)
c2=$("$bin" search 'event.dataset exists' --db "$work/f2.db" --count-by event.dataset 2>/dev/null --no-index | md5sum)
[ "$c3" = "$c2" ] || fail "a damaged original-record stream changed a count over normalized fields"
grep -q " 0 damaged" "$work/o.err" && ! grep -q "damaged segments skipped" "$work/o.err" ||
    fail "a count over normalized fields reported the original records it never reads"
"$bin" search 'event.dataset exists' --db "$work/o.db" --format jsonl --limit 100000000 >"$work/o.jsonl" 2>"$work/o.err" ||
    fail "search over a damaged original-record stream failed"
grep -q "original-record block 0" "$work/o.err" || fail "search did not report the damaged original-record stream"
set +e
"$bin" store verify --db "$work/o.db" >"$work/v.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "DAMAGED.*$(basename "$oseg")" "$work/v.txt" || fail "store verify misses a damaged original-record stream"

# ---- a damaged index field part (format 6: a checksum per directory, dictionary and chunk) ----
cp -r "$work/a.db" "$work/i.db"
cp -r "$work/a.db.events" "$work/i.db.events"
cp "$work/a.db-wal" "$work/i.db-wal" 2>/dev/null || true
# Flip a byte inside every segment's user.name directory (field 0, after the 9 x 12-byte table).
python3 - "$work/i.db.events"/*.seg <<'PY'
import struct, sys
for p in sys.argv[1:]:
    b = bytearray(open(p, "rb").read())
    ix = struct.unpack_from("<Q", b, 72)[0]
    b[ix + 9 * 12 + 5] ^= 0x40
    open(p, "wb").write(b)
PY
a=$("$bin" search "user.name == \"$user\"" --db "$work/a.db" --format jsonl --limit 100000000 2>/dev/null | md5sum)
i=$("$bin" search "user.name == \"$user\"" --db "$work/i.db" --format jsonl --limit 100000000 2>"$work/i.err" | md5sum)
[ "$a" = "$i" ] || fail "a lookup over damaged user.name frames does not answer as the index does"
grep -q "index field user.name directory checksum mismatch.*evaluated instead" "$work/i.err" ||
    fail "a lookup did not report the damaged user.name frames"
a=$("$bin" search 'event.action == "RunInstances"' --db "$work/a.db" --format jsonl --limit 100000000 2>/dev/null | md5sum)
i=$("$bin" search 'event.action == "RunInstances"' --db "$work/i.db" --format jsonl --limit 100000000 2>"$work/i.err" | md5sum)
[ "$a" = "$i" ] && ! grep -q "checksum mismatch" "$work/i.err" ||
    fail "a lookup on event.action read the damaged user.name frames"
set +e
"$bin" store verify --db "$work/i.db" >"$work/v.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "DAMAGED.*user.name" "$work/v.txt" || fail "store verify misses a damaged index field frame"

# ---- newest first, limit, formats, aggregations ----
ts=$("$bin" search "user.name == \"$user\"" --db "$work/a.db" --format jsonl --limit 5 2>/dev/null | jq -r '."@timestamp"')
[ "$(echo "$ts" | wc -l)" = 5 ] || fail "--limit 5 did not print 5 events"
[ "$ts" = "$(echo "$ts" | sort -r)" ] || fail "results are not newest first"
newest=$(jq -r --arg u "$user" 'select(.user.name == $u) | ."@timestamp"' "$work/ev.jsonl" | sort -r | sed -n 1p)
[ "$(echo "$ts" | sed -n 1p)" = "$newest" ] || fail "the first result is not the newest event"
tsa=$("$bin" search "user.name == \"$user\"" --db "$work/a.db" --format jsonl --limit 3 --sort asc 2>/dev/null | jq -r '."@timestamp"')
[ "$tsa" = "$(echo "$tsa" | sort)" ] || fail "--sort asc is not oldest first"
cb=$("$bin" search 'event.dataset exists' --db "$work/a.db" --count-by event.dataset --format json 2>/dev/null)
for ds in cloudtrail vpcflow route53resolver; do
    got=$(echo "$cb" | jq --arg d "$ds" '.groups[] | select(."event.dataset" == $d) | .count')
    want=$(jq -r --arg d "$ds" 'select(.event.dataset == $d) | 1' "$work/ev.jsonl" | wc -l)
    [ "$got" = "$want" ] || fail "--count-by event.dataset: $ds $got, jq says $want"
done
top=$("$bin" search 'user.name exists' --db "$work/a.db" --top user.name --limit 1 --format csv 2>/dev/null | tail -1 | cut -d, -f1)
jtop=$(jq -r 'select(.user.name) | .user.name' "$work/ev.jsonl" | sort | uniq -c | sort -rn | sed -n 1p | awk '{print $2}')
[ "$top" = "$jtop" ] || fail "--top user.name says $top, jq says $jtop"
h=$("$bin" search 'event.dataset == "cloudtrail"' --db "$work/a.db" --histogram 1h --format json 2>/dev/null)
[ "$(echo "$h" | jq '[.buckets[].count] | add')" = "$(jq -r 'select(.event.dataset == "cloudtrail") | 1' "$work/ev.jsonl" | wc -l)" ] ||
    fail "--histogram buckets do not add up to the matches"
"$bin" search "user.name == \"$user\"" --db "$work/a.db" --fields @timestamp,user.name,event.action --format csv --limit 2 2>/dev/null >"$work/c.csv"
[ "$(head -1 "$work/c.csv")" = "@timestamp,user.name,event.action" ] || fail "csv header: $(head -1 "$work/c.csv")"
"$bin" search "user.name == \"$user\"" --db "$work/a.db" --format json --limit 2 2>/dev/null | jq -e '.events | length == 2' >/dev/null ||
    fail "--format json is not one object with 2 events"
set +e
"$bin" search 'user.name == "x" and (event.action ==' --db "$work/a.db" >/dev/null 2>"$work/e.txt"
rc=$?
set -e
[ "$rc" = 2 ] || fail "an expression error exits $rc, not 2"
grep -q "at 1:" "$work/e.txt" || fail "an expression error does not name line:column: $(cat "$work/e.txt")"

# ---- offense drill-down ----
oid=$("$bin" offenses list --db "$work/a.db" --format json | jq '[.offenses[] | select(.event_count > 1)][0].id')
[ "$oid" != null ] || fail "the scenario gave no offense with several events"
nids=$("$bin" offenses show "$oid" --db "$work/a.db" --format json | sed -n 1p | jq '.event_ids | length')
"$bin" offenses show "$oid" --db "$work/a.db" --format json --events | tail -n +2 >"$work/oe.jsonl"
[ "$nids" -gt 0 ] && [ "$(wc -l <"$work/oe.jsonl")" = "$nids" ] ||
    fail "offenses show $oid --events printed $(wc -l <"$work/oe.jsonl") events for $nids event ids"
[ "$(jq -r '.event.id' "$work/oe.jsonl" | sort)" = "$("$bin" offenses show "$oid" --db "$work/a.db" --format json | sed -n 1p | jq -r '.event_ids[]' | sort)" ] ||
    fail "offenses show --events returned other events than the offense's"
# The attacker's offense holds the mining stage too: its DNS queries and flows come back with it.
aid=$("$bin" offenses list --db "$work/a.db" --format json | jq '[.offenses[] | select(.rules | map(.id) | index("CJ-CHAIN-01"))][0].id')
[ "$aid" != null ] || fail "no offense holds CJ-CHAIN-01"
"$bin" offenses show "$aid" --db "$work/a.db" --format json --events | tail -n +2 >"$work/ae.jsonl"
for ds in cloudtrail route53resolver vpcflow; do
  [ -n "$(jq -c --arg ds "$ds" 'select(.event.dataset == $ds)' "$work/ae.jsonl")" ] ||
    fail "the attacker's offense $aid lists no $ds events: $(jq -r '.event.dataset' "$work/ae.jsonl" | sort | uniq -c)"
done

# ---- a damaged segment ----
cp -r "$work/a.db" "$work/d.db"
cp -r "$work/a.db.events" "$work/d.db.events"
cp "$work/a.db-wal" "$work/d.db-wal" 2>/dev/null || true
seg=$(ls -S "$work/d.db.events"/*.seg | sed -n 1p)
size=$(stat -c %s "$seg")
printf 'XXXXXXXX' | dd of="$seg" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
"$bin" search 'event.dataset exists' --db "$work/d.db" --format jsonl --limit 100000000 >"$work/d.jsonl" 2>"$work/d.err" ||
    fail "search over a damaged segment failed"
grep -q "damaged" "$work/d.err" || fail "search did not report the damaged segment"
dn=$(wc -l <"$work/d.jsonl")
[ "$dn" -lt "$n" ] && [ "$dn" -gt 0 ] || fail "with one damaged segment search returned $dn of $n events"
set +e
"$bin" store verify --db "$work/d.db" >"$work/v.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "store verify exits $rc on a damaged store"
grep -q "DAMAGED.*$(basename "$seg")" "$work/v.txt" || fail "store verify does not name $(basename "$seg")"

# ---- day summaries: a damaged one is reported, never changes an answer, and is rebuilt ----
cp -r "$work/a.db" "$work/s.db"
cp -r "$work/a.db.events" "$work/s.db.events"
cp "$work/a.db-wal" "$work/s.db-wal" 2>/dev/null || true
sum=$(ls "$work/s.db.events"/day-*.sum | sed -n 1p)
[ -n "$sum" ] || fail "analyze wrote no day summary"
se="user.name == \"$user\" or dns.question.name endswith \"$dom\""
want=$("$bin" search "$se" --db "$work/a.db" --format jsonl --limit 100000000 --no-index 2>/dev/null | md5sum)
printf 'XXXXXXXX' | dd of="$sum" bs=1 seek=16 conv=notrunc 2>/dev/null
set +e
"$bin" store verify --db "$work/s.db" >"$work/v2.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "store verify exits $rc on a damaged summary"
grep -q "DAMAGED.*$(basename "$sum")" "$work/v2.txt" || fail "store verify does not name the damaged summary $(basename "$sum")"
got=$("$bin" search "$se" --db "$work/s.db" --format jsonl --limit 100000000 2>"$work/s.err" | md5sum)
[ "$got" = "$want" ] || fail "with a damaged summary the lookup differs from the scan"
grep -q "damaged summary" "$work/s.err" || fail "search did not report the damaged summary: $(cat "$work/s.err")"
"$bin" store verify --db "$work/s.db" >/dev/null || fail "the search did not rebuild the damaged summary"
"$bin" search "$se" --db "$work/s.db" --format jsonl --limit 100000000 2>"$work/s.err" >/dev/null
! grep -q "damaged summary" "$work/s.err" || fail "the rebuilt summary is still reported damaged"
# A damaged field frame, one that a lookup on another field never reads, is caught by verify.
size=$(stat -c %s "$sum")
printf 'XXXXXXXX' | dd of="$sum" bs=1 seek=$((size - 20)) conv=notrunc 2>/dev/null
set +e
"$bin" store verify --db "$work/s.db" >"$work/v3.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "DAMAGED.*$(basename "$sum")" "$work/v3.txt" || fail "store verify misses a damaged field frame of a summary"

# ---- kill -9 after some segments were sealed ----
ct=$(find "$work/scn/logs" -path '*CloudTrail*' -type d -name 'us-east-1' | sed -n 1p)
"$bin" analyze "${opts[@]}" --db "$work/k.db" "$ct" >/dev/null
before=$(events_in "$work/k.db")
mkdir "$work/ksum"
cp "$work/k.db.events"/day-*.sum "$work/ksum/"
COINHOUND_STORE_SEAL_BYTES=30000 "$bin" analyze "${opts[@]}" --db "$work/k.db" "$work/scn" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do
    ls "$work/k.db.events" | grep -c -- '-0000000000000002-.*\.seg$' >/dev/null && break
    sleep 0.02
done
ls "$work/k.db.events" | grep -c -- '-0000000000000002-.*\.seg$' >/dev/null || fail "the run sealed no segment before the kill"
kill -9 "$pid" 2>/dev/null || fail "the run ended before it could be killed"
wait "$pid" 2>/dev/null || true
[ "$(events_in "$work/k.db")" = "$before" ] || fail "a killed run's uncommitted segments are visible"
"$bin" analyze "${opts[@]}" --db "$work/k.db" "$work/scn" >/dev/null
all "$work/k.db" | cmp -s - "$work/stored.jsonl" ||
    fail "after kill -9 and a rerun the store differs from a clean run's (lost or doubled events)"
! ls "$work/k.db.events" | grep -c '\.tmp$' >/dev/null || fail "temporary segment files left behind"
# The first run's summaries, put back, miss the rerun's segments: the lookups still give the
# scan's answer (uncovered segments are opened) and the search brings them up to date.
cp "$work/ksum"/day-*.sum "$work/k.db.events/"
for e in "user.name == \"$user\"" "event.action in [\"RunInstances\", \"ConsoleLogin\"]"; do
    a=$("$bin" search "$e" --db "$work/k.db" --format jsonl --limit 100000000 --explain 2>"$work/ks.err" | md5sum)
    b=$("$bin" search "$e" --db "$work/k.db" --format jsonl --limit 100000000 --no-index 2>/dev/null | md5sum)
    [ "$a" = "$b" ] || fail "with stale day summaries the lookup differs from the scan: $e"
done
"$bin" store verify --db "$work/k.db" >/dev/null || fail "store verify fails after the stale summaries were rebuilt"

# ---- kill -9 between seal and write ----
# The writer thread holds each written temporary file for 2 s before its fsync and rename:
# when the first temporary file of this run's generation shows, the pipeline has sealed at
# least one segment and none of them is on disk yet.
rm -rf "$work/k.db" "$work/k.db.events"
"$bin" analyze "${opts[@]}" --db "$work/k.db" "$ct" >/dev/null
COINHOUND_STORE_SEAL_BYTES=30000 COINHOUND_STORE_WRITE_DELAY_MS=2000 \
    "$bin" analyze "${opts[@]}" --db "$work/k.db" "$work/scn" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 1000); do
    ls "$work/k.db.events" | grep -c -- '-0000000000000002-.*\.seg\.tmp$' >/dev/null && break
    sleep 0.02
done
ls "$work/k.db.events" | grep -c -- '-0000000000000002-.*\.seg\.tmp$' >/dev/null ||
    fail "the writer thread started no segment before the kill"
! ls "$work/k.db.events" | grep -c -- '-0000000000000002-.*\.seg$' >/dev/null ||
    fail "a segment became durable although the writer was held"
kill -9 "$pid" 2>/dev/null || fail "the held run ended before it could be killed"
wait "$pid" 2>/dev/null || true
[ "$(events_in "$work/k.db")" = "$before" ] || fail "sealed but unwritten segments changed the store"
"$bin" analyze "${opts[@]}" --db "$work/k.db" "$work/scn" >/dev/null
all "$work/k.db" | cmp -s - "$work/stored.jsonl" ||
    fail "after kill -9 between seal and write and a rerun the store differs from a clean run's"
! ls "$work/k.db.events" | grep -c '\.tmp$' >/dev/null || fail "the held temporary file was left behind"
"$bin" store verify --db "$work/k.db" >/dev/null || fail "store verify fails after the rerun"

# ---- retention by size ----
"$bin" analyze "${opts[@]}" --db "$work/r.db" --retention 1MB "$work/scn" >/dev/null
rb=$("$bin" store stats --db "$work/r.db" --format json | jq '[.sources[].bytes] | add')
[ "$rb" -le 1000000 ] && [ "$rb" -gt 0 ] || fail "retention 1MB kept $rb bytes"
[ "$("$bin" store retention --db "$work/r.db")" = 1MB ] || fail "the retention was not saved"
# What retention removed leaves the summaries: lookups equal the scan, verify passes, and a
# day without segments keeps no summary.
for e in "user.name == \"$user\"" "$se"; do
    a=$("$bin" search "$e" --db "$work/r.db" --format jsonl --limit 100000000 2>/dev/null | md5sum)
    b=$("$bin" search "$e" --db "$work/r.db" --format jsonl --limit 100000000 --no-index 2>/dev/null | md5sum)
    [ "$a" = "$b" ] || fail "after retention the summaries' lookup differs from the scan: $e"
done
"$bin" store verify --db "$work/r.db" >/dev/null || fail "store verify fails after retention"
for f in "$work/r.db.events"/day-*.sum; do
    [ -e "$f" ] || continue
    d=$(basename "$f" .sum | cut -d- -f2)
    ls "$work/r.db.events" | grep '\.seg$' | awk -F- -v d="$d" '{ if (int($2 / 24) == d) f = 1 } END { exit !f }' ||
        fail "$(basename "$f") remains for a day retention emptied"
done

# ---- retro-hunt ----
"$bin" intel load "$T/CJ-MINE-03-intel.json" --db "$work/h1.db" >/dev/null
"$bin" analyze --no-progress -q --no-geoip --db "$work/h1.db" "$T/CJ-MINE-03-launch.jsonl" "$T/CJ-MINE-03-dns.jsonl" >/dev/null
"$bin" analyze --no-progress -q --no-geoip --db "$work/h2.db" "$T/CJ-MINE-03-launch.jsonl" "$T/CJ-MINE-03-dns.jsonl" >/dev/null
"$bin" intel load "$T/CJ-MINE-03-intel.json" --db "$work/h2.db" >"$work/il.txt"
grep -q "retro-hunt:" "$work/il.txt" || fail "intel load does not report its retro-hunt"
"$bin" hunt --db "$work/h2.db" --since 100000d >"$work/hunt1.txt"
grep -q "1 raised CJ-MINE-03" "$work/hunt1.txt" || fail "hunt did not raise CJ-MINE-03: $(cat "$work/hunt1.txt")"
"$bin" hunt --db "$work/h2.db" --since 100000d >"$work/hunt2.txt"
grep -q " 0 raised" "$work/hunt2.txt" || fail "a second hunt raised again: $(cat "$work/hunt2.txt")"
off() {
    "$bin" offenses list --db "$1" --format json | jq -c '[.offenses[] | {v: .index.value, m: .magnitude,
        n: .event_count, f: .first_seen, l: .last_seen, r: [.rules[] | {id, count, first_seen, last_seen}]}]'
}
o1=$(off "$work/h1.db")
o2=$(off "$work/h2.db")
echo "$o1" | grep -c CJ-MINE-03 >/dev/null || fail "loading the indicator first raised no CJ-MINE-03: $o1"
[ "$o1" = "$o2" ] || fail "indicator before the logs: $o1; after, by retro-hunt: $o2"
"$bin" offenses show 1 --db "$work/h2.db" | grep -c "retro: true" >/dev/null || fail "the retro hit's evidence does not say retro: true"
echo "ok"
