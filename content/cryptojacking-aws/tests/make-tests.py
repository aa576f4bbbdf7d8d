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

# ---- pack v2 (issue 13): refusals, images, flow aggregation, unknown users, pipelines, evasion
T1 = ts("2024-06-04T10:00:00Z")
REFUSED = {"vcpu": ("Client.VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to."),
           "capacity": ("Server.InsufficientInstanceCapacity", "We currently do not have sufficient p3.16xlarge capacity in the Availability Zone you requested."),
           "denied": ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
           "invalid": ("Client.InvalidParameterValue", "Value () for parameter groupId is invalid. The value cannot be empty")}
AL2023 = "ami-0ae8f15ae66fe8cda"
TF_UA = "APN/1.0 HashiCorp/1.0 Terraform/1.8.5 (+https://www.terraform.io) terraform-provider-aws/5.54.1 aws-sdk-go-v2/1.27.2 os/linux lang/go#1.22.3"
def images_resp(ids_names):
    return {"imagesSet": {"items": [{"imageId": i, "name": n, "description": n, "imageOwnerId": "679593333241",
            "imageOwnerAlias": "aws-marketplace", "productCodes": {"items": [{"productCode": "example0000kali0000000000", "type": "marketplace"}]}}
            for i, n in ids_names]}}
# EC2-01: the image is known to run Kali because a DescribeImages response named it
di = describe_images(T1, "alice", "*kali-last-snapshot*")
di["responseElements"] = images_resp([(KALI, "kali-last-snapshot-amd64-2024.2.0-804fcc46-63fc-4eb6-85a1-50e66d6c7215")])
w("ec2-01-kali-described.jsonl", [di, run(T1 + 120, "alice", image=KALI, ua=UA_KALI, ip=IPS["RU"])])
w("ec2-01-terraform-amazon-linux.jsonl", [run(T1 + 60*i, "terraform-ci", image=AL2023, ua=TF_UA, ip=IPS["US"]) for i in range(3)])
# EC2-07: an unlisted image in an account that allows only listed ones (context file)
with open(os.path.join(OUT, "ctx-allowlist.yaml"), "w") as f:
    f.write("# Test context: account 111122223333 runs only its golden images.\n"
            "only_listed_images: ['%s']\nimages:\n  ami-0123456789abcdef0: {os: \"Ubuntu 24.04 LTS (golden)\"}\n" % ACCT)
w("ec2-07-golden.jsonl", [run(T1, "bob", image="ami-0123456789abcdef0")])
# EC2-08: launch right after a pentest image search (real CloudTrail logs no DescribeImages response)
w("ec2-08-search-then-launch.jsonl", [describe_images(T1, "alice", "*kali*"), run(T1 + 600, "alice", image=KALI, ua=UA_KALI, ip=IPS["RU"])])
w("ec2-08-ubuntu-search-then-launch.jsonl", [describe_images(T1, "alice", "ubuntu/images/*", ua=UA_UBU, ip=IPS["GB"]), run(T1 + 600, "alice")])
w("ec2-08-launch-days-after.jsonl", [describe_images(T1, "alice", "*kali*"), run(T1 + 3*3600, "alice", image=KALI)])
# EC2-05/06: refused launches
w("ec2-05-refused-gpu.jsonl", [run(T1, "alice", itype="p3.16xlarge", region="eu-north-1", ua=UA_KALI, ip=IPS["RU"], err=REFUSED["vcpu"])])
w("ec2-05-refused-small.jsonl", [run(T1, "alice", itype="t3.micro", err=REFUSED["denied"]),
                                  run(T1 + 30, "alice", itype="p3.2xlarge", err=REFUSED["invalid"])])
gpu_burst = [run(T1 + 20*i, "alice", itype=["p3.16xlarge", "g5.48xlarge", "p4d.24xlarge"][i % 3], region=REG[i % 7], ua=UA_KALI, ip=IPS["RU"],
                 err=REFUSED["vcpu" if i % 2 == 0 else "capacity"]) for i in range(6)]
w("ec2-06-refused-burst.jsonl", gpu_burst)
w("ec2-06-refused-three.jsonl", gpu_burst[:3])
w("ec2-06-invalid-params.jsonl", [run(T1 + 20*i, "terraform-ci", itype="t3.micro", ua=TF_UA, err=REFUSED["invalid"]) for i in range(6)])
# MINE-02: 10-minute aggregation, custom format with instance-id and no interface-id
FLOW_HDR_CUSTOM = "version account-id instance-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
def flow_custom(t, iid, src, dst, dport, packets=400, nbytes=52000, sport=50432, dur=600):
    return f"5 {ACCT} {iid} {src} {dst} {sport} {dport} 6 {packets} {nbytes} {t} {t+dur} ACCEPT OK"
with open(os.path.join(OUT, "mine-02-ten-minute.log"), "w") as f:
    f.write(FLOW_HDR_CUSTOM + "\n")
    for i in range(3):
        f.write(flow_custom(T0 + i*600, "i-0abc0000000000099", "172.31.0.99", "94.130.12.27", 3333) + "\n")
with open(os.path.join(OUT, "mine-02-ten-minute-two.log"), "w") as f:
    f.write(FLOW_HDR_CUSTOM + "\n")
    for i in range(2):
        f.write(flow_custom(T0 + i*600, "i-0abc0000000000099", "172.31.0.99", "94.130.12.27", 3333) + "\n")
# AUTH-07: failed logins for user names that do not exist, from one address
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
def hidden_login(t, ip):
    r = login(t, HIDDEN, "RU", ok=False)
    r["userIdentity"] = {"type": "IAMUser", "principalId": "", "accountId": ACCT, "accessKeyId": "", "userName": HIDDEN}
    r["sourceIPAddress"] = ip
    r["errorMessage"] = "No username found in supplied account"
    return r
w("auth-07-spray.jsonl", [hidden_login(T1 + 40*i, "5.255.255.5") for i in range(6)])
w("auth-07-spread.jsonl", [hidden_login(T1 + 40*i, "5.255.255.%d" % (10 + i)) for i in range(6)])
# EVADE: pipelines, services, refusals, wider blinding
TRAIL_ARN = "arn:aws:cloudtrail:us-east-1:%s:trail/" % ACCT
def trail_call(t, name, user, req, resp=None, err=None, invoked=None, ua=UA_KALI, utype="IAMUser"):
    return ct(t, name, user, source="cloudtrail.amazonaws.com", req=req, resp=resp, err=err, invoked=invoked, ua=ua, utype=utype)
tf_trail = [trail_call(T1, "CreateTrail", "terraform-ci", {"name": "tf-test-trail-7f3a", "s3BucketName": "tf-test-trail-bucket-7f3a"},
                       resp={"name": "tf-test-trail-7f3a", "trailARN": TRAIL_ARN + "tf-test-trail-7f3a", "s3BucketName": "tf-test-trail-bucket-7f3a"}, ua=TF_UA),
            trail_call(T1 + 30, "StartLogging", "terraform-ci", {"name": TRAIL_ARN + "tf-test-trail-7f3a"}, ua=TF_UA),
            trail_call(T1 + 600, "StopLogging", "terraform-ci", {"name": TRAIL_ARN + "tf-test-trail-7f3a"}, ua=TF_UA),
            trail_call(T1 + 620, "DeleteTrail", "terraform-ci", {"name": TRAIL_ARN + "tf-test-trail-7f3a"}, ua=TF_UA)]
w("evade-terraform-trail.jsonl", tf_trail)
w("evade-delete-trail.jsonl", [trail_call(T1, "DeleteTrail", "alice", {"name": "org-trail"})])
w("evade-cfn-delete-trail.jsonl", [trail_call(T1, "DeleteTrail", "AWSCloudFormationStackRole", {"name": TRAIL_ARN + "org-trail"},
                                              invoked="cloudformation.amazonaws.com", utype="AssumedRole")])
w("evade-refused-stop.jsonl", [trail_call(T1, "StopLogging", "bob", {"name": TRAIL_ARN + "org-trail"},
                                          err=("AccessDenied", "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: cloudtrail:StopLogging"))])
w("evade-refused-other.jsonl", [trail_call(T1, "StopLogging", "bob", {"name": TRAIL_ARN + "org-trail"},
                                           err=("TrailNotFoundException", "Unknown trail: org-trial"))])
sel = lambda inc, rw: {"trailName": "org-trail", "eventSelectors": [{"readWriteType": rw, "includeManagementEvents": inc, "dataResources": [], "excludeManagementEventSources": []}]}
w("evade-selectors-no-management.jsonl", [trail_call(T1, "PutEventSelectors", "alice", sel(False, "All"))])
w("evade-selectors-readonly.jsonl", [trail_call(T1, "PutEventSelectors", "alice", sel(True, "ReadOnly"))])
w("evade-selectors-all.jsonl", [trail_call(T1, "PutEventSelectors", "alice", sel(True, "All")),
                                trail_call(T1 + 60, "PutEventSelectors", "alice", sel(True, "WriteOnly"))])
w("evade-resolver-disassociate.jsonl", [ct(T1, "DisassociateResolverQueryLogConfig", "alice", source="route53resolver.amazonaws.com", ua=UA_KALI,
                                           req={"resolverQueryLogConfigId": "rqlc-0123456789abcdef", "resourceId": "vpc-0a1b2c3d4e5f60718"})])
w("evade-config-stopped.jsonl", [ct(T1, "StopConfigurationRecorder", "alice", source="config.amazonaws.com", ua=UA_KALI, req={"configurationRecorderName": "default"})])
w("evade-guardduty-archive.jsonl", [ct(T1, "CreateFilter", "alice", source="guardduty.amazonaws.com", ua=UA_KALI,
                                       req={"detectorId": "12abc34d567e8fa901bc2d34e56789f0", "name": "quiet", "action": "ARCHIVE",
                                            "findingCriteria": {"criterion": {"type": {"eq": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}})])
w("evade-guardduty-filter-noop.jsonl", [ct(T1, "CreateFilter", "alice", source="guardduty.amazonaws.com",
                                           req={"detectorId": "12abc34d567e8fa901bc2d34e56789f0", "name": "watch", "action": "NOOP",
                                                "findingCriteria": {"criterion": {"severity": {"gte": 7}}}})])
w("evade-bucket-lifecycle.jsonl", [trail_call(T1 - 3600, "CreateTrail", "admin", {"name": "org-trail", "s3BucketName": "org-trail-logs-111122223333"},
                                              resp={"name": "org-trail", "trailARN": TRAIL_ARN + "org-trail", "s3BucketName": "org-trail-logs-111122223333"}, ua=UA_UBU),
                                   ct(T1, "PutBucketLifecycle", "alice", source="s3.amazonaws.com", ua=UA_KALI,
                                      req={"bucketName": "org-trail-logs-111122223333", "lifecycle": "",
                                           "LifecycleConfiguration": {"Rule": {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}}})])
w("evade-bucket-lifecycle-other.jsonl", [ct(T1, "PutBucketLifecycle", "alice", source="s3.amazonaws.com",
                                            req={"bucketName": "web-assets", "LifecycleConfiguration": {"Rule": {"ID": "x", "Status": "Enabled", "Expiration": {"Days": 30}}}})])
FL = "fl-0e17aa62a21d4bbfe"
def del_flow(t, user, fl, ua=UA_KALI):
    return ct(t, "DeleteFlowLogs", user, ua=ua, req={"DeleteFlowLogsRequest": {"FlowLogId": {"content": fl, "tag": 1}}},
              resp={"DeleteFlowLogsResponse": {"unsuccessful": "", "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/"}})
w("evade-delete-flow-logs.jsonl", [del_flow(T1, "alice", FL)])
w("evade-terraform-flow-logs.jsonl", [ct(T1, "CreateFlowLogs", "terraform-ci", ua=TF_UA,
                                         req={"CreateFlowLogsRequest": {"ResourceId": {"content": "vpc-0a1b2c3d4e5f60718", "tag": 1}, "TrafficType": "ALL"}},
                                         resp={"CreateFlowLogsResponse": {"flowLogIdSet": {"item": "fl-0aaaabbbbccccdddd"}, "unsuccessful": ""}}),
                                      del_flow(T1 + 900, "terraform-ci", "fl-0aaaabbbbccccdddd", ua=TF_UA)])
with open(os.path.join(OUT, "ctx-protected.yaml"), "w") as f:
    f.write("# Test context: the account's real trail and flow log are protected.\n"
            "protected_resources: [org-trail, '%sorg-trail', %s]\n" % (TRAIL_ARN, FL))
w("evade-protected-created-in-run.jsonl", [trail_call(T1, "CreateTrail", "alice", {"name": "org-trail", "s3BucketName": "b"},
                                                      resp={"name": "org-trail", "trailARN": TRAIL_ARN + "org-trail"}),
                                           trail_call(T1 + 60, "DeleteTrail", "alice", {"name": "org-trail"})])
# IAM: persistence and privilege
def iam(t, name, user, req, resp=None, ua=UA_KALI, ip="5.255.255.5"):
    return ct(t, name, user, source="iam.amazonaws.com", req=req, resp=resp, ua=ua, ip=ip)
w("iam-02-user-and-key.jsonl", [iam(T1, "CreateUser", "alice", {"userName": "backup-svc"}, {"user": {"userName": "backup-svc", "arn": f"arn:aws:iam::{ACCT}:user/backup-svc"}}),
                                iam(T1 + 40, "AttachUserPolicy", "alice", {"userName": "backup-svc", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
                                iam(T1 + 60, "CreateAccessKey", "alice", {"userName": "backup-svc"}, {"accessKey": {"userName": "backup-svc", "accessKeyId": "AKIAEXAMPLEBACKDOOR", "status": "Active"}})])
w("iam-02-user-only.jsonl", [iam(T1, "CreateUser", "admin", {"userName": "new-hire"}, ua=UA_CONSOLE, ip=IPS["GB"]),
                             iam(T1 + 60, "CreateAccessKey", "admin", {"userName": "other-user"}, ua=UA_CONSOLE, ip=IPS["GB"])])
w("iam-03-login-profile-other.jsonl", [iam(T1, "CreateLoginProfile", "alice", {"userName": "carol", "passwordResetRequired": False})])
w("iam-03-own-key.jsonl", [iam(T1, "CreateAccessKey", "alice", {}, {"accessKey": {"userName": "alice", "accessKeyId": "AKIAEXAMPLEOWN00001", "status": "Active"}}, ua=UA_CONSOLE, ip=IPS["GB"])])
w("iam-04-admin-policy.jsonl", [iam(T1, "AttachRolePolicy", "alice", {"roleName": "ec2-runner", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})])
w("iam-04-inline-star.jsonl", [iam(T1, "PutUserPolicy", "alice", {"userName": "alice", "policyName": "x",
                                   "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ec2:*\",\"Resource\":\"*\"}]}"})])
w("iam-04-readonly-policy.jsonl", [iam(T1, "AttachUserPolicy", "admin", {"userName": "auditor", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, ua=UA_CONSOLE, ip=IPS["GB"]),
                                   iam(T1 + 5, "PutRolePolicy", "admin", {"roleName": "app", "policyName": "s3",
                                       "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}]}"}, ua=UA_CONSOLE, ip=IPS["GB"])])
w("iam-05-admin-group.jsonl", [iam(T1, "AddUserToGroup", "alice", {"groupName": "Administrators", "userName": "backup-svc"})])
w("iam-05-dev-group.jsonl", [iam(T1, "AddUserToGroup", "admin", {"groupName": "developers", "userName": "new-hire"}, ua=UA_CONSOLE, ip=IPS["GB"])])
# RECON: quota increase by a rare identity, instance-type offerings across regions
def quota_increase(t, user):
    return ct(t, "RequestServiceQuotaIncrease", user, source="servicequotas.amazonaws.com", ua=UA_KALI, ip=IPS["RU"],
              req={"serviceCode": "ec2", "quotaCode": "L-DB2E81BA", "desiredValue": 192.0})
day1_admin = [quota_increase(T0 + 3600, "capacity-admin")] + [run(T0 + i*6*3600, "bob") for i in range(4)]
day1_admin.sort(key=lambda r: r["eventTime"])
w("recon-03-new-requester.jsonl", day1_admin + [quota_increase(T0 + 26*3600, "alice")])
w("recon-03-usual-requester.jsonl", day1_admin + [quota_increase(T0 + 26*3600, "capacity-admin")])
def offerings(t, user, region):
    return ct(t, "DescribeInstanceTypeOfferings", user, region=region, ua=UA_KALI, ip=IPS["RU"],
              req={"locationType": "region", "filterSet": {"items": [{"name": "instance-type", "valueSet": {"items": [{"value": "p3.*"}]}}]}})
w("recon-04-offerings-sweep.jsonl", [offerings(T1 + 15*i, "alice", REG[i]) for i in range(6)])
w("recon-04-offerings-few.jsonl", [offerings(T1 + 15*i, "alice", REG[i]) for i in range(2)] + [offerings(T1 + 40, "alice", REG[0])])
# compute beyond RunInstances
w("ec2-10-spot-gpu.jsonl", [ct(T1, "RequestSpotInstances", "alice", ua=UA_KALI, ip=IPS["RU"],
                               req={"instanceCount": 10, "type": "one-time", "launchSpecification": {"imageId": KALI, "instanceType": "g4dn.12xlarge"}})])
w("ec2-10-fleet-gpu.jsonl", [ct(T1, "CreateFleet", "alice", ua=UA_KALI, ip=IPS["RU"],
                                req={"CreateFleetRequest": {"Type": "instant", "TargetCapacitySpecification": {"TotalTargetCapacity": 20},
                                     "LaunchTemplateConfigs": {"tag": 1, "Overrides": [{"tag": 1, "InstanceType": "p3.8xlarge"}, {"tag": 2, "InstanceType": "g5.12xlarge"}]}}})])
w("ec2-10-spot-small.jsonl", [ct(T1, "RequestSpotInstances", "bob", req={"instanceCount": 2, "launchSpecification": {"imageId": AL2023, "instanceType": "t3.large"}}),
                              ct(T1 + 60, "RequestSpotFleet", "bob", req={"spotFleetRequestConfig": {"targetCapacity": 2, "launchSpecifications": {"items": [{"instanceType": "m5.large"}]}}})])
def ecs(t, name, user, req):
    return ct(t, name, user, source="ecs.amazonaws.com", req=req, ua=UA_KALI, ip=IPS["RU"])
taskdef = lambda cpu, image: {"family": "worker", "cpu": str(cpu), "memory": "30720", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
                              "containerDefinitions": [{"name": "w", "image": image, "cpu": cpu, "essential": True}]}
w("ecs-01-big-public-task.jsonl", [ecs(T1, "RegisterTaskDefinition", "alice", taskdef(16384, "docker.io/metal3d/xmrig:latest")),
                                   ecs(T1 + 120, "RunTask", "alice", {"taskDefinition": "worker:1", "count": 10, "launchType": "FARGATE", "cluster": "default"})])
w("ecs-01-big-private-task.jsonl", [ecs(T1, "RegisterTaskDefinition", "alice", taskdef(16384, f"{ACCT}.dkr.ecr.us-east-1.amazonaws.com/batch:2.1")),
                                    ecs(T1 + 120, "RunTask", "alice", {"taskDefinition": "worker:1", "count": 1, "launchType": "FARGATE"})])
w("ecs-01-small-public-task.jsonl", [ecs(T1, "RegisterTaskDefinition", "alice", taskdef(256, "nginx:1.27")),
                                     ecs(T1 + 120, "RunTask", "alice", {"taskDefinition": "worker:1", "count": 1})])
def invoke(t, user, fn="arn:aws:lambda:us-east-1:%s:function:worker" % ACCT):
    return {"eventVersion": "1.08", "userIdentity": ident(user), "eventTime": iso(t), "eventSource": "lambda.amazonaws.com", "eventName": "Invoke",
            "awsRegion": "us-east-1", "sourceIPAddress": IPS["RU"], "userAgent": "Boto3/1.34.0", "requestParameters": {"functionName": fn},
            "responseElements": None, "eventID": "inv-%06d" % next(_n), "readOnly": False, "eventType": "AwsApiCall", "managementEvent": False,
            "recipientAccountId": ACCT, "eventCategory": "Data", "resources": [{"type": "AWS::Lambda::Function", "ARN": fn}]}
w("lambda-01-flood.jsonl", [invoke(T1 + i // 3, "alice") for i in range(600)])
w("lambda-01-steady.jsonl", [invoke(T1 + i*2, "api-gateway-user") for i in range(300)])
def sm(t, name, req, user="alice"):
    return ct(t, name, user, source="sagemaker.amazonaws.com", req=req, ua=UA_KALI, ip=IPS["RU"])
w("sm-01-gpu-notebook.jsonl", [sm(T1, "CreateNotebookInstance", {"notebookInstanceName": "nb", "instanceType": "ml.p3.16xlarge", "roleArn": "arn:aws:iam::%s:role/sm" % ACCT}),
                               sm(T1 + 60, "CreateTrainingJob", {"trainingJobName": "tj", "resourceConfig": {"instanceType": "ml.g5.48xlarge", "instanceCount": 4, "volumeSizeInGB": 50}})])
w("sm-01-cpu-notebook.jsonl", [sm(T1, "CreateNotebookInstance", {"notebookInstanceName": "nb", "instanceType": "ml.t3.medium"}, user="datasci")])
w("batch-01-gpu-env.jsonl", [ct(T1, "CreateComputeEnvironment", "alice", source="batch.amazonaws.com", ua=UA_KALI, ip=IPS["RU"],
                                req={"computeEnvironmentName": "ce", "type": "MANAGED", "computeResources": {"type": "SPOT", "maxvCpus": 1024, "instanceTypes": ["p3.16xlarge"]}})])
w("batch-01-eks-gpu-nodes.jsonl", [ct(T1, "CreateNodegroup", "alice", source="eks.amazonaws.com", ua=UA_KALI, ip=IPS["RU"],
                                      req={"clusterName": "prod", "nodegroupName": "ng", "instanceTypes": ["g4dn.12xlarge"], "scalingConfig": {"desiredSize": 20}})])
w("batch-01-cpu-env.jsonl", [ct(T1, "CreateComputeEnvironment", "bob", source="batch.amazonaws.com",
                                req={"computeEnvironmentName": "ce", "computeResources": {"instanceTypes": ["optimal"], "maxvCpus": 16}}),
                             ct(T1 + 5, "CreateNodegroup", "bob", source="eks.amazonaws.com", req={"clusterName": "prod", "instanceTypes": ["m5.large"]})])
# tampering
w("ec2-11-user-data.jsonl", [ct(T1, "StopInstances", "alice", req={"instancesSet": {"items": [{"instanceId": "i-0abc0000000000001"}]}}),
                             ct(T1 + 60, "ModifyInstanceAttribute", "alice", req={"instanceId": "i-0abc0000000000001", "userData": "<sensitiveDataRemoved>"}),
                             ct(T1 + 90, "StartInstances", "alice", req={"instancesSet": {"items": [{"instanceId": "i-0abc0000000000001"}]}})])
w("ec2-11-instance-type.jsonl", [ct(T1, "ModifyInstanceAttribute", "bob", req={"instanceId": "i-0abc0000000000001", "instanceType": {"value": "m5.large"}})])
def send(t, user, n):
    ids = ["i-0abc%012x" % (0x500 + k) for k in range(n)]
    return ct(t, "SendCommand", user, source="ssm.amazonaws.com", req={"documentName": "AWS-RunShellScript", "instanceIds": ids, "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS"})
w("ssm-01-many.jsonl", [send(T1, "alice", 8), send(T1 + 60, "alice", 7)])
w("ssm-01-few.jsonl", [send(T1, "ops", 3), send(T1 + 3600, "ops", 3)])
def sg(t, user, cidr, port, proto="tcp"):
    return ct(t, "AuthorizeSecurityGroupIngress", user, req={"groupId": "sg-003dc7f1f1c686164", "ipPermissions": {"items": [
        {"ipProtocol": proto, "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": cidr}]}, "ipv6Ranges": {}, "prefixListIds": {}, "groups": {}}]}})
w("net-01-ssh-world.jsonl", [sg(T1, "alice", "0.0.0.0/0", 22)])
w("net-01-rdp-world-flat.jsonl", [ct(T1, "AuthorizeSecurityGroupIngress", "alice", req={"groupId": "sg-1", "cidrIp": "0.0.0.0/0", "fromPort": 3389, "toPort": 3389, "ipProtocol": "tcp"})])
w("net-01-https-world-ssh-office.jsonl", [sg(T1, "bob", "0.0.0.0/0", 443), sg(T1 + 5, "bob", "10.20.0.0/16", 22)])
w("evade-leave-org.jsonl", [ct(T1, "LeaveOrganization", "alice", source="organizations.amazonaws.com", ua=UA_KALI, req=None)])
w("evade-leave-org-refused.jsonl", [ct(T1, "LeaveOrganization", "alice", source="organizations.amazonaws.com", ua=UA_KALI, req=None,
                                       err=("AccessDenied", "You don't have permissions to access this resource."))])
print("ok v2")
