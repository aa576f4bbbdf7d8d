#!/usr/bin/env bash
# `analyze --threads N` gives the results of one thread (issue 14): over the reference scenario
# (bench/scenario: 3000 small gzip'd files of three source types, the pack, offenses) and over a
# messy corpus (bad records of several reasons spread over interleaved files, more of one
# reason than the per-reason message limit, so that which messages are printed depends on the
# order they are met in; a newest-first file sorted in memory and one sorted on disk in runs; a
# damaged gzip; an empty file and a file that is no log; few inputs open at once, so some open
# late), the runs with 1, 2 and 4 threads must print byte-identical JSON reports (timing fields
# removed), byte-identical stderr (every diagnostic, in the same order), byte-identical
# normalized events, the same exit status, and leave the same offenses in their stores. `serve`
# with `threads: 1` and `threads: 2` (a parse worker) gives the same offenses, diagnostics and
# rejection counts for the same files posted over HTTP.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need_cmd python3 "the corpus generators (bench/gen, bench/scenario)"
need_cmd jq "reading the reports"
need_cmd gzip "the gzip'd inputs"
need_geoip "$src" "GeoIP enrichment of the runs"
"$bin" analyze --help 2>&1 | grep -q -- "--threads" || fail "analyze has no --threads option"

# The report without what depends on time and memory (they differ between any two runs), nor how
# many chunks workers read (that depends on the number of workers).
strip_timing() {
    jq -S 'del(.stats.elapsed_s, .stats.events_per_s, .stats.mb_per_s, .stats.peak_rss_kb,
               .stats.merge.chunks)
           | walk(if type == "object" then del(.checkpoint_ms) else . end)' "$1"
}

# run NAME THREADS ARGS...: analyze into $work/NAME.THREADS.{json,err,events,db,rc}.
run() {
    local name=$1 t=$2 rc=0
    shift 2
    "$bin" analyze --no-progress --format json --threads "$t" --db "$work/$name.$t.db" \
        --geoip "$src/data/geoip/country.mmdb" --events "$work/$name.$t.events" "$@" \
        >"$work/$name.$t.json" 2>"$work/$name.$t.err" || rc=$?
    echo "$rc" >"$work/$name.$t.rc"
    [ -s "$work/$name.$t.json" ] || { cat "$work/$name.$t.err" >&2; fail "$name: no report with --threads $t"; }
    strip_timing "$work/$name.$t.json" >"$work/$name.$t.norm"
    if [ -e "$work/$name.$t.db" ]; then
        "$bin" offenses list --db "$work/$name.$t.db" --format json >"$work/$name.$t.offenses" ||
            fail "$name: offenses list on the store of --threads $t"
    else
        echo "no store" >"$work/$name.$t.offenses" # --no-rules
    fi
    dump_facts "$work/$name.$t.db" >"$work/$name.$t.facts"
}

# dump_facts DB [COLUMNS]: the investigation facts (users' firsts, offense graphs) row by row in
# key order, or "no store". With more than one thread the users' firsts are written ahead of the
# checkpoint by a thread of their own (investigate/facts.h); what it leaves must be what one
# thread leaves. COLUMNS: of user_firsts (default all).
dump_facts() {
    python3 - "$1" "${2:-*}" <<'PY'
import os, sqlite3, sys
if not os.path.exists(sys.argv[1]):
    print("no store"); sys.exit(0)
c = sqlite3.connect(sys.argv[1])
for q in ("SELECT %s FROM user_firsts ORDER BY user, kind, value" % sys.argv[2],
          "SELECT * FROM graph_nodes ORDER BY offense_id, id",
          "SELECT * FROM graph_edges ORDER BY offense_id, src, dst, kind"):
    print(q)
    for row in c.execute(q):
        print("\t".join(str(v) for v in row))
PY
}

# same NAME: every output of threads 2 and 4 equals that of thread 1.
same() {
    local name=$1 t f
    for t in 2 4; do
        for f in norm err events rc offenses facts; do
            cmp -s "$work/$name.1.$f" "$work/$name.$t.$f" || {
                diff "$work/$name.1.$f" "$work/$name.$t.$f" | head -20 >&2
                fail "$name: --threads $t differs from --threads 1 in its $f"
            }
        done
    done
}

# ---- the reference scenario, with the pack ----
python3 "$src/bench/scenario" --out "$work/scn" --benign-users 10 --hours 30 --seed 7 >/dev/null
# A block list of two mining pools the scenario's instances query: those events get a threat
# match on the merge thread, after the worker made their line (which then must not be used).
printf 'mine.c3pool.com\nxmr-eu1.nanopool.org\n' >"$work/pools.txt"
for t in 1 2 4; do
    run scn "$t" --pack "$src/content/cryptojacking-aws" --context "$work/scn/context.yaml" \
        --intel "$work/pools.txt" "$work/scn/logs"
done
[ "$(jq '.offenses | length' "$work/scn.1.json")" -ge 3 ] || fail "scn: the scenario raises offenses"
[ "$(jq '.offenses | length' "$work/scn.1.offenses")" -ge 3 ] || fail "scn: the store keeps the offenses"
[ "$(grep -c . "$work/scn.1.facts")" -ge 1000 ] || fail "scn: the store keeps investigation facts"
[ "$(jq '.stats.files' "$work/scn.1.json")" -ge 1000 ] || fail "scn: the scenario has its files"
same scn
# What the workers do ahead with more than one thread (GeoIP, the record identity, the events
# writer's line) is in what `same` compared: GeoIP's countries and counters, synthesized event
# ids, and the lines the merge thread must format again (flows and queries given their
# launching user by entity linking, threat matches).
e=$work/scn.1.events
[ "$(grep -c '"country_iso_code"' "$e")" -ge 1000 ] || fail "scn: the events carry GeoIP countries"
[ "$(jq '.stats.geoip.cache_misses' "$work/scn.1.json")" -ge 100 ] &&
    [ "$(jq '.stats.geoip.cache_hits' "$work/scn.1.json")" -ge 100 ] ||
    fail "scn: the report counts GeoIP lookups ($(jq -c .stats.geoip "$work/scn.1.json"))"
[ "$(jq -c 'select(.event.dataset != "cloudtrail" and .user.name != null)' "$e" | wc -l)" -ge 100 ] ||
    fail "scn: flows and queries are linked to their launching user"
[ "$(grep -c '"threat":' "$e")" -ge 10 ] || fail "scn: the mining pools' queries match the block list"
grep -q '"id":"r-[0-9a-f]\{16\}"' "$e" || fail "scn: records without an id get a synthesized one"

# ---- a messy corpus ----
m=$work/messy
mkdir -p "$m"
python3 "$src/bench/gen" cloudtrail --records 6000 --files 3 --out "$m/ct" --seed 3 --quiet
python3 "$src/bench/gen" cloudtrail --records 4000 --out "$m/late.jsonl" --seed 4 --quiet \
    --start 2024-06-03T05:00:00Z --span-hours 6
python3 "$src/bench/gen" vpcflow --records 3000 --out "$m/flows.log" --seed 5 --quiet
python3 - "$m" <<'EOF'
import os, sys
m = sys.argv[1]
# Bad records of several reasons, spread through every CloudTrail file: 3 files x 12 syntax
# errors is more than the 20 messages a reason prints, so the order decides which print.
names = sorted(os.listdir(os.path.join(m, "ct")))
for k, n in enumerate(names):
    p = os.path.join(m, "ct", n)
    lines = open(p, "rb").read().split(b"\n")
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i % 150 == 7 + k:
            out.append(b'{"eventVersion":"1.08","eventName": broken %d}' % i)
        if i % 400 == 11 + k:
            out.append(b'{"eventName":"RunInstances","eventID":"no-time-%d-%d"}' % (k, i))
        if i % 700 == 3:
            out.append(b'[1,2,3]')
    open(p, "wb").write(b"\n".join(out))
# Newest first: sorted before the merge (in memory, or on disk with a small --sort-memory).
lines = [l for l in open(os.path.join(m, "late.jsonl"), "rb").read().split(b"\n") if l]
open(os.path.join(m, "newest-first.jsonl"), "wb").write(b"\n".join(reversed(lines)) + b"\n")
os.remove(os.path.join(m, "late.jsonl"))
# Flow log lines that do not parse.
lines = open(os.path.join(m, "flows.log"), "rb").read().split(b"\n")
for i in range(5, len(lines), 250):
    lines[i] = b"2 123456789012 eni-x not-an-address 10.0.0.1 x y 6 1 1 1 1 ACCEPT OK"
open(os.path.join(m, "flows.log"), "wb").write(b"\n".join(lines))
open(os.path.join(m, "empty.json"), "wb").close()
open(os.path.join(m, "notes.txt"), "wb").write(b"these are not logs\n" * 10)
EOF
# The same records again, gzip'd: every one a duplicate of the plain copy.
gzip -k -n "$m/ct/part-00000.jsonl"
gzip -c -n "$m/flows.log" >"$work/flows.gz"
head -c 30000 "$work/flows.gz" >"$m/damaged.log.gz"
for t in 1 2 4; do
    run messy "$t" --pack "$src/content/cryptojacking-aws" --max-open 2 "$m"
done
r() { jq -r "$1" "$work/messy.1.json"; }
[ "$(r '.stats.errors_by_reason.json_syntax // 0')" -gt 20 ] ||
    fail "messy: more syntax errors than the message limit (has $(r '.stats.errors_by_reason'))"
[ "$(r '.stats.pipeline.duplicates')" -ge 1000 ] || fail "messy: the gzip'd copy is all duplicates"
[ "$(r '.stats.merge.sorted_files')" -ge 1 ] || fail "messy: the newest-first file is sorted"
[ "$(r '.stats.merge.late_opens')" -ge 1 ] || fail "messy: with --max-open 2 some inputs open late"
grep -q "gzip" "$work/messy.1.err" || fail "messy: the damaged gzip is reported"
grep -q "further 'json_syntax' errors are counted" "$work/messy.1.err" ||
    fail "messy: the message limit is reached"
same messy

# The same with the sort on disk (runs in temporary files read ahead like any input).
for t in 1 2 4; do
    run disk "$t" --no-rules --sort-memory 1 "$m"
done
[ "$(jq '.stats.merge.sorted_runs_on_disk' "$work/disk.1.json")" -ge 2 ] ||
    fail "disk: the newest-first file is sorted in runs on disk"
same disk

# ---- one large JSON Lines file, read in chunks by several workers ----
# 12,000 records (about 15 MB: chunks of about 2 MiB) with bad records of several reasons spread
# through the whole file, a few of each reason so that every one is printed: the reports (file,
# line, byte offset, reason), their order, the counts, the events and the offenses must be those
# of one thread, which reads the file from start to end. Lines that a chunk must not start at
# (an array, garbage, two objects on one line, a pretty-printed record, an envelope, a blank
# line, an unclosed string) come in runs, so that some cuts have to look past them.
python3 "$src/bench/gen" cloudtrail --records 12000 --out "$work/big.jsonl" --seed 11 --quiet
python3 - "$work/big.jsonl" <<'EOF'
import sys
p = sys.argv[1]
lines = open(p, "rb").read().split(b"\n")
bad = [
    b'{"eventVersion":"1.08","eventName": broken %d}',
    b'{"eventName":"RunInstances","eventID":"no-time-%d"}',
    b'[1,2,%d]',
    b'these are not logs %d',
    b'{"eventTime":"2024-06-03T01:00:00Z","eventName":"X"} {"second":%d}',
    b'{"a":\n  %d\n}',
    b'{"Records":[{"eventTime":"2024-06-03T01:00:00Z","eventName":"Env%d"}]}',
    b'',
    b'{"unclosed": "%d',
]
out = []
for i, line in enumerate(lines):
    out.append(line)
    if i % 500 == 250:
        k = (i // 500) % len(bad)
        out.extend(bad[(k + j) % len(bad)].replace(b"%d", b"%d" % i) for j in range(3))
open(p, "wb").write(b"\n".join(out))
EOF
for t in 1 2 4; do
    run big "$t" --pack "$src/content/cryptojacking-aws" "$work/big.jsonl"
done
[ "$(jq '.stats.merge.chunks' "$work/big.4.json")" -ge 4 ] ||
    fail "big: --threads 4 reads the large file in chunks (chunks: $(jq '.stats.merge.chunks' "$work/big.4.json"))"
[ "$(jq '.stats.merge.chunks' "$work/big.1.json")" = 0 ] || fail "big: one thread reads no chunks"
last=$(grep -o 'big.jsonl:[0-9]*' "$work/big.1.err" | cut -d: -f2 | sort -n | tail -n 1)
[ "${last:-0}" -gt 10000 ] ||
    fail "big: bad records are reported up to the end of the file (last line ${last:-none})"
[ "$(grep -c 'big.jsonl:' "$work/big.1.err")" -ge 40 ] || fail "big: the bad records are reported"
same big

# ---- users' firsts written ahead, and moved back by late events ----
# With more than one thread the users' firsts go to the store in batches while events go on
# (investigate/facts.h). A corpus of many principals (bench/gen's hard profile: tens of thousands
# of firsts, many batches), then, from a second file that opens only after the first closed
# (--max-open 1), copies of its later records one second earlier with ids of their own: each moves
# back firsts the writer already wrote. The store must hold the rows of one thread.
mkdir -p "$work/hard"
python3 "$src/bench/gen" cloudtrail --records 12000 --profile hard --out "$work/hard/a.jsonl" \
    --seed 13 --quiet
python3 - "$work/hard" <<'EOF2'
import datetime, json, os, sys
d = sys.argv[1]
out = []
for i, line in enumerate(open(os.path.join(d, "a.jsonl"))):
    if i < 2000 or i % 3:
        continue
    r = json.loads(line)
    t = datetime.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    r["eventTime"] = (t - datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r["eventID"] = "late-%d" % i
    out.append(json.dumps(r))
open(os.path.join(d, "b.jsonl"), "w").write("\n".join(out) + "\n")
EOF2
for t in 1 2 4; do
    run hard "$t" --pack "$src/content/cryptojacking-aws" --max-open 1 "$work/hard"
done
[ "$(grep -c . "$work/hard.1.facts")" -ge 20000 ] || fail "hard: the principals' firsts are stored"
[ "$(jq '.stats.merge.late_opens' "$work/hard.1.json")" -ge 1 ] || fail "hard: the second file opens late"
[ "$(jq '.stats.pipeline.late' "$work/hard.1.json")" -ge 1000 ] ||
    fail "hard: the second file's events come late ($(jq -c .stats.pipeline "$work/hard.1.json"))"
same hard

# A bad value is a usage error.
rc=0
"$bin" analyze --threads 0 "$m" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--threads 0 is a usage error (exit $rc)"
# `serve` on the same workers (config `threads`), which do the same work ahead as analyze's
# (record identity, GeoIP): the messy files posted over HTTP give the same offenses, the same
# diagnostics in the same order, the same rejection counts, the same stored events and the same
# investigation facts with one thread as with a parse worker.
need_cmd curl "the serve part"
serve_run() { # serve_run THREADS
    local t=$1 d=$work/serve.$1 pid port f
    mkdir -p "$d"
    "$bin" token create ingest --role ingest --db "$d/s.db" >"$d/tok" 2>/dev/null
    printf 'listen: 127.0.0.1:0\ndb: %s\ngeoip: [%s]\njournal: {dir: %s/j}\nthreads: %s\n' \
        "$d/s.db" "$src/data/geoip/country.mmdb" "$d" "$t" >"$d/serve.yaml"
    "$bin" serve --config "$d/serve.yaml" --log-format json 2>"$d/log" &
    pid=$!
    for _ in $(seq 100); do
        port=$(jq -r 'select(.event == "listening") | .msg' "$d/log" 2>/dev/null | sed -n 's/.*(port \([0-9]*\)).*/\1/p')
        [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "serve (threads $t) did not start: $(tail -n 3 "$d/log")"
    for f in "$m"/ct/part-0000[0-2].jsonl "$m/newest-first.jsonl" "$m/flows.log" "$m/notes.txt"; do
        curl -s -o /dev/null -H "Authorization: Bearer $(cat "$d/tok")" --data-binary "@$f" \
            "http://127.0.0.1:$port/api/v1/ingest"
    done
    for _ in $(seq 300); do
        jq -e '.journal_lag_bytes == 0' <(curl -s "http://127.0.0.1:$port/healthz") >/dev/null && break
        sleep 0.1
    done
    curl -s "http://127.0.0.1:$port/metrics" | grep -E '^coinhound_(pipeline_rejected|records_rejected|events_processed)' |
        sort >"$d/metrics"
    kill -TERM "$pid"
    wait "$pid" || fail "serve (threads $t) did not stop cleanly"
    jq -c 'select(.level != "info") | del(.ts)' "$d/log" >"$d/diag"
    "$bin" offenses list --db "$d/s.db" --status all --format json | jq -S . >"$d/offenses"
    # The stored events show what the workers prepared (GeoIP countries, synthesized ids).
    # Sorted: events of the same second come in the order of the store's segments, which
    # depends on when serve's timed checkpoints fell.
    "$bin" search 'event.dataset != "none"' --db "$d/s.db" --from 2000-01-01 --sort asc \
        --limit 1000000 --format jsonl | LC_ALL=C sort >"$d/events"
    # Without the firsts' event ids: serve checkpoints on a timer, and a first moved back by a
    # late event keeps the id of its interval's first sight, so where the intervals fall decides.
    dump_facts "$d/s.db" "user, kind, value, ts" >"$d/facts"
}
serve_run 1
serve_run 2
[ -s "$work/serve.1/diag" ] || fail "serve: the bad records were not reported"
[ "$(jq -r '.offenses | length' "$work/serve.1/offenses")" -ge 1 ] || fail "serve: no offense"
[ "$(grep -c '"country_iso_code"' "$work/serve.1/events")" -ge 1000 ] ||
    fail "serve: the stored events carry GeoIP countries"
grep -q '"id":"r-[0-9a-f]\{16\}"' "$work/serve.1/events" ||
    fail "serve: flow records get a synthesized id"
for x in diag metrics offenses events facts; do
    cmp -s "$work/serve.1/$x" "$work/serve.2/$x" ||
        fail "serve: threads 1 and 2 differ in $x: $(diff "$work/serve.1/$x" "$work/serve.2/$x" | head -n 6)"
done
echo "ok: --threads 1, 2 and 4 give the same reports, diagnostics, events and offenses; serve's threads too"
