#!/usr/bin/env python3
"""Interop for inbound mail authentication, against real third-party implementations.

    interop_auth.py wait PORT            waits until serve_zone.py answers on PORT
    interop_auth.py keys WORK            fresh RSA-2048 and Ed25519 DKIM keys, and WORK/auth-zone.yml
                                         (serve_zone.py format) publishing them with SPF and DMARC
    interop_auth.py dkim PETREL CONFIG WORK
                                         messages signed by dkimpy verify with `petrel check dkim`;
                                         the same messages altered fail
    interop_auth.py smtp PORT MAILDIR WORK
                                         the same, end to end through the running server: signed
                                         mail under p=reject is delivered with dkim=pass dmarc=pass,
                                         forged mail is refused with 550 5.7.1
    interop_auth.py signing PETREL CONFIG
                                         keys made by `petrel dkim keygen` (RSA and Ed25519) sign
                                         messages with `petrel dkim sign`; dkimpy verifies them,
                                         against the records `petrel dkim list` prints
    interop_auth.py spf PETREL WORK SUITE
                                         pyspf and `petrel check spf` give the same verdict on every
                                         test of the RFC 7208 suite, each scenario served over DNS

The DNS is Scripts/interop/dns/serve_zone.py on loopback; nothing leaves the machine.
"""

import base64
import os
import re
import smtplib
import socket
import subprocess
import sys
import time

import dkim
import dns.resolver
import nacl.signing
import spf
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SERVE_ZONE = os.path.join(HERE, "dns", "serve_zone.py")
DOMAIN = "interop.example"


def fail(message):
    print(f"interop_auth: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_dns(port, name="ready.check"):
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 0.2
    for _ in range(100):
        try:
            resolver.resolve(name, "TXT")
            return
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return
        except Exception:
            time.sleep(0.05)
    fail(f"serve_zone.py on port {port} does not answer")


def keys(work):
    os.makedirs(os.path.join(work, "keys"), exist_ok=True)
    rsa_path = os.path.join(work, "keys", "rsa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa_path],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", rsa_path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    ed = nacl.signing.SigningKey.generate()
    with open(os.path.join(work, "keys", "ed25519.seed"), "w") as handle:
        handle.write(base64.b64encode(bytes(ed)).decode())
    zone = {"zonedata": {
        f"rsa._domainkey.{DOMAIN}": [{"TXT": "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()}],
        f"ed._domainkey.{DOMAIN}": [{"TXT": "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(ed.verify_key)).decode()}],
        # 127.0.0.1 is not allowed: DKIM alone has to carry DMARC.
        DOMAIN: [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
        f"_dmarc.{DOMAIN}": [{"TXT": "v=DMARC1; p=reject"}],
    }}
    with open(os.path.join(work, "auth-zone.yml"), "w") as handle:
        yaml.safe_dump(zone, handle)


def signed_messages(work):
    """(name, message bytes) signed by dkimpy in several ways, CRLF line ends."""
    with open(os.path.join(work, "keys", "rsa.pem"), "rb") as handle:
        rsa = handle.read()
    with open(os.path.join(work, "keys", "ed25519.seed"), "rb") as handle:
        ed = handle.read()
    body = (b"From: Joe <joe@interop.example>\r\nTo: carol@example.test\r\nSubject: interop %s\r\n"
            b"Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%s@interop.example>\r\n\r\n"
            b"Hello Carol,\r\n\r\n  indented   line with  spaces \r\n.leading dot\r\n\r\n\r\n")
    variants = [
        ("rsa relaxed/relaxed", b"rsa", rsa, b"rsa-sha256", (b"relaxed", b"relaxed")),
        ("rsa simple/simple", b"rsa", rsa, b"rsa-sha256", (b"simple", b"simple")),
        ("rsa relaxed/simple", b"rsa", rsa, b"rsa-sha256", (b"relaxed", b"simple")),
        ("ed25519 relaxed/relaxed", b"ed", ed, b"ed25519-sha256", (b"relaxed", b"relaxed")),
    ]
    messages = []
    for index, (name, selector, key, algorithm, canonicalize) in enumerate(variants):
        message = body % (name.encode(), str(index).encode())
        signature = dkim.sign(message, selector, DOMAIN.encode(), key, signature_algorithm=algorithm,
                              canonicalize=canonicalize, linesep=b"\r\n")
        messages.append((name, signature + message))
    return messages


def altered(message):
    """The body changed after signing."""
    return message.replace(b"Hello Carol", b"Hello Carol, send money")


def check_dkim(petrel, config, work):
    count = 0
    for name, message in signed_messages(work):
        for content, expected in ((message, "pass"), (altered(message), "fail")):
            result = subprocess.run([petrel, "check", "dkim", "--config", config], input=content,
                                    capture_output=True, timeout=30)
            output = result.stdout.decode()
            if result.returncode != 0 or not output.startswith(f"dkim 1: {expected} d={DOMAIN} "):
                fail(f"dkimpy {name}, expected {expected}: {output!r} {result.stderr.decode()!r}")
            count += 1
    print(f"interop_auth: dkimpy-signed messages: {count} verdicts as expected (pass, and fail once altered)")


def check_smtp(port, maildir, work):
    delivered_before = set(os.listdir(os.path.join(maildir, "new")))
    messages = signed_messages(work)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mail.interop.example")
        for name, message in messages:
            client.sendmail(f"joe@{DOMAIN}", ["carol@example.test"], message)
        for name, message in messages:
            try:
                client.sendmail(f"joe@{DOMAIN}", ["carol@example.test"], altered(message))
                fail(f"forged {name} was accepted")
            except smtplib.SMTPDataError as error:
                if error.smtp_code != 550 or not error.smtp_error.startswith(b"5.7.1 Email rejected per DMARC policy"):
                    fail(f"forged {name}: {error.smtp_code} {error.smtp_error!r}")
    new = sorted(set(os.listdir(os.path.join(maildir, "new"))) - delivered_before)
    if len(new) != len(messages):
        fail(f"{len(new)} messages delivered, expected {len(messages)}")
    for name in new:
        with open(os.path.join(maildir, "new", name), "rb") as handle:
            data = handle.read()
        header = data.split(b"\n\n", 1)[0].decode()
        results = re.search(r"Authentication-Results: mx\.example\.test;\n((?:\t[^\n]*\n)+)", header + "\n")
        if not results:
            fail(f"no Authentication-Results in {header[:300]!r}")
        block = results.group(1)
        for needle in ("\tspf=fail (", f"smtp.mailfrom=joe@{DOMAIN}", f"\tdkim=pass (", f"header.d={DOMAIN}",
                       f"\tdmarc=pass (DKIM d={DOMAIN} is aligned with {DOMAIN}) header.from={DOMAIN}"):
            if needle not in block:
                fail(f"{needle!r} not in {block!r}")
        # What was signed arrives intact: dkimpy itself verifies the delivered copy.
        message = data.replace(b"\n", b"\r\n")
        zone = yaml.safe_load(open(os.path.join(work, "auth-zone.yml")))["zonedata"]

        def lookup(qname, timeout=5):
            name = qname.decode().rstrip(".")
            return zone[name][0]["TXT"].encode() if name in zone else None

        if not dkim.verify(message, dnsfunc=lookup):
            fail(f"dkimpy does not verify the delivered copy {name}")
    print(f"interop_auth: SMTP: {len(messages)} signed messages delivered with dkim=pass dmarc=pass "
          f"(and verified again by dkimpy), {len(messages)} forged ones refused with 550 5.7.1")


def check_signing(petrel, config):
    domain = "signer.example"
    for selector, algorithm in (("rsa", "rsa"), ("ed", "ed25519")):
        subprocess.run([petrel, "dkim", "keygen", domain, "--selector", selector, "--algorithm", algorithm,
                        "--config", config], check=True, capture_output=True)
    listing = subprocess.run([petrel, "dkim", "list", domain, "--config", config], check=True,
                             capture_output=True).stdout.decode()
    records = {}
    for line in listing.splitlines():
        name = line.split(" ", 1)[0].rstrip(".")
        records[name] = "".join(re.findall(r'"([^"]*)"', line)).encode()
    if sorted(records) != [f"ed._domainkey.{domain}", f"rsa._domainkey.{domain}"]:
        fail(f"petrel dkim list: {listing!r}")

    def lookup(qname, timeout=5):
        return records.get(qname.decode().rstrip("."))

    messages = [
        b"From: Alice <alice@signer.example>\r\nTo: bob@remote.example\r\nSubject: plain\r\n\r\nHello.\r\n",
        b"From: alice@signer.example\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "caf\u00e9  with   spaces \t\r\n\r\n\r\n".encode(),
        b"From: alice@signer.example\r\nSubject: empty body\r\n\r\n",
        b"From: alice@signer.example\r\nSubject: long\r\n\r\n" + (b"x" * 990 + b"\r\n") * 200,
    ]
    verified = 0
    for message in messages:
        result = subprocess.run([petrel, "dkim", "sign", "--domain", domain, "--config", config], input=message,
                                capture_output=True, timeout=30)
        if result.returncode != 0:
            fail(f"petrel dkim sign: {result.stderr!r}")
        signed = result.stdout
        if signed.count(b"DKIM-Signature:") != 2:
            fail(f"expected two signatures: {signed[:400]!r}")
        # dkimpy checks one signature per call: the first, then the second (idx).
        for index in (0, 1):
            if not dkim.DKIM(signed).verify(idx=index, dnsfunc=lookup):
                fail(f"dkimpy does not verify signature {index} of {signed[:600]!r}")
            verified += 1
        try:
            altered_ok = dkim.DKIM(signed.replace(b"\r\n\r\n", b"\r\n\r\nP.S. ", 1)).verify(idx=1, dnsfunc=lookup)
        except dkim.ValidationError:
            altered_ok = False
        if altered_ok:
            fail("dkimpy verifies a message altered after signing")
    print(f"interop_auth: petrel dkim sign: dkimpy verifies {verified} signatures (RSA-2048 and Ed25519, "
          f"{len(messages)} messages), and none once the body is changed")


def check_spf(petrel, work, suite):
    petrel = os.path.abspath(petrel)
    config = os.path.join(work, "spf-check.toml")
    with open(config, "w") as handle:
        # Unanswered queries (TIMEOUT in the suite) cost one second, not four.
        handle.write('data_dir = "spf-data"\n[dns]\ntimeout = 1\nattempts = 1\n')
    with open(suite, encoding="utf-8") as handle:
        scenarios = [document for document in yaml.safe_load_all(handle) if document]
    agree = 0
    pyspf_off_suite = []
    alternatives = []
    for index, scenario in enumerate(scenarios):
        port = free_port()
        server = subprocess.Popen([sys.executable, SERVE_ZONE, suite, "--scenario", str(index), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_dns(port)
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
            resolver.port = port
            resolver.lifetime = 1.0
            dns.resolver.default_resolver = resolver
            for name, test in sorted(scenario["tests"].items()):
                expected = test["result"] if isinstance(test["result"], list) else [test["result"]]
                sender = test.get("mailfrom") or ""
                helo = test.get("helo") or ""
                theirs, _ = spf.check2(i=test["host"], s=sender, h=helo, timeout=1)
                run = subprocess.run([petrel, "check", "spf", "--config", config, "--dns", f"127.0.0.1:{port}",
                                      "--ip", test["host"], "--sender", sender, "--helo", helo],
                                     capture_output=True, timeout=60, cwd=work)
                first = run.stdout.decode().split("\n")[0]
                match = re.match(r"spf (?:mailfrom|helo)=.*?: (\w+) \(", first)
                if run.returncode != 0 or not match:
                    fail(f"{name}: petrel check spf said {run.stdout!r} {run.stderr!r}")
                ours = match.group(1)
                if ours not in expected:
                    fail(f"{name}: petrel says {ours}, the suite expects {expected}")
                if ours == theirs:
                    agree += 1
                elif theirs not in expected:
                    pyspf_off_suite.append(f"{name} (pyspf {theirs}, suite {'|'.join(expected)}, petrel {ours})")
                else:
                    # Where RFC 7208 left a choice, the suite allows either; record which was made.
                    alternatives.append(f"{name} (pyspf {theirs}, petrel {ours})")
        finally:
            server.terminate()
            server.wait()
    total = agree + len(pyspf_off_suite) + len(alternatives)
    print(f"interop_auth: SPF suite over DNS: petrel matches the suite on {total}/{total} and pyspf "
          f"{spf.__version__} on {agree}/{total}; different choices the suite allows: "
          f"{', '.join(alternatives) or 'none'}; pyspf off the suite: {', '.join(pyspf_off_suite) or 'none'}")


def main():
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "wait":
        wait_for_dns(int(arguments[0]))
    elif command == "keys":
        keys(*arguments)
    elif command == "dkim":
        check_dkim(*arguments)
    elif command == "smtp":
        check_smtp(int(arguments[0]), arguments[1], arguments[2])
    elif command == "signing":
        check_signing(*arguments)
    elif command == "spf":
        check_spf(*arguments)
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
