#!/usr/bin/env python3
"""Tests of the corpus generator (python3 bench/test_chgen.py; standard library only).

Not part of ctest: the generator is a bench tool, and these run in a few seconds by hand or
from CI. They pin what the benchmarks rely on: byte-identical output for a seed, across
processes and hash seeds; every record valid JSON (CloudTrail, Route 53) or a well-formed flow
line; the framing of the s3/array/jsonl formats and of split files; the mix the harness
claims (record size, event names, identities, errors, public addresses over many /16s).
"""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import chgen  # noqa: E402

GEN = os.path.join(BENCH, "gen")


def ct_lines(n, seed=1):
    w = chgen.World(seed)
    g = chgen.CloudTrailGen(w, seed)
    return list(g.stream(n, chgen.parse_time(chgen.DEFAULT_START), 86400.0))


class CloudTrail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lines = ct_lines(20000)
        cls.recs = [json.loads(s) for s in cls.lines]

    def test_every_record_is_valid_json_with_the_envelope(self):
        for r in self.recs:
            for k in ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName",
                      "awsRegion", "sourceIPAddress", "userAgent", "eventID", "eventType",
                      "recipientAccountId"):
                self.assertIn(k, r)

    def test_average_record_is_about_1_3_kb(self):
        avg = sum(len(s) + 1 for s in self.lines) / len(self.lines)
        self.assertGreater(avg, 1100)
        self.assertLess(avg, 1450)

    def test_reads_dominate_and_the_interesting_events_are_present(self):
        names = [r["eventName"] for r in self.recs]
        reads = sum(n.startswith(("Describe", "List", "Get")) for n in names)
        self.assertGreater(reads / len(names), 0.55)
        for must in ("AssumeRole", "ConsoleLogin", "RunInstances", "GetServiceQuota",
                     "CreateAccessKey", "Decrypt", "UpdateInstanceInformation"):
            self.assertIn(must, names, must)

    def test_identities_cover_iam_users_roles_root_and_services(self):
        types = {r["userIdentity"]["type"] for r in self.recs}
        self.assertTrue({"IAMUser", "AssumedRole", "AWSService"} <= types)
        issuers = {r["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"]
                   for r in self.recs if r["userIdentity"]["type"] == "AssumedRole"}
        users = {r["userIdentity"]["userName"] for r in self.recs
                 if r["userIdentity"]["type"] == "IAMUser"}
        self.assertGreater(len(issuers) + len(users), 200)
        invoked = [r for r in self.recs if "invokedBy" in r["userIdentity"]]
        self.assertTrue(invoked)
        self.assertTrue(all(r["sourceIPAddress"].endswith("amazonaws.com") for r in invoked))

    def test_failed_calls_are_a_few_percent(self):
        err = sum(1 for r in self.recs if "errorCode" in r or "errorMessage" in r)
        self.assertGreater(err / len(self.recs), 0.01)
        self.assertLess(err / len(self.recs), 0.06)

    def test_console_logins_carry_mfa_used_and_some_fail(self):
        logins = [r for r in self.recs if r["eventName"] == "ConsoleLogin"]
        self.assertTrue(logins)
        self.assertTrue(all(r["additionalEventData"]["MFAUsed"] in ("Yes", "No") for r in logins))
        outcomes = {r["responseElements"]["ConsoleLogin"] for r in logins}
        self.assertEqual(outcomes, {"Success", "Failure"})

    def test_run_instances_response_has_instances_with_private_ips(self):
        runs = [r for r in self.recs if r["eventName"] == "RunInstances" and r["responseElements"]]
        self.assertTrue(runs)
        for r in runs:
            for item in r["responseElements"]["instancesSet"]["items"]:
                self.assertTrue(item["instanceId"].startswith("i-"))
                self.assertTrue(item["imageId"].startswith("ami-"))
                self.assertIn("instanceType", item)
                eni = item["networkInterfaceSet"]["items"][0]
                self.assertTrue(eni["privateIpAddress"].startswith("10."))

    def test_public_addresses_spread_over_many_slash16s(self):
        ips = {r["sourceIPAddress"] for r in self.recs}
        v4 = {ip for ip in ips if ip[0].isdigit() and not ip.startswith(("10.", "172.", "192.168."))}
        self.assertGreater(len({".".join(ip.split(".")[:2]) for ip in v4}), 1000)
        self.assertTrue(any(":" in ip for ip in ips))   # some IPv6
        self.assertTrue(any(ip.startswith("10.") for ip in ips))  # some private (VPC endpoints)

    def test_kali_user_agents_appear(self):
        self.assertTrue(any("kali" in r["userAgent"] for r in self.recs))

    def test_times_are_nearly_sorted_within_the_jitter(self):
        ts = [chgen.parse_time(r["eventTime"]) for r in self.recs]
        worst = max(0, max(a - b for a, b in zip(ts, ts[1:])))
        self.assertLessEqual(worst, 2 * chgen.DEFAULT_JITTER_S + 1)
        self.assertGreater(ts[-1] - ts[0], 80000)


class Determinism(unittest.TestCase):
    def test_same_seed_same_bytes_across_processes_and_hash_seeds(self):
        digests = set()
        for hs in ("0", "1", "4242"):
            out = subprocess.run([sys.executable, GEN, "cloudtrail", "--records", "3000",
                                  "--out", "-", "--quiet"], stdout=subprocess.PIPE, check=True,
                                 env=dict(os.environ, PYTHONHASHSEED=hs)).stdout
            digests.add(hashlib.sha1(out).hexdigest())
        self.assertEqual(len(digests), 1)

    def test_other_seed_other_bytes(self):
        self.assertNotEqual(ct_lines(50, seed=1), ct_lines(50, seed=2))


class Formats(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_s3_gzip_split_files_hold_all_records_in_order(self):
        out = os.path.join(self.d, "s3")
        chgen.write_cloudtrail(out, 2500, "s3", True, 3, seed=1)
        names = sorted(os.listdir(out))
        self.assertEqual(len(names), 3)
        self.assertTrue(all(n.endswith(".json.gz") and "_CloudTrail_" in n for n in names))
        recs = []
        for n in names:
            with gzip.open(os.path.join(out, n)) as f:
                recs += json.load(f)["Records"]
        self.assertEqual([json.dumps(r, separators=(",", ":")) for r in recs],
                         [json.dumps(json.loads(s), separators=(",", ":")) for s in ct_lines(2500)])

    def test_array_and_empty_files_are_valid_json(self):
        for fmt, n in (("array", 7), ("array", 0), ("s3", 0)):
            p = os.path.join(self.d, "%s%d.json" % (fmt, n))
            chgen.write_cloudtrail(p, n, fmt, False, 1)
            with open(p) as f:
                doc = json.load(f)
            got = doc if fmt == "array" else doc["Records"]
            self.assertEqual(len(got), n)

    def test_vpcflow_lines_match_their_header(self):
        for version, fields in ((2, 14), (5, 29)):
            p = os.path.join(self.d, "v%d.log" % version)
            chgen.write_vpcflow(p, 5000, version)
            with open(p) as f:
                lines = f.read().splitlines()
            self.assertEqual(len(lines[0].split()), fields)
            statuses = set()
            for ln in lines[1:]:
                parts = ln.split(" ")
                self.assertEqual(len(parts), fields, ln)
                self.assertEqual(parts[0], str(version))
                statuses.add(parts[13])
                if parts[13] == "OK":
                    int(parts[5]), int(parts[6]), int(parts[7])
            self.assertEqual(statuses, {"OK", "NODATA", "SKIPDATA"})
            self.assertTrue(any(":" in ln.split(" ")[3] for ln in lines[1:]))  # IPv6

    def test_route53_records_are_json_with_trailing_dot_names(self):
        p = os.path.join(self.d, "r53.jsonl")
        chgen.write_route53(p, 5000)
        with open(p) as f:
            recs = [json.loads(ln) for ln in f]
        self.assertEqual(len(recs), 5000)
        self.assertTrue(all(r["query_name"].endswith(".") for r in recs))
        self.assertTrue(any("instance" in r["srcids"] for r in recs))
        self.assertTrue(any("firewall_rule_action" in r for r in recs))
        self.assertTrue(any(r["answers"] for r in recs))

    def test_gen_rejects_bad_usage_with_status_2(self):
        for args in (["nosuchkind"], ["vpcflow", "--records", "5", "--format", "s3", "--out", "x"],
                     ["cloudtrail", "--records", "5"], ["vpcflow", "--records", "5", "--version", "3",
                                                        "--out", "x"]):
            r = subprocess.run([sys.executable, GEN] + args, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 2, args)


class HardProfile(unittest.TestCase):
    """--profile hard: what issue 14's harder corpus promises (many principals and accounts,
    addresses and images mostly seen once), deterministic like the rest."""

    @classmethod
    def setUpClass(cls):
        w = chgen.World(1)
        stream = chgen.CloudTrailGen(w, 1).stream(20000, chgen.parse_time(chgen.DEFAULT_START),
                                                  24 * 3600.0)
        cls.lines = list(chgen._profiled(w, 1, stream, "hard"))
        cls.recs = [json.loads(x) for x in cls.lines]

    def test_principals_and_accounts_are_many(self):
        arns = {r["userIdentity"].get("arn") for r in self.recs}
        accts = {r["recipientAccountId"] for r in self.recs}
        self.assertGreater(len(arns), 10000)
        self.assertGreater(len(accts), 150)
        self.assertLessEqual(len(accts), chgen.HARD_ACCOUNTS)

    def test_most_addresses_are_seen_once_and_every_launch_has_a_new_image(self):
        ips = [r["sourceIPAddress"] for r in self.recs if r["sourceIPAddress"][0].isdigit()]
        self.assertGreater(len(set(ips)), 0.7 * len(ips))
        images = []
        for r in self.recs:
            if r["eventName"] == "RunInstances" and r.get("requestParameters"):
                for it in r["requestParameters"]["instancesSet"]["items"]:
                    images.append(it["imageId"])
        self.assertTrue(images)
        self.assertEqual(len(images), len(set(images)))

    def test_same_seed_same_bytes(self):
        w = chgen.World(1)
        stream = chgen.CloudTrailGen(w, 1).stream(20000, chgen.parse_time(chgen.DEFAULT_START),
                                                  24 * 3600.0)
        again = list(chgen._profiled(w, 1, stream, "hard"))
        self.assertEqual(again, self.lines)


if __name__ == "__main__":
    unittest.main()
