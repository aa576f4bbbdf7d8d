#!/usr/bin/env bash
# The investigation views on the reference scenario (bench/scenario, as test_scenario.sh), as an
# analyst would use them after `coinhound analyze`:
#   - risk: every score is within 0..100 with the raw sum beside it, the attacker's raw sum is far
#     above 100 yet the score is bounded, and the attacker stands out of the population while no
#     benign user does; the context's risk: block changes the model (a watched user's risk
#     doubles, a faster decay lowers it);
#   - the graph of the attacker's offense (JSON, cytoscape.js shape): the attacker, one group node
#     for the launch burst with its member count, a pool domain and a pool address, the source
#     address with its country, rules; every edge's ends are nodes; bounded in size; expanding
#     the group draws its instances; DOT renders with Graphviz's dot;
#   - reading the same logs again into the store leaves the graph byte for byte the same;
#   - the attacker's timeline: first login from a foreign country, first use of a new region and
#     of an instance type, rule hits with bounded scores, the offense.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
need_cmd python3 "the scenario generator (bench/scenario)"
need_cmd jq "reading the reports"
need_cmd dot "rendering the graph's DOT (Graphviz; scripts/deps test installs it)"
need_geoip "$src" "the login countries of the scenario"

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 10 --hours 30 --seed 7 >/dev/null
truth=$work/scn/ground_truth.json
attacker=$(jq -r .attacker.user "$truth")
opts=(--no-progress -q --format json --max-open 512 --geoip "$src/data/geoip/country.mmdb"
      --pack "$src/content/cryptojacking-aws")
"$bin" analyze "${opts[@]}" --context "$work/scn/context.yaml" --db "$work/run.db" \
    "$work/scn/logs" >"$work/report.json" 2>"$work/stderr" || { cat "$work/stderr" >&2; fail "analyze"; }
r() { jq -r --arg a "$attacker" "$1" "$work/report.json"; }

# ---- risk ----
[ "$(r '[.users[] | select(.risk < 0 or .risk > 100)] | length')" = 0 ] || fail "scores within 0..100"
[ "$(r '[.users[] | select(.risk_raw == null)] | length')" = 0 ] || fail "the raw sum is kept"
[ "$(r '.users[] | select(.name == $a) | .risk_raw > 1000')" = true ] ||
    fail "the attacker's raw sum is large ($(r '.users[] | select(.name == $a) | .risk_raw'))"
[ "$(r '.users[] | select(.name == $a) | .stands_out')" = true ] || fail "the attacker stands out"
[ "$(r '[.users[] | select(.name != $a and .stands_out)] | length')" = 0 ] ||
    fail "no benign user stands out: $(r '[.users[] | select(.stands_out) | .name]')"
[ "$(r '.risk_population.users >= 5 and (.risk_population.fixed | not)')" = true ] ||
    fail "the threshold comes from the population: $(r .risk_population)"
# The model is configured by the context: the second-riskiest user, watched, counts double;
# a steep decay leaves less.
second=$(r '[.users[] | select(.name != $a)][0].name')
base=$(jq -r --arg s "$second" '.users[] | select(.name == $s) | .risk_raw' "$work/report.json")
cp "$work/scn/context.yaml" "$work/watch.yaml"
printf 'risk:\n  watchlist: ["%s"]\n  watchlist_multiplier: 2\n' "$second" >>"$work/watch.yaml"
"$bin" analyze "${opts[@]}" --context "$work/watch.yaml" --db "$work/watch.db" "$work/scn/logs" >"$work/watch.json"
watched=$(jq -r --arg s "$second" '.users[] | select(.name == $s) | .risk_raw' "$work/watch.json")
[ "$(jq -n --argjson a "$base" --argjson b "$watched" '($b - 2 * $a) | fabs < 0.5')" = true ] ||
    fail "a watched user's risk doubles ($base -> $watched)"
[ "$(jq -r --arg s "$second" '.users[] | select(.name == $s) | .watched' "$work/watch.json")" = true ] ||
    fail "the report says the user is watched"
cp "$work/scn/context.yaml" "$work/decay.yaml"
printf 'risk:\n  decay_per_hour: 0.5\n' >>"$work/decay.yaml"
"$bin" analyze "${opts[@]}" --context "$work/decay.yaml" --db "$work/decay.db" "$work/scn/logs" >"$work/decay.json"
fast=$(jq -r --arg s "$second" '[.users[] | select(.name == $s) | .risk_raw][0] // 0' "$work/decay.json")
[ "$(jq -n --argjson a "$base" --argjson b "$fast" '$b < $a')" = true ] ||
    fail "a decay of 0.5 per hour leaves less risk than the default ($base -> $fast)"
printf 'risk:\n  decay_per_hour: 1.5\n' >"$work/bad.yaml"
if "$bin" analyze "${opts[@]}" --context "$work/bad.yaml" --db "$work/bad.db" "$work/scn/logs" \
    >/dev/null 2>"$work/bad.err"; then fail "a decay factor above 1 is refused"; fi
grep -q "bad.yaml:2" "$work/bad.err" || fail "the refusal names the file and line: $(cat "$work/bad.err")"

# ---- the graph ----
id=$("$bin" offenses list --db "$work/run.db" --format json |
     jq --arg a "$attacker" '.offenses[] | select(.index.value == $a) | .id')
[ -n "$id" ] || fail "the attacker's offense is stored"
"$bin" offenses graph "$id" --db "$work/run.db" --format json >"$work/graph.json"
g() { jq -r --arg a "$attacker" "$1" "$work/graph.json"; }
[ "$(g '[.elements.nodes[].data | select(.kind == "user" and .label == $a)] | length')" = 1 ] ||
    fail "the graph shows the attacker"
n=$(jq '.attacker.instance_count' "$truth")
[ "$(g '[.elements.nodes[].data | select(.kind == "instance_group")] | length')" = 1 ] ||
    fail "the launch burst is one group node"
[ "$(g '.elements.nodes[].data | select(.kind == "instance_group") | .members_count')" -ge 20 ] ||
    fail "the group counts the burst ($n launched)"
[ "$(g '[.elements.nodes[].data | select(.kind == "instance")] | length')" -lt 5 ] ||
    fail "grouped instances are not drawn one by one"
for d in $(jq -r '.attacker.pool_domains[]' "$truth"); do
    [ "$(jq --arg d "$d" '[.elements.nodes[].data | select(.kind == "domain" and .label == $d)] | length' "$work/graph.json")" = 1 ] ||
        fail "the graph shows the pool domain $d"
done
pool_ip=$(jq -r '.attacker.pool_ips[0]' "$truth")
[ "$(jq --arg p "$pool_ip" '[.elements.nodes[].data | select(.kind == "address" and .label == $p)] | length' "$work/graph.json")" = 1 ] ||
    fail "the graph shows the pool address $pool_ip"
src_ip=$(jq -r '.attacker.source_ips[0]' "$truth")
[ "$(jq -r --arg p "$src_ip" '.elements.nodes[].data | select(.label == $p) | .country' "$work/graph.json")" != "" ] ||
    fail "the source address carries its country"
[ "$(g '[.elements.nodes[].data | select(.kind == "rule")] | length')" -ge 5 ] || fail "the rules that fired"
[ "$(g '[.elements.edges[].data | select(.count < 1 or .first == null or .last == null)] | length')" = 0 ] ||
    fail "edges carry first, last and a count"
[ "$(jq '([.elements.nodes[].data.id]) as $ids | [.elements.edges[].data | select((.source as $s | $ids | index($s)) == null or (.target as $t | $ids | index($t)) == null)] | length' "$work/graph.json")" = 0 ] ||
    fail "every edge's ends are nodes"
[ "$(g '.elements.nodes | length')" -le 150 ] || fail "the graph is bounded ($(g '.elements.nodes | length') nodes)"
group=$(g '.elements.nodes[].data | select(.kind == "instance_group") | .id')
"$bin" offenses graph "$id" --db "$work/run.db" --expand "$group" --hub-max 100 >"$work/expanded.json"
[ "$(jq '[.elements.nodes[].data | select(.kind == "instance")] | length' "$work/expanded.json")" -ge 20 ] ||
    fail "expanding the group draws its instances"
"$bin" offenses graph "$id" --db "$work/run.db" --format dot >"$work/graph.dot"
dot -Tsvg "$work/graph.dot" >"$work/graph.svg" 2>"$work/dot.err" || fail "dot renders the graph: $(cat "$work/dot.err")"
grep -q "$attacker" "$work/graph.svg" || fail "the drawing names the attacker"
# A replay of the same logs changes nothing: no count doubles, no node appears.
"$bin" analyze "${opts[@]}" --context "$work/scn/context.yaml" --db "$work/run.db" "$work/scn/logs" >/dev/null
"$bin" offenses graph "$id" --db "$work/run.db" --format json >"$work/graph2.json"
cmp -s "$work/graph.json" "$work/graph2.json" || fail "reading the logs again changed the graph"
if "$bin" offenses graph 999999 --db "$work/run.db" >/dev/null 2>"$work/nf.err"; then fail "an unknown offense fails"; fi
grep -q "no offense 999999" "$work/nf.err" || fail "the error names the offense"

# ---- the attacker's timeline ----
"$bin" users show "$attacker" --db "$work/run.db" --timeline --format json >"$work/user.json"
u() { jq -r "$1" "$work/user.json"; }
[ "$(u '.risk.score <= 100 and .risk.stands_out')" = true ] || fail "the user's score and standing"
[ "$(u '[.timeline[] | select(.type == "first_seen" and .kind == "login_country" and .value == "RU")] | length')" -ge 1 ] ||
    fail "first login from RU on the timeline: $(u '[.timeline[] | select(.kind == "login_country")]')"
for region in $(jq -r '.attacker.regions[]' "$truth"); do
    [ "$(jq --arg r "$region" '[.timeline[] | select(.type == "first_seen" and .kind == "region" and .value == $r)] | length' "$work/user.json")" = 1 ] ||
        fail "first use of region $region"
done
[ "$(u '[.timeline[] | select(.kind == "instance_type" and .value == "p3.16xlarge")] | length')" = 1 ] ||
    fail "first use of the GPU type"
[ "$(u '[.timeline[] | select(.kind == "api" and .value == "ec2:RunInstances")] | length')" = 1 ] ||
    fail "first use of an API"
[ "$(u '[.timeline[] | select(.type == "rule")] | length')" -ge 5 ] || fail "rule hits on the timeline"
[ "$(u '[.timeline[] | select(.type == "rule" and (.risk > 100 or .risk < 0))] | length')" = 0 ] ||
    fail "timeline scores bounded"
[ "$(jq --argjson i "$id" '[.timeline[] | select(.type == "offense" and .offense == $i)] | length' "$work/user.json")" = 1 ] ||
    fail "the offense on the timeline"
# Sorted by time.
[ "$(u '[.timeline[].time] == ([.timeline[].time] | sort)')" = true ] || fail "the timeline is in time order"
"$bin" users show "$attacker" --db "$work/run.db" --timeline >"$work/user.txt"
grep -q "STANDS OUT" "$work/user.txt" || fail "the text view says the user stands out"
if "$bin" users show nobody-at-all --db "$work/run.db" >/dev/null 2>&1; then fail "an unknown user fails"; fi
# ---- what an instance runs, on its node ----
# A launch whose response carries Kali's Marketplace product code: the image catalogue names it.
kali=$src/content/cryptojacking-aws/tests/ec2-01-kali-product-code.jsonl
inst_os() { # inst_os DB -> the os of the first instance node of offense 1
  "$bin" offenses graph 1 --db "$1" --format json | jq -r '[.elements.nodes[].data | select(.kind == "instance")][0].os // "none"'
}
"$bin" analyze --no-progress -q --no-geoip --db "$work/kali.db" "$kali" >/dev/null
[ "$(inst_os "$work/kali.db")" = "Kali Linux" ] || fail "the Kali instance's node says os $(inst_os "$work/kali.db")"
# Without the product code, the business context's image map names the OS.
ami=$(jq -r 'select(.eventName == "RunInstances") | .responseElements.instancesSet.items[0].imageId' "$kali" | head -n1)
jq -c 'del(.responseElements.instancesSet.items[].productCodes)' "$kali" >"$work/plain-launch.jsonl"
! grep -q productCode "$work/plain-launch.jsonl" || fail "the product code is still in the launch"
printf 'images:\n  %s: {os: "Kali GNU/Linux Rolling 2024.2"}\n' "$ami" >"$work/ctx-os.yaml"
"$bin" analyze --no-progress -q --no-geoip --context "$work/ctx-os.yaml" --db "$work/ctx.db" \
    "$work/plain-launch.jsonl" >/dev/null
[ "$(inst_os "$work/ctx.db")" = "Kali GNU/Linux Rolling 2024.2" ] ||
    fail "the context's image map is not on the node: $(inst_os "$work/ctx.db")"
echo "ok: risk bounded and compared, graph ($(g '.elements.nodes | length') nodes), timeline ($(u '.timeline | length') entries)"
