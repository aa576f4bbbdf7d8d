#!/usr/bin/env bash
# Identity lineage (src/enrich/lineage.h) end to end: root, used from a foreign address, creates
# a user, gives it a key and AdministratorAccess; that user launches a burst of 24 GPU instances
# whose DNS queries go to a mining pool. The analyst must see ONE offense, root's, holding the
# created user's burst and mining rules; no offense of the created user's own. The chain is cut
# across two runs into one store (root's records in the first, the user's in the second), so
# the link must come back from the store. A control: a user created by someone with no offense
# (alice, an ordinary admin) gets an offense of its own for the same behaviour.
# Args: coinhound-binary source-dir corpora-dir.
set -euo pipefail
bin=$1 src=$2
source "${BASH_SOURCE[0]%/*}/lib.sh"
work=${KEEP_WORK:-$(mktemp -d)}
[ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
need_cmd python3 "writing the logs"
need_cmd jq "reading the report"

python3 - "$work" <<'PY'
import json, sys, datetime as dt
out = sys.argv[1]
acct = "111122223333"
t0 = dt.datetime(2024, 6, 4, 10, 0, 0)
n = [0]
def ts(s): return (t0 + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")
def ident(user):
    if user == "root":
        return {"type": "Root", "principalId": acct, "arn": f"arn:aws:iam::{acct}:root", "accountId": acct}
    return {"type": "IAMUser", "principalId": "AIDA" + user.upper(), "arn": f"arn:aws:iam::{acct}:user/{user}",
            "accountId": acct, "userName": user, "accessKeyId": "AKIA" + user.upper().ljust(16, "X")[:16]}
def ct(s, user, source, name, req, resp=None, ip="5.255.255.5"):
    n[0] += 1
    return {"eventVersion": "1.09", "userIdentity": ident(user), "eventTime": ts(s), "eventSource": source,
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip,
            "userAgent": "aws-cli/2.15.30", "requestParameters": req, "responseElements": resp,
            "requestID": f"req-{n[0]}", "eventID": f"evt-lin-{n[0]:05d}", "readOnly": False,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": acct}
def creator(user, created, s):
    return [ct(s, user, "iam.amazonaws.com", "CreateUser", {"userName": created}),
            ct(s + 30, user, "iam.amazonaws.com", "CreateAccessKey", {"userName": created}),
            ct(s + 60, user, "iam.amazonaws.com", "AttachUserPolicy",
               {"userName": created, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})]
def burst(user, s, base, net):
    recs, dns = [], []
    for c in range(4):
        items = []
        for k in range(6):
            i = c * 6 + k
            iid = f"i-{base}{i:05x}"
            items.append({"instanceId": iid, "imageId": "ami-0f4b5c6d7e8f90a1b", "instanceType": "p3.16xlarge",
                          "privateIpAddress": f"10.{net}.0.{10 + i}",
                          "networkInterfaceSet": {"items": [{"networkInterfaceId": f"eni-{base}{i:05x}",
                                                             "privateIpAddress": f"10.{net}.0.{10 + i}"}]}})
            dns.append({"version": "1.100000", "account_id": acct, "region": "us-east-1", "vpc_id": "vpc-1",
                        "query_timestamp": ts(s + 600 + i), "query_name": "pool.supportxmr.com.",
                        "query_type": "A", "query_class": "IN", "rcode": "NOERROR",
                        "answers": [{"Rdata": "94.130.12.27", "Type": "A", "Class": "IN"}],
                        "srcaddr": f"10.{net}.0.{10 + i}", "srcport": "41234", "transport": "UDP",
                        "srcids": {"instance": iid}})
        recs.append(ct(s + c * 20, user, "ec2.amazonaws.com", "RunInstances",
                       {"instanceType": "p3.16xlarge", "instancesSet": {"items": [{"imageId": "ami-0f4b5c6d7e8f90a1b", "minCount": 6, "maxCount": 6}]}},
                       {"instancesSet": {"items": items}}))
    return recs, dns
root_recs = [ct(0, "root", "signin.amazonaws.com", "ConsoleLogin", None, {"ConsoleLogin": "Success"})]
root_recs[0]["eventType"] = "AwsConsoleSignIn"
root_recs += creator("root", "backup-svc", 120)
# An ordinary admin: a user put in a group, no key, no admin policy: no rule fires on alice.
alice = [ct(200, "alice", "iam.amazonaws.com", "CreateUser", {"userName": "bob"}, ip="10.9.9.9"),
         ct(230, "alice", "iam.amazonaws.com", "AddUserToGroup", {"userName": "bob", "groupName": "developers"}, ip="10.9.9.9")]
b1, d1 = burst("backup-svc", 1800, "0aaa", 1)
b2, d2 = burst("bob", 1900, "0bbb", 2)
def write(path, recs):
    with open(path, "w") as f:
        f.write(json.dumps({"Records": recs}))
def jsonl(path, recs):
    with open(path, "w") as f:
        for r in recs: f.write(json.dumps(r) + "\n")
import os
os.makedirs(f"{out}/a"); os.makedirs(f"{out}/b")
write(f"{out}/a/iam.json", root_recs + alice)
write(f"{out}/b/ec2.json", b1 + b2)
jsonl(f"{out}/b/dns.jsonl", d1 + d2)
PY

opts=(--no-progress -q --format json --no-geoip --pack "$src/content/cryptojacking-aws")
check() { # report-file label
  local r=$1 what=$2
  [ "$(jq '[.offenses[] | select(.index.value == "backup-svc")] | length' "$r")" = 0 ] ||
    fail "$what: the created user backup-svc has no offense of its own"
  [ "$(jq '[.offenses[] | select(.index.value == "root")] | length' "$r")" = 1 ] ||
    fail "$what: one offense for root"
  rules=$(jq -r '.offenses[] | select(.index.value == "root") | [.rules[].id] | join(" ")' "$r")
  for id in CJ-AUTH-06 CJ-IAM-02 CJ-EC2-02 CJ-MINE-01; do
    grep -qw "$id" <<<"$rules" || fail "$what: root's offense holds $id (has: $rules)"
  done
  [ "$(jq '[.offenses[] | select(.index.value == "bob")] | length' "$r")" = 1 ] ||
    fail "$what: bob, created by alice (no offense), keeps an offense of his own"
  [ "$(jq '[.offenses[] | select(.index.value == "alice")] | length' "$r")" = 0 ] || fail "$what: alice has no offense"
  brules=$(jq -r '.offenses[] | select(.index.value == "bob") | [.rules[].id] | join(" ")' "$r")
  grep -qw CJ-EC2-02 <<<"$brules" || fail "$what: bob's burst is in bob's offense (has: $brules)"
  # Risk stays with the principal that acted.
  [ "$(jq '[.users[] | select(.name == "backup-svc")][0].risk > 0' "$r")" = true ] ||
    fail "$what: backup-svc carries its own risk"
}

# One run over everything.
"$bin" analyze "${opts[@]}" --db "$work/one.db" "$work/a" "$work/b" >"$work/one.json"
check "$work/one.json" "one run"

# Two runs: the lineage learned in the first must come back from the store in the second.
"$bin" analyze "${opts[@]}" --db "$work/two.db" "$work/a" >"$work/two-a.json"
[ "$(jq '[.offenses[] | select(.index.value == "root")] | length' "$work/two-a.json")" = 1 ] ||
  fail "first slice: root's offense opens"
"$bin" analyze "${opts[@]}" --db "$work/two.db" "$work/b" >"$work/two-b.json"
"$bin" offenses list --db "$work/two.db" --status all --format json >"$work/two-list.json"
[ "$(jq '[.offenses[] | select(.index.value == "backup-svc")] | length' "$work/two-list.json")" = 0 ] ||
  fail "two runs: backup-svc has no offense of its own"
rules=$(jq -r '.offenses[] | select(.index.value == "root") | [.rules[].id] | join(" ")' "$work/two-list.json")
for id in CJ-IAM-02 CJ-EC2-02 CJ-MINE-01; do
  grep -qw "$id" <<<"$rules" || fail "two runs: root's offense holds $id (has: $rules)"
done
# The graph of root's offense shows the chain, and the created user's view names its creator.
rid=$(jq '.offenses[] | select(.index.value == "root") | .id' "$work/two-list.json")
"$bin" offenses graph "$rid" --db "$work/two.db" >"$work/graph.json"
[ "$(jq '[.elements.edges[].data | select(.source == "root:root" and .target == "user:backup-svc" and .kind == "CreateUser")] | length' "$work/graph.json")" = 1 ] ||
  fail "graph: root -CreateUser-> backup-svc"
[ "$(jq '[.elements.edges[].data | select(.source == "user:backup-svc" and (.target | startswith("group:instances:")) and .kind == "launched")] | length' "$work/graph.json")" = 1 ] ||
  fail "graph: backup-svc launched the burst group"
[ "$(jq '[.elements.nodes[].data | select(.kind == "domain" and .label == "pool.supportxmr.com")] | length' "$work/graph.json")" = 1 ] ||
  fail "graph: the pool domain"
"$bin" users show backup-svc --db "$work/two.db" --format json >"$work/user.json"
[ "$(jq -r '.lineage.parent.name + " " + .lineage.parent.relation' "$work/user.json")" = "root CreateUser" ] ||
  fail "users show: backup-svc was created by root"
[ "$(jq --argjson r "$rid" '[.offenses[] | select(.id == $r and .via == "lineage")] | length' "$work/user.json")" = 1 ] ||
  fail "users show: backup-svc is in root's offense through lineage"
"$bin" users show root --db "$work/two.db" --format json >"$work/root.json"
[ "$(jq '[.lineage.children[] | select(.name == "backup-svc" and .relation == "CreateUser")] | length' "$work/root.json")" = 1 ] ||
  fail "users show: root's children hold backup-svc, made by CreateUser"
[ "$(jq -r '.lineage.parent' "$work/root.json")" = null ] || fail "users show: root has no creator"
echo "ok: lineage joins root -> backup-svc -> GPU burst and mining into one offense, across runs"
