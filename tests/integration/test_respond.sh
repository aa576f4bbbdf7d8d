#!/usr/bin/env bash
# The response to the reference scenario's attacker, end to end: bench/scenario's logs are
# analyzed, and then
#   - the attacker's offense records its observables: exactly the attacker's source address,
#     instances, pool domains and pool addresses of the ground truth (the user's own home
#     addresses only as low-severity context), the attacker's keys;
#   - `respond plan` proposes steps for exactly those: the keys the attacker used (never another
#     key), exactly the attacker's instances and none of the benign launches, the pool domains in
#     DNS Firewall, the pool addresses in NACL deny entries; the JSON has the issue's shape, every
#     reversible step a rollback; the plan is stored (`respond show`) and audited as proposed;
#   - `respond export` writes an nftables ruleset that `nft -c -f` accepts, an RPZ zone that
#     `named-checkzone` loads, Suricata rules with unique sids and a plain list of the values.
# Args: coinhound-binary source-dir corpora-dir. A missing prerequisite fails (lib.sh).
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need_cmd python3 "the scenario generator (bench/scenario)"
need_cmd jq "reading the plan"
need_cmd nft "validating the nftables export (Debian nftables; scripts/deps test)"
need_cmd named-checkzone "validating the RPZ export (Debian bind9-utils; scripts/deps test)"
need_geoip "$src" "the login countries of the scenario"

python3 "$src/bench/scenario" --out "$work/scn" --benign-users 10 --hours 30 --seed 7 >/dev/null
truth=$work/scn/ground_truth.json
db=$work/run.db
"$bin" analyze --no-progress -q --format json --db "$db" --max-open 512 \
    --geoip "$src/data/geoip/country.mmdb" --pack "$src/content/cryptojacking-aws" \
    --context "$work/scn/context.yaml" "$work/scn/logs" >"$work/report.json" 2>"$work/stderr" ||
    { cat "$work/stderr" >&2; fail "analyze exits 0"; }
attacker=$(jq -r .attacker.user "$truth")
id=$(jq --arg a "$attacker" '.offenses[] | select(.index.value == $a) | .id' "$work/report.json")
[ -n "$id" ] || fail "an offense for the attacker $attacker"

sorted() { jq -r "$1" | sort -u; }
same() { # what, expected, got
    [ "$2" = "$3" ] || fail "$1: expected [$(echo $2)], got [$(echo $3)]"
}

# ---- observables (issue 16 item 7) ----
"$bin" offenses show "$id" --db "$db" --format json >"$work/offense.json"
obs() { jq -r ".observables.$1.values[] | select(.severity >= 5) | .value" "$work/offense.json" | sort -u; }
same "attributed source addresses" "$(sorted '.attacker.source_ips[]' <"$truth")" "$(obs source_ips)"
same "instances" "$(sorted '.attacker.instances[].id' <"$truth")" "$(obs instances)"
same "pool domains" "$(sorted '.attacker.pool_domains[]' <"$truth")" "$(obs pool_domains)"
same "pool addresses" "$(sorted '.attacker.pool_ips[]' <"$truth")" "$(obs pool_ips)"
key=$(jq -r .attacker.access_key "$truth")
obs access_keys | grep -qx "$key" || fail "the offense records the attacker's key $key"
for k in source_ips access_keys instances pool_domains pool_ips; do
    [ "$(jq ".observables.$k.dropped" "$work/offense.json")" = 0 ] || fail "$k dropped values"
done
# Every launch in the logs that is not the attacker's is benign.
find "$work/scn/logs" -path '*CloudTrail*' -name '*.json.gz' -print0 | xargs -0 zcat |
    jq -r '.Records[] | select(.eventName == "RunInstances") |
        .responseElements.instancesSet.items[]?.instanceId' | sort -u >"$work/all_instances"
comm -23 "$work/all_instances" <(sorted '.attacker.instances[].id' <"$truth") >"$work/benign"
[ "$(wc -l <"$work/benign")" -ge 10 ] || fail "the scenario has benign launches to tell apart"

# The offense collection over TAXII publishes every attributed address and domain of the
# attacker's offense (pool addresses and domains, the attacker's source), with its confidence.
need_cmd curl "reading the TAXII offense collection"
COINHOUND_TAXII_USER=sub COINHOUND_TAXII_PASSWORD=scribe \
    "$bin" intel serve --listen 127.0.0.1:0 --db "$db" 2>"$work/serve.err" &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/serve.err" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$work/serve.err" >&2; fail "intel serve reports its port"; }
acc='Accept: application/taxii+json;version=2.1'
cid=$(curl -s -u sub:scribe -H "$acc" "http://127.0.0.1:$port/coinhound/collections/" |
    jq -r '.collections[] | select(.title == "coinhound-offense-observables") | .id')
[ -n "$cid" ] || fail "the offense collection is served"
curl -s -u sub:scribe -H "$acc" "http://127.0.0.1:$port/coinhound/collections/$cid/objects/" \
    >"$work/taxii.json"
kill "$serve_pid"
conf=$(( $(jq '.credibility' "$work/offense.json") * 10 ))
for v in $(jq -r '.attacker.pool_ips[], .attacker.pool_domains[], .attacker.source_ips[]' "$truth"); do
    [ "$(jq --arg v "$v" '[.objects[] | select(.pattern | contains("value = '"'"'" + $v + "'"'"'"))
        | .confidence] | first' "$work/taxii.json")" = "$conf" ] ||
        fail "the offense collection publishes $v with the offense's confidence $conf"
done

# ---- plan ----
"$bin" respond plan "$id" --db "$db" --format json >"$work/plan.json" 2>"$work/plan.err" ||
    { cat "$work/plan.err" >&2; fail "respond plan exits 0"; }
plan_id=$(sed -n 's/.*plan \([0-9]*\) stored.*/\1/p' "$work/plan.err")
[ -n "$plan_id" ] || fail "respond plan names the stored plan on stderr"
p() { jq -r "$1" "$work/plan.json"; }
[ "$(p 'keys | join(",")')" = "offense,steps" ] || fail "plan keys are offense and steps"
[ "$(p .offense)" = "$id" ] || fail "the plan names its offense"
[ "$(p '[.steps[] | keys | join(",")] | unique | join(";")')" = \
  "account,action,cli,id,kind,parameters,region,reversible,rollback,service,why" ] ||
    fail "every step has exactly the issue's keys"
[ "$(p '[.steps[] | select(.reversible and .rollback == null)] | length')" = 0 ] ||
    fail "a reversible step lacks its rollback"
[ "$(p '[.steps[] | select(.cli | startswith("aws ") | not)] | length')" = 0 ] ||
    fail "every step has an aws command line"
# Keys: only the ones the offense saw, the attacker's among them.
keys=$(p '.steps[] | select(.action == "UpdateAccessKey") | .parameters.AccessKeyId' | sort -u)
grep -qx "$key" <<<"$keys" || fail "the plan deactivates the attacker's key $key"
same "keys to deactivate" "$(obs access_keys | grep '^AKIA')" "$keys"
[ "$(p '[.steps[] | select(.action == "UpdateAccessKey") | .parameters.Status] | unique | join(",")')" = Inactive ] ||
    fail "keys are set Inactive"
# Instances: exactly the attacker's, none of the benign ones.
stopped=$(p '.steps[] | select(.action == "StopInstances") | .parameters.InstanceIds[]' | sort -u)
same "instances to stop" "$(sorted '.attacker.instances[].id' <"$truth")" "$stopped"
touched=$(p '.steps[] | .parameters | (.InstanceId // empty), (.InstanceIds[]? // empty),
    (.InstanceSpecification.InstanceId // empty)' | sort -u)
[ -z "$(comm -12 <(echo "$touched") "$work/benign")" ] || fail "the plan touches a benign instance"
same "instances snapshotted" "$stopped" \
    "$(p '.steps[] | select(.action == "CreateSnapshots") | .parameters.InstanceSpecification.InstanceId' | sort -u)"
# Regions of the steps are those of the attacker's instances.
same "regions" "$(sorted '.attacker.instances[].region' <"$truth")" \
    "$(p '.steps[] | select(.action == "StopInstances") | .region' | sort -u)"
# Pools.
same "domains blocked" "$(sorted '.attacker.pool_domains[]' <"$truth")" \
    "$(p '.steps[] | select(.action == "UpdateFirewallDomains") | .parameters.Domains[]' | sort -u)"
same "addresses denied" "$(jq -r '.attacker.pool_ips[] + "/32"' "$truth" | sort -u)" \
    "$(p '.steps[] | select(.action == "CreateNetworkAclEntry") | .parameters.CidrBlock' | sort -u)"
for a in CreateFirewallDomainList CreateFirewallRuleGroup CreateFirewallRule AssociateFirewallRuleGroup; do
    [ "$(p "[.steps[] | select(.action == \"$a\")] | length")" -ge 1 ] || fail "the plan has $a"
done
# Text form for people, and the stored plan.
"$bin" respond plan "$id" --db "$db" >"$work/plan.txt"
grep -q "aws iam update-access-key --user-name '$attacker' --access-key-id '$key' --status Inactive" \
    "$work/plan.txt" || fail "the text plan shows the aws command"
"$bin" respond show "$plan_id" --db "$db" 2>/dev/null | jq -S . >"$work/shown.json"
jq -S . "$work/plan.json" | cmp -s - "$work/shown.json" || fail "respond show returns the stored plan"
"$bin" audit --db "$db" --format json --since 1h >"$work/audit.json"
grep -q "response.plan.proposed" "$work/audit.json" || fail "the plan is audited as proposed"
grep -q "response_plan:$plan_id" "$work/audit.json" || fail "the audit entry names the plan"
# Usage errors.
set +e
"$bin" respond plan "$id" --db "$db" --format yaml >/dev/null 2>&1; [ $? = 2 ] || fail "bad --format is a usage error"
"$bin" respond plan 999999 --db "$db" >/dev/null 2>"$work/err"; [ $? = 1 ] || fail "unknown offense fails"
"$bin" respond export "$id" --db "$db" --format pf >/dev/null 2>&1; [ $? = 2 ] || fail "unknown export format"
"$bin" respond plan "$id" --db "$work/none.db" >/dev/null 2>&1; [ $? = 1 ] || fail "a missing database fails"
set -e
[ ! -e "$work/none.db" ] || fail "respond never creates a database"

# ---- exports ----
for f in nft suricata rpz list; do
    "$bin" respond export "$id" --db "$db" --format $f --output "$work/export.$f" ||
        fail "respond export --format $f"
done
if ! out=$(nft -c -f "$work/export.nft" 2>&1); then
    echo "$out" >&2
    grep -qi "not permitted" <<<"$out" &&
        fail "nft -c needs CAP_NET_ADMIN to validate (run the tests as root)"
    fail "nft -c -f rejects the nftables export"
fi
# The check is real: a broken ruleset is refused.
sed 's/ip daddr @pool_v4/ip daddr @no_such_set/' "$work/export.nft" >"$work/broken.nft"
! nft -c -f "$work/broken.nft" >/dev/null 2>&1 || fail "nft -c accepts a broken ruleset"
named-checkzone -q rpz.coinhound "$work/export.rpz" || {
    named-checkzone rpz.coinhound "$work/export.rpz" >&2; fail "named-checkzone rejects the RPZ zone"; }
for d in $(jq -r '.attacker.pool_domains[]' "$truth"); do
    grep -qx "$d	CNAME	." "$work/export.rpz" || fail "the RPZ zone blocks $d"
    grep -q "dns.query; dotprefix; content:\".$d\"" "$work/export.suricata" || fail "a DNS rule for $d"
    grep -q "tls.sni; dotprefix; content:\".$d\"" "$work/export.suricata" || fail "an SNI rule for $d"
done
grep -q 'mining.subscribe' "$work/export.suricata" || fail "a Stratum subscribe rule"
grep -q '\\"login\\"' "$work/export.suricata" || fail "a Stratum login rule"
sids=$(grep -o 'sid:[0-9]*' "$work/export.suricata")
[ "$(sort <<<"$sids" | uniq -d)" = "" ] || fail "Suricata sids are unique"
[ "$(grep -vc '^#' "$work/export.suricata")" = "$(wc -l <<<"$sids")" ] || fail "one sid per rule"
same "block list" "$( (jq -r '.attacker.pool_ips[], .attacker.source_ips[], .attacker.pool_domains[]' "$truth") | sort -u)" \
    "$(grep -v '^#' "$work/export.list" | sort -u)"
echo "ok: respond plan and export for $attacker ($(p '.steps | length') steps)"
