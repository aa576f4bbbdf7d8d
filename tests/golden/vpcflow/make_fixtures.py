#!/usr/bin/env python3
"""Regenerate the gzip'd golden input (byte-identical: no name, mtime 0). Run from this folder."""
import gzip

V5_CUSTOM_CONCATENATED = """\
version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region flow-direction
5 vpc-0123456789abcdef0 subnet-0fedcba9876543210 i-0badc0ffee0ddf00d eni-0a1b2c3d4e5f60718 111122223333 IPv4 10.20.1.15 10.20.9.4 50000 14444 10.20.1.15 45.9.148.117 6 64420 311 1717405400 1717405460 ACCEPT 19 OK sa-east-1 egress
5 vpc-0123456789abcdef0 subnet-0fedcba9876543210 i-0badc0ffee0ddf00d eni-0a1b2c3d4e5f60718 111122223333 IPv4 10.20.1.15 10.20.9.4 50001 14444 10.20.1.15 45.9.148.117 6 1200 9 1717405401 1717405461 ACCEPT 3 OK sa-east-1 egress
version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status instance-id
2 111122223333 eni-0f9e8d7c6b5a40312 10.20.2.9 203.0.113.50 41000 4444 6 10 1500 1717405500 1717405560 REJECT OK i-0123456789abcdef0
2 111122223333 eni-0f9e8d7c6b5a40312 10.20.2.9 203.0.113.50 41001 4444 6 10 1500 1717405501 1717405561 ACCEPT OK -
"""

with open("v5_custom_concatenated.log.gz", "wb") as raw:
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(V5_CUSTOM_CONCATENATED.encode())
