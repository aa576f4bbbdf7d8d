#!/usr/bin/env python3
"""Writes the test events of the cryptojacking-aws rules (this folder). Run it after changing a
case; the output is deterministic. Addresses are chosen for what the bundled GeoIP country
database says: 81.2.69.142 and 86.1.1.1 GB, 5.255.255.5 RU, 90.84.1.1 FR, 216.160.83.56 US."""
import json, os, calendar, time, itertools
OUT = os.path.dirname(os.path.abspath(__file__))
ACCT = "111122223333"
_n = itertools.count(1)
def ts(s): return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
def iso(t): return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
T0 = ts("2024-06-03T09:00:00Z")
IPS = {"GB": "81.2.69.142", "GB2": "86.1.1.1", "RU": "5.255.255.5", "FR": "90.84.1.1", "US": "216.160.83.56"}
UA_CONSOLE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
UA_KALI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64-kali exe/x86_64.kali.2024 prompt/off command/ec2.describe-instances"
UA_UBU = "aws-cli/2.15.30 Python/3.11.8 Linux/6.8.0-1009-aws exe/x86_64.ubuntu.24 prompt/off command/ec2.describe-instances"

def ident(user, utype="IAMUser", invoked=None, key="AKIAEXAMPLE0000001"):
    if utype == "Root":
        d = {"type": "Root", "principalId": ACCT, "arn": f"arn:aws:iam::{ACCT}:root", "accountId": ACCT}
        if key: d["accessKeyId"] = key
    elif utype == "AssumedRole":
        d = {"type": "AssumedRole", "principalId": "AROAEXAMPLEROLE:AutoScaling", "arn": f"arn:aws:sts::{ACCT}:assumed-role/{user}/AutoScaling",
             "accountId": ACCT, "accessKeyId": "ASIAEXAMPLESVC00001",
             "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLE", "arn": f"arn:aws:iam::{ACCT}:role/aws-service-role/autoscaling.amazonaws.com/{user}", "accountId": ACCT, "userName": user},
                                "attributes": {"creationDate": "2024-06-03T09:00:00Z", "mfaAuthenticated": "false"}}}
    else:
        d = {"type": "IAMUser", "principalId": "AIDA" + user.upper()[:8].ljust(8, "X"), "arn": f"arn:aws:iam::{ACCT}:user/{user}", "accountId": ACCT, "userName": user}
        if key: d["accessKeyId"] = key
    if invoked: d["invokedBy"] = invoked
    return d

def ct(t, name, user, source="ec2.amazonaws.com", region="us-east-1", ip="81.2.69.142", ua=UA_UBU, req=None, resp=None,
       err=None, utype="IAMUser", invoked=None, extra=None, key="AKIAEXAMPLE0000001"):
    r = {"eventVersion": "1.09", "userIdentity": ident(user, utype, invoked, key), "eventTime": iso(t), "eventSource": source,
         "eventName": name, "awsRegion": region, "sourceIPAddress": invoked if invoked else ip, "userAgent": invoked if invoked else ua,
         "requestParameters": req, "responseElements": resp, "requestID": "req-%06d" % next(_n), "eventID": "evt-%06d" % next(_n),
         "readOnly": name.startswith(("Describe", "Get", "List")), "eventType": "AwsApiCall", "managementEvent": True,
         "recipientAccountId": ACCT, "eventCategory": "Management"}
    if err: r["errorCode"], r["errorMessage"] = err
    if extra: r.update(extra)
    return r

def login(t, user, cc="GB", ok=True, mfa=False, utype="IAMUser"):
    r = ct(t, "ConsoleLogin", user, source="signin.amazonaws.com", ip=IPS[cc], ua=UA_CONSOLE, utype=utype, key=None,
           resp={"ConsoleLogin": "Success" if ok else "Failure"},
           extra={"additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": "Yes" if mfa else "No"},
                  "eventType": "AwsConsoleSignIn", "readOnly": False})
    if not ok: r["errorMessage"] = "Failed authentication"
    return r

_inst = itertools.count(1)
def run(t, user, n=1, region="us-east-1", image="ami-0c7217cdde317cfec", itype="t3.micro", ua=UA_UBU, invoked=None, utype="IAMUser", err=None, ip="81.2.69.142", vpc="172.31"):
    items, req_items = [], [{"imageId": image, "minCount": n, "maxCount": n}]
    for _ in range(n):
        k = next(_inst)
        iid = "i-0%016x" % (0xabc0000000000 + k)
        eni = "eni-0%016x" % (0xdef0000000000 + k)
        pip = f"{vpc}.{k // 250}.{k % 250 + 4}"
        items.append({"instanceId": iid, "imageId": image, "instanceType": itype, "privateIpAddress": pip,
                      "instanceState": {"code": 0, "name": "pending"},
                      "networkInterfaceSet": {"items": [{"networkInterfaceId": eni, "privateIpAddress": pip,
                          "privateIpAddressesSet": {"item": [{"privateIpAddress": pip, "primary": True}]}}]}})
    resp = None if err else {"requestId": "r-%06d" % next(_n), "reservationId": "r-0%016x" % next(_n), "ownerId": ACCT, "instancesSet": {"items": items}}
    r = ct(t, "RunInstances", user, region=region, ua=ua, invoked=invoked, utype=utype, err=err, ip=ip,
           req={"instancesSet": {"items": req_items}, "instanceType": itype, "monitoring": {"enabled": False}}, resp=resp)
    return r

def describe_images(t, user, pattern, ua=UA_KALI, ip="5.255.255.5"):
    return ct(t, "DescribeImages", user, ua=ua, ip=ip, req={"executableBySet": {}, "imagesSet": {}, "ownersSet": {},
              "filterSet": {"items": [{"name": "name", "valueSet": {"items": [{"value": pattern}]}}]}})

def quota(t, user, region, ua=UA_KALI, ip="5.255.255.5"):
    return ct(t, "GetServiceQuota", user, source="servicequotas.amazonaws.com", region=region, ua=ua, ip=ip,
              req={"serviceCode": "ec2", "quotaCode": "L-1216C47A"})

def create_key(t, user, ip="5.255.255.5"):
    return ct(t, "CreateAccessKey", user, source="iam.amazonaws.com", ip=ip, ua=UA_CONSOLE,
              req={"userName": user}, resp={"accessKey": {"userName": user, "accessKeyId": "AKIAEXAMPLENEWKEY01", "status": "Active", "createDate": iso(t)}})

def dns(t, inst, name, region="us-east-1", src="172.31.0.5"):
    return {"version": "1.100000", "account_id": ACCT, "region": region, "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "query_timestamp": iso(t), "query_name": name + ".", "query_type": "A", "query_class": "IN", "rcode": "NOERROR",
            "answers": [{"Rdata": "94.130.12.27", "Type": "A", "Class": "IN"}], "srcaddr": src, "srcport": "41234",
            "transport": "UDP", "srcids": {"instance": inst}}

FLOW_HDR = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
def flow(t, eni, src, dst, dport, packets=40, nbytes=5200, sport=50432, dur=60):
    return f"2 {ACCT} {eni} {src} {dst} {sport} {dport} 6 {packets} {nbytes} {t} {t+dur} ACCEPT OK"

def w(name, recs):
    with open(os.path.join(OUT, name), "w") as f:
        for r in recs:
            f.write((r if isinstance(r, str) else json.dumps(r, separators=(",", ":"))) + "\n")

os.makedirs(OUT, exist_ok=True)
m = 60
# AUTH-01
w("auth-01-two-countries.jsonl", [login(T0, "alice", "GB", mfa=True), login(T0 + 20*m, "alice", "RU")])
w("auth-01-traveller.jsonl", [login(T0, "bob", "GB", mfa=True), login(T0 + 25*3600, "bob", "FR", mfa=True)])
w("auth-01-two-users.jsonl", [login(T0, "alice", "GB", mfa=True), login(T0 + 10*m, "carol", "US", mfa=True)])
# AUTH-02
w("auth-02-foreign.jsonl", [login(T0, "alice", "RU")])
w("auth-02-home.jsonl", [login(T0, "alice", "GB"), login(T0 + m, "dave", "US")])
w("auth-02-foreign-failed.jsonl", [login(T0, "alice", "RU", ok=False)])
# AUTH-03/04
brute = [login(T0 + i*m, "alice", "RU", ok=False) for i in range(6)]
w("auth-03-brute.jsonl", brute)
w("auth-03-mistyped.jsonl", [login(T0, "erin", "GB", ok=False), login(T0 + 30, "erin", "GB", ok=False), login(T0 + 70, "erin", "GB", mfa=True)])
w("auth-03-slow.jsonl", [login(T0 + i*16*m, "alice", "GB", ok=False) for i in range(5)])
w("auth-04-brute-success.jsonl", brute + [login(T0 + 10*m, "alice", "RU")])
# AUTH-05/06
w("auth-05-no-mfa.jsonl", [login(T0, "alice", "GB")])
w("auth-05-mfa.jsonl", [login(T0, "alice", "GB", mfa=True)])
w("auth-06-root.jsonl", [login(T0, "root", "GB", mfa=True, utype="Root")])
root_svc = ct(T0, "Decrypt", "root", source="kms.amazonaws.com", utype="Root", invoked="cloudtrail.amazonaws.com", key=None)
w("auth-06-root-service.jsonl", [root_svc])
# IAM-01
w("iam-01-key-after-login.jsonl", [login(T0, "alice", "GB", mfa=True), login(T0 + 20*m, "alice", "RU"), create_key(T0 + 35*m, "alice")])
w("iam-01-key-normal.jsonl", [login(T0, "alice", "GB", mfa=True), create_key(T0 + 15*m, "alice", ip=IPS["GB"])])
w("iam-01-key-late.jsonl", [login(T0, "alice", "GB", mfa=True), login(T0 + 20*m, "alice", "RU"), create_key(T0 + 20*m + 3*3600, "alice")])
# RECON
w("recon-01-kali-ua.jsonl", [ct(T0, "DescribeInstances", "alice", ua=UA_KALI, ip=IPS["RU"], req={"instancesSet": {}, "filterSet": {}}),
                             ct(T0 + 5, "DescribeRegions", "alice", ua=UA_KALI.replace("ec2.describe-instances", "ec2.describe-regions"), ip=IPS["RU"], req={"regionSet": {}})])
w("recon-01-ubuntu-ua.jsonl", [ct(T0, "DescribeInstances", "alice", ua=UA_UBU, req={"instancesSet": {}, "filterSet": {}})])
w("recon-02-describe-kali.jsonl", [describe_images(T0, "alice", "*kali-last-snapshot*")])
w("recon-02-describe-ubuntu.jsonl", [describe_images(T0, "alice", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", ua=UA_UBU, ip=IPS["GB"])])
REG = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-south-1", "ap-southeast-1", "sa-east-1"]
w("recon-02-quota-sweep.jsonl", [quota(T0 + 20*i, "alice", REG[i]) for i in range(6)])
w("recon-02-quota-few.jsonl", [quota(T0 + 20*i, "alice", REG[i]) for i in range(3)] + [quota(T0 + 600 + 20*i, "alice", REG[i]) for i in range(3)])
# EC2-01
KALI = "ami-0f4b5c6d7e8f90a1b"
w("ec2-01-kali.jsonl", [run(T0, "alice", image=KALI, ua=UA_KALI, ip=IPS["RU"])])
w("ec2-01-autoscaling.jsonl", [run(T0, "AWSServiceRoleForAutoScaling", n=3, utype="AssumedRole", invoked="autoscaling.amazonaws.com")])
w("ec2-01-refused.jsonl", [run(T0, "alice", image=KALI, ua=UA_KALI, err=("Client.UnauthorizedOperation", "You are not authorized to perform this operation."))])
# EC2-02
w("ec2-02-burst.jsonl", [run(T0 + i*90, "alice", n=6, region=REG[i], image=KALI, itype="c5.4xlarge", ua=UA_KALI, ip=IPS["RU"]) for i in range(4)])
w("ec2-02-nineteen.jsonl", [run(T0 + i*90, "alice", n=n, region=REG[i]) for i, n in enumerate([6, 6, 7])])
w("ec2-02-autoscaling.jsonl", [run(T0 + i*60, "AWSServiceRoleForAutoScaling", n=10, utype="AssumedRole", invoked="autoscaling.amazonaws.com") for i in range(3)])
w("ec2-02-slow.jsonl", [run(T0 + i*15*m, "alice", n=6) for i in range(4)])
# EC2-03 (learning 24h: launches during day 1, then day 2)
day1 = [run(T0 + i*3600, "bob", region="us-east-1") for i in range(0, 24, 6)] + [run(T0 + 2*3600, "bob", region="eu-west-1")]
day1.sort(key=lambda r: r["eventTime"])
w("ec2-03-new-region.jsonl", day1 + [run(T0 + 26*3600, "alice", region="ap-south-1")])
w("ec2-03-same-region.jsonl", day1 + [run(T0 + 26*3600, "alice", region="us-east-1"), run(T0 + 27*3600, "bob", region="eu-west-1")])
# EC2-04
w("ec2-04-first-gpu.jsonl", [run(T0 + i*6*3600, "alice") for i in range(4)] + [run(T0 + 26*3600, "alice", itype="p3.16xlarge", region="ap-south-1")])
w("ec2-04-usual-gpu.jsonl", [run(T0 + 3600, "mlops", itype="g4dn.xlarge"), run(T0 + 26*3600, "mlops", itype="g4dn.xlarge")])
w("ec2-04-small.jsonl", [run(T0 + 3600, "alice"), run(T0 + 26*3600, "alice", itype="t3.micro")])
# MINE-01
w("mine-01-pool-query.jsonl", [dns(T0, "i-0abc0000000000099", "gulf.pool.supportxmr.com")])
w("mine-01-lookalike.jsonl", [dns(T0, "i-0abc0000000000099", "notsupportxmr.com"), dns(T0 + 5, "i-0abc0000000000099", "archive.ubuntu.com"),
                              dns(T0 + 9, "i-0abc0000000000099", "supportxmr.com.example.org")])
# MINE-02
ENI = "eni-0def0000000000099"
with open(os.path.join(OUT, "mine-02-stratum.log"), "w") as f:
    f.write(FLOW_HDR + "\n")
    for i in range(6):
        f.write(flow(T0 + i*m, ENI, "172.31.0.99", "94.130.12.27", 3333) + "\n")
        f.write(flow(T0 + i*m, ENI, "94.130.12.27", "172.31.0.99", 50432, sport=3333, packets=35, nbytes=9800) + "\n")
with open(os.path.join(OUT, "mine-02-short.log"), "w") as f:
    f.write(FLOW_HDR + "\n")
    for i in range(2):
        f.write(flow(T0 + i*m, ENI, "172.31.0.99", "94.130.12.27", 3333) + "\n")
    f.write(flow(T0 + 5*m, ENI, "172.31.0.99", "94.130.12.27", 3333, packets=1, nbytes=60) + "\n")
with open(os.path.join(OUT, "mine-02-https.log"), "w") as f:
    f.write(FLOW_HDR + "\n")
    for i in range(8):
        f.write(flow(T0 + i*m, ENI, "172.31.0.99", "52.94.5.10", 443, packets=400, nbytes=520000) + "\n")
# CHAIN-01: attack
atk = [login(T0, "alice", "GB", mfa=True), login(T0 + 20*m, "alice", "RU")]
burst = [run(T0 + 60*m + i*60, "alice", n=5, region=REG[i], image=KALI, itype="c5.4xlarge", ua=UA_KALI, ip=IPS["RU"]) for i in range(4)]
atk += burst
w("chain-01-attack-ct.jsonl", atk)
insts = [(it["instanceId"], it["networkInterfaceSet"]["items"][0]["networkInterfaceId"], it["privateIpAddress"], r["awsRegion"])
         for r in burst for it in r["responseElements"]["instancesSet"]["items"]]
w("chain-01-attack-dns.jsonl", [dns(T0 + 75*m + k*7, iid, "xmr-eu1.nanopool.org", region=reg, src=pip) for k, (iid, eni, pip, reg) in enumerate(insts[:6])])
with open(os.path.join(OUT, "chain-01-attack-flow.log"), "w") as f:
    f.write(FLOW_HDR + "\n")
    for i in range(6):
        for iid, eni, pip, reg in insts[:3]:
            f.write(flow(T0 + 76*m + i*m, eni, pip, "94.130.12.27", 14444) + "\n")
# normal: GB login with MFA, the same launches (same ids, so DNS links) but no anomalous login
norm = [login(T0, "alice", "GB", mfa=True)] + burst
w("chain-01-normal-ct.jsonl", norm)
print("ok")
# AUTH-01: two people signing in through the same SSO role from GB and US
def sso_login(t, email, cc):
    r = login(t, "AWSReservedSSO_Admin_0123456789abcdef", cc, mfa=True)
    r["userIdentity"] = {"type": "AssumedRole", "principalId": "AROAEXAMPLESSOROLE01:" + email,
        "arn": f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/{email}", "accountId": ACCT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLESSOROLE01",
            "arn": f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef",
            "accountId": ACCT, "userName": "AWSReservedSSO_Admin_0123456789abcdef"},
            "attributes": {"creationDate": iso(t), "mfaAuthenticated": "false"}}}
    r["additionalEventData"] = {"MobileVersion": "No", "MFAUsed": "No"}
    return r
w("auth-01-sso-role.jsonl", [sso_login(T0, "alice@example.com", "GB"), sso_login(T0 + 10*m, "carol@example.com", "US")])
# EVADE-01
trail = {"name": "arn:aws:cloudtrail:us-east-1:%s:trail/org-trail" % ACCT}
w("evade-01-stop-logging.jsonl", [ct(T0, "StopLogging", "alice", source="cloudtrail.amazonaws.com", ua=UA_KALI, req=trail)])
w("evade-01-guardduty-off.jsonl", [ct(T0, "UpdateDetector", "alice", source="guardduty.amazonaws.com", ua=UA_KALI,
                                      req={"detectorId": "12abc34d567e8fa901bc2d34e56789f0", "enable": False}, resp={})])
w("evade-01-describe.jsonl", [ct(T0, "DescribeTrails", "alice", source="cloudtrail.amazonaws.com", req={"trailNameList": []}),
                              ct(T0 + 60, "StopLogging", "bob", source="cloudtrail.amazonaws.com", req=trail,
                                 err=("AccessDenied", "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: cloudtrail:StopLogging")),
                              ct(T0 + 90, "UpdateDetector", "alice", source="guardduty.amazonaws.com",
                                 req={"detectorId": "12abc34d567e8fa901bc2d34e56789f0", "enable": True, "findingPublishingFrequency": "FIFTEEN_MINUTES"}, resp={})])
