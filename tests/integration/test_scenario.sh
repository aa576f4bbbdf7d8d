#!/usr/bin/env bash
# The reference scenario end to end: bench/scenario writes a small organisation's logs as
# delivered (CloudTrail per region per 5-15 min, flow logs per interface per hour, Route 53
# query logs) with the attack and the traps inside, `coinhound analyze` runs the
# cryptojacking-aws pack over them, and the report must name the attacker: one offense for
# that user, the highest magnitude, with the stages auth, ec2, mine and the kill chain, the
# highest user risk, and no benign offense near it (magnitude <= attacker - 3). The traps stay
# quiet where they should: no burst for Auto Scaling, no brute force for the typist, no
# two-country login for the traveller, no offense for a Terraform pipeline's create-and-destroy,
# an unknown-user spray keyed by its address; the refused first launches count, and mining shows
# under the default 10-minute flow aggregation.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need_cmd python3 "the scenario generator (bench/scenario)"
need_cmd jq "reading the report"
need_geoip "$src" "the login countries of the scenario"

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 10 --hours 30 --seed 7 >/dev/null
truth=$work/scn/ground_truth.json
attacker=$(jq -r .attacker.user "$truth")
[ -n "$attacker" ] || fail "ground truth names the attacker"
[ "$(jq '.attacker.instance_count' "$truth")" -ge 20 ] || fail "the burst launches 20 or more"

# Determinism: the same seed gives the same files.
python3 "$src/bench/scenario" --out "$work/again" --benign-users 10 --hours 30 --seed 7 >/dev/null
diff -r "$work/scn" "$work/again" >/dev/null || fail "bench/scenario is not deterministic"
rm -rf "$work/again"

opts=(--no-progress -q --format json --db "$work/run.db" --max-open 512
      --geoip "$src/data/geoip/country.mmdb")
help=$("$bin" analyze --help 2>&1 || true)
grep -q -- "--pack" <<<"$help" && opts+=(--pack "$src/content/cryptojacking-aws")
grep -q -- "--context" <<<"$help" && opts+=(--context "$work/scn/context.yaml")
"$bin" analyze "${opts[@]}" "$work/scn/logs" >"$work/report.json" 2>"$work/stderr" ||
    { cat "$work/stderr" >&2; fail "analyze exits 0"; }
jq -e 'has("offenses")' "$work/report.json" >/dev/null ||
    fail "analyze's JSON report has no offenses key"
r() { jq -r --arg a "$attacker" "$1" "$work/report.json"; }

[ "$(r '[.offenses[] | select(.index.field == "user.name" and .index.value == $a)] | length')" = 1 ] ||
    fail "exactly one offense for the attacker $attacker (chaining)"
top=$(r '.offenses | max_by(.magnitude) | .magnitude')
mine=$(r '.offenses[] | select(.index.value == $a) | .magnitude')
[ "$mine" = "$top" ] || fail "the attacker's offense has the highest magnitude ($mine < $top)"
[ "$(r '.offenses[0].index.value')" = "$attacker" ] || fail "offenses are sorted: the attacker's first"
rules=$(r '.offenses[] | select(.index.value == $a) | [.rules[].id] | join(" ")')
for stage in CJ-AUTH- CJ-EC2- CJ-MINE- CJ-CHAIN-01; do
    grep -q -- "$stage" <<<"$rules" || fail "the attacker's offense lacks stage $stage (has: $rules)"
done
missing=()
for id in $(jq -r '.expected_rules[]' "$truth"); do
    grep -qw -- "$id" <<<"$rules" || missing+=("$id")
done
[ ${#missing[@]} -le 2 ] || fail "the attacker's offense lacks expected rules: ${missing[*]}"
[ ${#missing[@]} -eq 0 ] || echo "note: expected but not fired: ${missing[*]}" >&2
worst=$(r '[.offenses[] | select(.index.value != $a) | .magnitude] | max // 0')
[ "$worst" -le $((mine - 3)) ] || fail "a benign offense has magnitude $worst, attacker $mine"
[ "$(r '.users | max_by(.risk) | .name')" = "$attacker" ] || fail "the attacker has the highest risk"

# Traps.
asg=$(jq -r '.traps.autoscaling.user' "$truth")
[ "$(jq -r --arg u "$asg" '[.offenses[] | select(.index.value == $u) | .rules[].id |
    select(startswith("CJ-EC2"))] | length' "$work/report.json")" = 0 ] ||
    fail "Auto Scaling launches count as a launch"
typist=$(jq -r '.traps.mistyped_password.user // empty' "$truth")
if [ -n "$typist" ]; then
    [ "$(jq -r --arg u "$typist" '[.offenses[] | select(.index.value == $u) | .rules[].id |
        select(. == "CJ-AUTH-03" or . == "CJ-AUTH-04")] | length' "$work/report.json")" = 0 ] ||
        fail "mistyped passwords look like a brute force"
fi
trav=$(jq -r '.traps.traveller.user // empty' "$truth")
if [ -n "$trav" ]; then
    [ "$(jq -r --arg u "$trav" '[.offenses[] | select(.index.value == $u) | .rules[].id |
        select(. == "CJ-AUTH-01" or . == "CJ-IAM-01" or . == "CJ-CHAIN-01")] | length' "$work/report.json")" = 0 ] ||
        fail "the traveller looks like a two-country login"
fi
# The Terraform pipeline that creates a trail, a flow log and unlisted Amazon Linux instances,
# then deletes what it made: no evasion, no unauthorised image.
tf=$(jq -r '.traps.terraform.user // empty' "$truth")
[ -n "$tf" ] || fail "ground truth names the Terraform trap"
[ "$(jq -r --arg u "$tf" '[.offenses[] | select(.index.value == $u) | .rules[].id |
    select(startswith("CJ-EVADE") or startswith("CJ-EC2"))] | length' "$work/report.json")" = 0 ] ||
    fail "the Terraform pipeline's teardown or test launch raised an offense"
# The spray of unknown user names: one offense for the address, none for a pseudo-user.
spray=$(jq -r '.traps.unknown_user_spray.source_ip' "$truth")
[ "$(jq -r --arg ip "$spray" '[.offenses[] | select(.index.field == "source.ip" and .index.value == $ip) |
    .rules[].id | select(. == "CJ-AUTH-07")] | length' "$work/report.json")" = 1 ] ||
    fail "the unknown-user spray raises CJ-AUTH-07 for $spray"
[ "$(jq '[.offenses[] | select(.index.value == "HIDDEN_DUE_TO_SECURITY_REASONS")] | length' \
    "$work/report.json")" = 0 ] || fail "unknown user names pile into a pseudo-user's offense"
# The refused first try counts.
for id in CJ-EC2-05 CJ-EC2-06; do
    grep -qw -- "$id" <<<"$rules" || fail "the refused GPU launches raise $id"
done
# Mining seen only through flow logs at the default 10-minute aggregation (instance-id, no
# interface-id): CloudTrail and those files alone still raise CJ-MINE-02 for the attacker.
[ "$(jq '.attacker.flow_aggregation_600s | length' "$truth")" -gt 0 ] || fail "some flows are aggregated"
mkdir -p "$work/agg"
find "$work/scn/logs" -path '*CloudTrail*' -name '*.json.gz' -exec ln -s {} "$work/agg/" \;
find "$work/scn/logs" -name '*_agg600_*' -exec ln -s {} "$work/agg/" \;
"$bin" analyze "${opts[@]/$work\/run.db/$work/agg.db}" "$work/agg" >"$work/agg.json" 2>"$work/stderr" ||
    { cat "$work/stderr" >&2; fail "analyze of the aggregated flows exits 0"; }
[ "$(jq -r --arg a "$attacker" '[.offenses[] | select(.index.value == $a) | .rules[].id |
    select(. == "CJ-MINE-02")] | length' "$work/agg.json")" = 1 ] ||
    fail "10-minute flow records raise CJ-MINE-02 for the attacker"
echo "scenario OK: $attacker magnitude $mine, worst benign $worst, rules: $rules"
