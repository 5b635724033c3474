#!/usr/bin/env python3
"""Crash and fault tests against a real petrel server (docs/security.md).

    Scripts/faults/faults.py PETREL_BINARY [--kills N] [--only kill imapkill diskfull readonly dns]

  kill      12 clients (Python's smtplib; 6 to a local mailbox on port 25, 6 submitting to a remote
            address over implicit TLS with AUTH) send without pause while the server is killed
            with SIGKILL N times (default 50) at random moments and started again. Each client
            records which of its messages were answered 250. Then: every such message is in the
            Maildir or the queue exactly once and complete, none is anywhere twice, nothing is
            left in incoming/. Finally the queue is released: every queued message reaches the
            remote MX (aiosmtpd on 127.0.0.2:25, found by MX lookup) exactly once.
  imapkill  6 IMAP clients (Python's imaplib over IMAPS) APPEND without pause while the server is
            killed N times: every message answered `OK [APPENDUID v uid]` is in the Maildir once,
            complete, and still has that UID; UIDs ascend, none given twice.
  diskfull  the data directory on a 32 MiB tmpfs, filled up to 1.5 MiB: messages are refused with
            452 4.3.1 and nothing is lost; space comes back and messages are accepted again.
  readonly  the data directory made read-only under a running server: messages get a 4xx,
            the server stays up, and accepts again once it is writable; a server started on a
            read-only directory exits with an error that names it.
  dns       the DNS server answers SERVFAIL, then not at all: inbound mail gets its verdict (a
            temporary 451 4.7.5 from DMARC) within the time limit, outbound mail stays queued
            and deferred; then DNS answers and the queued message is delivered once.

diskfull, readonly and the remote MX need root (mount, port 25). Exit status 1 if a check failed.
"""
import argparse
import contextlib
import imaplib
import random
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PASSWORD, Petrel, body_of, expected_body, message, test_id  # noqa: E402

failures: list[str] = []


def check(condition: bool, what: str):
    if not condition:
        failures.append(what)
        print(f"  FAIL: {what}", flush=True)


# --- a remote MX and a DNS server we control ---------------------------------------------------

class RemoteMX:
    """aiosmtpd on 127.0.0.2:25, counting the X-Test-Id of what it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.received: Counter = Counter()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.received[test_id(envelope.content) or "?"] += 1
                return "250 2.0.0 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.2", port=25)
        self.controller.start()

    def stop(self):
        self.controller.stop()


class FakeDNS:
    """A UDP DNS server whose behaviour can be switched: "answer" (remote.example's MX is
    127.0.0.2, every other name NXDOMAIN), "servfail", or "timeout" (no answer at all)."""

    def __init__(self):
        import socket

        from dnslib import QTYPE, RCODE, RR, A, DNSRecord, MX

        self.mode = "answer"
        self.queries = 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]

        def serve():
            while True:
                try:
                    data, peer = self.socket.recvfrom(4096)
                except OSError:
                    return
                self.queries += 1
                try:
                    query = DNSRecord.parse(data)
                except Exception:  # noqa: BLE001 - not a query
                    continue
                if self.mode == "timeout":
                    continue
                reply = query.reply()
                name = str(query.q.qname).rstrip(".").lower()
                if self.mode == "servfail":
                    reply.header.rcode = RCODE.SERVFAIL
                elif name == "remote.example" and query.q.qtype == QTYPE.MX:
                    reply.add_answer(RR("remote.example", QTYPE.MX, rdata=MX("mx.remote.example"), ttl=60))
                elif name == "mx.remote.example" and query.q.qtype == QTYPE.A:
                    reply.add_answer(RR("mx.remote.example", QTYPE.A, rdata=A("127.0.0.2"), ttl=60))
                elif name not in ("remote.example", "mx.remote.example"):
                    reply.header.rcode = RCODE.NXDOMAIN
                self.socket.sendto(reply.pack(), peer)

        threading.Thread(target=serve, daemon=True).start()

    def stop(self):
        self.socket.close()


# --- clients -----------------------------------------------------------------------------------

def unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Clients:
    """Clients that send until stopped, each message with an id never used again; `acknowledged`
    holds the ids answered 250."""

    def __init__(self, server: Petrel, count: int):
        self.server = server
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.attempted = 0
        self.threads = [threading.Thread(target=self.client, args=(n,)) for n in range(count)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def client(self, number: int):
        submits = number % 2 == 1
        sequence = 0
        while not self.stopping.is_set():
            try:
                if submits:
                    client = smtplib.SMTP_SSL("127.0.0.1", self.server.submissions_port, timeout=10,
                                              context=unverified_context())
                    client.ehlo(f"client{number}.example")
                    client.login("alice@localhost", PASSWORD)
                else:
                    client = smtplib.SMTP("127.0.0.1", self.server.port, timeout=10)
                    client.ehlo(f"client{number}.example")
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)
                continue
            try:
                while not self.stopping.is_set():
                    sequence += 1
                    ident = f"c{number}-{sequence}"
                    with self.lock:
                        self.attempted += 1
                    if submits:
                        client.sendmail("alice@localhost", ["rcpt@remote.example"],
                                        message(ident, sender="alice@localhost"))
                    else:
                        client.sendmail(f"sender{number}@example.net", ["postmaster@localhost"], message(ident))
                    with self.lock:
                        self.acknowledged.add(ident)
            except (OSError, smtplib.SMTPException):
                pass  # the server was killed: reconnect, and never send this id again
            finally:
                try:
                    client.close()
                except OSError:
                    pass


def stored(server: Petrel) -> tuple[Counter, list[str]]:
    """Ids in the Maildir and the queue, with how often each is there; and what is wrong."""
    counts: Counter = Counter()
    problems = []
    for path in server.maildir_files() + server.queue_files():
        content = path.read_bytes()
        ident = test_id(content)
        if ident is None:
            problems.append(f"{path.name}: no X-Test-Id (a partial file?)")
            continue
        counts[ident] += 1
        if body_of(content) != expected_body(content):
            problems.append(f"{path.name}: the content of {ident} is not what was sent")
    return counts, problems


def send(server: Petrel, ident: str, lines: int | None = None) -> tuple[int, str]:
    """One message on its own connection; (code, text) of the reply that decided it."""
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=60) as client:
            client.ehlo("faults.example")
            client.sendmail("sender@example.net", ["postmaster@localhost"], message(ident, lines=lines))
            return 250, ""
    except smtplib.SMTPRecipientsRefused as error:
        code, text = next(iter(error.recipients.values()))
        return code, text.decode(errors="replace")
    except smtplib.SMTPResponseException as error:
        return error.smtp_code, error.smtp_error.decode(errors="replace")
    except (OSError, smtplib.SMTPException) as error:
        return 0, repr(error)


# --- the scenarios ----------------------------------------------------------------------------

def scenario_kill(binary: str, kills: int, remote: RemoteMX | None):
    with tempfile.TemporaryDirectory(prefix="petrel-kill-") as directory:
        config = ("[limits]\nconnections_per_ip = 100\n[inbound]\nverify = false\n"
                  "[delivery]\nhold = true\n")
        server = Petrel(binary, Path(directory), config=config, submissions=True)
        server.add_user()
        server.start()
        clients = Clients(server, 12)
        clients.start()
        started = time.monotonic()
        restart_times = []
        for _ in range(kills):
            time.sleep(random.uniform(0.2, 1.0))
            server.kill()
            restarted = time.monotonic()
            server.start()
            restart_times.append(time.monotonic() - restarted)
        time.sleep(1)
        clients.stop()
        elapsed = time.monotonic() - started
        check(server.stop() == 0, "kill: petrel did not exit 0 on SIGTERM")

        counts, problems = stored(server)
        acknowledged = clients.acknowledged
        missing = sorted(acknowledged - set(counts))
        twice = sorted(ident for ident, count in counts.items() if count > 1)
        queued = [test_id(p.read_bytes()) for p in server.queue_files()]
        print(f"kill: {kills} kills in {elapsed:.0f}s (restart median {sorted(restart_times)[len(restart_times) // 2]:.2f}s), "
              f"{clients.attempted} messages attempted, {len(acknowledged)} answered 250; stored "
              f"{sum(counts.values())} ({len(queued)} in the queue); lost {len(missing)}, twice {len(twice)}, "
              f"damaged {len(problems)}", flush=True)
        check(len(acknowledged) >= 20 * kills ** 0.5, f"kill: only {len(acknowledged)} messages acknowledged")
        check(not missing, f"kill: acknowledged but lost: {missing[:10]}")
        check(not twice, f"kill: stored twice: {twice[:10]}")
        check(not problems, f"kill: {problems[:5]}")
        check(not server.incoming_files(), f"kill: left in incoming/: {server.incoming_files()[:5]}")
        check(server.starts == kills + 1, f"kill: {server.starts} starts")

        if remote is None:
            print("kill: the queue release to a remote MX needs root (port 25); skipped")
            return
        # The queue recovers: released, every queued message reaches the remote MX once.
        dns = FakeDNS()
        server.reconfigure(f'[limits]\nconnections_per_ip = 100\n[inbound]\nverify = false\n'
                           f'[dns]\nservers = ["127.0.0.1:{dns.port}"]\n')
        server.start()
        deadline = time.monotonic() + 120
        while server.queue_files() and time.monotonic() < deadline:
            time.sleep(0.5)
        server.stop()
        dns.stop()
        arrived = Counter({ident: remote.received[ident] for ident in queued})
        print(f"kill: queue released: {sum(arrived.values())} of {len(queued)} delivered to the remote MX, "
              f"{len(server.queue_files())} left in the queue", flush=True)
        check(not server.queue_files(), f"kill: {len(server.queue_files())} messages still queued")
        check(all(arrived[ident] == 1 for ident in queued),
              f"kill: delivered other than once: {[i for i in queued if arrived[i] != 1][:10]}")


class IMAPAppenders:
    """Clients APPENDing to INBOX over IMAPS as fast as they can, through kills: each remembers
    the messages that got `OK [APPENDUID v uid]`, and with which UID."""

    def __init__(self, server: Petrel, count: int):
        self.server = server
        self.acknowledged: dict[str, int] = {}
        self.attempted = 0
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(count)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.join(timeout=30)

    def client(self, number: int):
        sequence = 0
        while self.running:
            try:
                imap = imaplib.IMAP4_SSL("127.0.0.1", self.server.imaps_port, ssl_context=unverified_context(),
                                         timeout=10)
                imap.login("alice@localhost", PASSWORD)
                while self.running:
                    sequence += 1
                    ident = f"imap-{number}-{sequence}"
                    with self.lock:
                        self.attempted += 1
                    typ, data = imap.append("INBOX", None, None, message(ident))
                    found = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0] or b"") if typ == "OK" else None
                    if found:
                        with self.lock:
                            self.acknowledged[ident] = int(found.group(1))
            except (OSError, imaplib.IMAP4.error, ssl.SSLError, EOFError):
                time.sleep(0.05)


def scenario_imap_kill(binary: str, kills: int):
    """kill -9 while clients APPEND: no message that got OK is lost or stored twice, and each
    keeps the UID its APPENDUID gave (UIDs are never given twice)."""
    with tempfile.TemporaryDirectory(prefix="petrel-imapkill-") as directory:
        server = Petrel(binary, Path(directory), config="[imap]\nconnections_per_ip = 100\n", imaps=True)
        server.add_user()
        server.start()
        appenders = IMAPAppenders(server, 6)
        appenders.start()
        for _ in range(kills):
            time.sleep(random.uniform(0.3, 1.0))
            server.kill()
            server.start()
        time.sleep(1)
        appenders.stop()
        counts, problems = stored(server)
        acknowledged = dict(appenders.acknowledged)
        missing = sorted(set(acknowledged) - set(counts))
        twice = sorted(ident for ident, count in counts.items() if count > 1)
        imap = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=unverified_context())
        imap.login("alice@localhost", PASSWORD)
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (X-TEST-ID)])")
        uid_of: dict[str, int] = {}
        uids = []
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                ident = test_id(item[1])
                uids.append(uid)
                if ident:
                    uid_of[ident] = uid
        imap.logout()
        moved = sorted(ident for ident, uid in acknowledged.items() if ident in uid_of and uid_of[ident] != uid)
        print(f"imap kill: {kills} kills, {appenders.attempted} APPENDs attempted, {len(acknowledged)} answered OK; "
              f"stored {sum(counts.values())}; lost {len(missing)}, twice {len(twice)}, UID changed {len(moved)}",
              flush=True)
        check(len(acknowledged) >= 10 * kills ** 0.5, f"imap kill: only {len(acknowledged)} APPENDs acknowledged")
        check(not missing, f"imap kill: acknowledged but lost: {missing[:10]}")
        check(not twice, f"imap kill: stored twice: {twice[:10]}")
        check(not moved, f"imap kill: not at the UID its APPENDUID gave: {moved[:10]}")
        check(uids == sorted(set(uids)), "imap kill: UIDs ascending, none twice")
        check(server.stop() == 0, "imap kill: petrel did not exit 0 on SIGTERM")


def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def unmount(path: Path):
    subprocess.run(["umount", "-l", str(path)], check=False)


def read_only(*paths: Path):
    """Each directory made read-only in place (a read-only bind mount over itself): creating or
    renaming files in it fails with EROFS, as on a file system the kernel remounted read-only
    after an error, while files already open stay open."""
    for path in paths:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)


def writable(*paths: Path):
    for path in paths:
        subprocess.run(["umount", str(path)], check=True)


@contextlib.contextmanager
def server_on_tmpfs(binary: str, size: str):
    """A started server whose data directory is a tmpfs of `size`; killed and unmounted after."""
    with tempfile.TemporaryDirectory(prefix="petrel-faults-") as directory:
        data = Path(directory) / "data"
        tmpfs(data, size)
        server = Petrel(binary, Path(directory), config="[inbound]\nverify = false\n", data_dir=data)
        try:
            server.add_user()
            server.start()
            yield server, data
        finally:
            if server.process and server.process.poll() is None:
                server.kill()
            unmount(data)


def scenario_diskfull(binary: str):
    with server_on_tmpfs(binary, "32m") as (server, data):
        acknowledged = set()
        for n in range(3):
            if send(server, f"before-{n}")[0] == 250:
                acknowledged.add(f"before-{n}")
        # Leave 1.5 MiB, then send 200 KB messages until the disk is full.
        usage = shutil.disk_usage(data)
        filler = data / "filler"
        with open(filler, "wb") as out:
            out.write(b"\0" * max(0, usage.free - 1536 * 1024))
        refusals = []
        for n in range(30):
            code, text = send(server, f"full-{n}", lines=2500)
            if code == 250:
                acknowledged.add(f"full-{n}")
            else:
                refusals.append((code, text[:40]))
        filler.unlink()
        after = [send(server, f"after-{n}")[0] for n in range(3)]
        acknowledged |= {f"after-{n}" for n, code in enumerate(after) if code == 250}
        alive = server.process.poll() is None
        check(server.stop() == 0, "diskfull: petrel did not exit 0 on SIGTERM")
        counts, problems = stored(server)
        print(f"diskfull: {len(acknowledged)} accepted, {len(refusals)} refused "
              f"({Counter(code for code, _ in refusals)}; first: {refusals[:1]}), after space came back: "
              f"{after}", flush=True)
        check(len(refusals) > 0, "diskfull: nothing was refused")
        check(all(code == 452 and text.startswith("4.3.1") for code, text in refusals),
              f"diskfull: refusals other than 452 4.3.1: {[r for r in refusals if r[0] != 452][:3]}")
        check(after == [250, 250, 250], f"diskfull: after space came back: {after}")
        check(alive, "diskfull: the server exited")
        check(set(counts) == acknowledged and all(c == 1 for c in counts.values()),
              f"diskfull: stored {dict(counts)} for acknowledged {sorted(acknowledged)}")
        check(not problems, f"diskfull: {problems[:5]}")
        check(not server.incoming_files(), f"diskfull: left in incoming/: {server.incoming_files()[:5]}")


def scenario_readonly(binary: str):
    with server_on_tmpfs(binary, "64m") as (server, data):
        before = [send(server, f"before-{n}")[0] for n in range(3)]
        stores = [data / "incoming", data / "mail", data / "queue"]
        read_only(*stores)
        during = [send(server, f"during-{n}") for n in range(3)]
        writable(*stores)
        after = [send(server, f"after-{n}")[0] for n in range(3)]
        alive = server.process.poll() is None
        check(server.stop() == 0, "readonly: petrel did not exit 0 on SIGTERM")
        # Started on a read-only directory: a clear error, not a half-working server.
        read_only(data)
        server.start(wait=False)
        try:
            status = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            status = None
        startup_error = server.log_tail(3)
        writable(data)
        counts, problems = stored(server)
        acknowledged = {f"before-{n}" for n in range(3) if before[n] == 250} | {
            f"during-{n}" for n in range(3) if during[n][0] == 250} | {
            f"after-{n}" for n in range(3) if after[n] == 250}
        print(f"readonly: before {before}, read-only {[(c, t[:30]) for c, t in during]}, after {after}; "
              f"started read-only: exit {status}: {startup_error.splitlines()[-1:]}", flush=True)
        check(before == [250] * 3 and after == [250] * 3, f"readonly: before {before}, after {after}")
        check(all(400 <= code < 500 for code, _ in during), f"readonly: while read-only: {during}")
        check(alive, "readonly: the server exited")
        check(status not in (0, None) and str(data) in startup_error,
              f"readonly: a start on a read-only directory gave exit {status}: {startup_error}")
        check(set(counts) == acknowledged and all(c == 1 for c in counts.values()),
              f"readonly: stored {dict(counts)} for acknowledged {sorted(acknowledged)}")
        check(not problems, f"readonly: {problems[:5]}")


def scenario_dns(binary: str, remote: RemoteMX | None):
    dns = FakeDNS()
    with tempfile.TemporaryDirectory(prefix="petrel-dns-") as directory:
        config = (f'[dns]\nservers = ["127.0.0.1:{dns.port}"]\ntimeout = 1\nattempts = 2\n'
                  f"[inbound]\ntime_limit = 6\n[delivery]\nretry_first = 2\nretry_max = 4\n")
        server = Petrel(binary, Path(directory), config=config, submissions=True)
        server.add_user()
        server.start()
        results = {}
        for mode in ["servfail", "timeout", "answer"]:
            dns.mode = mode
            started = time.monotonic()
            code, text = send(server, f"dns-{mode}")
            results[mode] = (code, text[:24], round(time.monotonic() - started, 1))
        # Outbound while DNS fails: accepted, queued, deferred; delivered once DNS answers.
        dns.mode = "servfail"
        with smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, timeout=30,
                              context=unverified_context()) as client:
            client.login("alice@localhost", PASSWORD)
            client.sendmail("alice@localhost", ["rcpt@remote.example"], message("dns-out", sender="alice@localhost"))
        time.sleep(5)
        deferred = server.log_count(r"status=deferred")
        queued_while_failing = len(server.queue_files())
        delivered = None
        if remote is not None:
            dns.mode = "answer"
            deadline = time.monotonic() + 30
            while server.queue_files() and time.monotonic() < deadline:
                time.sleep(0.5)
            delivered = remote.received["dns-out"]
        alive = server.process.poll() is None
        check(server.stop() == 0, "dns: petrel did not exit 0 on SIGTERM")
        dns.stop()
        print(f"dns: inbound {results}; outbound while SERVFAIL: {queued_while_failing} queued, "
              f"{deferred} deferred attempts; delivered after DNS answered: {delivered}", flush=True)
        for mode in ["servfail", "timeout"]:
            code, text, seconds = results[mode]
            check(400 <= code < 500 or code == 250, f"dns: {mode}: {code} {text}")
            check(seconds <= 6 + 4, f"dns: {mode}: the verdict took {seconds}s (time limit 6s)")
        check(results["answer"][0] == 250, f"dns: with DNS answering: {results['answer']}")
        check(queued_while_failing == 1 and deferred >= 1, "dns: the outbound message was not kept and deferred")
        if remote is not None:
            check(delivered == 1 and not server.queue_files(), f"dns: delivered {delivered} times after DNS answered")
        check(alive, "dns: the server exited")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("petrel")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--only", nargs="*", default=["kill", "imapkill", "diskfull", "readonly", "dns"])
    arguments = parser.parse_args()
    binary = str(Path(arguments.petrel).resolve())
    root = subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0"
    remote = RemoteMX() if root and {"kill", "dns"} & set(arguments.only) else None
    try:
        for name in arguments.only:
            if name == "kill":
                scenario_kill(binary, arguments.kills, remote)
            elif name == "imapkill":
                scenario_imap_kill(binary, arguments.kills)
            elif name in ("diskfull", "readonly") and not root:
                print(f"{name}: needs root (mount); skipped")
            elif name == "diskfull":
                scenario_diskfull(binary)
            elif name == "readonly":
                scenario_readonly(binary)
            elif name == "dns":
                scenario_dns(binary, remote)
            else:
                sys.exit(f"faults.py: unknown scenario {name}")
    finally:
        if remote:
            remote.stop()
    print(f"faults.py: {'FAILED: ' + str(len(failures)) + ' checks' if failures else 'all checks passed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
