#!/usr/bin/env python3
"""Regenerate cloudwatch_envelope.json.gz (byte-identical: no name, mtime 0). Run from this
folder. Firehose delivers CloudWatch Logs subscription messages gzip'd and concatenated with no
separator; each log event's message is one Route 53 Resolver record as a JSON string."""
import gzip
import json

RECORDS = [
    {"version": "1.100000", "account_id": "111122223333", "region": "eu-west-1",
     "vpc_id": "vpc-0fedcba9876543210", "query_timestamp": "2024-06-03T10:00:00Z",
     "query_name": "pool.supportxmr.com.", "query_type": "A", "query_class": "IN",
     "rcode": "NOERROR", "answers": [{"Rdata": "198.51.100.44", "Type": "A", "Class": "IN"}],
     "srcaddr": "10.30.0.12", "srcport": "51000", "transport": "UDP",
     "srcids": {"instance": "i-0feedfacecafe0001"}},
    {"version": "1.100000", "account_id": "111122223333", "region": "eu-west-1",
     "vpc_id": "vpc-0fedcba9876543210", "query_timestamp": "2024-06-03T10:00:01Z",
     "query_name": "sts.eu-west-1.amazonaws.com.", "query_type": "AAAA", "query_class": "IN",
     "rcode": "NOERROR", "answers": [], "srcaddr": "10.30.0.12", "srcport": "51001",
     "transport": "UDP", "srcids": {"instance": "i-0feedfacecafe0001"}},
]
COMPACT = (",", ":")
CONTROL = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
           "logStream": "", "subscriptionFilters": [],
           "logEvents": [{"id": "", "timestamp": 1717408799000,
                          "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}
DATA = {"messageType": "DATA_MESSAGE", "owner": "111122223333",
        "logGroup": "/aws/route53resolver/queries",
        "logStream": "vpc-0fedcba9876543210_rqlc-0123", "subscriptionFilters": ["to-firehose"],
        "logEvents": [{"id": str(36000000000000000000000000000000000000000000000000000000 + i),
                       "timestamp": 1717408800000 + i * 1000,
                       "message": json.dumps(r, separators=COMPACT)}
                      for i, r in enumerate(RECORDS)]}

data = (json.dumps(CONTROL, separators=COMPACT) + json.dumps(DATA, separators=COMPACT)).encode()
with gzip.GzipFile("cloudwatch_envelope.json.gz", "wb", mtime=0) as f:
    f.write(data)
