#!/usr/bin/env python3
"""aws_mock.py PORTFILE LOGFILE CONTROL - a loopback stand-in for the AWS APIs a response plan
calls (standard library only), for tests/integration/test_respond_run.sh.

Every request is checked for a SigV4 signature (recomputed here, independently of coinhound's
signer) and recorded as one JSON line in LOGFILE before it is answered:
  {"n", "service", "region", "action", "params" (the form fields, or the JSON body), "key"}
("key" is the access key when the signature verifies, else null); a second line
{"answered": true, "n", "action", "status", "code", "made" (the id a CreateSecurityGroup or
AssociateFirewallRuleGroup made)} follows each answer, so a test can tell a request
still in flight when the caller was killed. Answers have the shapes the AWS API references document:
  - IAM and STS (Query): <ActionResponse><ActionResult>...; errors <ErrorResponse><Error>
  - EC2 (Query): <ActionResponse xmlns=".../2016-11-15/">...; errors <Response><Errors><Error>
  - Route 53 Resolver (JSON 1.1, X-Amz-Target): objects; errors {"__type", "message"}
with a little state, so that "already so" answers come when a call repeats an earlier one
(CreateSecurityGroup -> InvalidGroup.Duplicate, DeleteLoginProfile -> NoSuchEntity, ...).

CONTROL is a JSON file read again on every request, so a test can change it between runs:
  {"caller": "111122223333",                  GetCallerIdentity's account
   "instances": {"i-...": {"vpc", "subnet", "groups": [...]}},  what DescribeInstances knows
   "acls": {"acl-...": {"vpc", "subnets": [...], "entries": [{"n", "egress", "action",
            "cidr"}]}},                        the network ACLs, their subnets and entries;
                                               DescribeNetworkAcls filters by
                                               association.subnet-id, vpc-id or network-acl-id
   "async_polls": 2,                           GetFirewallRuleGroupAssociation answers CREATING
                                               (after Associate) or DELETING (after
                                               Disassociate) this many times before COMPLETE or
                                               ResourceNotFoundException; DeleteFirewallRuleGroup
                                               is refused (ConflictException) while any
                                               association of the group exists, DELETING or not
   "throttle_once": ["StopInstances"],         the first call of the action is throttled
   "deny": ["CreateNetworkAclEntry"],          AccessDenied / UnauthorizedOperation
   "delay": {"ModifyInstanceAttribute": 30}}   seconds to hold the answer (after recording)
Credentials: AKIDBASE/basesecret; AssumeRole hands out ASIAROLE<account>/rolesecret<account>.
It binds 127.0.0.1 port 0 and writes the port to PORTFILE when ready.
"""
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTFILE, LOGFILE, CONTROL = sys.argv[1:4]
LOCK = threading.Lock()
SECRETS = {"AKIDBASE": "basesecret"}
STATE = {"seen": {}, "groups": {}, "acl_entries": {}, "login_profiles_deleted": set(),
         "user_policies": set(), "next": 1, "assocs": {}, "rule_groups": set(),
         "domain_lists": set()}
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ALREADY = ("NoSuchEntity", "InvalidGroup.Duplicate", "InvalidGroup.NotFound",
           "NetworkAclEntryAlreadyExists", "InvalidNetworkAclEntry.NotFound",
           "ResourceNotFoundException")


def control():
    try:
        with open(CONTROL) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def sigv4(handler, body):
    """The access key when the signature verifies, else None."""
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                 r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$",
                 handler.headers.get("Authorization", ""))
    if not m:
        return None, None, None
    key, day, region, service, signed, sig = m.groups()
    secret = SECRETS.get(key)
    if secret is None and key.startswith("ASIAROLE"):
        secret = "rolesecret" + key[8:]
    if secret is None:
        return None, region, service
    hdrs = {k.lower(): " ".join(v.split()) for k, v in handler.headers.items()}
    names = signed.split(";")
    if names != sorted(names) or any(n not in hdrs for n in names):
        return None, region, service
    creq = "\n".join([handler.command, "/", "",
                      "".join(n + ":" + hdrs[n] + "\n" for n in names), signed,
                      hashlib.sha256(body.encode()).hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", hdrs.get("x-amz-date", ""),
                     f"{day}/{region}/{service}/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    ok = hmac.compare_digest(hmac.new(k, sts.encode(), hashlib.sha256).hexdigest(), sig)
    return (key if ok else None), region, service


def q_error(service, code, msg):
    if service == "ec2":
        return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
                f"<Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
                "<RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>")
    ns = IAM_NS if service == "iam" else STS_NS
    return (f"<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{msg}</Message></Error><RequestId>4a5b6c7d-example</RequestId>"
            "</ErrorResponse>")


def q_ok(service, action, inner):
    ns = {"ec2": EC2_NS, "iam": IAM_NS}.get(service, STS_NS)
    if service == "ec2":
        return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{ns}\">"
                f"<requestId>59dbff89-35bd-4eac-99ed-be587example</requestId>{inner}"
                f"</{action}Response>")
    return (f"<{action}Response xmlns=\"{ns}\"><{action}Result>{inner}</{action}Result>"
            "<ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eexample</RequestId>"
            f"</ResponseMetadata></{action}Response>")


def listed(form, prefix):
    out, i = [], 1
    while f"{prefix}.{i}" in form:
        out.append(form[f"{prefix}.{i}"])
        i += 1
    return out


def new_id(prefix):
    STATE["next"] += 1
    return f"{prefix}-{STATE['next']:017x}"


def query(service, action, form, ctl):
    """(status, body) for a Query-protocol call, changing STATE."""
    if service == "sts" and action == "GetCallerIdentity":
        acct = ctl.get("caller", "111122223333")
        return 200, q_ok("sts", action, f"<Arn>arn:aws:iam::{acct}:user/responder</Arn>"
                         f"<UserId>AIDACKCEVSQ6C2EXAMPLE</UserId><Account>{acct}</Account>")
    if service == "sts" and action == "AssumeRole":
        m = re.match(r"arn:aws:iam::(\d{12}):role/(.+)$", form.get("RoleArn", ""))
        if not m:
            return 400, q_error("sts", "ValidationError", "bad RoleArn")
        acct = m.group(1)
        return 200, q_ok("sts", action, "<Credentials>"
                         f"<AccessKeyId>ASIAROLE{acct}</AccessKeyId>"
                         f"<SecretAccessKey>rolesecret{acct}</SecretAccessKey>"
                         f"<SessionToken>session-{acct}</SessionToken>"
                         "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
                         f"<AssumedRoleUser><Arn>{form['RoleArn']}</Arn>"
                         "<AssumedRoleId>AROA3XFRBF535PLBIFPI4:coinhound-respond</AssumedRoleId>"
                         "</AssumedRoleUser>")
    if service == "iam":
        user = form.get("UserName", "")
        if action in ("UpdateAccessKey", "PutUserPolicy"):
            if action == "PutUserPolicy":
                STATE["user_policies"].add((user, form.get("PolicyName")))
            return 200, q_ok("iam", action, "")
        if action == "DeleteLoginProfile":
            if user in STATE["login_profiles_deleted"]:
                return 404, q_error("iam", "NoSuchEntity",
                                    f"Login Profile for User {user} cannot be found.")
            STATE["login_profiles_deleted"].add(user)
            return 200, q_ok("iam", action, "")
        if action == "DeleteUserPolicy":
            key = (user, form.get("PolicyName"))
            if key not in STATE["user_policies"]:
                return 404, q_error("iam", "NoSuchEntity", "The user policy cannot be found.")
            STATE["user_policies"].discard(key)
            return 200, q_ok("iam", action, "")
    if service == "ec2":
        inst = ctl.get("instances", {})
        if action == "DescribeInstances":
            items = ""
            for iid in listed(form, "InstanceId"):
                if iid not in inst:
                    continue
                i = inst[iid]
                groups = "".join(f"<item><groupId>{g}</groupId><groupName>{g}</groupName></item>"
                                 for g in i["groups"])
                items += (f"<item><reservationId>r-{iid[2:]}</reservationId><ownerId>"
                          f"{ctl.get('caller', '111122223333')}</ownerId><groupSet/>"
                          "<instancesSet><item>"
                          f"<instanceId>{iid}</instanceId><imageId>ami-0abcdef1234567890</imageId>"
                          "<instanceState><code>16</code><name>running</name></instanceState>"
                          f"<subnetId>{i['subnet']}</subnetId><vpcId>{i['vpc']}</vpcId>"
                          f"<groupSet>{groups}</groupSet>"
                          "<networkInterfaceSet><item><networkInterfaceId>eni-1</networkInterfaceId>"
                          f"<groupSet>{groups}</groupSet></item></networkInterfaceSet>"
                          "</item></instancesSet></item>")
            return 200, q_ok("ec2", action, f"<reservationSet>{items}</reservationSet>")
        if action == "DescribeNetworkAcls":
            acls = ctl.get("acls", {})
            filt = form.get("Filter.1.Name")
            want = set(listed(form, "Filter.1.Value"))
            items = ""
            for aid, a in acls.items():
                if not ((filt == "association.subnet-id" and want & set(a["subnets"])) or
                        (filt == "vpc-id" and a["vpc"] in want) or
                        (filt == "network-acl-id" and aid in want)):
                    continue
                entries = [(e["n"], e["egress"], e["action"], e["cidr"])
                           for e in a.get("entries", [])]
                entries += [(int(k[1]), k[2] == "true", v[1], v[0])
                            for k, v in STATE["acl_entries"].items() if k[0] == aid]
                ents = "".join(
                    f"<item><ruleNumber>{n}</ruleNumber><protocol>-1</protocol>"
                    f"<ruleAction>{act}</ruleAction><egress>{'true' if eg else 'false'}</egress>"
                    + (f"<ipv6CidrBlock>{c}</ipv6CidrBlock>" if ":" in c else
                       f"<cidrBlock>{c}</cidrBlock>") + "</item>"
                    for n, eg, act, c in sorted(entries, key=lambda e: (e[1], e[0])))
                assoc = "".join(
                    f"<item><networkAclAssociationId>aclassoc-{sub[7:]}</networkAclAssociationId>"
                    f"<networkAclId>{aid}</networkAclId><subnetId>{sub}</subnetId></item>"
                    for sub in a["subnets"])
                items += (f"<item><networkAclId>{aid}</networkAclId><vpcId>{a['vpc']}</vpcId>"
                          f"<default>false</default><entrySet>{ents}</entrySet>"
                          f"<associationSet>{assoc}</associationSet><tagSet/>"
                          f"<ownerId>{ctl.get('caller', '111122223333')}</ownerId></item>")
            return 200, q_ok("ec2", action, f"<networkAclSet>{items}</networkAclSet>")
        if action == "CreateSecurityGroup":
            key = (form.get("VpcId"), form.get("GroupName"))
            if key in STATE["groups"]:
                return 400, q_error("ec2", "InvalidGroup.Duplicate",
                                    f"The security group '{key[1]}' already exists for VPC "
                                    f"'{key[0]}'")
            gid = new_id("sg")
            STATE["groups"][key] = gid
            return 200, q_ok("ec2", action, f"<return>true</return><groupId>{gid}</groupId>")
        if action == "DescribeSecurityGroups":
            key = (form.get("Filter.2.Value.1"), form.get("Filter.1.Value.1"))
            gid = STATE["groups"].get(key)
            items = f"<item><groupId>{gid}</groupId></item>" if gid else ""
            return 200, q_ok("ec2", action, f"<securityGroupInfo>{items}</securityGroupInfo>")
        if action == "DeleteSecurityGroup":
            gid = form.get("GroupId")
            for k, v in list(STATE["groups"].items()):
                if v == gid:
                    del STATE["groups"][k]
                    return 200, q_ok("ec2", action, "<return>true</return>")
            return 400, q_error("ec2", "InvalidGroup.NotFound",
                                f"The security group '{gid}' does not exist")
        if action in ("StopInstances", "StartInstances", "TerminateInstances"):
            items = "".join(f"<item><instanceId>{i}</instanceId><currentState><code>64</code>"
                            "<name>stopping</name></currentState></item>"
                            for i in listed(form, "InstanceId"))
            return 200, q_ok("ec2", action, f"<instancesSet>{items}</instancesSet>")
        if action == "CreateSnapshots":
            return 200, q_ok("ec2", action, "<snapshotSet><item><snapshotId>" + new_id("snap") +
                             "</snapshotId></item></snapshotSet>")
        if action in ("ModifyInstanceAttribute", "RevokeSecurityGroupEgress"):
            return 200, q_ok("ec2", action, "<return>true</return>")
        if action in ("CreateNetworkAclEntry", "DeleteNetworkAclEntry"):
            acl = ctl.get("acls", {}).get(form.get("NetworkAclId"))
            if acl is None:
                return 400, q_error("ec2", "InvalidNetworkAclID.NotFound",
                                    f"The network ACL '{form.get('NetworkAclId')}' does not exist")
            key = (form.get("NetworkAclId"), form.get("RuleNumber"), form.get("Egress"))
            own = any(str(e["n"]) == key[1] and ("true" if e["egress"] else "false") == key[2]
                      for e in acl.get("entries", []))
            if action == "CreateNetworkAclEntry":
                if key in STATE["acl_entries"] or own:
                    return 400, q_error("ec2", "NetworkAclEntryAlreadyExists",
                                        f"The network acl entry identified by {key[1]} already "
                                        "exists.")
                STATE["acl_entries"][key] = (form.get("CidrBlock") or form.get("Ipv6CidrBlock"),
                                             form.get("RuleAction"))
                return 200, q_ok("ec2", action, "<return>true</return>")
            if key not in STATE["acl_entries"]:
                return 400, q_error("ec2", "InvalidNetworkAclEntry.NotFound",
                                    "The specified network ACL entry does not exist")
            del STATE["acl_entries"][key]
            return 200, q_ok("ec2", action, "<return>true</return>")
    return 400, q_error(service, "InvalidAction", f"Could not find operation {action}")


def not_found(what):
    return 400, {"__type": "com.amazonaws.route53resolver#ResourceNotFoundException",
                 "message": f"{what} does not exist"}


def resolver(action, body, ctl):
    name = body.get("Name", "")
    polls = int(ctl.get("async_polls", 2))
    assocs = STATE["assocs"]
    if action == "CreateFirewallDomainList":
        fid = "rslvr-fdl-" + new_id("x")[2:]
        STATE["domain_lists"].add(fid)
        return 200, {"FirewallDomainList": {"Id": fid, "Name": name, "Status": "COMPLETE"}}
    if action == "CreateFirewallRuleGroup":
        gid = "rslvr-frg-" + new_id("x")[2:]
        STATE["rule_groups"].add(gid)
        return 200, {"FirewallRuleGroup": {"Id": gid, "Name": name, "Status": "COMPLETE"}}
    if action == "AssociateFirewallRuleGroup":
        gid, vpc, crid = (body.get("FirewallRuleGroupId"), body.get("VpcId"),
                          body.get("CreatorRequestId"))
        for a in assocs.values():
            if a["creator"] == crid:  # a retry of the same request: the same association
                return 200, {"FirewallRuleGroupAssociation": dict(a["out"])}
            if a["group"] == gid and a["vpc"] == vpc:
                return 400, {"__type": "com.amazonaws.route53resolver#ConflictException",
                             "message": f"{gid} is already associated with {vpc}"}
        aid = "rslvr-frgassoc-" + new_id("x")[2:]
        out = {"Id": aid, "FirewallRuleGroupId": gid, "VpcId": vpc, "Status": "CREATING"}
        assocs[aid] = {"group": gid, "vpc": vpc, "creator": crid, "left": polls, "out": out}
        return 200, {"FirewallRuleGroupAssociation": dict(out)}
    if action == "GetFirewallRuleGroupAssociation":
        a = assocs.get(body.get("FirewallRuleGroupAssociationId"))
        if a is None:
            return not_found("association")
        a["left"] = min(a["left"], polls)  # the control file may have shortened the wait
        if a["left"] > 0:
            a["left"] -= 1
        elif a["out"]["Status"] == "CREATING":
            a["out"]["Status"] = "COMPLETE"
        elif a["out"]["Status"] == "DELETING":
            del assocs[body.get("FirewallRuleGroupAssociationId")]
            return not_found("association")
        return 200, {"FirewallRuleGroupAssociation": dict(a["out"])}
    if action == "DisassociateFirewallRuleGroup":
        a = assocs.get(body.get("FirewallRuleGroupAssociationId"))
        if a is None:
            return not_found("association")
        if a["out"]["Status"] != "DELETING":
            a["out"]["Status"], a["left"] = "DELETING", polls
        return 200, {"FirewallRuleGroupAssociation": dict(a["out"])}
    if action in ("UpdateFirewallDomains",):
        return 200, {"Id": body.get("FirewallDomainListId"), "Status": "UPDATING"}
    if action == "CreateFirewallRule":
        return 200, {"FirewallRule": {"FirewallRuleGroupId": body.get("FirewallRuleGroupId"),
                                      "Name": name}}
    if action == "DeleteFirewallRuleGroup":
        gid = body.get("FirewallRuleGroupId")
        if any(a["group"] == gid for a in assocs.values()):
            return 400, {"__type": "com.amazonaws.route53resolver#ConflictException",
                         "message": f"rule group {gid} is still associated with a VPC"}
        if gid not in STATE["rule_groups"]:
            return not_found("rule group")
        STATE["rule_groups"].discard(gid)
        return 200, {}
    if action == "DeleteFirewallDomainList":
        fid = body.get("FirewallDomainListId")
        if fid not in STATE["domain_lists"]:
            return not_found("domain list")
        STATE["domain_lists"].discard(fid)
        return 200, {}
    if action.startswith("Delete"):
        return 200, {}
    return 400, {"__type": "com.amazonaws.route53resolver#InvalidRequestException",
                 "message": f"unknown operation {action}"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, ctype):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode() if n else ""
        ctl = control()
        key, region, service = sigv4(self, raw)
        target = self.headers.get("X-Amz-Target")
        if target is not None:
            action = target.split(".", 1)[-1]
            try:
                params = json.loads(raw or "{}")
            except ValueError:
                params = {}
        else:
            params = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
            action = params.get("Action", "")
        with LOCK:
            STATE["n"] = STATE.get("n", 0) + 1
            seq = STATE["n"]
            rec = {"n": seq, "service": service, "region": region, "action": action,
                   "params": params, "key": key}
            with open(LOGFILE, "a") as f:
                f.write(json.dumps(rec) + "\n")
        delay = ctl.get("delay", {}).get(action)
        if delay:
            time.sleep(delay)
        json_ct = "application/x-amz-json-1.1"
        with LOCK:
            if key is None:
                status, body, ct = 403, (json.dumps({"__type": "InvalidSignatureException",
                                                     "message": "signature mismatch"})
                                         if target else q_error(service or "ec2",
                                                                "SignatureDoesNotMatch",
                                                                "signature mismatch")), \
                    json_ct if target else "text/xml"
            elif action in ctl.get("throttle_once", []) and \
                    STATE["seen"].setdefault(action, 0) == 0:
                STATE["seen"][action] = 1
                if target:
                    status, body, ct = 400, json.dumps({"__type": "ThrottlingException",
                                                        "message": "Rate exceeded"}), json_ct
                elif service == "ec2":
                    status, body, ct = 503, q_error("ec2", "RequestLimitExceeded",
                                                    "Request limit exceeded."), "text/xml"
                else:
                    status, body, ct = 400, q_error(service, "Throttling", "Rate exceeded"), \
                        "text/xml"
            elif action in ctl.get("deny", []):
                who = "arn:aws:sts::%s:assumed-role/responder/coinhound-respond" % \
                    ctl.get("caller", "111122223333")
                msg = f"User: {who} is not authorized to perform: {service}:{action}"
                if target:
                    status, body, ct = 400, json.dumps({
                        "__type": "com.amazonaws.route53resolver#AccessDeniedException",
                        "message": msg}), json_ct
                elif service == "ec2":
                    status, body, ct = 403, q_error("ec2", "UnauthorizedOperation",
                                                    "You are not authorized to perform this "
                                                    "operation."), "text/xml"
                else:
                    status, body, ct = 403, q_error(service, "AccessDenied", msg), "text/xml"
            elif target:
                status, obj = resolver(action, params, ctl)
                body, ct = json.dumps(obj), json_ct
            else:
                status, body = query(service, action, params, ctl)
                ct = "text/xml"
            code = re.search(r"<Code>([^<]*)</Code>|\"__type\": \"(?:[^\"]*#)?([^\"]*)\"", body)
            code = (code.group(1) or code.group(2)) if code and status >= 400 else ""
            made = re.search(r"<groupId>([^<]*)</groupId>|\"Id\": \"(rslvr-frgassoc-[^\"]*)\"",
                             body) if status < 300 and action in (
                "CreateSecurityGroup", "AssociateFirewallRuleGroup") else None
            with open(LOGFILE, "a") as f:
                f.write(json.dumps({"answered": True, "n": seq, "action": action,
                                    "status": status, "code": code,
                                    "made": (made.group(1) or made.group(2)) if made else None,
                                    "throttled": code in ("Throttling", "ThrottlingException",
                                                          "RequestLimitExceeded"),
                                    "already": code in ALREADY}) + "\n")
        self.answer(status, body, ct)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
