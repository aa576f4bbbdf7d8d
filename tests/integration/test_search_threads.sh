#!/usr/bin/env bash
# A search reads segments on several threads (--threads, default one per CPU) and answers
# exactly what one thread answers (docs/SEARCH.md, "Threads"):
#   - a store of three sources over a day (about 75 segments): listed matches (both orders,
#     with and without a limit, jsonl and csv), counts, --top and --histogram, a raw path and an
#     indexed lookup print the same bytes with 1, 2 and 4 threads,
#   - --explain of a search that reads every segment says the same lines in the same order
#     (the last line's milliseconds aside), whichever thread read which segment,
#   - a damaged segment is reported once, the same way, and the other segments' matches stay,
#   - --threads outside 1..8 is a usage error.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
. "$src/tests/integration/lib.sh"
need_cmd python3 "the record generator"
need_subcommand "$bin" search
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$src/bench/gen" cloudtrail --records 12000 --span-hours 24 --out "$work/ct.jsonl" --quiet
python3 "$src/bench/gen" vpcflow --records 6000 --span-hours 24 --out "$work/flow.log" --quiet
python3 "$src/bench/gen" route53 --records 6000 --span-hours 24 --out "$work/dns.jsonl" --quiet
"$bin" analyze --no-progress -q --no-geoip --db "$work/s.db" "$work/ct.jsonl" "$work/flow.log" \
    "$work/dns.jsonl" >/dev/null
segs=$(ls "$work/s.db.events" | grep -c '\.seg$')
[ "$segs" -ge 48 ] || fail "expected a segment per source and hour, found $segs"

# Each search: its arguments, separated from the next by ';'.
searches=(
    "event.action exists;--format;jsonl;--limit;100000"
    "event.action exists;--format;jsonl;--limit;100000;--sort;asc"
    "event.action exists;--format;jsonl;--limit;700"
    "event.action exists;--format;jsonl;--limit;700;--sort;asc"
    "event.action exists;--format;csv;--fields;@timestamp,event.action,user.name"
    "user.name == \"GitHubActionsDeployRole\";--format;jsonl;--limit;100000"
    "user.name exists;--count-by;user.name,event.action"
    "event.action exists;--top;event.dataset"
    "event.action exists;--histogram;1h"
    "userAgent contains~ \"boto\";--format;jsonl;--limit;100000"
    "dns.question.name exists;--count-by;dns.question.name;--format;json"
)
run() { # threads, search, out
    local IFS=';'
    # shellcheck disable=SC2206
    local a=($2)
    "$bin" search "${a[@]}" --db "$work/s.db" --threads "$1" >"$3" 2>"$3.err"
}
for i in "${!searches[@]}"; do
    run 1 "${searches[$i]}" "$work/r1.$i"
    [ -s "$work/r1.$i" ] || fail "search '${searches[$i]}' printed nothing with one thread"
    for t in 2 4; do
        run "$t" "${searches[$i]}" "$work/r$t.$i"
        cmp -s "$work/r1.$i" "$work/r$t.$i" ||
            fail "search '${searches[$i]}': --threads $t prints other bytes than --threads 1 ($(diff "$work/r1.$i" "$work/r$t.$i" | head -n 4))"
    done
done

# --explain of searches that read every segment: the same lines in the same order.
for q in 'event.action exists' 'user.name == "GitHubActionsDeployRole"'; do
    for t in 1 2; do
        "$bin" search "$q" --db "$work/s.db" --threads "$t" --limit 100000000 --explain \
            2>"$work/x$t" >/dev/null
        sed -i 's/; [0-9.]* ms (/; N ms (/' "$work/x$t"
    done
    [ "$(grep -c '\.seg: ' "$work/x1")" -ge "$segs" ] ||
        fail "--explain of '$q' does not name every segment: $(head -n 5 "$work/x1")"
    cmp -s "$work/x1" "$work/x2" ||
        fail "--explain of '$q' differs between one and two threads: $(diff "$work/x1" "$work/x2" | head -n 6)"
done

# A damaged segment: reported the same way, and every other segment's matches are printed.
victim=$(ls "$work/s.db.events"/cloudtrail-*.seg | sed -n 5p)
python3 - "$victim" <<'EOF'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(os.path.getsize(p) // 2)
    b = f.read(64)
    f.seek(os.path.getsize(p) // 2)
    f.write(bytes(x ^ 0x5A for x in b))
EOF
for t in 1 2; do
    "$bin" search 'event.action exists' --db "$work/s.db" --threads "$t" --format jsonl \
        --limit 100000 >"$work/d$t" 2>"$work/d$t.err"
done
grep -q "$(basename "$victim")" "$work/d1.err" ||
    fail "one thread does not report the damaged segment: $(cat "$work/d1.err")"
cmp -s "$work/d1" "$work/d2" || fail "a damaged segment: two threads print other events than one"
grep -v ' ms (' "$work/d1.err" >"$work/d1.e"
grep -v ' ms (' "$work/d2.err" >"$work/d2.e"
cmp -s "$work/d1.e" "$work/d2.e" ||
    fail "a damaged segment: two threads report it otherwise: $(diff "$work/d1.e" "$work/d2.e")"
all=$(wc -l <"$work/r1.0")
left=$(wc -l <"$work/d1")
[ "$left" -lt "$all" ] && [ "$left" -gt $((all * 9 / 10)) ] ||
    fail "a damaged segment: $left of $all events printed"

for bad in 0 9 x; do
    if "$bin" search 'event.action exists' --db "$work/s.db" --threads "$bad" >/dev/null 2>"$work/u"; then
        fail "--threads $bad accepted"
    fi
    grep -q -- '--threads' "$work/u" || fail "--threads $bad: the error does not name the option"
done
echo "search threads: ok"
