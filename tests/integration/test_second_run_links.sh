#!/usr/bin/env bash
# Logs arrive over time, and a run may see the mining of instances whose launch was in an
# earlier run's logs: the first `coinhound analyze` gets every CloudTrail file (logins and the
# attacker's RunInstances), the second only the DNS query and flow logs from the start of the
# attack on. The second run can name the launching user of those instances only through the
# entity links the first run saved in the store, so the attacker's offense gets the mining
# rules (CJ-MINE-01 DNS, CJ-MINE-02 flows) from the second run.
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
start=$(jq -r .attack_start "$work/scn/ground_truth.json")
cut=$(python3 -c 'import sys,datetime as d; t=d.datetime.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%SZ"); print(t.strftime("%Y%m%dT%H%MZ"))' "$start")
# Delivered files carry their time in the name (..._20240604T0100Z...). The second batch is the
# DNS query and flow files from the hour the attack starts on; everything else, all CloudTrail
# included, is the first.
find "$work/scn/logs" -type f | sort >"$work/all"
python3 - "$work/all" "$cut" "$work/first" "$work/second" <<'PY'
import re, sys
files, cut = open(sys.argv[1]).read().split(), sys.argv[2]
first, second = open(sys.argv[3], "w"), open(sys.argv[4], "w")
for f in files:
    name = f.rsplit("/", 1)[-1]
    m = re.search(r"_(\d{8}T\d{4}Z)", name)
    late = m is not None and m.group(1) >= cut
    netlog = "_vpcdnsquerylogs_" in name or "_vpcflowlogs_" in name
    (second if late and netlog else first).write(f + "\n")
PY
[ -s "$work/first" ] && [ -s "$work/second" ] || fail "both batches have files"
grep -q CloudTrail "$work/second" && fail "the second batch holds no CloudTrail (test split)"

opts=(--no-progress -q --format json --db "$work/store.db" --max-open 512
      --context "$work/scn/context.yaml" --geoip "$src/data/geoip/country.mmdb")
mapfile -t first <"$work/first"
mapfile -t second <"$work/second"
"$bin" analyze "${opts[@]}" "${first[@]}" >"$work/r1.json"
"$bin" analyze "${opts[@]}" "${second[@]}" >"$work/r2.json"

rules_of() { jq -r --arg a "$attacker" '[.offenses[] | select(.index.value == $a) | .rules[].id] | join(" ")' "$1"; }
r1=$(rules_of "$work/r1.json")
grep -q "CJ-EC2-" <<<"$r1" || fail "the first run saw the launches: $r1"
grep -q "CJ-MINE-" <<<"$r1" && fail "the first batch should hold no mining (test split): $r1"
r2=$(rules_of "$work/r2.json")
grep -q "CJ-MINE-01" <<<"$r2" || fail "second run: DNS of the attacker's instances named $attacker (CJ-MINE-01): $r2"
grep -q "CJ-MINE-02" <<<"$r2" || fail "second run: flows of the attacker's instances named $attacker (CJ-MINE-02): $r2"

"$bin" offenses list --db "$work/store.db" --status all --format json >"$work/list.json"
n=$(jq --arg a "$attacker" '[.offenses[] | select(.index.value == $a)] | length' "$work/list.json")
[ "$n" = 1 ] || fail "one offense for $attacker across both runs, found $n"
rules=$(rules_of "$work/list.json")
for r in CJ-AUTH- CJ-EC2- CJ-MINE-01 CJ-MINE-02; do
  grep -q "$r" <<<"$rules" || fail "stored offense has $r: $rules"
done
echo "test_second_run_links: ok"
