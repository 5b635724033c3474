#!/usr/bin/env python3
"""Petrel's IMAP against Dovecot's, side by side: the corpus, the measurements, the table.

    bench/imap.py corpus DIR BIG MID        a Maildir (INBOX: MID messages, .Big: BIG) in DIR
    bench/imap.py run OUT REPS IDLE BIG MID petrel=IMAPS,SMTP,PID dovecot=IMAPS,SMTP,PID
                                            (bench/imap runs both)

Every measurement is from the client's side of the socket: the time from a command's first
octet sent to its tagged response's last octet read, with the octets counted; nothing is
parsed but the lines the client needs (tags, EXISTS, HIGHESTMODSEQ). Both servers are asked
the same commands over TLS, in alternating order, REPS times; the table has medians and the
ratio Petrel / Dovecot (time: below 1 is Petrel faster). See docs/performance.md.
"""
import os
import random
import re
import smtplib
import socket
import ssl
import statistics
import sys
import time

USER = "bench@bench.test"
PASSWORD = "benchpass"
SENDERS = [f"sender{n}@example.org" for n in range(50)]
WORDS = ("the of and to in is it that for was on are as with his they at be this from have or by one had not "
         "but what all were when we there can an your which their said if do will each about how up out them "
         "then she many some so these would other into has more her two like him see time could no make than "
         "first been its who now people my made over did down only way find use may water long little very "
         "after words called just where most know get through back much before go good new write our used me "
         "man too any day same right look think also around another came come work three word must because "
         "does part even place well such here take why things help put years different away again off went "
         "old number great tell men say small every found still between name should home big give air line "
         "set own under read last never us left end along while might next sound below saw something thought "
         "both few those always looked show large often together asked house world going want school important "
         "until form food keep children feet land side without boy once animals life enough took sometimes four "
         "head above kind began almost live page got earth need far hand high year mother light parts country "
         "father let night following picture being study second eyes soon times story boys since white days ever "
         "paper hard near sentence better best across during today others however sure means knew try told "
         "young miles sun ways thing whole hear example heard several change answer room sea against top turned "
         "learn point city play toward five using himself usually").split()


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- The corpus ---------------------------------------------------------------------------

def message(rng, number, when):
    sender = rng.choice(SENDERS)
    words = rng.randint(80, 1200)
    body = []
    line = []
    for _ in range(words):
        line.append(rng.choice(WORDS))
        if len(line) == 12:
            body.append(" ".join(line))
            line = []
    body.append(" ".join(line))
    if rng.random() < 0.01:
        body.insert(rng.randint(0, len(body)), "the needle is here")
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
    header = (f"Return-Path: <{sender}>\nFrom: Sender {sender.split('@')[0]} <{sender}>\nTo: <{USER}>\n"
              f"Subject: {subject}\nDate: {date}\nMessage-ID: <{number}.{when}@example.org>\n")
    text = "\n".join(body) + "\n"
    if rng.random() < 0.2:
        # A multipart one: text and a small attachment, as mail programs write them.
        boundary = f"b{number}"
        attachment = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                             for _ in range(76 * rng.randint(5, 40)))
        attachment = "\n".join(attachment[i:i + 76] for i in range(0, len(attachment), 76))
        return (header + f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n"
                f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n{text}"
                f"--{boundary}\nContent-Type: application/octet-stream; name=\"data.bin\"\n"
                f"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"data.bin\"\n\n"
                f"{attachment}\n--{boundary}--\n")
    return header + "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n" + text


def corpus(directory, big, mid):
    """A Maildir++ as a delivery agent leaves it: files in cur/ (seen by a client once), named
    `time.M<n>P1Q<n>.bench,S=<size>:2,` with some flags, their mtimes the arrival times."""
    rng = random.Random(7)
    root = os.path.join(directory, USER)
    for folder, count in (("", int(mid)), (".Big", int(big))):
        path = os.path.join(root, folder)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        if folder:
            open(os.path.join(path, "maildirfolder"), "w").close()
        start = 1_767_225_600  # 2026-01-01
        for number in range(count):
            when = start + number * (30_000_000 // count)
            text = message(rng, number, when).encode()
            flags = "".join(flag for flag, chance in (("F", 0.05), ("R", 0.2), ("S", 0.7)) if rng.random() < chance)
            name = f"{when}.M{number}P1Q{number}.bench,S={len(text)}:2,{flags}"
            file = os.path.join(path, "cur", name)
            with open(file, "wb") as f:
                f.write(text)
            os.utime(file, (when, when))
    print(f"corpus: {root}: INBOX {mid}, Big {big}")


# --- A client that counts ----------------------------------------------------------------

class Client:
    def __init__(self, port):
        self.sock = context().wrap_socket(socket.create_connection(("127.0.0.1", port)))
        self.sock.settimeout(600)
        self.buffer = b""
        self.received = 0
        self.tag = 0
        self.line()

    def line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
                return line
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.received += len(data)
            self.buffer += data

    def command(self, text, literal=None):
        """Sends a command (and a LITERAL+ literal), reads to its tagged response. Returns the
        lines (literal octets left inside them as they come), the seconds and the octets."""
        self.tag += 1
        tag = f"t{self.tag}".encode()
        before = self.received - len(self.buffer)
        started = time.perf_counter()
        if literal is None:
            self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text.encode() + f" {{{len(literal)}+}}\r\n".encode() + literal + b"\r\n")
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                break
        elapsed = time.perf_counter() - started
        octets = self.received - len(self.buffer) - before
        if not line.startswith(tag + b" OK"):
            raise RuntimeError(f"{text[:60]}: {line[:200]!r}")
        return lines, elapsed, octets

    def login(self):
        self.command(f'LOGIN {USER} "{PASSWORD}"')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def code(lines, name):
    for line in lines:
        match = re.search(rb"\[" + name.encode() + rb" (\d+)\]", line)
        if match:
            return int(match.group(1))
    return None


# --- The measurements --------------------------------------------------------------------

def select_fetch_flags(port):
    c = Client(port)
    c.login()
    _, t1, o1 = c.command("SELECT Big")
    lines, t2, o2 = c.command("UID FETCH 1:* (FLAGS)")
    c.close()
    return t1 + t2, o1 + o2, len(lines) - 1


def fetch_envelope(port):
    c = Client(port)
    c.login()
    c.command("SELECT INBOX")
    lines, t, o = c.command("FETCH 1:* (ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE)")
    c.close()
    return t, o, sum(1 for line in lines if b" FETCH (" in line)


def search_text(port):
    c = Client(port)
    c.login()
    c.command("EXAMINE INBOX")
    lines, t, o = c.command('SEARCH TEXT "needle"')
    c.close()
    found = [line for line in lines if line.startswith(b"* SEARCH") or line.startswith(b"* ESEARCH")]
    return t, o, len(found[0].split()) - 2 if found else 0


def search_from_since(port):
    c = Client(port)
    c.login()
    c.command("EXAMINE INBOX")
    lines, t, o = c.command('SEARCH FROM "sender7" SINCE 1-Jun-2026')
    c.close()
    found = [line for line in lines if line.startswith(b"* SEARCH")]
    return t, o, len(found[0].split()) - 2 if found else 0


def append(port, count=1000, size=4096):
    c = Client(port)
    c.login()
    rng = random.Random(1)
    folder = f"Appends{rng.randint(0, 1 << 30)}"
    c.command(f"CREATE {folder}")
    started = time.perf_counter()
    octets = 0
    for number in range(count):
        body = (f"From: a@example.org\r\nSubject: append {number}\r\n\r\n").encode()
        body += b"x" * (size - len(body) - 2) + b"\r\n"
        _, _, o = c.command(f"APPEND {folder}", body)
        octets += o
    elapsed = time.perf_counter() - started
    c.command(f"DELETE {folder}")
    c.close()
    return elapsed, octets, count


def qresync(port, changes=100):
    """A client knows Big at (UIDVALIDITY, HIGHESTMODSEQ) and leaves; another session changes
    the flags of 100 messages; the client comes back with QRESYNC: the time and the octets of
    that SELECT."""
    c = Client(port)
    c.login()
    c.command("ENABLE QRESYNC")
    lines, _, _ = c.command("SELECT Big")
    validity, modseq = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
    uids = []
    fetched, _, _ = c.command("UID SEARCH ALL")
    for line in fetched:
        if line.startswith(b"* SEARCH"):
            uids = [int(x) for x in line.split()[2:]]
        elif line.startswith(b"* ESEARCH"):
            raise RuntimeError("ESEARCH not expected")
    c.close()
    other = Client(port)
    other.login()
    other.command("SELECT Big")
    rng = random.Random()
    for uid in rng.sample(uids, changes):
        other.command(f"UID STORE {uid} {rng.choice('+-')}FLAGS.SILENT (\\Flagged)")
    other.close()
    back = Client(port)
    back.login()
    back.command("ENABLE QRESYNC")
    lines, t, o = back.command(f"SELECT Big (QRESYNC ({validity} {modseq}))")
    back.close()
    return t, o, sum(1 for line in lines if b" FETCH (" in line)


def tree_memory(pids):
    """PSS in KiB of these processes and their descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    queue = list(pids)
    total = 0
    while queue:
        pid = queue.pop()
        queue.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def idle(port, pids, smtp_port, connections, deliveries=10):
    """CONNECTIONS sessions in IDLE on INBOX: the server's memory per session (PSS, the whole
    process tree), then the time from the SMTP 250 of a message to its `* n EXISTS` in one of
    them, DELIVERIES times, with all of them still idling."""
    before = tree_memory(pids)
    held = []
    for number in range(connections):
        try:
            c = Client(port)
        except OSError as error:
            for c in held:
                c.close()
            raise RuntimeError(f"session {number + 1} of {connections} refused: {error}")
        c.login()
        c.command("SELECT INBOX")
        c.sock.sendall(b"i IDLE\r\n")
        if not c.line().startswith(b"+"):
            raise RuntimeError("IDLE refused")
        held.append(c)
    time.sleep(2)
    after = tree_memory(pids)
    watcher = held[len(held) // 2]
    latencies = []
    for number in range(deliveries):
        smtp = smtplib.SMTP("127.0.0.1", smtp_port)
        smtp.sendmail("sender@example.org", [USER], f"From: <sender@example.org>\r\nSubject: ping {number}\r\n\r\nhi\r\n")
        sent = time.perf_counter()
        smtp.quit()
        while True:
            line = watcher.line()
            if line.endswith(b" EXISTS"):
                break
        latencies.append(time.perf_counter() - sent)
    for c in held:
        c.close()
    return (after - before) / connections, statistics.median(latencies), max(latencies)


# --- The run -----------------------------------------------------------------------------

def run(out, servers, reps, connections, big, mid):
    results = {name: {} for name in servers}

    def record(name, test, value):
        results[name].setdefault(test, []).append(value)

    # Warm: each server reads the corpus once (Petrel indexes it: structures, previews; Dovecot
    # makes its index and cache), unrecorded.
    for name in servers:
        port = servers[name]["port"]
        started = time.perf_counter()
        for measure in (select_fetch_flags, fetch_envelope, search_text, search_from_since):
            measure(port)
        print(f"warm {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    order = list(servers)
    for rep in range(reps):
        for name in order:
            port = servers[name]["port"]
            t, o, n = select_fetch_flags(port)
            record(name, f"1 SELECT + UID FETCH 1:* (FLAGS), {big:,} messages (s)", t)
            t, o, n = fetch_envelope(port)
            record(name, f"2 FETCH 1:* (ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE), {mid:,} (s)", t)
            t, o, n = search_text(port)
            record(name, f'3a SEARCH TEXT "needle", {mid:,} (s)', t)
            t, o, n = search_from_since(port)
            record(name, f"3b SEARCH FROM x SINCE d, {mid:,} (s)", t)
            t, o, n = append(port)
            record(name, "4 APPEND 1,000 x 4 KiB, each durable (s)", t)
            t, o, n = qresync(port)
            record(name, f"5 QRESYNC SELECT after 100 flag changes, {big:,} (s)", t)
            record(name, "5 QRESYNC SELECT after 100 flag changes (octets)", o)
            print(f"rep {rep} {name}: done", file=sys.stderr, flush=True)
        order.reverse()
    table(out, results, servers)  # 1 to 5 are kept whatever the idle sessions do
    if connections:
        for name in servers:
            try:
                per, median, worst = idle(
                    servers[name]["port"], servers[name]["pids"], servers[name]["smtp"], connections
                )
            except (OSError, RuntimeError) as error:
                print(f"idle {name}: failed: {error}", file=sys.stderr, flush=True)
                record(name, f"6a memory per IDLE session, {connections} sessions (KiB, PSS)", float("nan"))
                record(name, f"6b SMTP 250 to * EXISTS with {connections} in IDLE (ms)", float("nan"))
                continue
            record(name, f"6a memory per IDLE session, {connections} sessions (KiB, PSS)", per)
            record(name, f"6b SMTP 250 to * EXISTS with {connections} in IDLE (ms)", median * 1000)
            print(f"idle {name}: {per:.1f} KiB per session, {median * 1000:.1f} ms (worst {worst * 1000:.1f})",
                  file=sys.stderr, flush=True)
    table(out, results, servers)


def table(out, results, servers):
    names = list(servers)
    table = ["| measurement | " + " | ".join(names) + " | " + " / ".join(names) + " |",
             "| --- | " + " | ".join("---" for _ in names) + " | --- |"]
    with open(os.path.join(out, "results.csv"), "w") as csv:
        csv.write("server,test,values\n")
        for test in results[names[0]]:
            medians = [statistics.median(results[name][test]) for name in names]
            for name in names:
                csv.write(f"{name},\"{test}\"," + " ".join(f"{v:.4f}" for v in results[name][test]) + "\n")
            ratio = medians[0] / medians[1] if len(medians) == 2 and medians[1] else float("nan")
            table.append(f"| {test} | " + " | ".join(f"{m:.3f}" if m < 100 else f"{m:.0f}" for m in medians)
                         + f" | {ratio:.2f} |")
    text = "\n".join(table) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    action, args = sys.argv[1], sys.argv[2:]
    if action == "corpus":
        corpus(*args)
    elif action == "run":
        out, reps, connections, big, mid = args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4])
        servers = {}
        for spec in args[5:]:
            name, values = spec.split("=")
            port, smtp, pids = values.split(",", 2)
            servers[name] = {"port": int(port), "smtp": int(smtp), "pids": [int(p) for p in pids.split(",")]}
        run(out, servers, reps, connections, big, mid)
    else:
        raise SystemExit(__doc__)
