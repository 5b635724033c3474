#!/usr/bin/env python3
"""`petrel dns` checked by third-party software: pyspf evaluates the printed SPF records and
dkimpy verifies a message `petrel dkim sign` signed, both against a DNS server (Knot) serving
exactly the zone `petrel dns --format zone` printed.

    interop_records.py PORT PETREL CONFIG
"""
import subprocess
import sys

import dkim
import dns.resolver
import spf


def fail(message):
    print(f"interop_records: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    port, petrel, config = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 2.0
    dns.resolver.default_resolver = resolver

    # SPF: the configured address passes, another fails; the host name's own record too.
    for ip, expected in [("203.0.113.7", "pass"), ("192.0.2.1", "fail")]:
        result, explanation = spf.check2(i=ip, s="someone@example.com", h="mail.example.com", timeout=2)
        if result != expected:
            fail(f"pyspf for {ip}: {result} ({explanation}), expected {expected}")
    result, _ = spf.check2(i="203.0.113.7", s="postmaster@mail.example.com", h="mail.example.com", timeout=2)
    if result != "pass":
        fail(f"pyspf for the host name: {result}")

    # DKIM: every key petrel holds signs; dkimpy finds the keys in the printed zone.
    message = (b"From: Someone <someone@example.com>\r\nTo: friend@example.net\r\nSubject: records\r\n"
               b"Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: <records@example.com>\r\n\r\nHello.\r\n")
    signed = subprocess.run([petrel, "dkim", "sign", "--domain", "example.com", "--config", config],
                            input=message, capture_output=True, check=True).stdout

    def lookup(qname, timeout=5):
        answer = resolver.resolve(qname.decode().rstrip("."), "TXT")
        return b"".join(b"".join(record.strings) for record in answer)

    count = signed.count(b"DKIM-Signature:")
    verifier = dkim.DKIM(signed)
    for index in range(count):
        if not verifier.verify(idx=index, dnsfunc=lookup):
            fail(f"dkimpy: signature {index} does not verify against the printed zone")
    dmarc = resolver.resolve("_dmarc.example.com", "TXT")
    if not any(b"".join(r.strings).startswith(b"v=DMARC1; p=none") for r in dmarc):
        fail("no DMARC record")
    print(f"interop_records: pyspf passes 203.0.113.7 and fails others; dkimpy verifies {count} signature(s); "
          "all from the zone petrel dns printed")


if __name__ == "__main__":
    main()
