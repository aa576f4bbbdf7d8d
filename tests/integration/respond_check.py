#!/usr/bin/env python3
"""respond_check.py MODE PLAN LOG [ARGS] - checks for test_respond_run.sh on the requests the
loopback AWS stand-in (aws_mock.py) recorded for a plan's run or rollback.

  run PLAN LOG WORLD IN_DOUBT DENIED
        every plan step's call was sent exactly once with the plan's parameters (placeholders
        resolved), except step IN_DOUBT (in flight at the kill -9) and step DENIED (refused once,
        then run), sent once more; retries of a throttled attempt are one send
  rollback PLAN LOG WORLD RUNLOG
        the rollback calls of the reversible steps, in reverse plan order, each once, with the
        groups the instances had before and the rule numbers the run's entries took (RUNLOG)
WORLD is the stand-in's control file: a step made per VPC (quarantine group, DNS Firewall
association) is sent once for each VPC that one of the plan's instances in its region is in, and
for no other; a network ACL entry once for each ACL associated with one of their subnets that
does not deny the address already by an entry of its own, and for no other ACL.
Prints one line per problem and exits 1 when there is any.
"""
import json
import sys

RENAMES = {"InstanceIds": "InstanceId", "Groups": "GroupId"}  # EC2's Query names for lists
AUX = {"DescribeInstances", "DescribeNetworkAcls", "DescribeSecurityGroups",
       "RevokeSecurityGroupEgress", "GetCallerIdentity", "AssumeRole",
       "GetFirewallRuleGroupAssociation"}
PER_VPC = {"CreateSecurityGroup", "DeleteSecurityGroup", "AssociateFirewallRuleGroup",
           "DisassociateFirewallRuleGroup"}
PER_ACL = {"CreateNetworkAclEntry", "DeleteNetworkAclEntry"}


def place_targets(plan, world, step, action, rule_numbers):
    """[(target, extra expected fields)] for a fanned step, or [(None, {})]."""
    if action not in PER_VPC and action not in PER_ACL:
        return [(None, {})]
    inst = world["instances"]
    ids = set()
    for s in plan["steps"]:
        if s["region"] == step["region"] and s["account"] == step["account"]:
            p = s["parameters"]
            ids.update(p.get("InstanceIds", []))
            if "InstanceId" in p:
                ids.add(p["InstanceId"])
    vpcs = sorted({inst[i]["vpc"] for i in ids})
    if action in PER_VPC:
        key = "VpcId" if action in ("CreateSecurityGroup", "AssociateFirewallRuleGroup") else None
        js = step["service"] == "route53resolver"
        return [(v, {key: json.dumps(v) if js else v} if key else {}) for v in vpcs]
    subnets = {inst[i]["subnet"] for i in ids}
    cidr = step["parameters"].get("CidrBlock") or step["parameters"].get("Ipv6CidrBlock")
    out = []
    for aid, a in sorted(world["acls"].items()):
        if not subnets & set(a["subnets"]) or a["vpc"] not in vpcs:
            continue
        if any(e["egress"] and e["action"] == "deny" and e["cidr"] == cidr
               for e in a.get("entries", [])):
            continue  # denied already by the account's own entry: not touched
        extra = {"NetworkAclId": aid}
        if action == "DeleteNetworkAclEntry":
            extra["RuleNumber"] = rule_numbers.get((aid, cidr), "?")
        out.append((aid, extra))
    return out


def flatten(prefix, v, out, top=True, action=""):
    if isinstance(v, dict):
        for k, m in v.items():
            name = RENAMES.get(k, k) if top else k
            if top and action == "CreateSecurityGroup" and k == "Description":
                name = "GroupDescription"
            flatten(f"{prefix}.{name}" if prefix else name, m, out, False)
    elif isinstance(v, list):
        for i, m in enumerate(v, 1):
            flatten(f"{prefix}.{i}", m, out, False)
    elif isinstance(v, bool):
        out[prefix] = "true" if v else "false"
    else:
        out[prefix] = str(v)


def expected(service, action, params):
    """The request fields the plan fixes (placeholders left out: the runner resolves them)."""
    if service == "route53resolver":
        return {k: json.dumps(v, sort_keys=True) for k, v in params.items()
                if "${" not in json.dumps(v)}
    out = {}
    flatten("", params, out, True, action)
    return {k: v for k, v in out.items() if "${" not in v}


def sent_fields(rec):
    p = rec["params"]
    if rec["service"] == "route53resolver":
        return {k: json.dumps(v, sort_keys=True) for k, v in p.items()}
    return p


def load(path):
    reqs, status = [], {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("answered"):
                status[r["n"]] = r
            else:
                reqs.append(r)
    for r in reqs:
        a = status.get(r["n"], {})  # none: in flight when the caller died
        r["status"] = a.get("status")
        r["throttled"] = a.get("throttled", False)
        r["already"] = a.get("already", False)
    return reqs


def main():
    mode, plan_path, log_path = sys.argv[1:4]
    plan = json.load(open(plan_path))
    reqs = load(log_path)
    problems = []
    for r in reqs:
        if r["key"] is None:
            problems.append(f"request {r['n']} ({r['action']}) is not validly signed")
        if "${" in json.dumps(r["params"]):
            problems.append(f"request {r['n']} ({r['action']}) holds an unresolved placeholder")
    # A throttled or denied attempt is answered 4xx/5xx; what counts is each send that was not
    # refused by the stand-in's throttle (a retry follows) or deny.
    calls = [r for r in reqs if r["action"] not in AUX]
    world = json.load(open(sys.argv[4]))
    rule_numbers = {}
    if mode == "run":
        in_doubt, denied = sys.argv[5], sys.argv[6]
        steps = plan["steps"]
        want = [(s, s["action"], expected(s["service"], s["action"], s["parameters"]))
                for s in steps]
    else:
        in_doubt = denied = None
        for r in load(sys.argv[5]):
            if r["action"] == "CreateNetworkAclEntry" and r["status"] == 200:
                p = r["params"]
                rule_numbers[(p["NetworkAclId"], p.get("CidrBlock") or p.get("Ipv6CidrBlock"))] = \
                    p["RuleNumber"]
        steps = [s for s in reversed(plan["steps"]) if s["rollback"] is not None]
        want = [(s, s["rollback"]["action"],
                 expected(s["service"], s["rollback"]["action"], s["rollback"]["parameters"]))
                for s in steps]
    used = set()
    order = []
    for s, action, fields in want:
        targets = place_targets(plan, world, s, action, rule_numbers)
        all_hits = []
        for target, extra in targets:
            f = dict(fields, **extra)
            hits = [r for r in calls if r["n"] not in used and r["action"] == action and
                    r["region"] == (s["region"] if s["service"] != "iam" else "us-east-1") and
                    all(sent_fields(r).get(k) == v for k, v in f.items())]
            if target is not None and action in PER_VPC and not extra:
                hits = hits[:1] + [r for r in hits[1:] if r.get("throttled")]  # one per VPC
            all_hits += hits
            # Throttled attempts are retries of one send; everything else reached "AWS".
            sends = [r for r in hits if not r.get("throttled")]
            ok = [r for r in hits if r["status"] is not None and r["status"] < 300]
            already = [r for r in hits if r.get("already")]
            for r in hits:
                used.add(r["n"])
            n = len(sends)
            first = target == targets[0][0]
            twice = mode == "run" and first and s["id"] in (in_doubt, denied)
            what = f"step {s['id']} ({action} {s['region']}{' ' + target if target else ''})"
            if n != (2 if twice else 1):
                problems.append(f"{what} sent {n} times (expected "
                                f"{'twice' if twice else 'exactly once'}; {len(hits)} attempts)")
            if not ok and not already and not (mode == "run" and s["id"] == in_doubt):
                problems.append(f"{what} never succeeded")
        if not targets and action not in PER_ACL:  # an ACL may deny the address already
            problems.append(f"step {s['id']} ({action} {s['region']}): the world has no target")
        if all_hits:
            order.append(min(r["n"] for r in all_hits))
    if order != sorted(order):
        problems.append("the calls were not made in " +
                        ("plan order" if mode == "run" else "reverse plan order"))
    stray = [r for r in calls if r["n"] not in used]
    for r in stray:
        problems.append(f"request {r['n']} ({r['action']} {r['region']}) matches no step")
    for p in problems[:40]:
        print(p)
    sys.exit(1 if problems else 0)


main()
