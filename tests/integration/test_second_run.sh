#!/usr/bin/env bash
# Logs arrive over time: a second `coinhound analyze` over the files delivered after the first
# run extends the attacker's open offense in the store instead of opening a second one, and
# `coinhound offenses list/show` read the result.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
need_cmd python3 "the scenario generator (bench/scenario)"
need_cmd jq "reading the report"
need_geoip "$src" "the login countries of the scenario"

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 8 --hours 30 --seed 11 >/dev/null
attacker=$(jq -r .attacker.user "$work/scn/ground_truth.json")
start=$(jq -r .attack_start "$work/scn/ground_truth.json")      # 2024-06-04T19:00:00Z
cut=$(python3 -c 'import sys,datetime as d; t=d.datetime.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%SZ")+d.timedelta(minutes=20); print(t.strftime("%Y%m%dT%H%MZ"))' "$start")
# Delivered files carry their time in the name (..._20240604T1905Z...): split them 20 minutes
# into the attack, so the logins are in the first batch and the launches and mining in the
# second (which also holds the launches that link the mining instances to the user).
find "$work/scn/logs" -type f | sort >"$work/all"
python3 - "$work/all" "$cut" "$work/first" "$work/second" <<'PY'
import re, sys
files, cut = open(sys.argv[1]).read().split(), sys.argv[2]
first, second = open(sys.argv[3], "w"), open(sys.argv[4], "w")
for f in files:
    m = re.search(r"_(\d{8}T\d{4}Z)", f.rsplit("/", 1)[-1])
    (first if m and m.group(1) < cut else second).write(f + "\n")
PY
[ -s "$work/first" ] && [ -s "$work/second" ] || fail "both batches have files"

opts=(--no-progress -q --format json --db "$work/store.db" --max-open 512
      --context "$work/scn/context.yaml" --geoip "$src/data/geoip/country.mmdb")
mapfile -t first <"$work/first"
mapfile -t second <"$work/second"
"$bin" analyze "${opts[@]}" "${first[@]}" >"$work/r1.json"
"$bin" analyze "${opts[@]}" "${second[@]}" >"$work/r2.json"

"$bin" offenses list --db "$work/store.db" --status all --format json >"$work/list.json"
n=$(jq --arg a "$attacker" '[.offenses[] | select(.index.value == $a)] | length' "$work/list.json")
[ "$n" = 1 ] || fail "one offense for $attacker across both runs, found $n"
id=$(jq --arg a "$attacker" '.offenses[] | select(.index.value == $a) | .id' "$work/list.json")
rules=$(jq -r --arg a "$attacker" '.offenses[] | select(.index.value == $a) | [.rules[].id] | join(" ")' "$work/list.json")
grep -q "CJ-AUTH-" <<<"$rules" || fail "first run's login rules kept: $rules"
grep -q "CJ-EC2-" <<<"$rules" || fail "second run's launch rules joined the same offense: $rules"
grep -q "CJ-MINE-" <<<"$rules" || fail "second run's mining rules joined the same offense: $rules"
r1=$(jq -r --arg a "$attacker" '.offenses[] | select(.index.value == $a) | [.rules[].id] | join(" ")' "$work/r1.json")
grep -q "CJ-EC2-" <<<"$r1" && fail "the first batch should hold no launch (test split): $r1"
ev1=$(jq --arg a "$attacker" '.offenses[] | select(.index.value == $a) | .event_count' "$work/r1.json")
ev2=$(jq --arg a "$attacker" '.offenses[] | select(.index.value == $a) | .event_count' "$work/list.json")
[ "$ev2" -gt "$ev1" ] || fail "the offense grew in the second run ($ev1 -> $ev2)"
"$bin" offenses show "$id" --db "$work/store.db" >"$work/show.txt"
grep -q "$attacker" "$work/show.txt" || fail "offenses show names the user"
echo "test_second_run: ok"
