"""IMAP interop: Python's imaplib and imapclient against a live petrel (Scripts/interop/imap.sh).

    interop_imap.py tour SMTP_PORT IMAP_PORT IMAPS_PORT USER PASSWORD
        Every command and extension petrel offers, each response checked: the untagged responses
        and response codes, not just OK.
    interop_imap.py deliver SMTP_PORT RCPT SUBJECT
        One message over SMTP.
    interop_imap.py expect IMAPS_PORT USER PASSWORD FOLDER SUBJECT [FLAG]
        The folder holds a message with this subject (and flag) - what another client did shows.
    interop_imap.py flag IMAPS_PORT USER PASSWORD SUBJECT FLAG
        Sets a flag on the INBOX message with this subject.
    interop_imap.py shared SMTP_PORT IMAPS_PORT DOVECOT_PORT USER PASSWORD
        Dovecot and petrel serve one Maildir: flags set through one show through the other,
        messages each stores show in both, and mail delivered while both have the folder open is
        seen once by each, none lost, none twice.
"""

import base64
import imaplib
import re
import smtplib
import ssl
import sys
import threading
import time

import imapclient
import scramp


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check(condition, what):
    if not condition:
        raise SystemExit(f"interop_imap: FAIL: {what}")
    print(f"interop_imap: ok: {what}")


def command(m, *args):
    """Runs a command; returns (status, tagged data, untagged responses by name)."""
    m.untagged_responses.clear()
    name = args[0]
    typ, data = m._simple_command(*args)
    untagged = {k: list(v) for k, v in m.untagged_responses.items()}
    m.untagged_responses.clear()
    return typ, data, untagged


def text(values):
    return b" ".join(v if isinstance(v, bytes) else b"".join(x for x in v if isinstance(x, bytes)) for v in values).decode(
        "utf-8", "replace"
    )


def deliver(smtp_port, rcpt, subject, body="Hello from the interop test.\r\n"):
    s = smtplib.SMTP("127.0.0.1", int(smtp_port))
    s.sendmail(
        "sender@interop.example",
        [rcpt],
        (f"From: Sender <sender@interop.example>\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
         f"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@interop.example>\r\n"
         f"\r\n{body}").encode(),
    )
    s.quit()


def tour(smtp_port, imap_port, imaps_port, user, password):
    # --- Before TLS: no login at all (RFC 9051 §6.2, LOGINDISABLED).
    m = imaplib.IMAP4("127.0.0.1", int(imap_port))
    check(b"STARTTLS" in m.welcome or "STARTTLS" in m.capabilities, "the greeting offers STARTTLS")
    check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED before TLS")
    check(not any(c.startswith("AUTH=") for c in m.capabilities), "no AUTH= before TLS")
    typ, data, _ = command(m, "LOGIN", user, m._quote(password))
    check(typ == "NO" and b"[PRIVACYREQUIRED]" in data[0], "LOGIN before TLS: NO [PRIVACYREQUIRED]")
    m.starttls(context())
    typ, data, untagged = command(m, "CAPABILITY")
    caps = text(untagged["CAPABILITY"]).split()
    check("AUTH=PLAIN" in caps and "AUTH=SCRAM-SHA-256" in caps and "LOGINDISABLED" not in caps,
          "after STARTTLS: AUTH=PLAIN AUTH=SCRAM-SHA-256, no LOGINDISABLED")
    check("LITERAL+" in caps and "LITERAL-" not in caps, "LITERAL+ and not LITERAL-")
    typ, data, untagged = command(m, "ID", '("name" "interop")')
    check(typ == "OK" and "Petrel" in text(untagged["ID"]), "ID answers the server's name")

    # --- SCRAM-SHA-256 (RFC 7677), through imaplib's AUTHENTICATE with scramp as the client.
    client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
    state = {"step": 0}

    def scram(challenge):
        state["step"] += 1
        if state["step"] == 1:
            return client.get_client_first().encode()
        if state["step"] == 2:
            client.set_server_first(challenge.decode())
            return client.get_client_final().encode()
        client.set_server_final(challenge.decode())
        return b""

    try:
        typ, data = m.authenticate("SCRAM-SHA-256", scram)
    except imaplib.IMAP4.error as error:
        raise SystemExit(f"interop_imap: FAIL: SCRAM-SHA-256: {error}")
    check(typ == "OK" and b"[CAPABILITY" in data[0], "AUTHENTICATE SCRAM-SHA-256 (server signature verified)")
    caps = re.search(rb"\[CAPABILITY ([^\]]*)\]", data[0]).group(1).decode().split()
    for name in ["IMAP4rev2", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "UNSELECT", "ESEARCH",
                 "SASL-IR", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "ID", "CHILDREN", "BINARY", "UTF8=ACCEPT",
                 "ENABLE"]:
        check(name in caps, f"capability {name} after login")
    check(any(c.startswith("APPENDLIMIT=") for c in caps), "capability APPENDLIMIT=n")

    typ, data, untagged = command(m, "NAMESPACE")
    check(text(untagged["NAMESPACE"]) == '(("" ".")) NIL NIL', "NAMESPACE: one personal namespace, delimiter '.'")
    typ, data = m.list()
    lines = [d.decode() for d in data]
    for name, use in [("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk"),
                      ("Archive", "\\Archive")]:
        check(any(use in l and f'"{name}"' in l for l in lines), f"LIST shows {name} with {use}")
    typ, data, untagged = command(m, "LIST", "(SPECIAL-USE)", '""', '"*"', "RETURN", "(STATUS (MESSAGES UIDNEXT))")
    check(len(untagged.get("LIST", [])) == 5 and len(untagged.get("STATUS", [])) == 5,
          "LIST (SPECIAL-USE) RETURN (STATUS ...): five folders, each with its STATUS")
    check(command(m, "CREATE", "Projects.Petrel")[0] == "OK", "CREATE Projects.Petrel")
    typ, data, untagged = command(m, "LIST", '""', '"Projects*"', "RETURN", "(CHILDREN)")
    listed = text(untagged["LIST"])
    check("\\HasChildren" in listed and "\\HasNoChildren" in listed, "LIST RETURN (CHILDREN): \\HasChildren, \\HasNoChildren")
    typ, data, _ = command(m, "CREATE", "Projects.Petrel")
    check(typ == "NO" and b"[ALREADYEXISTS]" in data[0], "CREATE again: NO [ALREADYEXISTS]")
    check(command(m, "RENAME", "Projects.Petrel", "Petrel")[0] == "OK", "RENAME")
    check(command(m, "SUBSCRIBE", "Petrel")[0] == "OK", "SUBSCRIBE")
    typ, data, untagged = command(m, "LSUB", '""', '"Pet*"')
    check("Petrel" in text(untagged.get("LSUB", [])), "LSUB lists the subscribed folder")
    check(command(m, "UNSUBSCRIBE", "Petrel")[0] == "OK", "UNSUBSCRIBE")
    check(command(m, "DELETE", "Petrel")[0] == "OK", "DELETE")
    typ, data, _ = command(m, "SELECT", "Petrel")
    check(typ == "NO" and b"[NONEXISTENT]" in data[0], "SELECT of a deleted folder: NO [NONEXISTENT]")

    # --- Mail delivered over SMTP, read over IMAP.
    deliver(smtp_port, user, "tour one", "Line one\r\nneedle in the body\r\n")
    typ, data, untagged = command(m, "STATUS", "INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)")
    status = text(untagged["STATUS"])
    check(re.search(r"MESSAGES \d+ UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN \d+ DELETED 0 SIZE \d+", status), f"STATUS: {status}")
    m.untagged_responses.clear()
    typ, data = m.select("INBOX", readonly=True)
    check(typ == "OK" and "READ-ONLY" in m.untagged_responses, "EXAMINE: OK [READ-ONLY]")
    m.untagged_responses.clear()
    typ, data = m.select("INBOX")
    untagged = dict(m.untagged_responses)
    check(typ == "OK" and "READ-WRITE" in untagged, "SELECT: OK [READ-WRITE]")
    exists = int(untagged["EXISTS"][-1])
    check(exists >= 1, f"SELECT: {exists} EXISTS")
    check("UIDVALIDITY" in untagged and "UIDNEXT" in untagged and "PERMANENTFLAGS" in untagged,
          "SELECT: UIDVALIDITY, UIDNEXT, PERMANENTFLAGS")
    typ, data = m.fetch(str(exists), "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    fetched = data[0].decode()
    check('"tour one"' in fetched and "BODYSTRUCTURE (\"text\" \"plain\"" in fetched and "INTERNALDATE" in fetched,
          "FETCH ENVELOPE BODYSTRUCTURE INTERNALDATE")
    size = int(re.search(r"RFC822.SIZE (\d+)", fetched).group(1))
    typ, data = m.fetch(str(exists), "(BODY.PEEK[])")
    check(len(data[0][1]) == size and b"needle in the body" in data[0][1], "BODY.PEEK[] is RFC822.SIZE octets")
    typ, data = m.fetch(str(exists), "(BODY.PEEK[TEXT]<0.8>)")
    check(data[0][1] == b"Line one", "BODY.PEEK[TEXT]<0.8>: a partial")
    typ, data = m.fetch(str(exists), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    check(data[0][1] == b"Subject: tour one\r\n\r\n", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    typ, data = m.fetch(str(exists), "(BINARY[1] BINARY.SIZE[1])")
    check(b"needle" in data[0][1] and re.search(rb"BINARY.SIZE\[1\] \d+", data[-1]) and b"\\Seen" in data[-1],
          "BINARY[1] (no PEEK): the part, its size, and \\Seen set")
    typ, data = m.fetch(str(exists), "(FLAGS)")
    check(b"\\Seen" in data[0], "FETCH FLAGS: \\Seen after a body was read")
    typ, data = m.search(None, "TEXT", "NEEDLE")
    check(str(exists).encode() in data[0].split(), "SEARCH TEXT: case-insensitive over the body")
    typ, data, untagged = command(m, "UID", "SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    esearch = text(untagged["ESEARCH"])
    check(re.search(r"UID MIN \d+ MAX \d+ COUNT \d+", esearch), f"ESEARCH: {esearch}")
    typ, data, untagged = command(m, "STORE", str(exists), "+FLAGS", "(\\Flagged $Important)")
    check(typ == "OK" and "\\Flagged" in text(untagged["FETCH"]) and "$Important" in text(untagged["FETCH"]),
          "STORE +FLAGS: FETCH with the flags now")
    typ, data, untagged = command(m, "STORE", str(exists), "-FLAGS.SILENT", "($Important)")
    check(typ == "OK" and "FETCH" not in untagged, "STORE -FLAGS.SILENT: no FETCH")
    typ, data, untagged = command(m, "COPY", str(exists), "Archive")
    check(typ == "OK" and b"[COPYUID " in data[0], "COPY: OK [COPYUID ...]")

    # --- APPEND (UIDPLUS): APPENDUID once the message is on disk; TRYCREATE for a missing folder.
    typ, data = m.append("Drafts", "(\\Draft)", None, b"From: me@example.test\r\nSubject: draft\r\n\r\nwip\r\n")
    check(typ == "OK" and re.search(rb"\[APPENDUID \d+ \d+\]", data[0]), "APPEND: OK [APPENDUID v uid]")
    typ, data = m.append("Nowhere", None, None, b"Subject: x\r\n\r\nx\r\n")
    check(typ == "NO" and b"[TRYCREATE]" in data[0], "APPEND to a missing folder: NO [TRYCREATE]")

    # --- IDLE: a message delivered over SMTP shows within a second.
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    check(m.readline().startswith(b"+"), "IDLE: continuation")
    started = []

    def later():
        time.sleep(0.3)
        started.append(time.monotonic())
        deliver(smtp_port, user, "during idle")

    thread = threading.Thread(target=later)
    thread.start()
    line = m.readline()
    elapsed = time.monotonic() - started[0] if started else 99
    thread.join()
    check(re.match(rb"\* \d+ EXISTS", line) and elapsed < 1.5, f"IDLE: {line.strip()!r} {elapsed:.3f}s after the delivery began")
    m.send(b"DONE\r\n")
    check(m.readline().startswith(tag + b" OK"), "IDLE ends with DONE")
    m.untagged_responses.clear()

    # --- MOVE and EXPUNGE.
    typ, data, untagged = command(m, "MOVE", "1", "Trash")
    check(typ == "OK" and "EXPUNGE" in untagged and "COPYUID" in " ".join(text(v) for v in untagged.values()),
          "MOVE: COPYUID and EXPUNGE")
    typ, data, untagged = command(m, "STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
    typ, data, untagged = command(m, "EXPUNGE")
    check(typ == "OK" and untagged.get("EXPUNGE") == [b"1"], "EXPUNGE: * 1 EXPUNGE")
    typ, data, untagged = command(m, "UID", "EXPUNGE", "1:*")
    check(typ == "OK", "UID EXPUNGE (UIDPLUS)")
    check(command(m, "CHECK")[0] == "OK" and command(m, "NOOP")[0] == "OK", "CHECK, NOOP")
    check(command(m, "UNSELECT")[0] == "OK", "UNSELECT")
    m.state = "AUTH"
    tag = m._new_tag()
    m.send(tag + b" FETCH 1 FLAGS\r\n")
    check(m.readline().startswith(tag + b" BAD"), "FETCH after UNSELECT: BAD")
    check(m.select("Trash")[0] == "OK" and m.close()[0] == "OK", "SELECT, CLOSE")
    typ, data = m.logout()
    check(typ == "BYE", "LOGOUT: BYE")

    # --- SASL-IR (RFC 4959), LITERAL+, APPENDLIMIT, IMAP4rev2's ESEARCH, BINARY of an encoded part.
    r = imaplib.IMAP4_SSL("127.0.0.1", int(imaps_port), ssl_context=context())
    initial = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    r.send(b"s1 AUTHENTICATE PLAIN " + initial + b"\r\n")
    check(r.readline().startswith(b"s1 OK [CAPABILITY"), "AUTHENTICATE PLAIN with an initial response (SASL-IR)")
    r.state = "AUTH"
    r.send(b"s2 APPEND INBOX {27+}\r\nSubject: literal plus\r\n\r\nhi\r\n")
    check(re.match(rb"s2 OK \[APPENDUID \d+ \d+\]", r.readline()), "APPEND with a LITERAL+ literal, no continuation awaited")
    limit = int(next(c for c in caps if c.startswith("APPENDLIMIT=")).split("=")[1])
    r.send(b"s3 APPEND INBOX {%d}\r\n" % (limit + 1))
    check(r.readline().startswith(b"s3 NO [TOOBIG]"), "APPEND over APPENDLIMIT: NO [TOOBIG] before any octet is sent")
    typ, data, untagged = command(r, "ENABLE", "IMAP4rev2")
    check(untagged.get("ENABLED") == [b"IMAP4rev2"], "ENABLE IMAP4rev2")
    r.select("INBOX")
    typ, data, untagged = command(r, "SEARCH", "SUBJECT", '"literal plus"')
    check("SEARCH" not in untagged and re.search(r"ALL \d+", text(untagged.get("ESEARCH", []))),
          "after ENABLE IMAP4rev2, SEARCH answers ESEARCH")
    s = smtplib.SMTP("127.0.0.1", int(smtp_port))
    s.sendmail("sender@interop.example", [user], (
        "From: sender@interop.example\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "AAECAwRiaW5hcnk=\r\n--b--\r\n").encode())
    s.quit()
    r.noop()
    typ, data, untagged = command(r, "UID", "SEARCH", "SUBJECT", "attachment")
    found = re.search(r"ALL (\d+)", text(untagged["ESEARCH"])).group(1)
    typ, data = r.uid("FETCH", found, "(BINARY.PEEK[2] BINARY.SIZE[2])")
    check(data[0][1] == b"\x00\x01\x02\x03\x04binary" and b"BINARY.SIZE[2] 11" in data[-1],
          "BINARY.PEEK[2]: the base64 part decoded, NUL octets in a literal8")
    r.logout()

    # --- Port 993 with imapclient (IMAP4rev1: modified UTF-7 names, * SEARCH answers).
    c = imapclient.IMAPClient("127.0.0.1", port=int(imaps_port), ssl=True, ssl_context=context())
    c.login(user, password)
    c.create_folder("Reise Köln")
    check(any(f[2] == "Reise Köln" for f in c.list_folders()), "a non-ASCII folder name round-trips in modified UTF-7")
    # The same folder in UTF-8 once UTF8=ACCEPT is on (RFC 6855).
    u = imaplib.IMAP4_SSL("127.0.0.1", int(imaps_port), ssl_context=context())
    u.login(user, password)
    typ, data, untagged = command(u, "ENABLE", "UTF8=ACCEPT")
    check(untagged.get("ENABLED") == [b"UTF8=ACCEPT"], "ENABLE UTF8=ACCEPT")
    typ, data, untagged = command(u, "LIST", '""', '"Reise*"')
    check(any("Reise Köln".encode() in line for line in untagged.get("LIST", [])), "after UTF8=ACCEPT, LIST names in UTF-8")
    u.logout()
    check(c.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] >= 1, "STATUS over 993")
    c.select_folder("Archive", readonly=True)
    messages = c.search(["SUBJECT", "tour"])
    check(len(messages) >= 1, "imapclient SEARCH SUBJECT")
    envelope = c.fetch(messages, ["ENVELOPE"])[messages[0]][b"ENVELOPE"]
    check(envelope.subject == b"tour one", "imapclient ENVELOPE")
    c.delete_folder("Reise Köln")
    c.logout()


def expect(imaps_port, user, password, folder, subject, flag=None):
    c = imapclient.IMAPClient("127.0.0.1", port=int(imaps_port), ssl=True, ssl_context=context())
    c.login(user, password)
    c.select_folder(folder, readonly=True)
    found = c.search(["SUBJECT", subject])
    check(len(found) == 1, f"{folder} holds one message '{subject}' (found {len(found)})")
    if flag:
        flags = c.get_flags(found)[found[0]]
        check(flag.encode() in flags, f"'{subject}' in {folder} has {flag}: {flags}")
    c.logout()


def flag(imaps_port, user, password, subject, name):
    c = imapclient.IMAPClient("127.0.0.1", port=int(imaps_port), ssl=True, ssl_context=context())
    c.login(user, password)
    c.select_folder("INBOX")
    found = c.search(["SUBJECT", subject])
    c.add_flags(found, [name])
    c.logout()


def shared(smtp_port, imaps_port, dovecot_port, user, password):
    petrel = imapclient.IMAPClient("127.0.0.1", port=int(imaps_port), ssl=True, ssl_context=context())
    petrel.login(user, password)
    dovecot = imapclient.IMAPClient("127.0.0.1", port=int(dovecot_port), ssl=False)
    dovecot.login(user, "dovecot")
    deliver(smtp_port, user, "shared one")
    for client in (petrel, dovecot):
        client.select_folder("INBOX")
    found = dovecot.search(["SUBJECT", "shared one"])
    check(len(found) == 1, "Dovecot sees a message petrel received")
    dovecot.add_flags(found, [imapclient.FLAGGED])
    petrel.noop()
    mine = petrel.search(["SUBJECT", "shared one"])
    check(imapclient.FLAGGED in petrel.get_flags(mine)[mine[0]], "a flag set through Dovecot shows through petrel")
    petrel.add_flags(mine, [imapclient.ANSWERED])
    dovecot.noop()
    check(imapclient.ANSWERED in dovecot.get_flags(found)[found[0]], "a flag set through petrel shows through Dovecot")
    dovecot.append("INBOX", b"From: d@example.test\r\nSubject: stored by dovecot\r\n\r\nx\r\n")
    petrel.noop()
    check(len(petrel.search(["SUBJECT", "stored by dovecot"])) == 1, "petrel sees a message Dovecot stored")
    petrel.append("INBOX", b"From: p@example.test\r\nSubject: stored by petrel\r\n\r\nx\r\n")
    dovecot.noop()
    check(len(dovecot.search(["SUBJECT", "stored by petrel"])) == 1, "Dovecot sees a message petrel stored")
    # A burst of deliveries while both have INBOX selected and look again and again.
    stop = threading.Event()

    def poll(client):
        while not stop.is_set():
            client.noop()
            client.search(["ALL"])

    petrel_poll = imapclient.IMAPClient("127.0.0.1", port=int(imaps_port), ssl=True, ssl_context=context())
    petrel_poll.login(user, password)
    petrel_poll.select_folder("INBOX")
    dovecot_poll = imapclient.IMAPClient("127.0.0.1", port=int(dovecot_port), ssl=False)
    dovecot_poll.login(user, "dovecot")
    dovecot_poll.select_folder("INBOX")
    pollers = [threading.Thread(target=poll, args=(c,)) for c in (petrel_poll, dovecot_poll)]
    for thread in pollers:
        thread.start()
    for number in range(30):
        deliver(smtp_port, user, f"burst {number}")
        if number % 10 == 0:
            # Dovecot moves new mail to cur/ and renames files as it flags them, meanwhile.
            ids = dovecot.search(["SUBJECT", "burst"])
            if ids:
                dovecot.add_flags(ids[:3], [imapclient.SEEN])
    stop.set()
    for thread in pollers:
        thread.join()
    for name, client in (("petrel", petrel), ("Dovecot", dovecot)):
        client.noop()
        ids = client.search(["SUBJECT", "burst"])
        subjects = sorted(m[b"ENVELOPE"].subject for m in client.fetch(ids, ["ENVELOPE"]).values())
        check(subjects == sorted(f"burst {n}".encode() for n in range(30)),
              f"{name}: all 30 messages delivered during the burst, each once ({len(subjects)})")
    uids = petrel.search(["ALL"])
    check(len(uids) == len(set(uids)), "petrel's UIDs are distinct")
    for client in (petrel, dovecot, petrel_poll, dovecot_poll):
        client.logout()


def quota(smtp_port, imaps_port, user, password):
    """The user has a quota of 4 KiB (`petrel user quota`): mail that fills it is taken, the
    next is refused for now at RCPT TO (452 4.2.2), and the sender, retrying, gets it through once
    the user made room; it arrives once. APPEND over the quota gets NO [OVERQUOTA]."""
    client = imapclient.IMAPClient("127.0.0.1", port=int(imaps_port), ssl=True, ssl_context=context())
    client.login(user, password)
    check(b"QUOTA" in client.capabilities(), "QUOTA is announced")
    big = ("x" * 70 + "\r\n") * 42
    deliver(smtp_port, user, "quota one", big)
    refused = None
    try:
        deliver(smtp_port, user, "quota two", big)
    except smtplib.SMTPRecipientsRefused as error:
        refused = error.recipients[user]
    check(refused is not None and refused[0] == 452 and refused[1].startswith(b"4.2.2"),
          f"a full mailbox: 452 4.2.2 at RCPT TO ({refused})")
    roots, quotas = client.get_quota_root("INBOX")
    check(roots.quota_roots == [""] and quotas and quotas[0].resource == "STORAGE" and quotas[0].limit == 4,
          f"GETQUOTAROOT: the account's one root and its STORAGE limit in KiB ({roots}, {quotas})")
    try:
        client.append("INBOX", ("Subject: over\r\n\r\n" + big).encode())
        check(False, "APPEND over the quota is refused")
    except imapclient.exceptions.IMAPClientError as error:
        check("OVERQUOTA" in str(error), f"APPEND over the quota: NO [OVERQUOTA] ({error})")
    # The user makes room; the sender's next try (as an MTA retries a 4xx) gets through.
    client.select_folder("INBOX")
    client.delete_messages(client.search(["SUBJECT", "quota one"]))
    client.expunge()
    deliver(smtp_port, user, "quota two", big)
    client.noop()
    found = client.search(["SUBJECT", "quota two"])
    check(len(found) == 1, f"the refused message arrived once the user made room, once ({found})")
    client.logout()


def compress(imaps_port, user, password):
    """COMPRESS=DEFLATE (RFC 4978) against Python's zlib, a DEFLATE of its own: raw DEFLATE
    (wbits -15) both ways after the OK, each response complete at once (a sync flush)."""
    import socket
    import zlib
    raw = context().wrap_socket(socket.create_connection(("127.0.0.1", int(imaps_port))))
    raw.settimeout(10)
    buffer = b""

    def line():
        nonlocal buffer
        while b"\r\n" not in buffer:
            buffer += raw.recv(65536)
        first, buffer = buffer.split(b"\r\n", 1)
        return first

    line()
    raw.sendall(f"a LOGIN {user} \"{password}\"\r\n".encode())
    check(b"COMPRESS=DEFLATE" in line(), "COMPRESS=DEFLATE is announced after login")
    raw.sendall(b"b COMPRESS DEFLATE\r\n")
    check(line() == b"b OK DEFLATE active", "COMPRESS DEFLATE: OK")
    deflate = zlib.compressobj(wbits=-15)
    inflate = zlib.decompressobj(wbits=-15)
    text = inflate.decompress(buffer)

    def command(tag, body):
        nonlocal text
        raw.sendall(deflate.compress(f"{tag} {body}\r\n".encode()) + deflate.flush(zlib.Z_SYNC_FLUSH))
        while f"\r\n{tag} ".encode() not in b"\r\n" + text:
            text += inflate.decompress(raw.recv(65536))
        answer, text = text, b""
        return answer.decode("utf-8", "replace")

    answer = command("c", "SELECT INBOX")
    check("EXISTS" in answer and "c OK" in answer, "SELECT over DEFLATE")
    answer = command("d", "FETCH 1:* (ENVELOPE BODY.PEEK[])")
    check("d OK FETCH done" in answer, f"FETCH of whole messages over DEFLATE ({len(answer)} octets)")
    answered = sum(1 for n in range(50) if f"n{n} OK NOOP done" in command(f"n{n}", "NOOP"))
    check(answered == 50, f"fifty NOOPs, each answered whole at once ({answered})")
    check("e NO [COMPRESSIONACTIVE]" in command("e", "COMPRESS DEFLATE"), "COMPRESS twice: NO [COMPRESSIONACTIVE]")
    command("f", "LOGOUT")
    raw.close()


if __name__ == "__main__":
    action, args = sys.argv[1], sys.argv[2:]
    if action == "tour":
        tour(*args)
    elif action == "deliver":
        deliver(*args)
    elif action == "expect":
        expect(*args)
    elif action == "flag":
        flag(*args)
    elif action == "shared":
        shared(*args)
    elif action == "quota":
        quota(*args)
    elif action == "compress":
        compress(*args)
    else:
        raise SystemExit(__doc__)
