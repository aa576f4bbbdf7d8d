#!/usr/bin/env bash
# The pipeline's promises, on the generated account with the reference attack inside it:
#   - reading the same logs twice into one store changes nothing (no doubled counts or risk),
#   - the logs split into 2 and into 5 time slices, analyzed one run after another into one
#     store, give the attacker's offense of one run over all of them (rules, counts, magnitude,
#     event count) and the same user risk,
#   - files written newest-first, or shuffled, give the same offense as the delivered ones
#     (they are sorted before the merge: in memory, and with a tiny --sort-memory on disk),
#   - two processes writing one store at once lose no offense.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in python3 jq; do command -v $tool >/dev/null || fail "$tool is required (scripts/deps installs it)"; done
geo="$src/data/geoip/country.mmdb"
[ -r "$geo" ] || fail "no GeoIP database at $geo (scripts/install-geoip installs it)"

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 8 --hours 30 --seed 11 >/dev/null
attacker=$(jq -r .attacker.user "$work/scn/ground_truth.json")
opts=(--no-progress -q --format json --context "$work/scn/context.yaml" --geoip "$geo")

# What a test compares: the attacker's offense and every user's risk, as one line each.
summary() {
  jq -c --arg a "$attacker" '[.offenses[] | select(.index.value == $a) |
      {m: .magnitude, n: .event_count, r: ([.rules[] | {id, count}] | sort_by(.id))}]' "$1"
}
risk() { jq -c '[.users[] | {name, risk}] | sort_by(.name)' "$1"; }
final() { # the store's view after the last run
  "$bin" offenses list --db "$1" --status all --format json >"$1.list.json"
  jq -c --arg a "$attacker" '[.offenses[] | select(.index.value == $a) |
      {m: .magnitude, n: .event_count, r: ([.rules[] | {id, count}] | sort_by(.id))}]' "$1.list.json"
}

"$bin" analyze "${opts[@]}" --db "$work/one.db" "$work/scn/logs" >"$work/one.json"
want=$(summary "$work/one.json")
want_risk=$(risk "$work/one.json")
grep -q CJ-CHAIN-01 <<<"$want" || fail "one run: the kill chain fires: $want"
grep -q CJ-EC2-03 <<<"$want" || fail "one run: CJ-EC2-03 fires: $want"
grep -q CJ-EC2-04 <<<"$want" || fail "one run: CJ-EC2-04 fires: $want"
late=$(jq .stats.pipeline.late "$work/one.json")
[ "$late" = 0 ] || fail "delivered logs: no event is late ($late)"

# 1. The same logs again: nothing changes, every record is a duplicate.
"$bin" analyze "${opts[@]}" --db "$work/one.db" "$work/scn/logs" >"$work/again.json"
[ "$(final "$work/one.db")" = "$want" ] || fail "second read changed the offense: $(final "$work/one.db") vs $want"
[ "$(risk "$work/again.json")" = "$want_risk" ] || fail "second read changed user risk"
dup=$(jq .stats.pipeline.duplicates "$work/again.json")
rec=$(jq .stats.events "$work/again.json")
[ "$dup" = "$rec" ] || fail "every record of the second read is a duplicate ($dup of $rec)"

# 2. Time slices: the delivered files carry their time in the name.
find "$work/scn/logs" -type f | sort >"$work/all"
slice() { # N: write $work/slice.N.K lists
  python3 - "$work/all" "$1" "$work/slice.$1" <<'PY'
import re, sys
files, n, out = open(sys.argv[1]).read().split(), int(sys.argv[2]), sys.argv[3]
keyed = sorted((re.search(r"_(\d{8}T\d{4}Z)", f.rsplit("/", 1)[-1]).group(1), f) for f in files)
times = sorted({k for k, _ in keyed})
cuts = [times[len(times) * i // n] for i in range(1, n)]
for i in range(n):
    lo = cuts[i - 1] if i else ""
    hi = cuts[i] if i < n - 1 else "~"
    with open(f"{out}.{i}", "w") as fh:
        fh.writelines(f + "\n" for k, f in keyed if lo <= k < hi)
PY
}
for n in 2 5; do
  slice $n
  for ((i = 0; i < n; i++)); do
    mapfile -t files <"$work/slice.$n.$i"
    [ ${#files[@]} -gt 0 ] || fail "slice $i of $n is empty"
    "$bin" analyze "${opts[@]}" --db "$work/s$n.db" "${files[@]}" >"$work/s$n.$i.json"
  done
  got=$(final "$work/s$n.db")
  [ "$got" = "$want" ] || fail "$n slices: $got, one run: $want"
  [ "$(risk "$work/s$n.$((n - 1)).json")" = "$want_risk" ] || fail "$n slices: user risk differs"
done

# 2b. kill -9 in the middle of a run: nothing of it was acknowledged, so the next run over the
# same slice (and the ones after) still gives one run's offense; the ledger's uncommitted tail
# is cut, never trusted.
for delay in 0.05 0.15 0.3; do
  rm -rf "$work/k.db"*
  for ((i = 0; i < 5; i++)); do
    mapfile -t files <"$work/slice.5.$i"
    if [ $i = 2 ]; then
      "$bin" analyze "${opts[@]}" --db "$work/k.db" "${files[@]}" >/dev/null 2>&1 &
      pid=$!
      sleep $delay
      kill -9 $pid 2>/dev/null || true
      wait $pid 2>/dev/null || true
    fi
    "$bin" analyze "${opts[@]}" --db "$work/k.db" "${files[@]}" >"$work/k.$i.json"
  done
  got=$(final "$work/k.db")
  [ "$got" = "$want" ] || fail "kill -9 after ${delay}s in slice 3 of 5: $got, one run: $want"
done

# 3. Newest-first and shuffled files.
python3 - "$work/scn/logs" "$work/rev" "$work/shuf" <<'PY'
import gzip, json, os, random, sys
src, rev, shuf = sys.argv[1:4]
rng = random.Random(7)
for root, _, names in os.walk(src):
    for name in names:
        p = os.path.join(root, name)
        data = gzip.open(p, "rt").read()
        for out, order in ((rev, lambda l: l[::-1]), (shuf, lambda l: rng.sample(l, len(l)))):
            q = os.path.join(out, os.path.relpath(p, src))
            os.makedirs(os.path.dirname(q), exist_ok=True)
            if data.lstrip().startswith('{"Records"'):
                doc = json.loads(data)
                doc["Records"] = order(doc["Records"])
                text = json.dumps(doc)
            else:
                lines = data.splitlines()
                head = [lines.pop(0)] if lines and lines[0].startswith("version") else []
                text = "\n".join(head + order(lines)) + "\n"
            with gzip.open(q, "wt") as fh:
                fh.write(text)
PY
"$bin" analyze "${opts[@]}" --db "$work/rev.db" "$work/rev" >"$work/rev.json"
[ "$(summary "$work/rev.json")" = "$want" ] || fail "newest-first files: $(summary "$work/rev.json") vs $want"
[ "$(jq -r .stats.merge.sort "$work/rev.json")" = memory ] || fail "newest-first files were sorted in memory"
[ "$(jq .stats.pipeline.late "$work/rev.json")" = 0 ] || fail "newest-first files: no event is late"
"$bin" analyze "${opts[@]}" --sort-memory 1 --db "$work/shuf.db" "$work/shuf" >"$work/shuf.json"
[ "$(summary "$work/shuf.json")" = "$want" ] || fail "shuffled files (external sort): $(summary "$work/shuf.json") vs $want"
# A whole account in one newest-first file (as `aws cloudtrail lookup-events` writes it).
python3 - "$work/scn/logs" "$work/export.json" <<'PY'
import gzip, json, os, sys
recs = []
for root, _, names in os.walk(sys.argv[1]):
    for name in names:
        if "CloudTrail" in root:
            recs += json.load(gzip.open(os.path.join(root, name), "rt"))["Records"]
recs.sort(key=lambda r: r["eventTime"], reverse=True)
json.dump({"Records": recs}, open(sys.argv[2], "w"))
PY
"$bin" analyze "${opts[@]}" --sort-memory 1 --db "$work/export.db" "$work/export.json" >"$work/export.json.out"
[ "$(jq .stats.pipeline.late "$work/export.json.out")" = 0 ] || fail "a newest-first export: no event is late"
[ "$(jq -r .stats.merge.sort "$work/export.json.out")" = disk ] || fail "a 1 MiB sort memory sorts a large export on disk"
jq -e --arg a "$attacker" '.offenses[] | select(.index.value == $a) | .rules | map(.id) | index("CJ-EC2-02")' \
  "$work/export.json.out" >/dev/null || fail "a newest-first export keeps the launch burst"

# 4. Two writers on one store at once: each run's offenses survive with distinct ids.
slice 2
mapfile -t a <"$work/slice.2.0"
mapfile -t b <"$work/slice.2.1"
"$bin" analyze "${opts[@]}" --db "$work/conc.db" "${a[@]}" >"$work/c1.json" &
p1=$!
"$bin" analyze "${opts[@]}" --db "$work/conc.db" "${b[@]}" >"$work/c2.json" &
p2=$!
wait $p1 || fail "first concurrent writer failed"
wait $p2 || fail "second concurrent writer failed"
"$bin" offenses list --db "$work/conc.db" --status all --format json >"$work/conc.list.json"
ids=$(jq '[.offenses[].id] | length' "$work/conc.list.json")
uniq=$(jq '[.offenses[].id] | unique | length' "$work/conc.list.json")
[ "$ids" = "$uniq" ] || fail "offense ids are unique ($ids offenses, $uniq ids)"
for f in c1 c2; do
  for v in $(jq -r '.offenses[].index.value' "$work/$f.json"); do
    jq -e --arg v "$v" '.offenses[] | select(.index.value == $v)' "$work/conc.list.json" >/dev/null ||
      fail "offense of $v from the $f run is in the store"
  done
done
echo "test_pipeline_state: ok"
