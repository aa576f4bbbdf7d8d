"""Writes the CloudTrail golden inputs of this folder (deterministic: same bytes on every run).

Run it from anywhere with python3; the expected normalized values live in
tests/unit/test_cloudtrail.c, which names each record by the last digits of its eventID.
"""
import json, gzip, os
D=os.path.dirname(os.path.abspath(__file__))
def rec(**kw):
    base={"eventVersion":"1.08","eventTime":"2024-08-02T08:53:24Z","awsRegion":"us-east-1",
          "recipientAccountId":"111122223333","eventType":"AwsApiCall","managementEvent":True,
          "readOnly":False,"eventCategory":"Management"}
    base.update(kw); return base
iam_login = rec(eventID="00000000-0000-4000-8000-000000000001", eventName="ConsoleLogin",
    eventSource="signin.amazonaws.com", eventType="AwsConsoleSignIn",
    userIdentity={"type":"IAMUser","principalId":"AIDAEXAMPLEALICE0001","arn":"arn:aws:iam::111122223333:user/alice",
                  "accountId":"111122223333","userName":"alice"},
    sourceIPAddress="81.2.69.142", userAgent="Mozilla/5.0 (X11; Linux x86_64)",
    requestParameters=None, responseElements={"ConsoleLogin":"Success"},
    additionalEventData={"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"Yes"})
root_fail = rec(eventID="00000000-0000-4000-8000-000000000002", eventName="ConsoleLogin",
    eventTime="2024-08-02T09:10:00.250Z",
    eventSource="signin.amazonaws.com", eventType="AwsConsoleSignIn",
    userIdentity={"type":"Root","principalId":"111122223333","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},
    sourceIPAddress="175.16.199.7", userAgent="Mozilla/5.0", errorMessage="Failed authentication",
    requestParameters=None, responseElements={"ConsoleLogin":"Failure"},
    additionalEventData={"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"No"})
role_run = rec(eventID="00000000-0000-4000-8000-000000000003", eventName="RunInstances",
    eventSource="ec2.amazonaws.com", awsRegion="ap-southeast-1",
    userIdentity={"type":"AssumedRole","principalId":"AROAEXAMPLEROLE00001:i-0abc123def4567890",
        "arn":"arn:aws:sts::111122223333:assumed-role/ec2-admin/i-0abc123def4567890",
        "accountId":"111122223333","accessKeyId":"ASIAEXAMPLEKEY000001",
        "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEROLE00001",
            "arn":"arn:aws:iam::111122223333:role/ec2-admin","accountId":"111122223333","userName":"ec2-admin"},
            "attributes":{"creationDate":"2024-08-02T08:00:00Z","mfaAuthenticated":"false"},
            "ec2RoleDelivery":"2.0"}},
    sourceIPAddress="216.160.83.57", userAgent="aws-cli/2.15.0",
    requestParameters={"instancesSet":{"items":[{"imageId":"ami-0123456789abcdef0","minCount":20,"maxCount":20}]},
        "instanceType":"p3.16xlarge"},
    responseElements=None)
fed = rec(eventID="00000000-0000-4000-8000-000000000004", eventName="GetCallerIdentity",
    eventSource="sts.amazonaws.com",
    userIdentity={"type":"FederatedUser","principalId":"111122223333:bob",
        "arn":"arn:aws:sts::111122223333:federated-user/bob","accountId":"111122223333",
        "accessKeyId":"ASIAEXAMPLEKEY000002",
        "sessionContext":{"sessionIssuer":{"type":"IAMUser","principalId":"AIDAEXAMPLEBROKER001",
            "arn":"arn:aws:iam::111122223333:user/fed-broker","accountId":"111122223333","userName":"fed-broker"}}},
    sourceIPAddress="2001:db8::1", userAgent="Boto3/1.34.0", requestParameters=None, responseElements=None)
svc = rec(eventID="00000000-0000-4000-8000-000000000005", eventName="AssumeRole",
    eventSource="sts.amazonaws.com", eventType="AwsApiCall",
    userIdentity={"type":"AWSService","invokedBy":"ec2.amazonaws.com"},
    sourceIPAddress="ec2.amazonaws.com", userAgent="ec2.amazonaws.com",
    requestParameters={"roleArn":"arn:aws:iam::111122223333:role/ec2-admin","roleSessionName":"i-0abc123def4567890"},
    responseElements={"credentials":{"accessKeyId":"ASIAEXAMPLEKEY000001","expiration":"Aug 2, 2024, 3:00:00 PM"}})
idc = rec(eventID="00000000-0000-4000-8000-000000000006", eventName="ListBuckets",
    eventSource="s3.amazonaws.com",
    userIdentity={"type":"IdentityCenterUser","accountId":"111122223333",
        "onBehalfOf":{"userId":"94482488-3041-7026-18f3-be45837cd0e4",
            "identityStoreArn":"arn:aws:identitystore::111122223333:identitystore/d-9067230c3a"},
        "credentialId":"EXAMPLECREDENTIAL"},
    sourceIPAddress="AWS Internal", userAgent="AWS Internal", requestParameters=None, responseElements=None)
denied = rec(eventID="00000000-0000-4000-8000-000000000007", eventName="ListUsers",
    eventSource="iam.amazonaws.com",
    userIdentity={"type":"IAMUser","principalId":"AIDAEXAMPLEALICE0001","arn":"arn:aws:iam::111122223333:user/alice",
                  "accountId":"111122223333","userName":"alice","accessKeyId":"AKIAEXAMPLEKEY000003"},
    sourceIPAddress="06.237.252.245", userAgent="aws-cli/2.15.0",
    errorCode="AccessDenied", errorMessage="User: arn:aws:iam::111122223333:user/alice is not authorized to perform: iam:ListUsers",
    requestParameters=None, responseElements=None)
acct = rec(eventID="00000000-0000-4000-8000-000000000008", eventName="AuthorizeSecurityGroupIngress",
    eventSource="ec2.amazonaws.com",
    recipientAccountId=None,
    userIdentity={"type":"AWSAccount","principalId":"AROAEXAMPLE:session-name","accountId":"222222222222"},
    sourceIPAddress="203.0.113.50", userAgent="console.ec2.amazonaws.com",
    requestParameters={"groupId":"sg-0123456789abcdef0","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}},
    responseElements={"_return":True})
del acct["recipientAccountId"]
ALL=[iam_login, root_fail, role_run, fed, svc, idc, denied, acct]
def w(name, data, mode='w'):
    with open(os.path.join(D,name), mode) as f: f.write(data)
# JSON Lines of all eight identities
w('identities.jsonl', ''.join(json.dumps(r, separators=(',',':'))+'\n' for r in ALL))
# S3 delivery shape, gzip'd (mtime 0 so the bytes are stable)
s3 = json.dumps({"Records":ALL[:3]}, separators=(',',':')).encode()
with open(os.path.join(D,'s3_delivery.json.gz'),'wb') as f:
    with gzip.GzipFile(fileobj=f, mode='wb', mtime=0, filename='') as g: g.write(s3)
# pretty JSON array (multiline records)
w('array_pretty.json', json.dumps(ALL[3:6], indent=2)+'\n')
# EventBridge envelopes
def env(detail_type, r, i):
    return {"version":"0","id":"6f87d04b-9f74-4f04-a780-7acf4b0a9b3%d"%i,"detail-type":detail_type,
            "source":"aws.signin" if 'Sign In' in detail_type else "aws.ec2","account":"111122223333",
            "time":r["eventTime"],"region":r["awsRegion"],"resources":[],"detail":r}
w('eventbridge.jsonl', json.dumps(env("AWS Console Sign In via CloudTrail", root_fail, 1))+'\n'+
  json.dumps(env("AWS API Call via CloudTrail", role_run, 2))+'\n')
# a malformed record between two good ones (missing comma, as in cloudtrail2sightings)
good1=json.dumps(iam_login, separators=(',',':')); good2=json.dumps(denied, separators=(',',':'))
bad=json.dumps(role_run, separators=(',',':')).replace('"eventName":"RunInstances",','"eventName":"RunInstances"')
assert bad != json.dumps(role_run, separators=(',',':'))
w('malformed_middle.jsonl', good1+'\n'+bad+'\n'+good2+'\n')
# invalid UTF-8 inside a string of the middle record
mid=json.dumps(fed, separators=(',',':')).replace('Boto3/1.34.0','Boto3/\xff\xfe').encode('latin-1')
w('invalid_utf8.jsonl', good1.encode()+b'\n'+mid+b'\n'+good2.encode()+b'\n', 'wb')
# truncated S3 object: two whole records, the third cut in the middle
full=json.dumps({"Records":ALL[:3]}, separators=(',',':'))
cut=full.index('"eventName":"RunInstances"')
w('truncated.json', full[:cut])
# a truncated gzip: the same S3 object compressed, cut before its end
gz=open(os.path.join(D,'s3_delivery.json.gz'),'rb').read()
w('truncated.json.gz', gz[:len(gz)*2//3], 'wb')

