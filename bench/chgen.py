"""chgen - deterministic generator of realistic AWS log corpora for coinhound's benchmarks.

Three kinds of logs come out of one imaginary organisation (a `World`): CloudTrail records
(JSON Lines, the S3 delivery object {"Records":[...]}, or a JSON array; optionally gzip'd and
split into several files), VPC Flow Logs (the v2 default format or the v5 custom field set, with
their header line) and Route 53 Resolver query logs (JSON Lines). The world holds a few
accounts, a few hundred identities (IAM users, SSO and instance/Lambda/CI/vendor role sessions,
service-linked roles invoked by a service, AWS services, root), their usual addresses, user
agents and regions, and the instances, VPCs and AMIs they use, so the three logs agree with each
other and the scenario generator can reuse the same people and machines.

Design and cost: the corpus must be large (1.5 GB in a few minutes) and byte-identical for a
given seed, on any machine. So everything that can be is formatted once: each identity's
userIdentity object, its accessKeyId, tlsDetails per host, user agent strings. A record is then
one f-string over those fragments plus a handful of random values (UUIDs, times, ids), never a
json.dumps of a dict; the values generated never need JSON escaping (no quotes, backslashes or
control characters, except the few pre-escaped constants such as a policy document), which
bench/test_chgen.py checks by parsing every record, and every bench/run baseline re-checks
(parse errors are reported per row). Weighted choices use a 64 Ki-entry lookup table (one
getrandbits per pick). Randomness comes only from random.Random seeded with integers and from
lists (never from set or dict-of-str ordering), so output does not depend on PYTHONHASHSEED.
About 55k CloudTrail records/s (70 MB/s) on one core of the reference machine, file writing
included; gzip costs about as much again. Time formatting is cached per second.

Import it (`import chgen`) to build scenarios: `World(seed)`, `CloudTrailGen(world, seed)` and
its `record()` envelope and per-event builders (`console_login`, `run_instances`, ...),
`VpcFlowGen`, `Route53Gen`. `bench/gen` is the command-line face.
"""

import calendar
import gzip
import os
import random
import re
import sys
import time

__all__ = [
    "World", "Actor", "Instance", "CloudTrailGen", "VpcFlowGen", "Route53Gen", "Weighted",
    "parse_time", "iso", "write_cloudtrail", "write_vpcflow", "write_route53", "main",
]

GEN_VERSION = "1"  # bump when output for a given seed changes (bench/run caches by it)

DEFAULT_START = "2024-06-03T00:00:00Z"
DEFAULT_SPAN_HOURS = 24.0
DEFAULT_JITTER_S = 30.0

# --------------------------------------------------------------------------------------------
# small helpers


def parse_time(s):
    """ISO 8601 UTC 'YYYY-MM-DDTHH:MM:SSZ' -> epoch seconds (int)."""
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


_ISO_CACHE = {}


def iso(t):
    """Epoch seconds -> 'YYYY-MM-DDTHH:MM:SSZ', cached (records cluster in time)."""
    s = _ISO_CACHE.get(t)
    if s is None:
        if len(_ISO_CACHE) > 8192:
            _ISO_CACHE.clear()
        s = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        _ISO_CACHE[t] = s
    return s


def aws_date(t):
    """The 'Jun 3, 2024, 10:11:12 AM' form AWS uses in some responseElements."""
    g = time.gmtime(t)
    h = g.tm_hour % 12 or 12
    return "%s %d, %d, %d:%02d:%02d %s" % (
        time.strftime("%b", g), g.tm_mday, g.tm_year, h, g.tm_min, g.tm_sec,
        "AM" if g.tm_hour < 12 else "PM")


class Weighted:
    """Weighted choice through a 65536-entry table: one getrandbits(16) per pick.
    Items keep at least one slot, so a weight below 1/65536 is slightly inflated."""

    SIZE = 1 << 16

    def __init__(self, pairs):
        pairs = [(v, float(w)) for v, w in pairs if w > 0]
        if not pairs:
            raise ValueError("Weighted needs at least one positive weight")
        total = sum(w for _, w in pairs)
        slots = [max(1, int(w / total * self.SIZE)) for _, w in pairs]
        # Give the rounding remainder to (or take the excess from) the heaviest item.
        big = max(range(len(pairs)), key=lambda i: pairs[i][1])
        slots[big] += self.SIZE - sum(slots)
        table = []
        for (v, _), n in zip(pairs, slots):
            table.extend([v] * n)
        self.table = table
        self.items = [v for v, _ in pairs]

    def pick(self, rng):
        return self.table[rng.getrandbits(16)]


_HEX = "0123456789abcdef"
_UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS key ids use upper case and digits


def uuid4(rng):
    x = rng.getrandbits(128)
    h = "%032x" % x
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[x & 3], h[17:20], h[20:32])


def hexid(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def keyid(rng, prefix, n=16):
    return prefix + "".join(_UP[rng.getrandbits(5)] for _ in range(n))


# --------------------------------------------------------------------------------------------
# the world: accounts, regions, addresses, identities, machines

REGIONS = [  # (region, weight of management-API traffic)
    ("us-east-1", 38), ("us-west-2", 14), ("eu-west-1", 11), ("eu-central-1", 7),
    ("us-east-2", 5), ("eu-west-2", 4), ("ap-southeast-1", 3), ("ap-northeast-1", 3),
    ("ap-southeast-2", 2), ("us-west-1", 2), ("ca-central-1", 2), ("eu-north-1", 1.5),
    ("eu-west-3", 1.5), ("ap-south-1", 1.5), ("sa-east-1", 1), ("ap-northeast-2", 1),
    ("eu-south-1", 0.5), ("me-south-1", 0.3), ("af-south-1", 0.3), ("ap-east-1", 0.3),
]
REGION_NAMES = [r for r, _ in REGIONS]
AZ_ID = {"us-east-1": "use1", "us-west-2": "usw2", "eu-west-1": "euw1", "eu-central-1": "euc1",
         "us-east-2": "use2", "eu-west-2": "euw2", "ap-southeast-1": "apse1",
         "ap-northeast-1": "apne1", "ap-southeast-2": "apse2", "us-west-1": "usw1",
         "ca-central-1": "cac1", "eu-north-1": "eun1", "eu-west-3": "euw3", "ap-south-1": "aps1",
         "sa-east-1": "sae1", "ap-northeast-2": "apne2", "eu-south-1": "eus1",
         "me-south-1": "mes1", "af-south-1": "afs1", "ap-east-1": "ape1"}

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
         "yara", "zoe", "amir", "bea", "chen", "diego", "elif", "farah", "goran", "hana", "ines",
         "jonas", "kenji", "lena", "mateo", "nadia", "oskar", "priya", "quentin", "rosa", "sven"]
LAST = ["smith", "jones", "garcia", "muller", "rossi", "novak", "kowalski", "tanaka", "silva",
        "dubois", "jensen", "ivanova", "okafor", "patel", "nguyen", "haddad", "larsen", "moreau",
        "fischer", "costa", "schmidt", "kim", "wong", "ahmed", "brown", "lopez", "weber", "sato"]

SSO_SETS = ["AdministratorAccess", "PowerUserAccess", "ReadOnlyAccess", "DeveloperAccess",
            "SecurityAudit", "BillingAccess", "DataEngineer"]

SERVICE_USERS = ["svc-backup", "svc-deploy", "ci-deploy", "svc-monitoring", "datadog-integration",
                 "svc-etl", "svc-reporting", "jenkins", "svc-s3-sync", "gitlab-runner",
                 "svc-billing-export", "svc-log-shipper", "terraform", "svc-dns-updater",
                 "svc-mailer", "svc-cost-explorer", "svc-athena", "svc-emr", "svc-redshift",
                 "svc-legacy-app", "svc-vault", "svc-prometheus", "splunk-addon", "svc-sftp"]

APP_NAMES = ["orders", "payments", "checkout", "catalog", "search", "auth", "users", "billing",
             "reports", "notifications", "inventory", "shipping", "analytics", "gateway",
             "scheduler", "ingest", "export", "media", "pricing", "ledger"]

SERVICES = [  # AWS services acting in their own name (userIdentity.type AWSService)
    "lambda.amazonaws.com", "ec2.amazonaws.com", "cloudtrail.amazonaws.com",
    "config.amazonaws.com", "ecs-tasks.amazonaws.com", "elasticloadbalancing.amazonaws.com",
    "monitoring.amazonaws.com", "logs.amazonaws.com", "events.amazonaws.com",
    "backup.amazonaws.com", "ssm.amazonaws.com", "autoscaling.amazonaws.com",
    "s3.amazonaws.com", "rds.amazonaws.com", "guardduty.amazonaws.com",
]

# Service-linked roles: AssumedRole sessions with invokedBy and the service as source address.
LINKED_ROLES = [
    ("AWSServiceRoleForAutoScaling", "autoscaling.amazonaws.com", "AutoScaling"),
    ("AWSServiceRoleForConfig", "config.amazonaws.com", "AWSConfig-Describe"),
    ("AWSServiceRoleForSecurityHub", "securityhub.amazonaws.com", "securityhub"),
    ("AWSServiceRoleForAmazonGuardDuty", "guardduty.amazonaws.com", "GuardDutySession"),
    ("AWSServiceRoleForECS", "ecs.amazonaws.com", "ecs-service-scheduler"),
    ("AWSServiceRoleForElasticLoadBalancing", "elasticloadbalancing.amazonaws.com",
     "ElasticLoadBalancing"),
    ("AWSServiceRoleForTrustedAdvisor", "trustedadvisor.amazonaws.com", "TrustedAdvisor"),
    ("AWSServiceRoleForAmazonInspector2", "inspector2.amazonaws.com", "inspector2"),
    ("AWSServiceRoleForAccessAnalyzer", "access-analyzer.amazonaws.com", "access-analyzer"),
    ("AWSServiceRoleForCloudFormationStackSets", "cloudformation.amazonaws.com",
     "AWSCloudFormation"),
]

VENDORS = [  # third-party roles that scan every region (SaaS security and monitoring)
    ("DatadogIntegrationRole", "DatadogAWSIntegration"),
    ("WizAccess-Role", "WizScanner"),
    ("OrcaSecurityRole", "orca-scanner"),
    ("CloudHealthRole", "cloudhealth"),
]

INSTANCE_TYPES = Weighted([("t3.micro", 20), ("t3.medium", 18), ("t3.large", 10),
                           ("m5.large", 12), ("m5.xlarge", 8), ("c5.large", 6),
                           ("c5.2xlarge", 3), ("r5.large", 5), ("t4g.small", 6),
                           ("m6i.large", 8), ("m7g.medium", 3), ("g4dn.xlarge", 1)])

# Benign AMIs by family; the scenario generator brings its own (Kali, Parrot...).
AMI_FAMILIES = [
    ("amzn2-ami-kernel-5.10-hvm-2.0.20240529.0-x86_64-gp2", "Amazon Linux 2", "137112412989"),
    ("al2023-ami-2023.4.20240528.0-kernel-6.1-x86_64", "Amazon Linux 2023", "137112412989"),
    ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240501", "Ubuntu", "099720109477"),
    ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240523", "Ubuntu",
     "099720109477"),
    ("debian-12-amd64-20240507-1740", "Debian", "136693071363"),
    ("Windows_Server-2022-English-Full-Base-2024.05.15", "Windows", "801119661308"),
    ("RHEL-9.3.0_HVM-20240117-x86_64-49-Hourly2-GP3", "Red Hat", "309956199498"),
]

# First octets of routed unicast space, so public addresses spread over many /16s and
# countries (GeoIP caches see realistic misses). Excludes 0, 10, 100, 127, 169, 172, 192,
# 198, 203 and 224+ to stay clear of private, shared, test and multicast ranges.
PUBLIC_FIRST_OCTETS = [1, 2, 5, 8, 12, 14, 23, 24, 27, 31, 36, 37, 39, 41, 42, 45, 46, 49,
                       50, 58, 59, 60, 61, 62, 63, 64, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
                       76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
                       94, 95, 96, 97, 98, 99, 101, 103, 104, 105, 106, 107, 108, 109, 110,
                       111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124,
                       125, 128, 129, 130, 131, 133, 134, 136, 137, 138, 139, 140, 141, 142,
                       143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156,
                       157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 170, 171,
                       173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186,
                       187, 188, 189, 190, 191, 193, 194, 195, 196, 197, 199, 200, 201, 202,
                       204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217,
                       218, 219, 220, 221, 222, 223]
# Ranges AWS itself announces (NAT gateways, Lambda, EC2 public addresses).
AWS_FIRST_OCTETS = [3, 13, 18, 34, 35, 44, 52, 54, 99]
# GitHub-hosted runners live in Azure ranges.
AZURE_FIRST_OCTETS = [4, 13, 20, 40, 51, 52, 104, 137, 138]


def public_ip(rng, octets=PUBLIC_FIRST_OCTETS):
    a = octets[rng.getrandbits(16) % len(octets)]
    r = rng.getrandbits(24)
    return "%d.%d.%d.%d" % (a, r >> 16, (r >> 8) & 255, 1 + (r & 255) % 254)


def public_ipv6(rng):
    p = ("2a02", "2001", "2600", "2a01", "2406", "2804", "2a00", "2409")[rng.getrandbits(3)]
    return "%s:%x:%x:%x::%x" % (p, rng.getrandbits(16), rng.getrandbits(16),
                                rng.getrandbits(16), rng.getrandbits(16) | 1)


# User agents. None contains a quote or a backslash (they are pasted into JSON as is).
CLI2 = ["2.15.30", "2.15.58", "2.13.25", "2.16.4", "2.17.0"]
PY = ["3.11.8", "3.11.6", "3.12.3"]


def ua_cli(rng, os_tag, cmd):
    v = CLI2[rng.getrandbits(8) % len(CLI2)]
    return "aws-cli/%s Python/%s %s prompt/off command/%s" % (
        v, PY[rng.getrandbits(8) % len(PY)], os_tag, cmd)


CLI_OS = ["Darwin/23.4.0 exe/x86_64", "Darwin/23.5.0 exe/arm64", "Linux/6.5.0-35-generic exe/x86_64.ubuntu.22",
          "Windows/10 exe/AMD64", "Linux/5.15.0-1061-aws exe/x86_64.ubuntu.22",
          "Linux/6.8.9-300.fc40.x86_64 exe/x86_64.fedora.40"]
KALI_OS = ["Linux/6.6.9-amd64 exe/x86_64.kali.2024", "Linux/6.5.0-kali3-amd64 exe/x86_64.kali.2023",
           "Linux/6.8.11-amd64 exe/x86_64.kali.2024"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
]
BOTO3 = [
    "Boto3/1.34.34 md/Botocore#1.34.34 ua/2.0 os/linux#5.10.205-195.807.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython exec-env/AWS_Lambda_python3.11 cfg/retry-mode#legacy Botocore/1.34.34",
    "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#5.15.0-1049-aws md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57",
    "Boto3/1.34.110 md/Botocore#1.34.110 ua/2.0 os/linux#6.1.90-99.173.amzn2023.x86_64 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.34.110",
]
SDKS = [
    "aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)",
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.156.0",
    "aws-sdk-java/2.25.40 Linux/5.10.215-203.850.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS Java/17.0.11 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-js/3.572.0 ua/2.0 os/linux#5.10.215-203.850.amzn2.x86_64 lang/js md/nodejs#20.12.2 api/s3#3.572.0",
]
TERRAFORM = ("APN/1.0 HashiCorp/1.0 Terraform/1.8.3 (+https://www.terraform.io) terraform-provider-aws/5.50.0 "
             "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.27.0 os/linux lang/go#1.22.3 "
             "md/GOOS#linux md/GOARCH#amd64")
SSM_AGENT = "aws-sdk-go/1.44.260 (go1.20.14; linux; amd64) amazon-ssm-agent/3.3.418.0"


class Instance:
    """An EC2 instance the world runs: ids, addresses, placement, and its role if any."""

    __slots__ = ("id", "account", "region", "az", "azid", "vpc", "subnet", "eni", "ip",
                 "public_ip", "mac", "ami", "itype", "role", "app")


class Actor:
    """One identity as it appears in CloudTrail: a userIdentity template plus habits.

    kind: IAMUser | AssumedRole | Root | AWSService. name: the user name ECS would call
    user.name (IAM user name, role name, 'root' or the service). session: the role session
    name (None otherwise). The identity fragment is formatted once; only the accessKeyId and
    the session creation date change per record."""

    __slots__ = ("kind", "cls", "name", "session", "account", "ident_a", "ident_b", "ident_c",
                 "key_base", "static_key", "salt", "ips", "ua", "regions", "profile", "invoked_by",
                 "instance", "mfa", "console", "human", "weight", "email", "arn")

    def signin_identity(self, success=True):
        """The userIdentity of a ConsoleLogin: IAM users and root carry no access key (an
        empty one on failure); role sessions keep their usual identity (None)."""
        if self.kind not in ("IAMUser", "Root"):
            return None
        head = self.ident_a[:-len(',"accessKeyId":"')]
        if not success:
            head += ',"accessKeyId":""'
        return head + self.ident_b[1:]

    def identity(self, t):
        """The userIdentity JSON object for a record at time t."""
        if self.ident_b is None:
            return self.ident_a
        if self.static_key:
            key = self.key_base
        else:  # temporary credentials rotate hourly per session
            # Each session renews at its own minute of the hour, with a fresh key id.
            h = (((t + self.salt) // 3600) * 0x9E3779B1 + self.salt) & 0xFFFFF
            key = self.key_base + _UP[h & 31] + _UP[(h >> 5) & 31] + _UP[(h >> 10) & 31] + \
                _UP[(h >> 15) & 31]
        if self.ident_c is None:
            return self.ident_a + key + self.ident_b
        return self.ident_a + key + self.ident_b + iso(t - (t + self.salt) % 3600) + self.ident_c


class Account:
    __slots__ = ("id", "name", "regions", "vpcs", "vpc_net", "nat_ips", "buckets", "kms_keys", "secrets",
                 "functions", "roles", "users")


class World:
    """A deterministic organisation. Everything is drawn from random.Random(seed)."""

    def __init__(self, seed=1, users=200):
        rng = random.Random(seed * 7919 + 17)
        self.seed = seed
        self.rng = rng
        self.accounts = []
        for name, regs in (("prod", ["us-east-1", "us-west-2", "eu-west-1"]),
                           ("staging", ["us-east-1", "eu-west-1"]),
                           ("dev", ["us-east-1", "eu-central-1", "us-east-2"]),
                           ("security", ["us-east-1"])):
            a = Account()
            a.id = "%012d" % rng.randrange(10**11, 10**12)
            a.name = name
            a.regions = regs
            a.vpcs = {}
            a.nat_ips = {}
            a.vpc_net = {}
            for r in regs:
                a.vpcs[r] = ["vpc-" + hexid(rng, 17) for _ in range(2)]
                for v in a.vpcs[r]:  # each VPC its own /16
                    a.vpc_net[v] = rng.randrange(256)
                a.nat_ips[r] = [public_ip(rng, AWS_FIRST_OCTETS) for _ in range(3)]
            a.buckets = ["%s-%s-%s" % (name, w, hexid(rng, 6)) for w in
                         ("logs", "assets", "backups", "data-lake", "artifacts", "tfstate",
                          "exports", "uploads")]
            a.kms_keys = [uuid4(rng) for _ in range(6)]
            a.secrets = ["%s/%s/%s-%s" % (name, app, w, "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(6)))
                for app in APP_NAMES[:8] for w in ("db", "api-key")]
            a.functions = ["%s-%s-%s" % (name, app, w) for app in APP_NAMES
                           for w in ("handler", "worker")][:24]
            a.roles = []
            a.users = []
            self.accounts.append(a)

        # AMIs per region: (ami id, name, platform, owner)
        self.amis = {}
        for r in REGION_NAMES:
            self.amis[r] = [("ami-" + hexid(rng, 17), n, p, o) for n, p, o in AMI_FAMILIES]

        # Instances: fleets in each account's regions.
        self.instances = []
        for a in self.accounts:
            n = {"prod": 160, "staging": 60, "dev": 60, "security": 10}[a.name]
            for i in range(n):
                inst = Instance()
                inst.account = a
                inst.region = a.regions[i % len(a.regions)] if i % 5 else a.regions[0]
                k = rng.randrange(3)
                inst.az = inst.region + "abc"[k]
                inst.azid = "%s-az%d" % (AZ_ID[inst.region], k + 1)
                inst.vpc = a.vpcs[inst.region][rng.randrange(2)]
                inst.subnet = "subnet-" + hexid(rng, 17)
                inst.eni = "eni-" + hexid(rng, 17)
                inst.id = "i-" + hexid(rng, 17)
                base = {"prod": 10, "staging": 10, "dev": 172, "security": 192}[a.name]
                net = a.vpc_net[inst.vpc]
                if base == 10:
                    inst.ip = "10.%d.%d.%d" % (net, rng.randrange(256), rng.randrange(4, 255))
                elif base == 172:
                    inst.ip = "172.%d.%d.%d" % (16 + net % 16, rng.randrange(256),
                                                rng.randrange(4, 255))
                else:
                    inst.ip = "192.168.%d.%d" % (rng.randrange(256), rng.randrange(4, 255))
                inst.public_ip = public_ip(rng, AWS_FIRST_OCTETS) if rng.random() < 0.3 else None
                inst.mac = "0e:%02x:%02x:%02x:%02x:%02x" % tuple(rng.randrange(256) for _ in range(5))
                fam = rng.choice((0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 6))
                inst.ami = self.amis[inst.region][fam][0]
                inst.itype = INSTANCE_TYPES.pick(rng)
                inst.app = APP_NAMES[rng.randrange(len(APP_NAMES))]
                inst.role = None
                self.instances.append(inst)

        self.actors = []
        self._build_actors(rng, users)
        self.actor_pick = Weighted([(a, a.weight) for a in self.actors])
        self.humans = [a for a in self.actors if a.human]
        self.console_users = [a for a in self.actors if a.console]

    # -- identities ------------------------------------------------------------------------

    def _iam_user(self, rng, acct, name):
        a = Actor()
        a.kind = "IAMUser"
        a.name = name
        a.session = None
        a.account = acct
        a.invoked_by = None
        a.instance = None
        a.arn = "arn:aws:iam::%s:user/%s" % (acct.id, name)
        pid = keyid(rng, "AIDA", 17)
        a.key_base = keyid(rng, "AKIA")
        a.static_key = True
        a.salt = rng.randrange(3600)
        a.ident_a = ('{"type":"IAMUser","principalId":"%s","arn":"%s","accountId":"%s",'
                     '"accessKeyId":"' % (pid, a.arn, acct.id))
        a.ident_b = '","userName":"%s"}' % name
        a.ident_c = None
        acct.users.append(name)
        return a

    def _role_session(self, rng, acct, role, role_id, session, invoked_by=None, mfa=False):
        a = Actor()
        a.kind = "AssumedRole"
        a.name = role
        a.session = session
        a.account = acct
        a.invoked_by = invoked_by
        a.instance = None
        a.arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (acct.id, role, session)
        a.key_base = keyid(rng, "ASIA", 12)
        a.static_key = False
        a.salt = rng.randrange(3600)
        inv = ',"invokedBy":"%s"' % invoked_by if invoked_by else ""
        a.ident_a = ('{"type":"AssumedRole","principalId":"%s:%s","arn":"%s","accountId":"%s",'
                     '"accessKeyId":"' % (role_id, session, a.arn, acct.id))
        a.ident_b = ('","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"%s",'
                     '"arn":"arn:aws:iam::%s:role/%s","accountId":"%s","userName":"%s"},'
                     '"webIdFederationData":{},"attributes":{"creationDate":"'
                     % (role_id, acct.id, role, acct.id, role))
        a.ident_c = '","mfaAuthenticated":"%s"}}%s}' % ("true" if mfa else "false", inv)
        return a

    def _defaults(self, a, **kw):
        a.cls = kw.get("cls")
        a.ips = kw.get("ips", [])
        a.ua = kw.get("ua", [])
        a.regions = kw.get("regions", ["us-east-1"])
        a.profile = kw.get("profile")
        a.mfa = kw.get("mfa", False)
        a.console = kw.get("console", False)
        a.human = kw.get("human", False)
        a.weight = kw.get("weight", 1.0)
        a.email = kw.get("email")
        return a

    def _build_actors(self, rng, n_humans):
        acc = self.accounts
        prod, staging, dev, sec = acc
        office = [public_ip(rng) for _ in range(6)]   # corporate egress, shared by many
        vpn = [public_ip(rng) for _ in range(3)]
        used = set()
        people = []
        while len(people) < n_humans:
            nm = "%s.%s" % (rng.choice(FIRST), rng.choice(LAST))
            if nm not in used:
                used.add(nm)
                people.append(nm)
        sso_ids = {}
        for acct in acc:
            for ps in SSO_SETS:
                sso_ids[(acct.id, ps)] = ("AWSReservedSSO_%s_%s" % (ps, hexid(rng, 16)),
                                          keyid(rng, "AROA", 17))
        kali_left = 3
        for i, person in enumerate(people):
            home = [public_ip(rng) for _ in range(1 + rng.randrange(3))]
            if rng.random() < 0.08:
                home.append(public_ipv6(rng))
            ips = home + office * 2 + vpn
            oses = [CLI_OS[rng.randrange(len(CLI_OS))]]
            security = i % 40 == 7 and kali_left > 0
            if security:  # the red team / pentesters run Kali
                kali_left -= 1
                oses = [KALI_OS[rng.randrange(len(KALI_OS))]]
            browser = BROWSERS[rng.randrange(len(BROWSERS))]
            style = rng.random()  # share of console vs CLI vs terraform use
            regions = ["us-east-1"] * 4 + [rng.choice(REGION_NAMES[:8]) for _ in range(2)]
            email = "%s@example.com" % person
            if i % 2 == 0:  # classic IAM users with a login profile and access keys
                acct = [prod, prod, staging, dev][rng.randrange(4)]
                a = self._iam_user(rng, acct, person)
                self._defaults(a, cls="human_iam", ips=ips, regions=regions, console=True,
                               human=True, mfa=rng.random() < 0.8, email=email,
                               weight=0.45 + rng.random() * 0.6,
                               ua=[("browser", browser, 0.5 * style), ("cli", oses, 1 - style),
                                   ("terraform", TERRAFORM, 0.05)])
                self.actors.append(a)
            else:  # IAM Identity Center (SSO) users: AssumedRole sessions named by e-mail
                for acct in (prod, dev) if rng.random() < 0.25 else (prod,):
                    ps = SSO_SETS[rng.randrange(len(SSO_SETS))]
                    if security:
                        ps = "SecurityAudit"
                    role, rid = sso_ids[(acct.id, ps)]
                    a = self._role_session(rng, acct, role, rid, email, mfa=True)
                    self._defaults(a, cls="human_sso", ips=ips, regions=regions, console=True,
                                   human=True, mfa=True, email=email,
                                   weight=0.55 + rng.random() * 0.7,
                                   ua=[("browser", browser, 0.6 * style),
                                       ("cli", oses, 1 - style), ("terraform", TERRAFORM, 0.05)])
                    self.actors.append(a)
        # service IAM users with long-lived keys
        for j, name in enumerate(SERVICE_USERS):
            acct = acc[j % 3]
            a = self._iam_user(rng, acct, name)
            if j % 3 == 0:
                ips = [rng.choice(acct.nat_ips[acct.regions[0]])]
            else:
                ips = [public_ip(rng) for _ in range(2)]
            ua = [("sdk", BOTO3[j % len(BOTO3)] if j % 2 else SDKS[j % len(SDKS)], 1.0)]
            if name == "terraform":
                ua = [("terraform", TERRAFORM, 1.0)]
            self._defaults(a, cls="svc_user", ips=ips, ua=ua, regions=acct.regions,
                           weight=3.0 + rng.random() * 3)
            self.actors.append(a)
        # instance profiles: one role per app; one session per instance
        roles = {}
        for inst in self.instances:
            key = (inst.account.id, inst.app)
            if key not in roles:
                roles[key] = ("%s-%s-ec2-role" % (inst.account.name, inst.app),
                              keyid(rng, "AROA", 17))
            role, rid = roles[key]
            inst.role = role
            a = self._role_session(rng, inst.account, role, rid, inst.id,
                                   invoked_by=None)
            a.instance = inst
            src = inst.account.nat_ips.get(inst.region) or [inst.ip]
            self._defaults(a, cls="instance", ips=src + [inst.ip], regions=[inst.region],
                           ua=[("sdk", SDKS[rng.randrange(len(SDKS))], 0.6),
                               ("ssm", SSM_AGENT, 0.4)], weight=0.25)
            self.actors.append(a)
        # Lambda execution roles: session named by the function
        for acct in (prod, staging, dev):
            for fn in acct.functions[:12]:
                role = "%s-role-%s" % (fn, hexid(rng, 8))
                a = self._role_session(rng, acct, role, keyid(rng, "AROA", 17), fn)
                self._defaults(a, cls="lambda", ips=[], regions=[acct.regions[0]],
                               ua=[("sdk", BOTO3[0] if rng.random() < 0.6 else SDKS[3], 1.0)],
                               weight=0.5 + rng.random())
                self.actors.append(a)
        # service-linked roles invoked by their service
        for acct in acc:
            for role, svc, sess in LINKED_ROLES:
                a = self._role_session(rng, acct, role, keyid(rng, "AROA", 17), sess,
                                       invoked_by=svc)
                self._defaults(a, cls="linked", ips=[svc], ua=[("svc", svc, 1.0)],
                               regions=REGION_NAMES if svc.startswith(("config", "securityhub", "inspector", "access", "trusted")) else acct.regions,
                               weight=1.5)
                self.actors.append(a)
        # vendor roles scanning all regions from the vendor's addresses
        for acct in acc:
            for role, sess in VENDORS:
                a = self._role_session(rng, acct, role, keyid(rng, "AROA", 17), sess)
                self._defaults(a, cls="vendor", ips=[public_ip(rng, AWS_FIRST_OCTETS) for _ in range(4)],
                               ua=[("sdk", SDKS[rng.randrange(len(SDKS))], 1.0)],
                               regions=REGION_NAMES, weight=2.0)
                self.actors.append(a)
        # CI through GitHub OIDC
        for acct in (prod, staging, dev):
            a = self._role_session(rng, acct, "GitHubActionsDeployRole", keyid(rng, "AROA", 17),
                                   "GitHubActions")
            self._defaults(a, cls="ci", ips=None, ua=[("terraform", TERRAFORM, 0.5),
                                                     ("sdk", SDKS[1], 0.5)],
                           regions=acct.regions, weight=4.0)
            self.actors.append(a)
        # AWS services acting themselves
        for acct in acc:
            for svc in SERVICES:
                a = Actor()
                a.kind = "AWSService"
                a.name = svc
                a.session = None
                a.account = acct
                a.invoked_by = svc
                a.instance = None
                a.arn = None
                a.key_base = None
                a.static_key = True
                a.salt = rng.randrange(3600)
                a.ident_a = '{"type":"AWSService","invokedBy":"%s"}' % svc
                a.ident_b = None
                a.ident_c = None
                self._defaults(a, cls="service", ips=[svc], ua=[("svc", svc, 1.0)],
                               regions=acct.regions, weight=2.0)
                self.actors.append(a)
        # root, rarely
        for acct in acc:
            a = Actor()
            a.kind = "Root"
            a.name = "root"
            a.session = None
            a.account = acct
            a.invoked_by = None
            a.instance = None
            a.arn = "arn:aws:iam::%s:root" % acct.id
            a.key_base = keyid(rng, "ASIA", 12)
            a.static_key = False
            a.salt = rng.randrange(3600)
            a.ident_a = ('{"type":"Root","principalId":"%s","arn":"%s","accountId":"%s",'
                         '"accessKeyId":"' % (acct.id, a.arn, acct.id))
            a.ident_b = '"}'
            a.ident_c = None
            self._defaults(a, cls="root", ips=office[:2], console=True, human=True, mfa=True,
                           ua=[("browser", BROWSERS[0], 1.0)], weight=0.03)
            self.actors.append(a)


# --------------------------------------------------------------------------------------------
# CloudTrail

S3_AED = ('{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256",'
          '"bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"%s",'
          '"bytesTransferredOut":%d}')

ERR = {
    "denied": ("AccessDenied", "User: %(arn)s is not authorized to perform: %(action)s "
               "because no identity-based policy allows the %(action)s action"),
    "ec2denied": ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    "throttle": ("ThrottlingException", "Rate exceeded"),
    "ec2throttle": ("Client.RequestLimitExceeded", "Request limit exceeded."),
    "nopolicy": ("NoSuchBucketPolicy", "The bucket policy does not exist"),
    "noenc": ("ServerSideEncryptionConfigurationNotFoundError",
              "The server side encryption configuration was not found"),
    "notfound": ("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
    "noentity": ("NoSuchEntityException", "The role with name %(res)s cannot be found."),
    "badinst": ("Client.InvalidInstanceID.NotFound", "The instance ID '%(res)s' does not exist"),
    "vcpu": ("Client.VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."),
    "paramnf": ("ParameterNotFound", None),
    "kmsdenied": ("AccessDenied", "User: %(arn)s is not authorized to perform: %(action)s on resource: %(res)s"),
}

ERR_SCALE = 1.5  # tunes the overall share of failed calls (about 3 %)

SVC_PREFIX = {"ec2.amazonaws.com": "ec2", "s3.amazonaws.com": "s3", "iam.amazonaws.com": "iam",
              "sts.amazonaws.com": "sts", "kms.amazonaws.com": "kms", "ssm.amazonaws.com": "ssm",
              "logs.amazonaws.com": "logs", "lambda.amazonaws.com": "lambda",
              "monitoring.amazonaws.com": "cloudwatch", "rds.amazonaws.com": "rds",
              "secretsmanager.amazonaws.com": "secretsmanager",
              "cloudformation.amazonaws.com": "cloudformation",
              "elasticloadbalancing.amazonaws.com": "elasticloadbalancing",
              "autoscaling.amazonaws.com": "autoscaling", "servicequotas.amazonaws.com": "servicequotas",
              "signin.amazonaws.com": "signin", "dynamodb.amazonaws.com": "dynamodb",
              "ecr.amazonaws.com": "ecr", "sns.amazonaws.com": "sns", "sqs.amazonaws.com": "sqs",
              "config.amazonaws.com": "config", "organizations.amazonaws.com": "organizations",
              "health.amazonaws.com": "health", "cloudtrail.amazonaws.com": "cloudtrail",
              "ecs.amazonaws.com": "ecs", "route53.amazonaws.com": "route53",
              "access-analyzer.amazonaws.com": "access-analyzer"}
GLOBAL_SOURCES = ("iam.amazonaws.com", "signin.amazonaws.com", "organizations.amazonaws.com",
                  "route53.amazonaws.com", "health.amazonaws.com")


class CloudTrailGen:
    """CloudTrail records for a World. `record()` is the envelope every event goes through;
    the builders below fill requestParameters/responseElements per eventName. All return the
    record as a compact JSON string (no newline)."""

    def __init__(self, world, seed=1):
        self.w = world
        self.rng = random.Random(seed * 1000003 + 1)
        self._tls = {}
        self._req = _Req(self)
        self._build_catalog()

    # -- the envelope ----------------------------------------------------------------------

    def tls(self, host):
        s = self._tls.get(host)
        if s is None:
            s = ('{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256",'
                 '"clientProvidedHostHeader":"%s"}' % host)
            self._tls[host] = s
        return s

    def record(self, t, actor, source, name, region, ip, ua, req="null", resp="null",
               readonly=True, etype="AwsApiCall", error=None, aed=None, resources=None,
               shared=None, vpce=None, console=False, recipient=None, version="1.09",
               category="Management", tls=True, ident=None):
        """The CloudTrail envelope, keys in AWS's order. req/resp/aed/resources are JSON
        text (or "null"); error is (errorCode or None, errorMessage or None); ident replaces
        the actor's userIdentity text."""
        r = self.rng
        parts = ['{"eventVersion":"', version, '","userIdentity":', ident or actor.identity(t),
                 ',"eventTime":"', iso(t), '","eventSource":"', source, '","eventName":"', name,
                 '","awsRegion":"', region, '","sourceIPAddress":"', ip, '","userAgent":"', ua,
                 '"']
        if error is not None:
            if error[0] is not None:
                parts.append(',"errorCode":"%s"' % error[0])
            if error[1] is not None:
                parts.append(',"errorMessage":"%s"' % error[1])
        parts.append(',"requestParameters":')
        parts.append(req)
        parts.append(',"responseElements":')
        parts.append(resp)
        if aed is not None:
            parts.append(',"additionalEventData":')
            parts.append(aed)
        parts.append(',"requestID":"%s","eventID":"%s","readOnly":%s' % (
            uuid4(r), uuid4(r), "true" if readonly else "false"))
        if resources is not None:
            parts.append(',"resources":')
            parts.append(resources)
        parts.append(',"eventType":"%s","managementEvent":true,"recipientAccountId":"%s"' % (
            etype, recipient or actor.account.id))
        if shared is not None:
            parts.append(',"sharedEventID":"%s"' % shared)
        if vpce is not None:
            parts.append(',"vpcEndpointId":"%s"' % vpce)
        parts.append(',"eventCategory":"%s"' % category)
        if tls and actor.invoked_by is None:
            if source in GLOBAL_SOURCES:
                host = "signin.aws.amazon.com" if source.startswith("signin") else \
                    source
            else:
                host = "%s.%s.amazonaws.com" % (source.split(".")[0], region)
            parts.append(',"tlsDetails":')
            parts.append(self.tls(host))
        if console:
            parts.append(',"sessionCredentialFromConsole":"true"')
        parts.append("}")
        return "".join(parts)

    # -- actor habits ----------------------------------------------------------------------

    def src_ip(self, actor):
        r = self.rng
        c = actor.cls
        if c in ("linked", "service"):
            return actor.ips[0]
        if c == "lambda":
            return public_ip(r, AWS_FIRST_OCTETS)
        if c == "ci":
            return public_ip(r, AZURE_FIRST_OCTETS)
        if actor.human:
            x = r.random()
            if x < 0.03:
                return public_ip(r)   # travel, hotel wifi, mobile
            if x < 0.04:
                return "AWS Internal"
        ips = actor.ips
        return ips[r.getrandbits(16) % len(ips)]

    def user_agent(self, actor, name):
        """The client string, and whether the call came from a console session."""
        r = self.rng
        x = r.random()
        for kind, v, w in actor.ua:
            x -= w
            if x <= 0:
                break
        if kind == "browser":
            return ("AWS Internal" if r.random() < 0.3 else "console.amazonaws.com"), True
        if kind == "cli":
            cmd = _cli_cmd(self.cat[name][0], name)
            return ua_cli(r, v[r.getrandbits(8) % len(v)], cmd), False
        return v, False

    def region_of(self, actor):
        regs = actor.regions
        if len(regs) > 3:
            return REGION_PICK.pick(self.rng)
        return regs[self.rng.getrandbits(16) % len(regs)]

    # -- the catalog -----------------------------------------------------------------------

    def _build_catalog(self):
        R = self._req
        # name -> (eventSource, readOnly, builder or None, error kinds, error rate)
        self.cat = {
            "DescribeInstances": ("ec2", True, R.describe_instances, ("ec2denied", "ec2throttle"), 0.015),
            "DescribeInstanceStatus": ("ec2", True, R.describe_instance_status, ("ec2throttle",), 0.01),
            "DescribeVolumes": ("ec2", True, '{"volumeSet":{},"filterSet":{},"maxResults":500}', ("ec2denied",), 0.01),
            "DescribeSecurityGroups": ("ec2", True, R.describe_sgs, ("ec2denied",), 0.01),
            "DescribeSubnets": ("ec2", True, '{"subnetSet":{},"filterSet":{}}', (), 0),
            "DescribeVpcs": ("ec2", True, '{"vpcSet":{},"filterSet":{}}', (), 0),
            "DescribeRegions": ("ec2", True, '{"regionSet":{},"allRegions":false}', (), 0),
            "DescribeAvailabilityZones": ("ec2", True, '{"availabilityZoneSet":{},"availabilityZoneIdSet":{},"allAvailabilityZones":false}', (), 0),
            "DescribeTags": ("ec2", True, R.describe_tags, (), 0),
            "DescribeImages": ("ec2", True, R.describe_images, (), 0),
            "DescribeSnapshots": ("ec2", True, '{"snapshotSet":{},"ownersSet":{"items":[{"owner":"self"}]},"sharedUsersSet":{},"filterSet":{}}', (), 0),
            "DescribeNetworkInterfaces": ("ec2", True, '{"networkInterfaceIdSet":{},"filterSet":{}}', ("ec2throttle",), 0.01),
            "DescribeAddresses": ("ec2", True, '{"publicIpsSet":{},"allocationIdsSet":{},"filterSet":{}}', (), 0),
            "DescribeInstanceTypes": ("ec2", True, '{"instanceTypeSet":{},"filterSet":{}}', (), 0),
            "DescribeLaunchTemplates": ("ec2", True, '{"launchTemplateIdSet":{},"launchTemplateNameSet":{},"filterSet":{}}', (), 0),
            "DescribeLogGroups": ("logs", True, R.describe_log_groups, (), 0),
            "DescribeStacks": ("cloudformation", True, R.describe_stacks, (), 0),
            "DescribeDBInstances": ("rds", True, '{"maxRecords":100}', ("denied",), 0.01),
            "DescribeAlarms": ("monitoring", True, '{"maxRecords":100}', (), 0),
            "DescribeKey": ("kms", True, R.describe_key, (), 0),
            "DescribeLoadBalancers": ("elasticloadbalancing", True, '{"pageSize":400}', (), 0),
            "DescribeAutoScalingGroups": ("autoscaling", True, '{"maxRecords":100}', (), 0),
            "DescribeParameters": ("ssm", True, '{"maxResults":50}', (), 0),
            "DescribeTrails": ("cloudtrail", True, '{"includeShadowTrails":true}', (), 0),
            "DescribeConfigRules": ("config", True, "null", (), 0),
            "DescribeEventAggregates": ("health", True, '{"aggregateField":"eventTypeCategory","filter":{"eventStatusCodes":["open","upcoming"]}}', (), 0),
            "ListBuckets": ("s3", True, R.list_buckets, (), 0),
            "ListRoles": ("iam", True, '{"maxItems":1000}', ("denied",), 0.01),
            "ListUsers": ("iam", True, '{"maxItems":1000}', ("denied",), 0.01),
            "ListPolicies": ("iam", True, '{"scope":"Local","onlyAttached":false,"maxItems":1000}', (), 0),
            "ListAccessKeys": ("iam", True, R.user_param, ("denied",), 0.02),
            "ListAttachedRolePolicies": ("iam", True, R.role_param, (), 0),
            "ListAttachedUserPolicies": ("iam", True, R.user_param, (), 0),
            "ListFunctions20150331": ("lambda", True, "null", (), 0),
            "ListSecrets": ("secretsmanager", True, '{"maxResults":100}', (), 0),
            "ListTagsForResource": ("kms", True, R.kms_key_param, (), 0),
            "ListAliases": ("kms", True, "null", (), 0),
            "ListClusters": ("ecs", True, "null", (), 0),
            "ListHostedZones": ("route53", True, "null", (), 0),
            "ListServiceQuotas": ("servicequotas", True, '{"serviceCode":"ec2","maxResults":100}', (), 0),
            "ListAccounts": ("organizations", True, "null", ("denied",), 0.05),
            "GetBucketAcl": ("s3", True, R.bucket_param("acl"), (), 0),
            "GetBucketPolicy": ("s3", True, R.bucket_param("policy"), ("nopolicy",), 0.3),
            "GetBucketLocation": ("s3", True, R.bucket_param("location"), (), 0),
            "GetBucketEncryption": ("s3", True, R.bucket_param("encryption"), ("noenc",), 0.1),
            "GetBucketVersioning": ("s3", True, R.bucket_param("versioning"), (), 0),
            "GetBucketPublicAccessBlock": ("s3", True, R.bucket_param("publicAccessBlock"), (), 0),
            "GetCallerIdentity": ("sts", True, "null", (), 0),
            "GetRole": ("iam", True, R.role_param, ("noentity",), 0.02),
            "GetUser": ("iam", True, R.user_param, (), 0),
            "GetPolicyVersion": ("iam", True, R.policy_version, (), 0),
            "GetAccountSummary": ("iam", True, "null", (), 0),
            "GetAccountPasswordPolicy": ("iam", True, "null", (), 0),
            "GetParameter": ("ssm", True, R.get_parameter, ("paramnf", "denied"), 0.02),
            "GetParameters": ("ssm", True, R.get_parameters, (), 0),
            "GetSecretValue": ("secretsmanager", True, R.get_secret, ("notfound", "denied"), 0.02),
            "GetServiceQuota": ("servicequotas", True, R.get_service_quota, (), 0),
            "GetMetricData": ("monitoring", True, R.get_metric_data, ("throttle",), 0.01),
            "GetMetricStatistics": ("monitoring", True, R.get_metric_statistics, ("throttle",), 0.01),
            "GetFunction": ("lambda", True, R.function_param, (), 0),
            "GetAuthorizationToken": ("ecr", True, '{"registryIds":["%s"]}', (), 0),
            "GetSessionToken": ("sts", True, '{"durationSeconds":43200}', (), 0),
            "Decrypt": ("kms", True, R.kms_decrypt, ("kmsdenied",), 0.005),
            "GenerateDataKey": ("kms", True, R.kms_gdk, (), 0),
            "Encrypt": ("kms", True, R.kms_decrypt, (), 0),
            "AssumeRole": ("sts", True, None, ("denied",), 0.01),
            "AssumeRoleWithWebIdentity": ("sts", True, None, (), 0),
            "UpdateInstanceInformation": ("ssm", False, R.update_instance_information, (), 0),
            "CreateLogStream": ("logs", False, R.create_log_stream, (), 0),
            "CreateLogGroup": ("logs", False, R.create_log_group, (), 0),
            "PutMetricAlarm": ("monitoring", False, '{"alarmName":"cpu-high","namespace":"AWS/EC2","metricName":"CPUUtilization","threshold":80.0,"comparisonOperator":"GreaterThanThreshold","evaluationPeriods":3,"period":300,"statistic":"Average"}', (), 0),
            "CreateTags": ("ec2", False, None, ("ec2denied",), 0.02),
            "StartInstances": ("ec2", False, None, ("badinst",), 0.01),
            "StopInstances": ("ec2", False, None, ("badinst",), 0.01),
            "TerminateInstances": ("ec2", False, None, ("ec2denied",), 0.02),
            "RunInstances": ("ec2", False, None, ("ec2denied", "vcpu"), 0.04),
            "CreateAccessKey": ("iam", False, None, ("denied",), 0.05),
            "DeleteAccessKey": ("iam", False, None, (), 0),
            "CreateUser": ("iam", False, None, ("denied",), 0.05),
            "AttachRolePolicy": ("iam", False, None, ("denied",), 0.03),
            "PutRolePolicy": ("iam", False, None, ("denied",), 0.03),
            "CreateNetworkInterface": ("ec2", False, None, (), 0),
            "DeleteNetworkInterface": ("ec2", False, None, (), 0),
            "AuthorizeSecurityGroupIngress": ("ec2", False, None, ("ec2denied",), 0.05),
            "CreateSecurityGroup": ("ec2", False, None, (), 0),
            "PutBucketPolicy": ("s3", False, None, ("denied",), 0.05),
            "UpdateFunctionCode20150331v2": ("lambda", False, None, (), 0),
            "RequestServiceQuotaIncrease": ("servicequotas", False, None, (), 0),
            "ConsoleLogin": ("signin", False, None, (), 0),
        }
        for k, v in list(self.cat.items()):
            self.cat[k] = (v[0] + ".amazonaws.com",) + v[1:]

        D = Weighted  # profiles: what each class of identity mostly does
        humans_read = [
            ("DescribeInstances", 9), ("DescribeInstanceStatus", 2), ("DescribeVolumes", 2),
            ("DescribeSecurityGroups", 3), ("DescribeSubnets", 2), ("DescribeVpcs", 2),
            ("DescribeRegions", 1), ("DescribeAvailabilityZones", 1), ("DescribeTags", 1),
            ("DescribeImages", 1), ("DescribeLogGroups", 2), ("DescribeStacks", 2),
            ("DescribeDBInstances", 1), ("DescribeAlarms", 1.5), ("DescribeLoadBalancers", 1),
            ("DescribeAutoScalingGroups", 1), ("DescribeKey", 1), ("DescribeLaunchTemplates", 0.5),
            ("DescribeInstanceTypes", 0.5), ("ListBuckets", 3), ("ListRoles", 1), ("ListUsers", 1),
            ("ListPolicies", 0.5), ("ListFunctions20150331", 1.5), ("ListSecrets", 0.5),
            ("ListAliases", 0.5), ("ListClusters", 0.5), ("ListHostedZones", 0.3),
            ("ListAccessKeys", 0.5), ("ListAttachedUserPolicies", 0.3),
            ("ListServiceQuotas", 0.2), ("ListAccounts", 0.1),
            ("GetBucketAcl", 1), ("GetBucketPolicy", 1), ("GetBucketLocation", 1.5),
            ("GetBucketEncryption", 0.5), ("GetBucketVersioning", 0.5), ("GetCallerIdentity", 3),
            ("GetRole", 1), ("GetUser", 0.5), ("GetAccountSummary", 0.2), ("GetParameter", 0.5),
            ("GetSecretValue", 0.3), ("GetServiceQuota", 0.3), ("GetMetricData", 3),
            ("GetFunction", 0.5), ("DescribeEventAggregates", 1),
            ("CreateTags", 0.5), ("StartInstances", 0.15), ("StopInstances", 0.15),
            ("TerminateInstances", 0.1), ("RunInstances", 0.35), ("CreateAccessKey", 0.03),
            ("DeleteAccessKey", 0.02), ("CreateUser", 0.01), ("AttachRolePolicy", 0.03),
            ("PutRolePolicy", 0.03), ("AuthorizeSecurityGroupIngress", 0.08),
            ("CreateSecurityGroup", 0.05), ("PutBucketPolicy", 0.02), ("PutMetricAlarm", 0.1),
            ("CreateLogGroup", 0.05), ("UpdateFunctionCode20150331v2", 0.1),
            ("RequestServiceQuotaIncrease", 0.005), ("AssumeRole", 1.5), ("Decrypt", 0.5),
            ("GetSessionToken", 0.1),
        ]
        self.profiles = {
            "human_iam": D(humans_read + [("ConsoleLogin", 0.8)]),
            "human_sso": D(humans_read + [("ConsoleLogin", 0.6)]),
            "root": D([("ConsoleLogin", 5), ("GetAccountSummary", 2), ("DescribeRegions", 1),
                       ("GetAccountPasswordPolicy", 1), ("ListUsers", 1), ("DescribeInstances", 1)]),
            "svc_user": D([("DescribeInstances", 4), ("ListBuckets", 2), ("GetBucketLocation", 3),
                           ("GetBucketAcl", 1), ("GetCallerIdentity", 3), ("DescribeVolumes", 1),
                           ("DescribeSnapshots", 1), ("GetMetricStatistics", 3), ("GetMetricData", 3),
                           ("DescribeAlarms", 1), ("AssumeRole", 3), ("Decrypt", 1),
                           ("GetParameter", 1), ("GetSecretValue", 1), ("DescribeLogGroups", 1),
                           ("CreateTags", 0.3), ("GetAuthorizationToken", 1), ("ListUsers", 0.2),
                           ("GetServiceQuota", 0.2), ("DescribeDBInstances", 0.5),
                           ("RunInstances", 0.05), ("TerminateInstances", 0.03)]),
            "instance": D([("UpdateInstanceInformation", 6), ("GetParameter", 2),
                           ("GetParameters", 2), ("DescribeInstances", 2), ("DescribeTags", 2),
                           ("GetSecretValue", 1.5), ("Decrypt", 2), ("GenerateDataKey", 1),
                           ("CreateLogStream", 1), ("DescribeLogGroups", 0.3),
                           ("GetAuthorizationToken", 0.5), ("GetCallerIdentity", 0.5),
                           ("DescribeInstanceStatus", 0.3), ("GetMetricData", 0.3)]),
            "lambda": D([("Decrypt", 3), ("GenerateDataKey", 1), ("GetSecretValue", 2),
                         ("GetParameter", 2), ("GetParameters", 1), ("DescribeInstances", 1),
                         ("GetCallerIdentity", 0.5), ("AssumeRole", 1),
                         ("DescribeTags", 0.5), ("ListBuckets", 0.3), ("GetBucketLocation", 1),
                         ("CreateTags", 0.2), ("DescribeSecurityGroups", 0.3)]),
            "linked": D([("DescribeInstances", 3), ("DescribeInstanceStatus", 2),
                         ("DescribeSecurityGroups", 2), ("DescribeVolumes", 1),
                         ("DescribeNetworkInterfaces", 2), ("DescribeSubnets", 1),
                         ("DescribeVpcs", 1), ("DescribeAddresses", 1), ("DescribeSnapshots", 0.5),
                         ("DescribeTrails", 0.5), ("DescribeConfigRules", 0.5),
                         ("GetBucketAcl", 1), ("GetBucketPolicy", 1), ("GetBucketEncryption", 1),
                         ("GetBucketVersioning", 1), ("GetBucketPublicAccessBlock", 1),
                         ("ListRoles", 0.5), ("ListPolicies", 0.3), ("GetPolicyVersion", 0.5),
                         ("GetAccountPasswordPolicy", 0.3), ("DescribeKey", 0.5),
                         ("ListTagsForResource", 0.3), ("CreateNetworkInterface", 0.2),
                         ("DeleteNetworkInterface", 0.15), ("CreateTags", 0.1),
                         ("DescribeLoadBalancers", 0.5), ("DescribeAutoScalingGroups", 0.5)]),
            "vendor": D([("DescribeInstances", 3), ("DescribeVolumes", 2), ("DescribeSnapshots", 1),
                         ("DescribeSecurityGroups", 2), ("DescribeSubnets", 1), ("DescribeVpcs", 1),
                         ("DescribeImages", 1), ("DescribeAddresses", 1),
                         ("DescribeNetworkInterfaces", 1), ("DescribeRegions", 0.5),
                         ("ListBuckets", 1), ("GetBucketAcl", 1), ("GetBucketPolicy", 1),
                         ("GetBucketLocation", 1), ("GetBucketEncryption", 1),
                         ("GetBucketPublicAccessBlock", 1), ("ListRoles", 0.5), ("ListUsers", 0.5),
                         ("ListPolicies", 0.5), ("GetPolicyVersion", 1), ("ListAccessKeys", 0.5),
                         ("ListAttachedRolePolicies", 0.5), ("ListAttachedUserPolicies", 0.5),
                         ("GetMetricData", 3), ("GetMetricStatistics", 2), ("DescribeAlarms", 0.5),
                         ("DescribeDBInstances", 0.5), ("DescribeLoadBalancers", 0.5),
                         ("ListFunctions20150331", 0.5), ("DescribeTrails", 0.3),
                         ("DescribeKey", 0.3), ("ListAliases", 0.3), ("GetServiceQuota", 0.2)]),
            "ci": D([("AssumeRoleWithWebIdentity", 1), ("GetCallerIdentity", 2),
                     ("DescribeInstances", 2), ("DescribeSecurityGroups", 1), ("DescribeVpcs", 1),
                     ("DescribeSubnets", 1), ("DescribeImages", 1), ("GetRole", 1),
                     ("ListAttachedRolePolicies", 0.5), ("GetPolicyVersion", 0.5),
                     ("GetBucketPolicy", 0.5), ("GetBucketVersioning", 0.5), ("DescribeStacks", 1),
                     ("GetFunction", 0.5), ("UpdateFunctionCode20150331v2", 0.3),
                     ("GetAuthorizationToken", 1), ("CreateTags", 0.5), ("RunInstances", 0.1),
                     ("TerminateInstances", 0.08), ("DescribeLaunchTemplates", 0.5)]),
            "service": D([("AssumeRole", 8), ("Decrypt", 2), ("GenerateDataKey", 1),
                          ("CreateLogStream", 0.5)]),
        }

    # -- generic event ---------------------------------------------------------------------

    def event(self, t, actor=None, name=None, region=None, ip=None, ua=None):
        """A benign event: actor and name are drawn from the world's habits when not given."""
        r = self.rng
        if actor is None:
            actor = self.w.actor_pick.pick(r)
        if name is None:
            name = self.profiles[actor.cls].pick(r)
        if name == "ConsoleLogin":
            return self.console_login(t, actor, ip=ip)
        source, ro, build, errs, erate = self.cat[name]
        if region is None:
            region = "us-east-1" if source in GLOBAL_SOURCES else self.region_of(actor)
        if ip is None:
            ip = self.src_ip(actor)
        console = False
        if ua is None:
            ua, console = self.user_agent(actor, name)
        special = getattr(self, "ev_" + name, None)
        if special is not None:
            return special(t, actor, region, ip, ua, console=console)
        if build is None:
            req = "null"
        elif isinstance(build, str):
            req = build % actor.account.id if "%s" in build else build
        else:
            req = build(actor, region)
        error = None
        if not erate and actor.invoked_by is None:
            # Anything a person or a program calls is sometimes denied (least privilege,
            # scanners probing every service).
            errs, erate = ("denied",), 0.02
        if r.random() < erate * ERR_SCALE:
            error = self._error(errs[r.getrandbits(8) % len(errs)], actor, source, name, req)
        resources = None
        aed = None
        if source == "kms.amazonaws.com" and name in ("Decrypt", "GenerateDataKey", "Encrypt"):
            acct = actor.account
            resources = ('[{"accountId":"%s","type":"AWS::KMS::Key","ARN":"arn:aws:kms:%s:%s:key/%s"}]'
                         % (acct.id, region, acct.id, acct.kms_keys[r.getrandbits(8) % len(acct.kms_keys)]))
        elif source == "s3.amazonaws.com":
            aed = S3_AED % (hexid(r, 56), 0 if error else 100 + r.getrandbits(10))
        vpce = None
        if actor.cls == "instance" and ip.startswith(("10.", "172.", "192.168.")):
            vpce = "vpce-" + hexid(r, 17)
        shared = uuid4(r) if actor.kind == "AWSService" else None
        return self.record(t, actor, source, name, region, ip, ua, req=req, readonly=ro,
                           error=error, resources=resources, aed=aed, vpce=vpce,
                           console=console, shared=shared)

    def _error(self, kind, actor, source, name, req):
        code, msg = ERR[kind]
        if msg is not None and "%(" in msg:
            res = "unknown"
            i = req.find('Name":"')
            if i >= 0:
                res = req[i + 7:req.find('"', i + 7)]
            elif '"instanceId":"' in req:
                i = req.find('"instanceId":"') + 14
                res = req[i:req.find('"', i)]
            msg = msg % {"arn": actor.arn or actor.name, "res": res,
                         "action": "%s:%s" % (SVC_PREFIX.get(source, source.split(".")[0]), name)}
        return (code, msg)

    # -- specific events -------------------------------------------------------------------

    def console_login(self, t, actor, success=True, mfa=None, ip=None, ua=None, region="us-east-1",
                      reason="Failed authentication"):
        """ConsoleLogin (success or failure) with additionalEventData.MFAUsed. A few percent of
        benign logins fail (typos), unless success is given."""
        r = self.rng
        if ip is None:
            ip = self.src_ip(actor)
            if ip == "AWS Internal":
                ip = actor.ips[0]
        if ua is None:
            ua = BROWSERS[r.getrandbits(8) % len(BROWSERS)]
            for kind, v, _w in actor.ua:
                if kind == "browser":
                    ua = v
        if success is True and r.random() < 0.04 and actor.kind == "IAMUser":
            success = False
        if mfa is None:
            mfa = actor.mfa
        if success:
            resp = '{"ConsoleLogin":"Success"}'
            error = None
        else:
            resp = '{"ConsoleLogin":"Failure"}'
            error = (None, reason)
        if actor.kind == "AssumedRole":  # federated sign-in through IAM Identity Center
            aed = '{"MobileVersion":"No","MFAUsed":"No"}'
        else:
            aed = ('{"LoginTo":"https://console.aws.amazon.com/console/home?hashArgs=%%23&isauthcode=true&state=hashArgsFromTB_%s_%s","MobileVersion":"No","MFAUsed":"%s"}'
                   % (region, hexid(r, 16), "Yes" if mfa else "No"))
        return self.record(t, actor, "signin.amazonaws.com", "ConsoleLogin", region, ip, ua,
                           req="null", resp=resp, readonly=False, etype="AwsConsoleSignIn",
                           error=error, aed=aed, version="1.08",
                           ident=actor.signin_identity(success))

    def ev_ConsoleLogin(self, t, actor, region, ip, ua, console=False):
        return self.console_login(t, actor)

    def ev_AssumeRole(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        acct = actor.account
        if actor.kind == "AWSService":
            # a service assuming a role in the account: lambda -> function role, etc.
            role = "%s-%s" % (actor.name.split(".")[0], APP_NAMES[r.getrandbits(8) % len(APP_NAMES)])
            sess = {"lambda.amazonaws.com": "awslambda_%d_%s" % (r.getrandbits(9), "%d" % (t * 1000 + r.getrandbits(9))),
                    "ec2.amazonaws.com": "i-" + hexid(r, 17)}.get(actor.name, "%s-%s" % (actor.name.split(".")[0], hexid(r, 8)))
            region = acct.regions[r.getrandbits(8) % len(acct.regions)]
        else:
            role = "%s-cross-account-%s" % (acct.name, ("readonly", "deploy", "audit", "backup")[r.getrandbits(2)])
            sess = actor.session or actor.name
            if len(sess) > 60:
                sess = sess[:60]
        role_id = "AROA" + hexid(r, 16).upper()
        role_arn = "arn:aws:iam::%s:role/%s" % (acct.id, role)
        req = '{"roleArn":"%s","roleSessionName":"%s","durationSeconds":3600}' % (role_arn, sess)
        err = None
        if actor.kind != "AWSService" and r.random() < 0.01:
            err = self._error("denied", actor, "sts.amazonaws.com", "AssumeRole", req)
            resp = "null"
        else:
            resp = ('{"credentials":{"accessKeyId":"%s","sessionToken":"IQoJb3JpZ2luX2VjE%s","expiration":"%s"},'
                    '"assumedRoleUser":{"assumedRoleId":"%s:%s","arn":"arn:aws:sts::%s:assumed-role/%s/%s"}}'
                    % (keyid(r, "ASIA"), hexid(r, 40), aws_date(t + 3600), role_id, sess, acct.id, role, sess))
        res = '[{"accountId":"%s","type":"AWS::IAM::Role","ARN":"%s"}]' % (acct.id, role_arn)
        shared = uuid4(r) if actor.kind == "AWSService" else None
        return self.record(t, actor, "sts.amazonaws.com", "AssumeRole", region, ip, ua, req=req,
                           resp=resp, readonly=True, error=err, resources=res, shared=shared,
                           console=console)

    def ev_AssumeRoleWithWebIdentity(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        acct = actor.account
        req = ('{"roleArn":"arn:aws:iam::%s:role/%s","roleSessionName":"GitHubActions",'
               '"durationSeconds":3600}' % (acct.id, actor.name))
        resp = ('{"credentials":{"accessKeyId":"%s","expiration":"%s"},'
                '"subjectFromWebIdentityToken":"repo:example-org/%s:ref:refs/heads/main",'
                '"assumedRoleUser":{"assumedRoleId":"AROA%s:GitHubActions","arn":"%s"},'
                '"provider":"arn:aws:iam::%s:oidc-provider/token.actions.githubusercontent.com",'
                '"audience":"sts.amazonaws.com"}'
                % (keyid(r, "ASIA"), aws_date(t + 3600), APP_NAMES[r.getrandbits(8) % len(APP_NAMES)],
                   hexid(r, 16).upper(), actor.arn, acct.id))
        return self.record(t, actor, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", region,
                           ip, ua, req=req, resp=resp, readonly=True)

    def _instances_in(self, actor, region):
        w = self.w
        r = self.rng
        acct = actor.account
        for _ in range(8):
            inst = w.instances[r.getrandbits(16) % len(w.instances)]
            if inst.account is acct and inst.region == region:
                return inst
        return w.instances[r.getrandbits(16) % len(w.instances)]

    def _state_change(self, t, actor, region, ip, ua, name, prev, cur, console):
        r = self.rng
        n = 1 + (r.random() < 0.2)
        insts = [self._instances_in(actor, region) for _ in range(n)]
        req = '{"instancesSet":{"items":[%s]}}' % ",".join('{"instanceId":"%s"}' % i.id for i in insts)
        source, ro, _b, errs, erate = self.cat[name]
        if erate and r.random() < erate:
            return self.record(t, actor, source, name, region, ip, ua, req=req, readonly=False,
                               error=self._error(errs[0], actor, source, name, req),
                               console=console)
        items = ",".join('{"instanceId":"%s","currentState":{"code":%d,"name":"%s"},'
                         '"previousState":{"code":%d,"name":"%s"}}' % (i.id, cur[0], cur[1], prev[0], prev[1])
                         for i in insts)
        resp = '{"requestId":"%s","instancesSet":{"items":[%s]}}' % (uuid4(r), items)
        return self.record(t, actor, source, name, region, ip, ua, req=req, resp=resp,
                           readonly=False, console=console)

    def ev_StartInstances(self, t, actor, region, ip, ua, console=False):
        return self._state_change(t, actor, region, ip, ua, "StartInstances", (80, "stopped"),
                                  (0, "pending"), console)

    def ev_StopInstances(self, t, actor, region, ip, ua, console=False):
        return self._state_change(t, actor, region, ip, ua, "StopInstances", (16, "running"),
                                  (64, "stopping"), console)

    def ev_TerminateInstances(self, t, actor, region, ip, ua, console=False):
        return self._state_change(t, actor, region, ip, ua, "TerminateInstances",
                                  (16, "running"), (32, "shutting-down"), console)

    def ev_CreateTags(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        inst = self._instances_in(actor, region)
        req = ('{"resourcesSet":{"items":[{"resourceId":"%s"}]},"tagSet":{"items":'
               '[{"key":"%s","value":"%s"}]}}' % (inst.id, ("Owner", "CostCenter", "Environment", "Name")[r.getrandbits(2)],
                                                  inst.app))
        if r.random() < 0.02:
            return self.record(t, actor, "ec2.amazonaws.com", "CreateTags", region, ip, ua, req=req,
                               readonly=False, error=ERR["ec2denied"], console=console)
        resp = '{"requestId":"%s","_return":true}' % uuid4(r)
        return self.record(t, actor, "ec2.amazonaws.com", "CreateTags", region, ip, ua, req=req,
                           resp=resp, readonly=False, console=console)

    def run_instances(self, t, actor, region, ip, ua, image_id=None, instance_type=None,
                      count=None, error=None, key_name=None, console=False, subnet=None,
                      vpc=None, user_data=False):
        """RunInstances with the full responseElements.instancesSet.items[] AWS writes:
        instanceId, imageId, instanceType, placement, networkInterfaceSet with
        privateIpAddress, ... error: (code, message) to log a refused launch instead."""
        r = self.rng
        acct = actor.account
        if image_id is None:
            amis = self.w.amis.get(region) or self.w.amis["us-east-1"]
            image_id = amis[(r.getrandbits(8) % 4)][0]
        if instance_type is None:
            instance_type = INSTANCE_TYPES.pick(r)
        if count is None:
            count = 1 if r.random() < 0.8 else 2 + r.getrandbits(1)
        if key_name is None:
            key_name = "%s-%s" % (acct.name, ("ops", "deploy", "default", "bastion")[r.getrandbits(2)])
        vpcs = acct.vpcs.get(region)
        if vpc is None:
            vpc = vpcs[r.getrandbits(1)] if vpcs else "vpc-" + hexid(r, 17)
        if subnet is None:
            subnet = "subnet-" + hexid(r, 17)
        sg = "sg-" + hexid(r, 17)
        req = ('{"instancesSet":{"items":[{"imageId":"%s","minCount":%d,"maxCount":%d,"keyName":"%s"}]},'
               '"userData":"<sensitiveDataRemoved>","instanceType":"%s","blockDeviceMapping":{},'
               '"monitoring":{"enabled":false},"subnetId":"%s","disableApiTermination":false,'
               '"disableApiStop":false,"clientToken":"%s","networkInterfaceSet":{"items":[{"deviceIndex":0,'
               '"associatePublicIpAddress":true,"groupSet":{"items":[{"groupId":"%s"}]}}]},'
               '"tagSpecificationSet":{"items":[{"resourceType":"instance","tags":[{"key":"Name","value":"%s"}]}]}}'
               % (image_id, count, count, key_name, instance_type, subnet, uuid4(r), sg,
                  APP_NAMES[r.getrandbits(8) % len(APP_NAMES)]))
        if not user_data:
            req = req.replace('"userData":"<sensitiveDataRemoved>",', "", 1)
        if error is None and r.random() < self.cat["RunInstances"][4] and actor.invoked_by is None:
            error = ERR["ec2denied"] if r.random() < 0.7 else (ERR["vcpu"][0], ERR["vcpu"][1])
        if error is not None:
            return self.record(t, actor, "ec2.amazonaws.com", "RunInstances", region, ip, ua,
                               req=req, readonly=False, error=error, console=console)
        az = region + "abc"[r.getrandbits(8) % 3]
        launch = t * 1000
        items = []
        for k in range(count):
            iid = "i-" + hexid(r, 17)
            pip = "10.%d.%d.%d" % (r.getrandbits(8), r.getrandbits(8), 4 + r.getrandbits(7))
            dns = "ip-%s.%s.compute.internal" % (pip.replace(".", "-"), region) if region != "us-east-1" \
                else "ip-%s.ec2.internal" % pip.replace(".", "-")
            eni = "eni-" + hexid(r, 17)
            items.append(
                '{"instanceId":"%s","imageId":"%s","instanceState":{"code":0,"name":"pending"},'
                '"privateDnsName":"%s","keyName":"%s","amiLaunchIndex":%d,"productCodes":{},'
                '"instanceType":"%s","launchTime":%d,"placement":{"availabilityZone":"%s","tenancy":"default"},'
                '"monitoring":{"state":"disabled"},"subnetId":"%s","vpcId":"%s","privateIpAddress":"%s",'
                '"stateReason":{"code":"pending","message":"pending"},"architecture":"x86_64",'
                '"rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","blockDeviceMapping":{},'
                '"virtualizationType":"hvm","hypervisor":"xen","groupSet":{"items":[{"groupId":"%s","groupName":"default"}]},'
                '"sourceDestCheck":true,"networkInterfaceSet":{"items":[{"networkInterfaceId":"%s",'
                '"subnetId":"%s","vpcId":"%s","ownerId":"%s","status":"in-use","macAddress":"0e:%s",'
                '"privateIpAddress":"%s","privateDnsName":"%s","sourceDestCheck":true,"interfaceType":"interface",'
                '"groupSet":{"items":[{"groupId":"%s","groupName":"default"}]},"attachment":{"attachmentId":"eni-attach-%s",'
                '"deviceIndex":0,"networkCardIndex":0,"status":"attaching","attachTime":%d,"deleteOnTermination":true},'
                '"privateIpAddressesSet":{"item":[{"privateIpAddress":"%s","privateDnsName":"%s","primary":true}]},'
                '"ipv6AddressesSet":{},"tagSet":{}}]},"ebsOptimized":false,"enaSupport":true,'
                '"cpuOptions":{"coreCount":1,"threadsPerCore":2},"capacityReservationSpecification":'
                '{"capacityReservationPreference":"open"},"enclaveOptions":{"enabled":false},'
                '"metadataOptions":{"state":"pending","httpTokens":"required","httpPutResponseHopLimit":2,'
                '"httpEndpoint":"enabled","httpProtocolIpv4":"enabled","httpProtocolIpv6":"disabled",'
                '"instanceMetadataTags":"disabled"},"maintenanceOptions":{"autoRecovery":"default"},'
                '"privateDnsNameOptions":{"hostnameType":"ip-name","enableResourceNameDnsARecord":false,'
                '"enableResourceNameDnsAAAARecord":false},"currentInstanceBootMode":"legacy-bios"}'
                % (iid, image_id, dns, key_name, k, instance_type, launch, az, subnet, vpc, pip, sg,
                   eni, subnet, vpc, acct.id,
                   ":".join("%02x" % r.getrandbits(8) for _ in range(5)), pip, dns, sg,
                   hexid(r, 17), launch, pip, dns))
        resp = ('{"requestId":"%s","reservationId":"r-%s","ownerId":"%s","groupSet":{},'
                '"instancesSet":{"items":[%s]}}' % (uuid4(r), hexid(r, 17), acct.id, ",".join(items)))
        return self.record(t, actor, "ec2.amazonaws.com", "RunInstances", region, ip, ua, req=req,
                           resp=resp, readonly=False, console=console)

    def ev_RunInstances(self, t, actor, region, ip, ua, console=False):
        return self.run_instances(t, actor, region, ip, ua, console=console)

    def create_access_key(self, t, actor, target_user, region="us-east-1", ip=None, ua=None,
                          console=False, error=None):
        r = self.rng
        ip = ip or self.src_ip(actor)
        if ua is None:
            ua, console = self.user_agent(actor, "CreateAccessKey")
        req = '{"userName":"%s"}' % target_user
        if error is not None:
            return self.record(t, actor, "iam.amazonaws.com", "CreateAccessKey", region, ip, ua,
                               req=req, readonly=False, error=error, console=console)
        resp = ('{"accessKey":{"userName":"%s","accessKeyId":"%s","status":"Active","createDate":"%s"}}'
                % (target_user, keyid(r, "AKIA"), aws_date(t)))
        return self.record(t, actor, "iam.amazonaws.com", "CreateAccessKey", region, ip, ua,
                           req=req, resp=resp, readonly=False, console=console)

    def _some_user(self, actor):
        us = actor.account.users or ["svc-deploy"]
        return us[self.rng.getrandbits(16) % len(us)]

    def ev_CreateAccessKey(self, t, actor, region, ip, ua, console=False):
        err = None
        if self.rng.random() < 0.05:
            err = self._error("denied", actor, "iam.amazonaws.com", "CreateAccessKey", "")
        return self.create_access_key(t, actor, self._some_user(actor), ip=ip, ua=ua,
                                      console=console, error=err)

    def ev_DeleteAccessKey(self, t, actor, region, ip, ua, console=False):
        req = '{"userName":"%s","accessKeyId":"%s"}' % (self._some_user(actor), keyid(self.rng, "AKIA"))
        return self.record(t, actor, "iam.amazonaws.com", "DeleteAccessKey", region, ip, ua,
                           req=req, readonly=False, console=console)

    def ev_CreateUser(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        name = "%s-%s" % (("contractor", "temp", "svc", "test")[r.getrandbits(2)], hexid(r, 4))
        req = '{"userName":"%s"}' % name
        resp = ('{"user":{"path":"/","userName":"%s","userId":"%s","arn":"arn:aws:iam::%s:user/%s","createDate":"%s"}}'
                % (name, keyid(r, "AIDA", 17), actor.account.id, name, aws_date(t)))
        return self.record(t, actor, "iam.amazonaws.com", "CreateUser", region, ip, ua, req=req,
                           resp=resp, readonly=False, console=console)

    def ev_AttachRolePolicy(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        req = ('{"roleName":"%s-%s-role","policyArn":"arn:aws:iam::aws:policy/%s"}'
               % (actor.account.name, APP_NAMES[r.getrandbits(8) % len(APP_NAMES)],
                  ("ReadOnlyAccess", "AmazonS3ReadOnlyAccess", "CloudWatchAgentServerPolicy",
                   "AmazonSSMManagedInstanceCore")[r.getrandbits(2)]))
        return self.record(t, actor, "iam.amazonaws.com", "AttachRolePolicy", region, ip, ua,
                           req=req, readonly=False, console=console)

    def ev_PutRolePolicy(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        app = APP_NAMES[r.getrandbits(8) % len(APP_NAMES)]
        req = ('{"roleName":"%s-%s-role","policyName":"%s-inline","policyDocument":"{\\n  \\"Version\\": '
               '\\"2012-10-17\\",\\n  \\"Statement\\": [{\\"Effect\\": \\"Allow\\", \\"Action\\": '
               '[\\"s3:GetObject\\"], \\"Resource\\": \\"arn:aws:s3:::%s/*\\"}]\\n}"}'
               % (actor.account.name, app, app, actor.account.buckets[0]))
        return self.record(t, actor, "iam.amazonaws.com", "PutRolePolicy", region, ip, ua,
                           req=req, readonly=False, console=console)

    def ev_CreateNetworkInterface(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        sub = "subnet-" + hexid(r, 17)
        req = ('{"subnetId":"%s","description":"AWS Lambda VPC ENI-%s","groupSet":{"items":[{"groupId":"sg-%s"}]},'
               '"privateIpAddressesSet":{}}' % (sub, hexid(r, 8), hexid(r, 17)))
        pip = "10.%d.%d.%d" % (r.getrandbits(8), r.getrandbits(8), 4 + r.getrandbits(7))
        resp = ('{"requestId":"%s","networkInterface":{"networkInterfaceId":"eni-%s","subnetId":"%s",'
                '"vpcId":"vpc-%s","availabilityZone":"%sa","ownerId":"%s","requesterManaged":false,'
                '"status":"pending","privateIpAddress":"%s","sourceDestCheck":true,"interfaceType":"lambda"}}'
                % (uuid4(r), hexid(r, 17), sub, hexid(r, 17), region, actor.account.id, pip))
        return self.record(t, actor, "ec2.amazonaws.com", "CreateNetworkInterface", region, ip,
                           ua, req=req, resp=resp, readonly=False)

    def ev_DeleteNetworkInterface(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        req = '{"networkInterfaceId":"eni-%s"}' % hexid(r, 17)
        resp = '{"requestId":"%s","_return":true}' % uuid4(r)
        return self.record(t, actor, "ec2.amazonaws.com", "DeleteNetworkInterface", region, ip,
                           ua, req=req, resp=resp, readonly=False)

    def ev_AuthorizeSecurityGroupIngress(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        port = (22, 443, 80, 5432, 3389, 8080)[r.getrandbits(8) % 6]
        cidr = "0.0.0.0/0" if r.random() < 0.2 else "10.0.0.0/8"
        req = ('{"groupId":"sg-%s","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":%d,"toPort":%d,'
               '"groups":{},"ipRanges":{"items":[{"cidrIp":"%s"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}'
               % (hexid(r, 17), port, port, cidr))
        resp = ('{"requestId":"%s","_return":true,"securityGroupRuleSet":{"items":[{"groupOwnerId":"%s",'
                '"groupId":"sg-%s","securityGroupRuleId":"sgr-%s","isEgress":false,"ipProtocol":"tcp",'
                '"fromPort":%d,"toPort":%d,"cidrIpv4":"%s"}]}}'
                % (uuid4(r), actor.account.id, hexid(r, 17), hexid(r, 17), port, port, cidr))
        return self.record(t, actor, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", region,
                           ip, ua, req=req, resp=resp, readonly=False, console=console)

    def ev_CreateSecurityGroup(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        name = "%s-sg-%s" % (APP_NAMES[r.getrandbits(8) % len(APP_NAMES)], hexid(r, 4))
        vpcs = actor.account.vpcs.get(region) or ["vpc-" + hexid(r, 17)]
        req = '{"groupName":"%s","groupDescription":"%s","vpcId":"%s"}' % (name, name, vpcs[0])
        resp = '{"requestId":"%s","_return":true,"groupId":"sg-%s"}' % (uuid4(r), hexid(r, 17))
        return self.record(t, actor, "ec2.amazonaws.com", "CreateSecurityGroup", region, ip, ua,
                           req=req, resp=resp, readonly=False, console=console)

    def ev_PutBucketPolicy(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        b = actor.account.buckets[r.getrandbits(8) % len(actor.account.buckets)]
        req = ('{"bucketPolicy":{"Version":"2012-10-17","Statement":[{"Sid":"AllowSSLRequestsOnly",'
               '"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"],'
               '"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]},"bucketName":"%s","Host":"%s.s3.amazonaws.com","policy":""}'
               % (b, b, b, b))
        return self.record(t, actor, "s3.amazonaws.com", "PutBucketPolicy", region, ip, ua,
                           req=req, readonly=False, aed=S3_AED % (hexid(r, 56), 0),
                           console=console)

    def ev_UpdateFunctionCode20150331v2(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        fn = actor.account.functions[r.getrandbits(8) % len(actor.account.functions)]
        req = '{"functionName":"%s","publish":false,"dryRun":false}' % fn
        resp = ('{"functionName":"%s","functionArn":"arn:aws:lambda:%s:%s:function:%s","runtime":"python3.12",'
                '"handler":"app.handler","codeSize":%d,"timeout":30,"memorySize":256,"lastModified":"%s.000+0000",'
                '"codeSha256":"%s","version":"$LATEST","state":"Active","lastUpdateStatus":"InProgress"}'
                % (fn, region, actor.account.id, fn, 10000 + r.getrandbits(20), iso(t)[:-1], hexid(r, 43)))
        return self.record(t, actor, "lambda.amazonaws.com", "UpdateFunctionCode20150331v2",
                           region, ip, ua, req=req, resp=resp, readonly=False, console=console)

    def ev_RequestServiceQuotaIncrease(self, t, actor, region, ip, ua, console=False):
        r = self.rng
        req = '{"serviceCode":"ec2","quotaCode":"L-1216C47A","desiredValue":%d.0}' % (64 << r.getrandbits(2))
        resp = ('{"requestedQuota":{"id":"%s","serviceCode":"ec2","quotaCode":"L-1216C47A","status":"PENDING",'
                '"quotaName":"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"}}' % hexid(r, 32))
        return self.record(t, actor, "servicequotas.amazonaws.com", "RequestServiceQuotaIncrease",
                           region, ip, ua, req=req, resp=resp, readonly=False, console=console)

    # -- streams ---------------------------------------------------------------------------

    def stream(self, n, start, span, jitter=DEFAULT_JITTER_S):
        """n records with eventTime increasing over [start, start+span) seconds, each moved by
        up to +-jitter seconds (nearly sorted, as delivered files are)."""
        r = self.rng
        step = span / max(n, 1)
        ev = self.event
        for i in range(n):
            t = int(start + i * step + (r.random() * 2 - 1) * jitter)
            if t < start:
                t = int(start)
            yield ev(t)


_CMD_CACHE = {}


def _cli_cmd(source, name):
    """('rds.amazonaws.com', 'DescribeDBInstances') -> 'rds.describe-db-instances', the
    command tag aws-cli v2 puts in its user agent."""
    key = (source, name)
    s = _CMD_CACHE.get(key)
    if s is None:
        base = re.sub(r"20150331(v2)?$", "", name)
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", base).lower()
        svc = SVC_PREFIX.get(source, source.split(".")[0])
        s = "%s.%s" % (svc, base)
        _CMD_CACHE[key] = s
    return s


REGION_PICK = Weighted(REGIONS)


class _Req:
    """Request-parameter builders: (actor, region) -> JSON text. Bound to a generator's rng."""

    def __init__(self, gen):
        self.g = gen

    @property
    def r(self):
        return self.g.rng

    def describe_instances(self, actor, region):
        r = self.r
        x = r.random()
        if x < 0.5:
            return '{"instancesSet":{},"filterSet":{}}'
        if x < 0.8:
            inst = self.g._instances_in(actor, region)
            return '{"instancesSet":{"items":[{"instanceId":"%s"}]},"filterSet":{}}' % inst.id
        return ('{"instancesSet":{},"filterSet":{"items":[{"name":"instance-state-name","valueSet":'
                '{"items":[{"value":"running"}]}},{"name":"tag:Environment","valueSet":{"items":[{"value":"%s"}]}}]}}'
                % actor.account.name)

    def describe_instance_status(self, actor, region):
        return '{"instancesSet":{},"filterSet":{},"includeAllInstances":%s}' % (
            "true" if self.r.getrandbits(1) else "false")

    def describe_sgs(self, actor, region):
        vpcs = actor.account.vpcs.get(region)
        if not vpcs or self.r.random() < 0.5:
            return '{"securityGroupSet":{},"securityGroupIdSet":{},"filterSet":{}}'
        return ('{"securityGroupSet":{},"securityGroupIdSet":{},"filterSet":{"items":[{"name":"vpc-id",'
                '"valueSet":{"items":[{"value":"%s"}]}}]}}' % vpcs[0])

    def describe_tags(self, actor, region):
        inst = actor.instance or self.g._instances_in(actor, region)
        return ('{"filterSet":{"items":[{"name":"resource-id","valueSet":{"items":[{"value":"%s"}]}}]}}'
                % inst.id)

    def describe_images(self, actor, region):
        amis = self.g.w.amis.get(region) or self.g.w.amis["us-east-1"]
        a = amis[self.r.getrandbits(8) % len(amis)]
        return ('{"executableBySet":{},"imagesSet":{"items":[{"imageId":"%s"}]},"ownersSet":{},'
                '"includeDeprecated":false,"filterSet":{}}' % a[0])

    def describe_log_groups(self, actor, region):
        fn = actor.account.functions[self.r.getrandbits(8) % len(actor.account.functions)]
        return '{"logGroupNamePrefix":"/aws/lambda/%s"}' % fn

    def describe_stacks(self, actor, region):
        return '{"stackName":"%s-%s"}' % (actor.account.name,
                                          APP_NAMES[self.r.getrandbits(8) % len(APP_NAMES)])

    def kms_key_param(self, actor, region):
        acct = actor.account
        return '{"keyId":"arn:aws:kms:%s:%s:key/%s"}' % (
            region, acct.id, acct.kms_keys[self.r.getrandbits(8) % len(acct.kms_keys)])

    def describe_key(self, actor, region):
        if self.r.random() < 0.5:
            return '{"keyId":"alias/aws/%s"}' % ("s3", "ebs", "rds", "secretsmanager")[self.r.getrandbits(2)]
        return self.kms_key_param(actor, region)

    def list_buckets(self, actor, region):
        return '{"Host":"s3.amazonaws.com"}'

    def bucket_param(self, what):
        def build(actor, region):
            b = actor.account.buckets[self.r.getrandbits(8) % len(actor.account.buckets)]
            return '{"bucketName":"%s","Host":"%s.s3.%s.amazonaws.com","%s":""}' % (b, b, region, what)
        return build

    def user_param(self, actor, region):
        return '{"userName":"%s"}' % self.g._some_user(actor)

    def role_param(self, actor, region):
        return '{"roleName":"%s-%s-ec2-role"}' % (actor.account.name,
                                                  APP_NAMES[self.r.getrandbits(8) % len(APP_NAMES)])

    def policy_version(self, actor, region):
        p = ("ReadOnlyAccess", "AdministratorAccess", "AmazonS3FullAccess", "SecurityAudit",
             "AmazonEC2FullAccess", "AWSLambdaBasicExecutionRole")[self.r.getrandbits(8) % 6]
        return '{"policyArn":"arn:aws:iam::aws:policy/%s","versionId":"v%d"}' % (p, 1 + self.r.getrandbits(4))

    def get_parameter(self, actor, region):
        app = actor.instance.app if actor.instance else APP_NAMES[self.r.getrandbits(8) % len(APP_NAMES)]
        return '{"name":"/%s/%s/%s","withDecryption":true}' % (
            actor.account.name, app, ("db-host", "db-password", "api-url", "feature-flags", "log-level")[self.r.getrandbits(8) % 5])

    def get_parameters(self, actor, region):
        app = actor.instance.app if actor.instance else APP_NAMES[self.r.getrandbits(8) % len(APP_NAMES)]
        n = actor.account.name
        return ('{"names":["/%s/%s/db-host","/%s/%s/db-user","/%s/%s/db-password"],"withDecryption":true}'
                % (n, app, n, app, n, app))

    def get_secret(self, actor, region):
        acct = actor.account
        s = acct.secrets[self.r.getrandbits(8) % len(acct.secrets)]
        return '{"secretId":"arn:aws:secretsmanager:%s:%s:secret:%s"}' % (region, acct.id, s)

    def get_service_quota(self, actor, region):
        q = ("L-1216C47A", "L-34B43A08", "L-DB2E81BA", "L-417A185B", "L-0263D0A3")[self.r.getrandbits(8) % 5]
        return '{"serviceCode":"ec2","quotaCode":"%s"}' % q

    def get_metric_data(self, actor, region):
        r = self.r
        inst = actor.instance or self.g._instances_in(actor, region)
        return ('{"metricDataQueries":[{"id":"m1","metricStat":{"metric":{"namespace":"AWS/EC2",'
                '"metricName":"CPUUtilization","dimensions":[{"name":"InstanceId","value":"%s"}]},'
                '"period":300,"stat":"Average"},"returnData":true}],"startTime":"%s","endTime":"%s",'
                '"maxDatapoints":%d}' % (inst.id, "2024-06-02T00:00:00Z", "2024-06-03T00:00:00Z",
                                         100 + r.getrandbits(10)))

    def get_metric_statistics(self, actor, region):
        inst = actor.instance or self.g._instances_in(actor, region)
        return ('{"namespace":"AWS/EC2","metricName":"%s","dimensions":[{"name":"InstanceId","value":"%s"}],'
                '"startTime":"2024-06-02T23:00:00Z","endTime":"2024-06-03T00:00:00Z","period":300,'
                '"statistics":["Average","Maximum"]}'
                % (("CPUUtilization", "NetworkIn", "NetworkOut", "DiskReadOps")[self.r.getrandbits(2)], inst.id))

    def function_param(self, actor, region):
        return '{"functionName":"%s"}' % actor.account.functions[self.r.getrandbits(8) % len(actor.account.functions)]

    def kms_decrypt(self, actor, region):
        acct = actor.account
        if actor.kind == "AWSService" or actor.cls == "lambda":
            fn = acct.functions[self.r.getrandbits(8) % len(acct.functions)]
            return ('{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":'
                    '{"aws:lambda:FunctionArn":"arn:aws:lambda:%s:%s:function:%s"}}' % (region, acct.id, fn))
        s = acct.secrets[self.r.getrandbits(8) % len(acct.secrets)]
        return ('{"encryptionContext":{"SecretARN":"arn:aws:secretsmanager:%s:%s:secret:%s",'
                '"SecretVersionId":"%s"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}'
                % (region, acct.id, s, uuid4(self.r)))

    def kms_gdk(self, actor, region):
        acct = actor.account
        b = acct.buckets[self.r.getrandbits(8) % len(acct.buckets)]
        return ('{"keyId":"arn:aws:kms:%s:%s:key/%s","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::%s"},'
                '"keySpec":"AES_256"}' % (region, acct.id, acct.kms_keys[0], b))

    def update_instance_information(self, actor, region):
        inst = actor.instance or self.g._instances_in(actor, region)
        return ('{"instanceId":"%s","agentVersion":"3.3.418.0","agentStatus":"Active","platformType":"Linux",'
                '"platformName":"Amazon Linux","platformVersion":"2023","iPAddress":"%s","computerName":"ip-%s.ec2.internal",'
                '"agentName":"amazon-ssm-agent","availabilityZone":"%s","availabilityZoneId":"%s",'
                '"sSMConnectionChannel":"ssmmessages"}' % (inst.id, inst.ip, inst.ip.replace(".", "-"),
                                                           inst.az, inst.azid))

    def create_log_stream(self, actor, region):
        acct = actor.account
        fn = acct.functions[self.r.getrandbits(8) % len(acct.functions)]
        return ('{"logGroupName":"/aws/lambda/%s","logStreamName":"2024/06/03/[$LATEST]%s"}'
                % (fn, hexid(self.r, 32)))

    def create_log_group(self, actor, region):
        return '{"logGroupName":"/ecs/%s-%s"}' % (actor.account.name,
                                                  APP_NAMES[self.r.getrandbits(8) % len(APP_NAMES)])


# --------------------------------------------------------------------------------------------
# VPC Flow Logs

V2_FIELDS = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
             "bytes start end action log-status")
V5_FIELDS = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
             "bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type "
             "pkt-srcaddr pkt-dstaddr region az-id sublocation-type sublocation-id "
             "pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path")

# (dst port, protocol, weight, direction): what instances talk to
FLOW_KINDS = Weighted([("https_out", 40), ("http_out", 4), ("dns", 14), ("ntp", 2),
                       ("internal", 18), ("scan_in", 10), ("ssh_in", 2), ("https_in", 5),
                       ("icmp", 1.5), ("ipv6_out", 2.5), ("nodata", 0.7), ("skipdata", 0.3)])
SCAN_PORTS = [22, 23, 445, 3389, 1433, 3306, 5900, 8080, 6379, 9200, 2375, 5432, 21, 25, 8443]
INTERNAL_PORTS = [5432, 6379, 8080, 9092, 3306, 443, 8443, 9200, 27017, 11211]


class VpcFlowGen:
    """VPC flow log lines for a World's instances: egress to the Internet (HTTPS mostly),
    DNS to the VPC resolver, east-west traffic, Internet scanners rejected, some IPv6 and
    NODATA/SKIPDATA. Aggregation interval 60 s; nearly sorted by start."""

    def __init__(self, world, seed=1, version=2):
        if version not in (2, 5):
            raise ValueError("VPC flow version must be 2 or 5")
        self.w = world
        self.rng = random.Random(seed * 1000003 + 2)
        self.version = version
        self.dests = [public_ip(self.rng) for _ in range(3000)] + \
            [public_ip(self.rng, AWS_FIRST_OCTETS) for _ in range(1000)]

    def header(self):
        return V2_FIELDS if self.version == 2 else V5_FIELDS

    def line(self, t, inst=None, kind=None):
        r = self.rng
        w = self.w
        if inst is None:
            inst = w.instances[r.getrandbits(16) % len(w.instances)]
        if kind is None:
            kind = FLOW_KINDS.pick(r)
        start = t
        end = t + 30 + r.getrandbits(5)
        acct = inst.account.id
        v5 = self.version == 5
        if kind in ("nodata", "skipdata"):
            status = "NODATA" if kind == "nodata" else "SKIPDATA"
            if not v5:
                return "2 %s %s - - - - - - - %d %d - %s" % (acct, inst.eni, start, end, status)
            return ("5 %s %s - - - - - - - %d %d - %s %s %s %s - - - - %s %s - - - - - -"
                    % (acct, inst.eni, start, end, status, inst.vpc, inst.subnet, inst.id,
                       inst.region, inst.azid))
        me = inst.ip
        eph = 32768 + r.getrandbits(15) % 28232
        action = "ACCEPT"
        typ = "IPv4"
        flags = 19
        svc_s = svc_d = "-"
        path = "-"
        if kind == "https_out" or kind == "http_out":
            peer = self.dests[r.getrandbits(16) % len(self.dests)]
            port = 443 if kind == "https_out" else 80
            if r.getrandbits(1):  # the request direction
                src, dst, sp, dp, direction = me, peer, eph, port, "egress"
                path = "8" if inst.public_ip is None else "1"
            else:  # the response, as seen on the same ENI
                src, dst, sp, dp, direction = peer, me, port, eph, "ingress"
                flags = 27
            proto = 6
            pk = 5 + r.getrandbits(9)
            by = pk * (60 + r.getrandbits(10))
            if peer.startswith(("52.", "54.", "3.")):
                svc_s, svc_d = ("-", "AMAZON") if direction == "egress" else ("AMAZON", "-")
        elif kind == "dns":
            resolver = me.rsplit(".", 2)[0] + ".0.2"
            src, dst, sp, dp, proto, direction = me, resolver, eph, 53, 17, "egress"
            pk = 1 + r.getrandbits(2)
            by = pk * (60 + r.getrandbits(6))
            flags = 0
            path = "1"
        elif kind == "ntp":
            src, dst, sp, dp, proto, direction = me, self.dests[r.getrandbits(11)], 123, 123, 17, "egress"
            pk, by, flags, path = 1, 76, 0, "8"
        elif kind == "internal":
            other = w.instances[r.getrandbits(16) % len(w.instances)]
            port = INTERNAL_PORTS[r.getrandbits(8) % len(INTERNAL_PORTS)]
            src, dst, sp, dp, proto, direction = me, other.ip, eph, port, 6, "egress"
            pk = 2 + r.getrandbits(12)
            by = pk * (52 + r.getrandbits(10))
            path = "1"
        elif kind == "scan_in" or kind == "ssh_in":
            peer = public_ip(r)  # scanners come from everywhere
            port = 22 if kind == "ssh_in" else SCAN_PORTS[r.getrandbits(8) % len(SCAN_PORTS)]
            src, dst, sp, dp, proto, direction = peer, me, 1024 + r.getrandbits(16) % 64000, port, 6, "ingress"
            pk = 1 + (r.random() < 0.2)
            by = pk * 40 + (r.getrandbits(1) * 4)
            action = "REJECT" if kind == "scan_in" or r.random() < 0.7 else "ACCEPT"
            flags = 2
        elif kind == "https_in":
            peer = public_ip(r)
            src, dst, sp, dp, proto, direction = peer, me, eph, 443, 6, "ingress"
            pk = 4 + r.getrandbits(8)
            by = pk * (80 + r.getrandbits(9))
            flags = 3
        elif kind == "icmp":
            peer = public_ip(r)
            src, dst, sp, dp, proto, direction = peer, me, 0, 0, 1, "ingress"
            pk, by, flags = 1, 84, 0
            action = "REJECT" if r.getrandbits(1) else "ACCEPT"
        else:  # ipv6_out
            typ = "IPv6"
            me6 = "2600:1f18:%x:%x:%x:%x:%x:%x" % tuple(r.getrandbits(16) for _ in range(6))
            src, dst, sp, dp, proto, direction = me6, public_ipv6(r), eph, 443, 6, "egress"
            pk = 5 + r.getrandbits(8)
            by = pk * (80 + r.getrandbits(9))
            path = "8"
        if not v5:
            return "2 %s %s %s %s %d %d %d %d %d %d %d %s OK" % (
                acct, inst.eni, src, dst, sp, dp, proto, pk, by, start, end, action)
        if proto != 6:
            flags = 0
        if direction == "ingress":
            path = "-"
        return ("5 %s %s %s %s %d %d %d %d %d %d %d %s OK %s %s %s %d %s %s %s %s %s - - %s %s %s %s"
                % (acct, inst.eni, src, dst, sp, dp, proto, pk, by, start, end, action, inst.vpc,
                   inst.subnet, inst.id, flags, typ, src, dst, inst.region, inst.azid, svc_s, svc_d,
                   direction, path))

    def stream(self, n, start, span, jitter=DEFAULT_JITTER_S):
        r = self.rng
        step = span / max(n, 1)
        for i in range(n):
            t = int(start + i * step + (r.random() * 2 - 1) * jitter)
            yield self.line(max(t, int(start)))


# --------------------------------------------------------------------------------------------
# Route 53 Resolver query logs

R53_NAMES = Weighted([
    ("s3.%(region)s.amazonaws.com", 14), ("sts.%(region)s.amazonaws.com", 6),
    ("ssm.%(region)s.amazonaws.com", 6), ("ec2messages.%(region)s.amazonaws.com", 5),
    ("ssmmessages.%(region)s.amazonaws.com", 5), ("logs.%(region)s.amazonaws.com", 5),
    ("monitoring.%(region)s.amazonaws.com", 3), ("secretsmanager.%(region)s.amazonaws.com", 2),
    ("dynamodb.%(region)s.amazonaws.com", 3), ("sqs.%(region)s.amazonaws.com", 2),
    ("api.ecr.%(region)s.amazonaws.com", 1), ("kms.%(region)s.amazonaws.com", 2),
    ("amazonlinux-2-repos-%(region)s.s3.dualstack.%(region)s.amazonaws.com", 1.5),
    ("al2023-repos-%(region)s-de612dc2.s3.dualstack.%(region)s.amazonaws.com", 1.5),
    ("deb.debian.org", 1), ("security.ubuntu.com", 1), ("archive.ubuntu.com", 1),
    ("api.github.com", 1.5), ("github.com", 1), ("objects.githubusercontent.com", 0.5),
    ("registry-1.docker.io", 1), ("auth.docker.io", 0.5), ("production.cloudflare.docker.com", 0.5),
    ("pypi.org", 1), ("files.pythonhosted.org", 1), ("registry.npmjs.org", 1),
    ("www.google.com", 1), ("ntp.ubuntu.com", 0.5), ("time.aws.com", 0.5),
    ("api.datadoghq.com", 1.5), ("http-intake.logs.datadoghq.com", 1.5),
    ("sentry.io", 0.5), ("hooks.slack.com", 0.5), ("api.stripe.com", 0.5),
    ("%(app)s.%(env)s.internal.example.com", 6), ("%(app)s-db.%(env)s.internal.example.com", 3),
    ("ip-%(ipdash)s.ec2.internal", 2), ("%(rev)s.in-addr.arpa", 2),
    ("instance-data", 0.3), ("_%(svc)s._tcp.%(env)s.internal.example.com", 0.5),
    ("does-not-exist-%(hex)s.example.com", 0.5),
])
R53_TYPES = Weighted([("A", 60), ("AAAA", 30), ("PTR", 0), ("SRV", 1), ("TXT", 1), ("CNAME", 0.5)])


class Route53Gen:
    """Route 53 Resolver query log records (JSON Lines), from the world's instances."""

    def __init__(self, world, seed=1):
        self.w = world
        self.rng = random.Random(seed * 1000003 + 3)
        self.endpoint = "rslvr-in-" + hexid(self.rng, 17)
        self.fw_group = "rslvr-frg-" + hexid(self.rng, 17)
        self.fw_list = "rslvr-fdl-" + hexid(self.rng, 17)

    def record(self, t, inst=None, name=None, qtype=None, rcode=None, answers=None,
               firewall=None):
        """One query. name without the trailing dot (it is added); answers a list of
        (rdata, type); firewall None or 'ALLOW' | 'BLOCK' | 'ALERT'."""
        r = self.rng
        w = self.w
        if inst is None:
            inst = w.instances[r.getrandbits(16) % len(w.instances)]
        if name is None:
            tmpl = R53_NAMES.pick(r)
            if "%(" in tmpl:
                a, b, c, d = inst.ip.split(".")
                name = tmpl % {"region": inst.region, "app": inst.app, "env": inst.account.name,
                               "ipdash": inst.ip.replace(".", "-"), "rev": "%s.%s.%s.%s" % (d, c, b, a),
                               "svc": ("http", "grpc", "postgres")[r.getrandbits(8) % 3],
                               "hex": hexid(r, 6)}
            else:
                name = tmpl
        if qtype is None:
            qtype = "PTR" if name.endswith("in-addr.arpa") else \
                ("SRV" if name.startswith("_") else R53_TYPES.pick(r))
        if rcode is None:
            if name.startswith(("does-not-exist", "instance-data")):
                rcode = "NXDOMAIN"
            elif qtype == "AAAA" and not name.endswith("amazonaws.com") and r.random() < 0.3:
                rcode = "NOERROR"
                answers = answers if answers is not None else []
            else:
                x = r.random()
                rcode = "NOERROR" if x < 0.975 else ("NXDOMAIN" if x < 0.995 else "SERVFAIL")
        if answers is None:
            answers = []
            if rcode == "NOERROR":
                if qtype == "A":
                    if name.endswith(".com") and "amazonaws" not in name and \
                            not name.endswith("example.com") and r.random() < 0.4:
                        answers.append((name.replace("www.", "") + ".cdn.cloudflare.net.", "CNAME"))
                    for _ in range(1 + r.getrandbits(2)):
                        answers.append((public_ip(r, AWS_FIRST_OCTETS) if "amazonaws" in name
                                        else ("10.%d.%d.%d" % (r.getrandbits(8), r.getrandbits(8), r.getrandbits(8))
                                              if "internal" in name else public_ip(r)), "A"))
                elif qtype == "AAAA":
                    answers.append((public_ipv6(r), "AAAA"))
                elif qtype == "PTR":
                    answers.append(("ip-%s.ec2.internal." % inst.ip.replace(".", "-"), "PTR"))
                elif qtype == "SRV":
                    answers.append(("0 5 5432 %s-db.%s.internal.example.com." % (inst.app, inst.account.name), "SRV"))
                elif qtype == "TXT":
                    answers.append(("\\\"v=spf1 include:amazonses.com ~all\\\"", "TXT"))
        ans = ",".join('{"Rdata":"%s","Type":"%s","Class":"IN"}' % a for a in answers)
        if r.random() < 0.03:
            srcids = '{"resolver_endpoint":"%s"}' % self.endpoint
            src = "10.%d.%d.%d" % (r.getrandbits(8), r.getrandbits(8), r.getrandbits(8))
        else:
            srcids = '{"instance":"%s"}' % inst.id
            src = inst.ip
        fw = ""
        if firewall is None and r.random() < 0.05:
            firewall = "ALLOW"
        if firewall:
            fw = (',"firewall_rule_group_id":"%s","firewall_rule_action":"%s","firewall_domain_list_id":"%s"'
                  % (self.fw_group, firewall, self.fw_list))
        return ('{"version":"1.100000","account_id":"%s","region":"%s","vpc_id":"%s",'
                '"query_timestamp":"%s","query_name":"%s.","query_type":"%s","query_class":"IN",'
                '"rcode":"%s","answers":[%s],"srcaddr":"%s","srcport":"%d","transport":"%s",'
                '"srcids":%s%s}' % (inst.account.id, inst.region, inst.vpc, iso(t), name, qtype,
                                    rcode, ans, src, 1024 + r.getrandbits(16) % 64000,
                                    "TCP" if r.random() < 0.02 else "UDP", srcids, fw))

    def stream(self, n, start, span, jitter=DEFAULT_JITTER_S):
        r = self.rng
        step = span / max(n, 1)
        for i in range(n):
            t = int(start + i * step + (r.random() * 2 - 1) * jitter)
            yield self.record(max(t, int(start)))


# --------------------------------------------------------------------------------------------
# writers


# format -> (head, separator, tail, whole file when there are no records)
FRAMING = {"jsonl": ("", "\n", "\n", ""), "s3": ('{"Records":[', ",", "]}\n", '{"Records":[]}\n'),
           "array": ("[\n", ",\n", "\n]\n", "[]\n")}


class _Sink:
    """A file written in large chunks, gzip'd when asked."""

    def __init__(self, path, gz, level=6):
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.tmp = path + ".tmp"
        self.path = path
        raw = open(self.tmp, "wb")
        self.f = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0) if gz else raw
        self.raw = raw
        self.bytes = 0

    def write(self, s):
        b = s.encode("ascii")
        self.bytes += len(b)
        self.f.write(b)

    def close(self):
        self.f.close()
        if self.raw is not self.f:
            self.raw.close()
        os.replace(self.tmp, self.path)


def _split_paths(out, per, fmt, gz, account, start, span):
    """Paths for the output files holding per[i] records each. One file: out itself.
    Several: out is a directory; names follow the S3 delivery pattern
    (Account_CloudTrail_Region_YYYYMMDDTHHMMZ_Unique.json.gz, stamped with the time of the
    file's first record) for s3 format, part-NNNNN otherwise. Names sort in time order."""
    k = len(per)
    if k == 1:
        return [out]
    ext = {"jsonl": ".jsonl", "s3": ".json", "array": ".json"}[fmt] + (".gz" if gz else "")
    n = max(sum(per), 1)
    paths = []
    first = 0
    for i in range(k):
        if fmt == "s3":
            stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(start + span * first / n))
            paths.append(os.path.join(out, "%s_CloudTrail_us-east-1_%s_%05d%s" % (
                account, stamp, i, ext)))
        else:
            paths.append(os.path.join(out, "part-%05d%s" % (i, ext)))
        first += per[i]
    return paths


# ------------------------------------------------------------------------------------------
# the "hard" profile: a large organisation as a correlation engine sees it

HARD_PRINCIPALS = 50_000
HARD_ACCOUNTS = 200
HARD_FRESH_IP = 0.85  # share of records whose source address is new

_IDENT_VAL = re.compile(r'("(?:arn|principalId|userName)":")([^"]*)"')
_AMI = re.compile(r'"imageId":"(ami-[0-9a-f]+)"')
_SRC_IP = re.compile(r'"sourceIPAddress":"(\d+\.\d+\.\d+\.\d+)"')


class Harden:
    """Rewrites the records of the ordinary world into those of a much larger one: each record
    is given one of HARD_PRINCIPALS principals (its user name, ARN and principal id suffixed),
    whose account is one of HARD_ACCOUNTS (every account id in the record replaced by it), a
    source address never seen before in HARD_FRESH_IP of the records, and every launch a
    new image. Per-key state (first-seen sets, windows, GeoIP cache) then grows with the
    corpus instead of staying warm, and first-seen rules fire far more often."""

    def __init__(self, world, seed):
        self.rng = random.Random(seed * 104729 + 3)
        self.orig = [a.id for a in world.accounts]
        r = random.Random(seed * 31 + 7)
        self.accts = ["%012d" % r.randrange(10**11, 10**12) for _ in range(HARD_ACCOUNTS)]

    def __call__(self, rec):
        r = self.rng
        p = r.randrange(HARD_PRINCIPALS)
        acct = self.accts[p % HARD_ACCOUNTS]
        for a in self.orig:
            if a in rec:
                rec = rec.replace(a, acct)
        i = rec.find('"userIdentity":')
        j = rec.find(',"eventTime":', i)
        if i >= 0 and j > i:
            suffix = "-p%05d" % p
            ident = _IDENT_VAL.sub(lambda m: '%s%s%s"' % (m.group(1), m.group(2), suffix),
                                   rec[i:j])
            rec = rec[:i] + ident + rec[j:]
        if r.random() < HARD_FRESH_IP:
            rec = _SRC_IP.sub('"sourceIPAddress":"%s"' % public_ip(r), rec, count=1)
        if '"eventName":"RunInstances"' in rec:
            for ami in set(_AMI.findall(rec)):
                rec = rec.replace(ami, "ami-" + hexid(r, 17))
        return rec


def _profiled(world, seed, stream, profile):
    if profile == "hard":
        h = Harden(world, seed)
        return (h(x) for x in stream)
    return stream


def write_cloudtrail(out, n, fmt="jsonl", gz=False, files=1, seed=1, start=None, span_h=None,
                     jitter=DEFAULT_JITTER_S, users=200, progress=None, profile="normal"):
    """Write n CloudTrail records. Returns (records, bytes before compression)."""
    if fmt not in ("jsonl", "s3", "array"):
        raise ValueError("format must be jsonl, s3 or array")
    files = max(1, min(files, max(n, 1)))
    start = parse_time(start or DEFAULT_START)
    span = (span_h if span_h is not None else DEFAULT_SPAN_HOURS) * 3600.0
    world = World(seed, users=users)
    gen = CloudTrailGen(world, seed)
    stream = _profiled(world, seed, gen.stream(n, start, span, jitter), profile)
    total = 0
    done = 0
    per = [n // files + (1 if i < n % files else 0) for i in range(files)]
    paths = _split_paths(out, per, fmt, gz, world.accounts[0].id, start, span)
    head, sep, tail, empty = FRAMING[fmt]
    for path, cnt in zip(paths, per):
        sink = _Sink(path, gz)
        if cnt == 0:
            sink.write(empty)
        else:
            sink.write(head)
        buf = []
        for j in range(cnt):
            buf.append(next(stream))
            if len(buf) >= 2000:
                sink.write(sep.join(buf) + (sep if j + 1 < cnt else ""))
                buf = []
                if progress:
                    progress(done + j + 1, n)
        if buf:
            sink.write(sep.join(buf))
        if cnt:
            sink.write(tail)
        done += cnt
        total += sink.bytes
        sink.close()
    return done, total


def _write_lines(out, lines, n, gz, header=None, progress=None):
    sink = _Sink(out, gz)
    if header:
        sink.write(header + "\n")
    buf = []
    for i, s in enumerate(lines):
        buf.append(s)
        if len(buf) >= 4000:
            sink.write("\n".join(buf) + "\n")
            buf = []
            if progress:
                progress(i + 1, n)
    if buf:
        sink.write("\n".join(buf) + "\n")
    sink.close()
    return n, sink.bytes


def write_vpcflow(out, n, version=2, gz=False, seed=1, start=None, span_h=None,
                  jitter=DEFAULT_JITTER_S, progress=None):
    start = parse_time(start or DEFAULT_START)
    span = (span_h if span_h is not None else DEFAULT_SPAN_HOURS) * 3600.0
    g = VpcFlowGen(World(seed), seed, version)
    return _write_lines(out, g.stream(n, start, span, jitter), n, gz, g.header(), progress)


def write_route53(out, n, gz=False, seed=1, start=None, span_h=None, jitter=DEFAULT_JITTER_S,
                  progress=None):
    start = parse_time(start or DEFAULT_START)
    span = (span_h if span_h is not None else DEFAULT_SPAN_HOURS) * 3600.0
    g = Route53Gen(World(seed), seed)
    return _write_lines(out, g.stream(n, start, span, jitter), n, gz, None, progress)


# --------------------------------------------------------------------------------------------
# command line

USAGE = """usage: gen KIND --records N --out PATH [options]

Deterministic, realistic AWS log corpora for coinhound's benchmarks and tests.

kinds:
  cloudtrail   CloudTrail records (~1.3 KB each)
  vpcflow      VPC Flow Logs with their header line
  route53      Route 53 Resolver query logs (JSON Lines)

options (all kinds):
  --records N        number of records (required; k/M suffixes allowed: 100k, 1M)
  --out PATH         output file (a directory when --files > 1); '-' for stdout
  --seed S           random seed (default 1): same seed and options -> same bytes
  --start TIME       first event time, YYYY-MM-DDTHH:MM:SSZ (default %s)
  --span-hours H     event times spread over H hours (default %g)
  --jitter S         each time moved by up to +-S seconds, nearly sorted (default %g)
  --gzip             gzip the output (deterministic: no name, mtime 0)
  --quiet            no progress on stderr
cloudtrail only:
  --format F         jsonl (default) | s3 ({"Records":[...]}) | array (JSON array)
  --files K          split into K files written under the directory PATH
  --users U          number of people in the organisation (default 200)
  --profile P        normal (default) | hard: 50,000 principals across 200 accounts, 85%% of
                     source addresses new, every launch from a new image (a large
                     organisation: per-key state grows instead of staying warm)
vpcflow only:
  --version V        2 (default format) or 5 (custom field set incl. instance-id,
                     pkt-srcaddr, flow-direction, tcp-flags)
""" % (DEFAULT_START, DEFAULT_SPAN_HOURS, DEFAULT_JITTER_S)


def _count(s):
    m = {"k": 1000, "K": 1000, "m": 1000000, "M": 1000000, "g": 10**9, "G": 10**9}
    if s and s[-1] in m:
        return int(float(s[:-1]) * m[s[-1]])
    return int(s)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    kind = argv.pop(0)
    if kind not in ("cloudtrail", "vpcflow", "route53"):
        sys.stderr.write("gen: unknown kind %r\n%s" % (kind, USAGE))
        return 2
    opts = {"records": None, "out": None, "seed": "1", "start": DEFAULT_START,
            "span-hours": str(DEFAULT_SPAN_HOURS), "jitter": str(DEFAULT_JITTER_S),
            "format": "jsonl", "files": "1", "version": "2", "users": "200",
            "profile": "normal"}
    flags = {"gzip": False, "quiet": False}
    allowed = {"cloudtrail": {"format", "files", "users", "profile"}, "vpcflow": {"version"}, "route53": set()}
    common = {"records", "out", "seed", "start", "span-hours", "jitter"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if not a.startswith("--"):
            sys.stderr.write("gen: unexpected argument %r\n" % a)
            return 2
        k = a[2:]
        v = None
        if "=" in k:
            k, v = k.split("=", 1)
        if k in flags:
            flags[k] = True
            i += 1
            continue
        if k not in common and k not in allowed[kind]:
            sys.stderr.write("gen: option --%s does not apply to %s\n" % (k, kind))
            return 2
        if v is None:
            if i + 1 >= len(argv):
                sys.stderr.write("gen: --%s needs a value\n" % k)
                return 2
            v = argv[i + 1]
            i += 1
        opts[k] = v
        i += 1
    if opts["records"] is None or opts["out"] is None:
        sys.stderr.write("gen: --records and --out are required\n")
        return 2
    try:
        n = _count(opts["records"])
        seed = int(opts["seed"])
        span_h = float(opts["span-hours"])
        jitter = float(opts["jitter"])
        files = int(opts["files"])
        version = int(opts["version"])
        users = int(opts["users"])
        parse_time(opts["start"])
    except ValueError as e:
        sys.stderr.write("gen: bad option value: %s\n" % e)
        return 2
    if n < 0 or files < 1 or span_h <= 0 or jitter < 0 or users < 1:
        sys.stderr.write("gen: --records >= 0, --files >= 1, --span-hours > 0, --jitter >= 0, --users >= 1\n")
        return 2
    if opts["format"] not in ("jsonl", "s3", "array"):
        sys.stderr.write("gen: --format must be jsonl, s3 or array\n")
        return 2
    if opts["profile"] not in ("normal", "hard"):
        sys.stderr.write("gen: --profile must be normal or hard\n")
        return 2
    if opts["profile"] not in ("normal", "hard"):
        sys.stderr.write("gen: --profile must be normal or hard\n")
        return 2
    if version not in (2, 5):
        sys.stderr.write("gen: --version must be 2 or 5\n")
        return 2
    out = opts["out"]
    t0 = time.time()
    last = [0.0]

    def progress(done, total):
        if flags["quiet"] or not sys.stderr.isatty():
            return
        now = time.time()
        if now - last[0] >= 0.5:
            last[0] = now
            sys.stderr.write("\r%s: %d/%d records (%.0f/s)" % (kind, done, total, done / max(now - t0, 1e-9)))
            sys.stderr.flush()

    if out == "-":
        # _Sink writes to a temporary file and renames it; stdout cannot be renamed.
        return _to_stdout(kind, n, opts, flags, seed, span_h, jitter, version, users, files)
    if kind == "cloudtrail":
        cnt, nbytes = write_cloudtrail(out, n, opts["format"], flags["gzip"], files, seed,
                                       opts["start"], span_h, jitter, users, progress,
                                       opts["profile"])
    elif kind == "vpcflow":
        cnt, nbytes = write_vpcflow(out, n, version, flags["gzip"], seed, opts["start"],
                                    span_h, jitter, progress)
    else:
        cnt, nbytes = write_route53(out, n, flags["gzip"], seed, opts["start"], span_h, jitter,
                                    progress)
    if not flags["quiet"]:
        dt = time.time() - t0
        sys.stderr.write("%s%s: %d records, %d bytes (%.0f B/record) in %.1f s -> %s\n" % (
            "\r" if sys.stderr.isatty() else "", kind, cnt, nbytes, nbytes / max(cnt, 1), dt, out))
    return 0


def _to_stdout(kind, n, opts, flags, seed, span_h, jitter, version, users, files):
    if files != 1:
        sys.stderr.write("gen: --files needs a directory for --out\n")
        return 2
    start = parse_time(opts["start"])
    span = span_h * 3600.0
    w = World(seed, users=users) if kind == "cloudtrail" else World(seed)
    if kind == "cloudtrail":
        lines = _profiled(w, seed, CloudTrailGen(w, seed).stream(n, start, span, jitter),
                          opts["profile"])
    elif kind == "vpcflow":
        g = VpcFlowGen(w, seed, version)
        lines = g.stream(n, start, span, jitter)
    else:
        lines = Route53Gen(w, seed).stream(n, start, span, jitter)
    raw = sys.stdout.buffer
    f = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if flags["gzip"] else raw
    fmt = opts["format"] if kind == "cloudtrail" else "jsonl"
    head, sep, tail, empty = FRAMING[fmt]
    if kind == "vpcflow":
        head = empty = g.header() + "\n"
    f.write((head if n else empty).encode())
    buf = []
    for j, s in enumerate(lines):
        buf.append(s)
        if len(buf) >= 2000:
            f.write((sep.join(buf) + (sep if j + 1 < n else "")).encode())
            buf = []
    if buf:
        f.write(sep.join(buf).encode())
    if n:
        f.write(tail.encode())
    if f is not raw:
        f.close()
    raw.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
