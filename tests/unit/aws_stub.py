#!/usr/bin/env python3
"""aws_stub.py PORTFILE LOGFILE - a loopback stand-in for the AWS endpoints the responder's
credentials chain calls (standard library only), answering with the shapes the AWS references
document, and recording every request (method, path, headers, body) as one JSON line in LOGFILE.

  IMDSv2:  PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds), then
           GET /latest/meta-data/iam/security-credentials/[ROLE] with X-aws-ec2-metadata-token
  STS:     POST / Action=AssumeRoleWithWebIdentity (token "good-token" passes) and
           Action=AssumeRole (must carry a SigV4 Authorization header that this stub verifies
           itself, for the key AKIDBASE; a RoleArn containing
           "denied" gets AccessDenied, one containing "throttle" gets Throttling)
  EC2:     POST / Action=StopInstances (signature verified; InstanceId.1 i-denied gets
           UnauthorizedOperation, i-throttle RequestLimitExceeded twice, i-always-throttled
           always)
  Route 53 Resolver (JSON 1.1, X-Amz-Target): a Name containing "denied" gets
           AccessDeniedException, "throttle" a ThrottlingException once

It binds 127.0.0.1 port 0 and writes the port to PORTFILE when ready.
"""
import hashlib
import hmac
import json
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

TOKEN = "imds-session-token-1"
ROLE = "responder-role"
CREDS_XML = """<{a}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <{a}Result>
    <Credentials>
      <AccessKeyId>ASIASTUB{tag}</AccessKeyId>
      <SecretAccessKey>secret/{tag}+stub</SecretAccessKey>
      <SessionToken>token&amp;{tag}</SessionToken>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
    </Credentials>
  </{a}Result>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</{a}Response>
"""
ERROR_XML = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{msg}</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c8</RequestId>
</ErrorResponse>
"""


SECRETS = {"AKIDBASE": "basesecret"}  # the test's base credentials


def sigv4_ok(handler, body):
    """Recompute the request's SigV4 signature independently of coinhound's signer."""
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                 r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$",
                 handler.headers.get("Authorization", ""))
    if not m or m.group(1) not in SECRETS:
        return False
    key, day, region, service, signed, sig = m.groups()
    hdrs = {k.lower(): " ".join(v.split()) for k, v in handler.headers.items()}
    names = signed.split(";")
    if names != sorted(names) or any(n not in hdrs for n in names):
        return False
    creq = "\n".join([handler.command, "/", "",
                      "".join(n + ":" + hdrs[n] + "\n" for n in names), signed,
                      hashlib.sha256(body.encode()).hexdigest()])
    date = hdrs.get("x-amz-date", "")
    sts = "\n".join(["AWS4-HMAC-SHA256", date, f"{day}/{region}/{service}/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + SECRETS[key]).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(k, sts.encode(), hashlib.sha256).hexdigest(), sig)


EC2_OK = """<?xml version="1.0" encoding="UTF-8"?>
<StopInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <instancesSet><item><instanceId>{iid}</instanceId>
    <currentState><code>64</code><name>stopping</name></currentState>
    <previousState><code>16</code><name>running</name></previousState></item></instancesSet>
</StopInstancesResponse>
"""
EC2_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message></Error></Errors>
<RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>
"""
SEEN = {}  # (action, key) -> requests so far, for "throttle once/twice" answers


def seen(action, key):
    SEEN[(action, key)] = SEEN.get((action, key), 0) + 1
    return SEEN[(action, key)]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def record(self, body):
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body}) + "\n")

    def answer(self, status, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode() if n else ""

    def do_PUT(self):
        self.record(self.body())
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.answer(200, TOKEN, "text/plain")
        else:
            self.answer(400, "", "text/plain")

    def do_GET(self):
        self.record("")
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self.answer(401, "", "text/plain")
        elif self.path == "/latest/meta-data/iam/security-credentials/":
            self.answer(200, ROLE, "text/plain")
        elif self.path == "/latest/meta-data/iam/security-credentials/" + ROLE:
            self.answer(200, json.dumps({
                "Code": "Success", "LastUpdated": "2024-06-04T01:00:00Z", "Type": "AWS-HMAC",
                "AccessKeyId": "ASIAIMDS", "SecretAccessKey": "imds-secret",
                "Token": "imds-token", "Expiration": "2030-01-01T00:00:00Z"}), "text/plain")
        else:
            self.answer(404, "", "text/plain")

    def do_POST(self):
        raw = self.body()
        self.record(raw)
        target = self.headers.get("X-Amz-Target")
        if target is not None:
            return self.json_call(target, raw)
        form = dict(urllib.parse.parse_qsl(raw))
        action = form.get("Action")
        if action == "StopInstances":
            if not sigv4_ok(self, raw):
                return self.answer(403, EC2_ERROR.format(code="AuthFailure", msg="AWS was not able to validate the provided access credentials"))
            iid = form.get("InstanceId.1", "")
            if iid == "i-denied":
                return self.answer(403, EC2_ERROR.format(code="UnauthorizedOperation", msg="You are not authorized to perform this operation."))
            if iid == "i-throttle" and seen(action, iid) <= 2:
                return self.answer(503, EC2_ERROR.format(code="RequestLimitExceeded", msg="Request limit exceeded."))
            if iid == "i-always-throttled":
                return self.answer(503, EC2_ERROR.format(code="RequestLimitExceeded", msg="Request limit exceeded."))
            return self.answer(200, EC2_OK.format(iid=iid))
        if action == "AssumeRoleWithWebIdentity":
            if form.get("WebIdentityToken") == "good-token":
                self.answer(200, CREDS_XML.format(a="AssumeRoleWithWebIdentity", tag="WEB"))
            else:
                self.answer(403, ERROR_XML.format(code="AccessDenied", msg="Not authorized to perform sts:AssumeRoleWithWebIdentity"))
        elif action == "AssumeRole":
            role = form.get("RoleArn", "")
            if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 Credential="):
                self.answer(403, ERROR_XML.format(code="MissingAuthenticationToken", msg="Request is missing Authentication Token"))
            elif not sigv4_ok(self, raw):
                self.answer(403, ERROR_XML.format(code="SignatureDoesNotMatch", msg="The request signature we calculated does not match the signature you provided."))
            elif "denied" in role:
                self.answer(403, ERROR_XML.format(code="AccessDenied", msg="User: arn:aws:iam::111122223333:user/responder is not authorized to perform: sts:AssumeRole on resource: " + role))
            elif "throttle" in role:
                self.answer(400, ERROR_XML.format(code="Throttling", msg="Rate exceeded"))
            else:
                self.answer(200, CREDS_XML.format(a="AssumeRole", tag="ROLE"))
        else:
            self.answer(400, ERROR_XML.format(code="InvalidAction", msg="Could not find operation " + str(action)))


def json_call(self, target, raw):
    if not sigv4_ok(self, raw):
        return self.answer(403, json.dumps({"__type": "InvalidSignatureException", "message": "bad signature"}), "application/x-amz-json-1.1")
    body = json.loads(raw or "{}")
    name = body.get("Name", "")
    if "denied" in name:
        return self.answer(400, json.dumps({"__type": "com.amazonaws.route53resolver#AccessDeniedException", "message": "User is not authorized to perform: route53resolver:CreateFirewallDomainList"}), "application/x-amz-json-1.1")
    if "throttle" in name and seen(target, name) <= 1:
        return self.answer(400, json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}), "application/x-amz-json-1.1")
    return self.answer(200, json.dumps({"FirewallDomainList": {"Id": "rslvr-fdl-0123456789abcdef", "Name": name, "Status": "COMPLETE"}}), "application/x-amz-json-1.1")


Handler.json_call = json_call

server = HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
