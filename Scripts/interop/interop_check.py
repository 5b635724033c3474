#!/usr/bin/env python3
"""Sends through petrel with Python's smtplib and checks the delivered Maildir files byte for byte.

usage: interop_check.py PORT MAIL_ROOT SWAKS_MESSAGE SUBMISSION_PORT PASSWORD

Petrel stores a message as: Return-Path, a folded Received field, then the message exactly as
received after dot-unstuffing, with LF line ends (every LF stands for one CRLF on the wire).
"""
import email
import email.policy
import mailbox
import os
import re
import smtplib
import sys

PORT, ROOT, SWAKS = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SUBMISSION, PASSWORD = int(sys.argv[4]), sys.argv[5]

TRACE = re.compile(
    rb"\AReturn-Path: <(?P<from>[^>]*)>\n"
    rb"(?P<results>Authentication-Results: mx\.example\.test;\n(?:\t[^\n]*\n)+|)"
    rb"Received: from (?P<helo>\S+) \(\[127\.0\.0\.1\]\)\n"
    rb"(?:\t\(using (?P<tls>TLSv1\.[23] with cipher [A-Z0-9_]+)\)\n|)"
    rb"\tby mx\.example\.test \(Petrel\) with (?P<proto>E?SMTPS?A?|UTF8SMTPS?A?) id (?P<id>[0-9A-Z]{14})\n"
    rb"(?:\tfor <(?P<rcpt>[^>]+)>;\n|)"
    rb"(?:\t[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n|)"
)


def fail(message):
    print(f"interop_check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def stored(mailbox_name):
    """All files in a mailbox's new/, as bytes, sorted by name."""
    directory = os.path.join(ROOT, mailbox_name, "new")
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    result = []
    for name in names:
        with open(os.path.join(directory, name), "rb") as handle:
            data = handle.read()
        size = re.search(r",S=(\d+)", name)
        if not size or int(size.group(1)) != len(data):
            fail(f"{name}: S= does not match the file size {len(data)}")
        result.append(data)
    return result


def split_trace(data):
    """Returns (trace match, the message after the trace fields)."""
    # The date line of Received ends the trace; it is the first line ending in +hhmm/-hhmm.
    # Mail from other servers (not logged in) carries our Authentication-Results between them.
    match = re.match(
        rb"\A(Return-Path: [^\n]*\n(?:Authentication-Results: [^\n]*\n(?:\t[^\n]*\n)+)?"
        rb"Received: (?:[^\n]*\n)(?:\t[^\n]*\n)*?\t[^\n]*[+-]\d{4}\n)",
        data,
    )
    if not match:
        fail(f"no trace fields at the top of: {data[:200]!r}")
    trace = match.group(1)
    if not TRACE.match(trace):
        fail(f"trace fields not as documented: {trace!r}")
    return TRACE.match(trace), data[len(trace):]


def expect_one(mailbox_name, marker, sent_wire):
    """The one file in mailbox_name containing marker must be the trace + sent_wire with LF."""
    found = [data for data in stored(mailbox_name) if marker in data]
    if len(found) != 1:
        fail(f"{mailbox_name}: {len(found)} messages with {marker!r}, expected 1")
    trace, body = split_trace(found[0])
    expected = sent_wire.replace(b"\r\n", b"\n")
    if body != expected:
        fail(f"{mailbox_name}: stored content differs\n  stored:   {body[:300]!r}\n  expected: {expected[:300]!r}")
    return trace


# 1. swaks' message (sent twice: alice and alice+x both land in alice's Maildir). swaks sends the
# file with CRLF line ends and then "\r\n.\r\n", so one empty line follows the file's last line.
with open(SWAKS, "rb") as handle:
    swaks_message = handle.read() + b"\n"
found = [data for data in stored("alice@example.test") if b"X-Interop: swaks" in data]
if len(found) != 2:
    fail(f"expected 2 swaks messages for alice, found {len(found)}")
for data in found:
    trace, body = split_trace(data)
    if body != swaks_message:
        fail(f"swaks message differs:\n  stored:   {body!r}\n  expected: {swaks_message!r}")
    if trace.group("helo") != b"swaks.example.net" or trace.group("proto") != b"ESMTP":
        fail(f"swaks trace: {trace.group(0)!r}")

# 2. smtplib: dot-stuffing, an alias with two targets, a large message, SMTPUTF8.
plain = (
    b"From: <bob@example.net>\r\nTo: <team@example.test>\r\nSubject: smtplib interop\r\n"
    b"X-Interop: smtplib-alias\r\n\r\nline one\r\n.starts with a dot\r\n..two\r\n.\r\nlast line\r\n"
)
with smtplib.SMTP("127.0.0.1", PORT, local_hostname="py.example.net") as client:
    code, _ = client.ehlo()
    if code != 250 or not client.has_extn("pipelining") or not client.has_extn("chunking"):
        fail("EHLO extensions missing")
    refused = client.sendmail("bob@example.net", ["team@example.test"], plain)
    if refused:
        fail(f"refused: {refused}")
    # A 1 MiB message with long-ish lines.
    line = b"0123456789" * 99 + b"\r\n"
    big = b"From: <bob@example.net>\r\nSubject: big\r\nX-Interop: smtplib-big\r\n\r\n" + line * 1060
    client.sendmail("bob@example.net", ["carol@example.test"], big)
    # RFC 6531: a UTF-8 mailbox needs SMTPUTF8, which smtplib asks for.
    utf8 = "From: <bób@example.net>\r\nSubject: ünïcödé\r\nX-Interop: smtplib-utf8\r\n\r\nGrüße\r\n".encode()
    client.sendmail("bób@example.net", ["jösé@example.test"], utf8, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    try:
        client.sendmail("bob@example.net", ["nobody@example.test"], plain)
        fail("unknown recipient accepted")
    except smtplib.SMTPRecipientsRefused as error:
        code, text = error.recipients["nobody@example.test"]
        if code != 550 or not text.startswith(b"5.1.1"):
            fail(f"unknown recipient: {code} {text!r}")

expect_one("alice@example.test", b"X-Interop: smtplib-alias", plain)
trace = expect_one("carol@example.test", b"X-Interop: smtplib-alias", plain)
if trace.group("rcpt") != b"team@example.test" or trace.group("helo") != b"py.example.net":
    fail(f"alias trace: {trace.group(0)!r}")
expect_one("carol@example.test", b"X-Interop: smtplib-big", big)
trace = expect_one("jösé@example.test", "X-Interop: smtplib-utf8".encode(), utf8)
if trace.group("proto") != b"UTF8SMTP" or trace.group("from") != "bób@example.net".encode():
    fail(f"SMTPUTF8 trace: {trace.group(0)!r}")

# 3. Hand-made BDAT (RFC 3030), which smtplib does not speak.
import socket

with socket.create_connection(("127.0.0.1", PORT)) as raw:
    reader = raw.makefile("rb")

    def reply():
        lines = []
        while True:
            line = reader.readline()
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)

    chunks = [b"From: <bob@example.net>\r\nSubject: bdat\r\nX-Interop: bdat\r\n\r\n", b"first chunk\r\n.\r\nnot the end\r\n", b"last\r\n"]
    reply()
    raw.sendall(b"EHLO bdat.example.net\r\nMAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.test>\r\n")
    for _ in range(3):
        if not reply().startswith(b"250"):
            fail("BDAT setup refused")
    for index, chunk in enumerate(chunks):
        last = b" LAST" if index == len(chunks) - 1 else b""
        raw.sendall(b"BDAT %d%s\r\n" % (len(chunk), last) + chunk)
        answer = reply()
        if not answer.startswith(b"250"):
            fail(f"BDAT chunk {index}: {answer!r}")
    raw.sendall(b"QUIT\r\n")
    reply()
expect_one("alice@example.test", b"X-Interop: bdat", b"".join(chunks))

# 4. Submission: STARTTLS and AUTH with smtplib, and SCRAM-SHA-256 driven by scramp (a SCRAM
# implementation nobody on this project wrote).
import ssl

from scramp import ScramClient

context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
import base64

with smtplib.SMTP("127.0.0.1", SUBMISSION, local_hostname="laptop.example.net") as client:
    client.ehlo()
    if "auth" in client.esmtp_features:
        fail("AUTH advertised before TLS")
    plain = base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()).decode()
    code, text = client.docmd("AUTH", "PLAIN " + plain)
    if code != 538 or not text.startswith(b"5.7.11"):
        fail(f"AUTH before TLS: {code} {text!r}")
    client.starttls(context=context)
    client.ehlo()
    if "SCRAM-SHA-256" not in client.esmtp_features.get("auth", ""):
        fail(f"AUTH not advertised inside TLS: {client.esmtp_features}")
    client.login("alice@example.test", PASSWORD)
    # Complete (From, Date, Message-ID), so the submission server adds nothing (RFC 6409 §8).
    submitted = (b"From: <alice@example.test>\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\n"
                 b"Message-ID: <interop-submission@example.test>\r\nSubject: submitted\r\n"
                 b"X-Interop: smtplib-submission\r\n\r\nhi carol\r\n")
    client.sendmail("alice@example.test", ["carol@example.test"], submitted)
    try:
        client.sendmail("bob@example.net", ["carol@example.test"], submitted)
        fail("a foreign sender was accepted from alice")
    except smtplib.SMTPSenderRefused as error:
        if error.smtp_code != 553 or not error.smtp_error.startswith(b"5.7.1"):
            fail(f"foreign sender: {error.smtp_code} {error.smtp_error!r}")
trace = expect_one("carol@example.test", b"X-Interop: smtplib-submission", submitted)
if trace.group("proto") != b"ESMTPSA" or not trace.group("tls"):
    fail(f"submission trace: {trace.group(0)!r}")

with smtplib.SMTP("127.0.0.1", SUBMISSION, local_hostname="laptop.example.net") as client:
    client.starttls(context=context)
    client.ehlo()
    scram = ScramClient(["SCRAM-SHA-256"], "alice@example.test", PASSWORD)
    steps = []

    def scram_step(challenge=None):
        if challenge is None:
            steps.append("first")
            return scram.get_client_first()
        if len(steps) == 1:
            steps.append("final")
            scram.set_server_first(challenge.decode())
            return scram.get_client_final()
        steps.append("verify")
        scram.set_server_final(challenge.decode())  # raises unless the server proved the password
        return ""

    code, _ = client.auth("SCRAM-SHA-256", scram_step)
    if code != 235 or steps != ["first", "final", "verify"]:
        fail(f"SCRAM-SHA-256 with scramp: {code} {steps}")
    client.sendmail("alice@example.test", ["someone@remote.example"], b"Subject: scram\r\nX-Interop: scramp\r\n\r\nx\r\n")

# 5. A standard Maildir reader sees every message and parses it.
total = 0
for name in os.listdir(ROOT):
    box = mailbox.Maildir(os.path.join(ROOT, name), factory=None, create=False)
    for key in box.keys():
        message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        if not message["Received"] or not message["Return-Path"]:
            fail(f"{name}/{key}: trace fields not parsed by the email package")
        total += 1
if total != 9:
    fail(f"mailbox.Maildir found {total} messages, expected 9")
print(f"interop_check: smtplib, BDAT, STARTTLS, AUTH, SCRAM (scramp) and Maildir checks passed ({total} messages)")
