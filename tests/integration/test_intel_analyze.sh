#!/usr/bin/env bash
# `coinhound analyze --intel` and `--db` as a user runs them: a STIX bundle given for one run,
# then the same bundle stored with `intel load` and matched from the database. A DNS query of a
# launched instance for a listed pool domain becomes CJ-MINE-03 in the launching user's offense,
# with the indicator, the feed and the confidence in the evidence.
# Args: coinhound-binary source-dir corpora-dir
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "${BASH_SOURCE[0]%/*}/lib.sh"
need_cmd jq "reading the report"
t="$src/content/cryptojacking-aws/tests"
logs=("$t/CJ-MINE-03-launch.jsonl" "$t/CJ-MINE-03-dns.jsonl")

has_mine03() { jq -e '[.offenses[].rules[].id] | index("CJ-MINE-03") != null' "$1" >/dev/null; }

# Without intelligence: no CJ-MINE-03.
"$bin" analyze --no-progress --no-geoip --db "$work/a.db" --format json "${logs[@]}" >"$work/none.json" 2>/dev/null
has_mine03 "$work/none.json" && fail "CJ-MINE-03 without any feed"

# For one run.
"$bin" analyze --no-progress --no-geoip --db "$work/b.db" --intel "$t/CJ-MINE-03-intel.json" \
  --format json "${logs[@]}" >"$work/run.json" 2>/dev/null
has_mine03 "$work/run.json" || fail "CJ-MINE-03 with --intel: $(jq -c .offenses "$work/run.json")"
id=$(jq '[.offenses[] | select([.rules[].id] | index("CJ-MINE-03"))][0].id' "$work/run.json")
"$bin" offenses show "$id" --db "$work/b.db" >"$work/show.txt"
grep -q "confidence" "$work/show.txt" || fail "evidence names the confidence: $(cat "$work/show.txt")"
grep -q "indicator--" "$work/show.txt" || fail "evidence names the indicator"

# Stored once, matched from the database in later runs.
"$bin" intel load --db "$work/c.db" "$t/CJ-MINE-03-intel.json" >/dev/null
"$bin" analyze --no-progress --no-geoip --db "$work/c.db" --format json "${logs[@]}" >"$work/db.json" 2>/dev/null
has_mine03 "$work/db.json" || fail "CJ-MINE-03 from the stored feed"
echo "test_intel_analyze: ok"
