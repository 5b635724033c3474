#!/usr/bin/env python3
"""Captures the DNS responses used as fixtures by DNSMessageTests, from a real server.

Run against Knot DNS 3.2.6 serving example.test.zone and 2.0.192.in-addr.arpa.zone (both here)
and a zone broken.test that fails to load (for SERVFAIL) on 127.0.0.1:5399:

    python3 capture.py 127.0.0.1 5399

Each query is what Petrel's stub sends (RD, EDNS0 payload 1232, DO); each response is stored
as hex in NAME.hex. For TCP, the two-octet length prefix is not stored.
"""
import random
import socket
import struct
import sys

HOST, PORT = sys.argv[1], int(sys.argv[2])
TYPES = {"A": 1, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "TLSA": 52}


def query(name, qtype, payload=1232):
    header = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 1)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    opt = b"\0" + struct.pack(">HHHHH", 41, payload, 0, 0x8000, 0)
    return header + qname + struct.pack(">HH", TYPES[qtype], 1) + opt


def udp(packet):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(packet, (HOST, PORT))
        return s.recv(65535)


def tcp(packet):
    with socket.create_connection((HOST, PORT), timeout=2) as s:
        s.sendall(struct.pack(">H", len(packet)) + packet)
        length = struct.unpack(">H", s.recv(2))[0]
        data = b""
        while len(data) < length:
            data += s.recv(length - len(data))
        return data


CASES = [
    ("mx", "example.test", "MX", udp),
    ("a", "mx1.example.test", "A", udp),
    ("aaaa", "mx1.example.test", "AAAA", udp),
    ("txt-spf", "example.test", "TXT", udp),
    ("txt-multi", "multi.example.test", "TXT", udp),
    ("txt-big-udp", "big.example.test", "TXT", udp),
    ("txt-big-tcp", "big.example.test", "TXT", tcp),
    ("cname-chain", "alias.example.test", "A", udp),
    ("cname-loop", "loop1.example.test", "A", udp),
    ("nxdomain", "nope.example.test", "A", udp),
    ("nodata", "mx2.example.test", "AAAA", udp),
    ("tlsa", "_25._tcp.mx1.example.test", "TLSA", udp),
    ("ptr", "1.2.0.192.in-addr.arpa", "PTR", udp),
    ("servfail", "x.broken.test", "A", udp),
    ("refused", "elsewhere.example", "A", udp),
]

for name, qname, qtype, transport in CASES:
    response = transport(query(qname, qtype))
    with open(f"{name}.hex", "w") as out:
        out.write(response.hex() + "\n")
    print(f"{name}: {len(response)} octets")
