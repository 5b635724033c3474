#!/usr/bin/env python3
"""Outbound delivery interop: what Petrel sends, as third-party software receives it.

    interop_delivery.py zone WORK DKIM_RECORDS    add our DKIM keys and the remote MX
                                                  records to WORK/auth-zone.yml
    interop_delivery.py receiver DIR              aiosmtpd on 127.0.0.2:25, one file per message
    interop_delivery.py check DIR COUNT DNS_PORT  wait for COUNT messages in DIR (or a Maildir)
                                                  and verify every DKIM signature with dkimpy

The remote MX hosts are on other loopback addresses, port 25, found through the zone:
remote.example -> mx.remote.example (127.0.0.2, aiosmtpd), postfix.example ->
mx.postfix.example (127.0.0.3, a private Postfix instance started by interop.sh).
"""
import asyncio
import os
import re
import sys
import time

import dkim
import dns.resolver
import yaml

RECEIVER = "127.0.0.2"


def fail(message):
    print(f"interop_delivery: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def zone(work, records_file):
    """`petrel dkim list` output (one `NAME. IN TXT ( "..." ... )` per line) into the zone."""
    path = os.path.join(work, "auth-zone.yml")
    with open(path) as handle:
        data = yaml.safe_load(handle)
    zonedata = data["zonedata"]
    with open(records_file) as handle:
        for line in handle:
            match = re.match(r'^(\S+)\.\s+IN\s+TXT\s+\((.*)\)\s*$', line.strip())
            if not match:
                continue
            strings = re.findall(r'"([^"]*)"', match.group(2))
            zonedata.setdefault(match.group(1), []).append({"TXT": strings})
    zonedata["remote.example"] = [{"MX": [10, "mx.remote.example"]}]
    zonedata["mx.remote.example"] = [{"A": RECEIVER}]
    zonedata["postfix.example"] = [{"MX": [10, "mx.postfix.example"]}]
    zonedata["mx.postfix.example"] = [{"A": "127.0.0.3"}]
    # Our own host name has an address; bounces to <> are never sent, so nothing else is needed.
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)


def receiver(directory):
    """A real SMTP server nobody here wrote, as the remote MX: aiosmtpd, STARTTLS not offered."""
    from aiosmtpd.controller import Controller

    os.makedirs(directory, exist_ok=True)

    class Handler:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Handler.count += 1
            name = os.path.join(directory, f"{Handler.count:04d}")
            with open(name + ".tmp", "wb") as handle:
                handle.write(b"X-Envelope-From: <%s>\r\n" % envelope.mail_from.encode())
                handle.write(b"X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos).encode())
                handle.write(envelope.original_content)
            os.rename(name + ".tmp", name + ".eml")
            return "250 2.0.0 OK stored"

    controller = Controller(Handler(), hostname=RECEIVER, port=25, decode_data=False)
    controller.start()
    print(f"interop_delivery: aiosmtpd on {RECEIVER}:25", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def messages_in(directory):
    """Files of a plain directory (aiosmtpd's) or of a Maildir's new/ (Postfix's)."""
    new = os.path.join(directory, "new")
    folder = new if os.path.isdir(new) else directory
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if not name.endswith(".tmp")) if os.path.isdir(folder) else []


def check(directory, count, dns_port):
    deadline = time.time() + 60
    while len(messages_in(directory)) < count and time.time() < deadline:
        time.sleep(0.2)
    files = messages_in(directory)
    if len(files) != count:
        fail(f"{len(files)} messages in {directory}, expected {count}")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_port

    def lookup(qname, timeout=5):
        name = qname.decode().rstrip(".")
        answer = resolver.resolve(name, "TXT")
        return b"".join(b"".join(record.strings) for record in answer)

    algorithms = set()
    for path in files:
        with open(path, "rb") as handle:
            message = handle.read()
        # Postfix's Maildir copy has LF line ends; the envelope lines are ours, not signed.
        message = re.sub(rb"^X-Envelope-(From|To): [^\n]*\n", b"", message, flags=re.M)
        if b"\r\n" not in message:
            message = message.replace(b"\n", b"\r\n")
        header = message.split(b"\r\n\r\n", 1)[0]
        signatures = len(re.findall(rb"^DKIM-Signature:", header, flags=re.M | re.I))
        # Mail from our domain is signed twice; anything else (no From at all) not at all.
        ours = re.search(rb"^From:[^\r]*@example\.test", header, flags=re.M | re.I) is not None
        if signatures != (2 if ours else 0):
            fail(f"{path}: {signatures} DKIM signatures, expected {2 if ours else 0} (From ours: {ours})")
        if re.search(rb"^Return-Path:", header, flags=re.M | re.I) and b"Delivered-To" not in header:
            fail(f"{path}: Petrel sent a Return-Path field")
        verifier = dkim.DKIM(message)
        for index in range(signatures):
            if not verifier.verify(idx=index, dnsfunc=lookup):
                fail(f"{path}: DKIM signature {index} does not verify: {verifier.logger}")
            algorithms.add(verifier.signature_fields.get(b"a", b"").decode())
    if algorithms != {"rsa-sha256", "ed25519-sha256"}:
        fail(f"algorithms seen: {sorted(algorithms)}")
    print(f"interop_delivery: {count} message(s) in {directory}: RSA and Ed25519 signatures verified by dkimpy")


def main():
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "zone":
        zone(*arguments)
    elif command == "receiver":
        receiver(*arguments)
    elif command == "check":
        check(arguments[0], int(arguments[1]), int(arguments[2]))
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
