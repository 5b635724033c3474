#!/usr/bin/env python3
"""Hostile clients against a real petrel server, while a legitimate client keeps sending mail.

    Scripts/faults/hostile.py PETREL_BINARY [--slowloris N] [--seconds S] [--clients N] [--only NAME ...]

Each attack runs against one `petrel serve` on loopback; during it, a legitimate client (Python's
smtplib, from 127.0.0.1, an address no attacker uses) sends a message every half second and times
it from connect to the 250 after DATA. An attack passes when every legitimate message was
accepted within 2 seconds, the server's memory stayed under the bound, and the server answered
the attack as its limits say. Attackers connect from other loopback addresses (127.0.1.0/24 and
up), 20 connections per address at most, so the per-address limit does not simply turn them away.

  slowloris     N connections (default 5000) that each send one octet a second, never a whole line
  flood         connections opened as fast as possible from one address: the per-address limit
                answers 421 4.7.0
  unread        --clients (20) clients that pipeline 6 MB of commands each and never read a reply:
                the server stops reading from them once their replies back up
  commands      --clients (20) clients that send NOOPs in batches of 10,000 (then read the replies) as
                fast as they can; one that sends unknown commands
                until the error limit closes it with 421 4.7.0
  pipeline      one batch of EHLO, MAIL, 2,000 RCPT, DATA, the message and QUIT in one write:
                100 recipients accepted, the rest 452 4.5.3, the message stored once
  silenttls     1,000 connections from one address to the implicit-TLS port that never start a
                handshake: at most connections_per_ip (20) admitted, the rest closed at once, all
                closed by timeouts.tls_handshake (4 s here)
  authflood     50 clients (one address each) on the implicit-TLS port sending AUTH PLAIN with made-up
                users and passwords as fast as they can (each check a yescrypt hash): the legitimate
                client's commits (DATA to the 250) must not slow down. The legitimate client sends
                every 0.1 s here, for a p99. Not in the default list: a measurement
                (docs/security.md), run with --only authflood, also against an older build

Prints one line of figures per attack; exit status 1 if any check failed.
"""
import argparse
import asyncio
import resource
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Petrel, message, test_id  # noqa: E402

LEGIT_LIMIT = 2.0
failures: list[str] = []


def check(condition: bool, what: str):
    if not condition:
        failures.append(what)
        print(f"  FAIL: {what}", flush=True)


def attacker_address(index: int) -> str:
    """127.0.1.0/24, then 127.0.2.0/24 and up: 20 connections per address."""
    host = index // 20
    return f"127.0.{1 + host // 250}.{1 + host % 250}"


def send_legit(port: int, ident: str) -> str:
    """One message from 127.0.0.1; "ok ID SECONDS COMMIT" (from connect to the 250; from DATA to
    the 250) or "error ID WHAT"."""
    started = time.monotonic()
    try:
        with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.1", 0), timeout=30) as client:
            client.ehlo("legit.example")
            client.mail("legit@example.net")
            client.rcpt("alice@localhost")
            data = time.monotonic()
            code, text = client.data(message(ident, lines=20))
            if code != 250:
                return f"error {ident} {code} {text!r}"
            commit = time.monotonic() - data
        return f"ok {ident} {time.monotonic() - started:.4f} {commit:.4f}"
    except Exception as error:  # noqa: BLE001 - any failure is a finding
        return f"error {ident} {error!r}"


class Legit:
    """Sends a message every `interval` seconds from a process of its own (so that the attackers'
    work in this one cannot delay it); records how long each took."""

    def __init__(self, server: Petrel, name: str):
        self.server = server
        self.name = name
        self.times: list[float] = []
        self.commits: list[float] = []
        self.errors: list[str] = []
        self.sent: list[str] = []

    async def run(self, stop: asyncio.Event, interval: float = 0.5, minimum: int = 3):
        """Until stopped, and at least `minimum` messages (an attack may end at once)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--legit", str(self.server.port), self.name, str(interval),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        stopping = False
        while line := await process.stdout.readline():
            status, ident, detail = line.decode().rstrip("\n").split(" ", 2)
            if status == "ok":
                total, commit = detail.split(" ")
                self.times.append(float(total))
                self.commits.append(float(commit))
                self.sent.append(ident)
            else:
                self.errors.append(f"{ident}: {detail}")
            if not stopping and stop.is_set() and len(self.times) + len(self.errors) >= minimum:
                stopping = True
                process.stdin.close()  # the child stops after the message under way
        await process.wait()

    def report(self) -> str:
        if not self.times:
            return "no legitimate message accepted"
        return (f"legit {len(self.times)} sent, median {statistics.median(self.times) * 1000:.0f} ms, "
                f"max {max(self.times) * 1000:.0f} ms")

    def verify(self):
        check(not self.errors, f"{self.name}: legitimate client failed: {self.errors[:3]}")
        check(len(self.times) >= 3, f"{self.name}: only {len(self.times)} legitimate messages")
        slow = [t for t in self.times if t > LEGIT_LIMIT]
        check(not slow, f"{self.name}: legitimate messages over {LEGIT_LIMIT}s: {[round(t, 2) for t in slow]}")


class Memory:
    def __init__(self, server: Petrel):
        self.server = server
        self.start = server.rss_kib()
        self.peak = self.start

    async def watch(self, stop: asyncio.Event):
        while not stop.is_set():
            self.peak = max(self.peak, self.server.rss_kib())
            await asyncio.sleep(0.2)

    def report(self) -> str:
        return f"RSS {self.start / 1024:.0f} -> peak {self.peak / 1024:.0f} MiB"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def with_legit(server: Petrel, name: str, attack, bound_mib: float, interval: float = 0.5) -> Legit:
    """Runs `attack(stop)` with the legitimate client and the memory watcher alongside."""
    stop = asyncio.Event()
    legit = Legit(server, name)
    memory = Memory(server)
    watchers = [asyncio.create_task(legit.run(stop, interval=interval)), asyncio.create_task(memory.watch(stop))]
    try:
        summary = await attack(stop)
    finally:
        stop.set()
        await asyncio.gather(*watchers)
    print(f"{name}: {summary}; {legit.report()}; {memory.report()}", flush=True)
    legit.verify()
    check(memory.peak / 1024 <= bound_mib, f"{name}: peak RSS {memory.peak / 1024:.0f} MiB over {bound_mib} MiB")
    check(server.process.poll() is None, f"{name}: the server exited")
    for ident in legit.sent:
        found = [f for f in server.maildir_files() if test_id(f.read_bytes()) == ident]
        check(len(found) == 1, f"{name}: legitimate message {ident} stored {len(found)} times")
    return legit


async def open_connection(port: int, source: str):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 20)


async def slowloris(server: Petrel, count: int, seconds: float):
    opened = refused = failed = closed = 0
    writers = []

    async def one(index: int):
        nonlocal opened, refused, failed
        try:
            reader, writer = await open_connection(server.port, attacker_address(index))
            greeting = await asyncio.wait_for(reader.readline(), 30)
        except (OSError, asyncio.TimeoutError):
            failed += 1
            return
        if greeting.startswith(b"220"):
            opened += 1
            writers.append((reader, writer))
        else:
            refused += 1
            writer.close()

    async def attack(stop: asyncio.Event):
        nonlocal closed
        started = time.monotonic()
        for first in range(0, count, 250):
            await asyncio.gather(*(one(i) for i in range(first, min(first + 250, count))))
        ramp = time.monotonic() - started
        line = b"EHLO " + b"s" * 100_000
        position = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for reader, writer in writers:
                if writer.is_closing():
                    continue
                try:
                    writer.write(line[position:position + 1])
                except OSError:
                    writer.close()
            position += 1
            await asyncio.sleep(1)
        closed = sum(1 for reader, writer in writers if reader.at_eof())
        for _, writer in writers:
            writer.close()
        return (f"{opened} connections open in {ramp:.1f}s sending 1 octet/s for {seconds:.0f}s "
                f"({refused} refused, {failed} failed, {closed} closed by the server)")

    await with_legit(server, "slowloris", attack, bound_mib=600)
    check(opened >= count * 0.99, f"slowloris: only {opened} of {count} connections were accepted")


async def flood(server: Petrel, seconds: float):
    greeted = limited = other = 0

    async def worker(stop: asyncio.Event):
        nonlocal greeted, limited, other
        while not stop.is_set():
            try:
                reader, writer = await open_connection(server.port, "127.0.9.9")
                line = await asyncio.wait_for(reader.readline(), 10)
                writer.close()
            except (OSError, asyncio.TimeoutError):
                other += 1
                continue
            if line.startswith(b"220"):
                greeted += 1
            elif line.startswith(b"421 4.7.0"):
                limited += 1
            else:
                other += 1

    async def attack(stop: asyncio.Event):
        workers = [asyncio.create_task(worker(stop)) for _ in range(60)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*workers)
        return f"{greeted + limited + other} connections in {seconds:.0f}s: {greeted} greeted, {limited} 421 4.7.0, {other} other"

    await with_legit(server, "flood", attack, bound_mib=400)
    check(limited > 0, "flood: the per-address limit never answered 421 4.7.0")
    check(other == 0, f"flood: {other} connections neither greeted nor refused with 421 4.7.0")


async def unread(server: Petrel, seconds: float, clients: int):
    batch = b"EHLO unread.example\r\n" + b"NOOP\r\n" * 1_000_000
    sent: list[int] = []

    async def client(index: int, stop: asyncio.Event):
        reader, writer = await open_connection(server.port, attacker_address(index))
        writer.transport.set_write_buffer_limits(high=1 << 30)
        writer.write(batch)
        await stop.wait()
        sent.append(len(batch) - writer.transport.get_write_buffer_size())
        writer.transport.abort()

    async def attack(stop: asyncio.Event):
        tasks = [asyncio.create_task(client(i * 20, stop)) for i in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        return (f"{clients} clients pipelined {len(batch) * clients / 1e6:.0f} MB of NOOPs and read nothing; "
                f"{sum(sent) / 1e6:.1f} MB left them (socket buffers and server), the rest waited")

    await with_legit(server, "unread", attack, bound_mib=400)
    check(sum(sent) < len(batch) * clients * 0.9, "unread: everything was read: no back-pressure")


async def commands(server: Petrel, seconds: float, clients: int):
    replies = 0
    error_replies: list[bytes] = []

    async def noop_flood(index: int, stop: asyncio.Event):
        """Batches of 10,000 NOOPs in one write each, then their replies."""
        nonlocal replies
        reader, writer = await open_connection(server.port, attacker_address(index))
        await reader.readline()
        while not stop.is_set():
            writer.write(b"NOOP\r\n" * 10_000)
            for _ in range(10_000):
                if not await asyncio.wait_for(reader.readline(), 30):
                    return
                replies += 1
        writer.close()

    async def unknown_commands(index: int):
        reader, writer = await open_connection(server.port, attacker_address(index))
        await reader.readline()
        writer.write(b"XYZZY\r\n" * 100)
        while line := await asyncio.wait_for(reader.readline(), 10):
            error_replies.append(line)
        writer.close()

    async def attack(stop: asyncio.Event):
        tasks = [asyncio.create_task(noop_flood(i * 20, stop)) for i in range(clients)]
        await unknown_commands(1000)
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        return f"{replies} NOOP replies in {seconds:.0f}s ({replies / seconds:.0f}/s)"

    await with_legit(server, "commands", attack, bound_mib=400)
    codes = [line[:9] for line in error_replies]
    check(codes[-1:] == [b"421 4.7.0"] and len(codes) == 10,
          f"commands: unknown commands got {len(codes)} replies, last {codes[-1:]} (want 9 x 500, then 421 4.7.0)")


async def pipeline(server: Petrel):
    ident = "batch-1"
    recipients = 2000
    batch = (b"EHLO pipeline.example\r\nMAIL FROM:<sender@example.net>\r\n"
             + b"".join(b"RCPT TO:<alice+%d@localhost>\r\n" % n for n in range(recipients))
             + b"DATA\r\n" + message(ident, lines=10) + b".\r\nQUIT\r\n")
    codes: list[bytes] = []

    async def attack(stop: asyncio.Event):
        reader, writer = await open_connection(server.port, "127.0.8.8")
        await reader.readline()
        writer.write(batch)
        while line := await asyncio.wait_for(reader.readline(), 30):
            if line[3:4] == b" ":
                codes.append(line[:9])
        writer.close()
        return f"{len(batch) / 1e3:.0f} KB in one write: {len(codes)} replies"

    await with_legit(server, "pipeline", attack, bound_mib=400)
    rcpt = codes[2:2 + recipients]
    check(len(codes) == recipients + 5, f"pipeline: {len(codes)} replies for {recipients + 5} commands")
    check(rcpt.count(b"250 2.1.5") == 100 and rcpt.count(b"452 4.5.3") == recipients - 100,
          f"pipeline: RCPT replies {sorted(set(rcpt))}")
    check(codes[-3:-1] == [b"354 End d", b"250 2.0.0"] and codes[-1] == b"221 2.0.0",
          f"pipeline: DATA/QUIT replies {codes[-3:]}")
    stored = [f for f in server.maildir_files() if test_id(f.read_bytes()) == ident]
    check(len(stored) == 1, f"pipeline: the message was stored {len(stored)} times")


async def silent_tls(server: Petrel, count: int, deadline: float):
    """`count` connections to the implicit-TLS port from one address, sending nothing."""
    lifetimes: list[float] = []
    never: list[int] = []

    async def one(index: int):
        try:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.submissions_port,
                                                          local_addr=("127.0.7.7", 0))
        except OSError:
            never.append(index)
            return
        try:
            await asyncio.wait_for(reader.read(), deadline + 10)  # until the server closes or resets it
        except (OSError, asyncio.TimeoutError):
            pass  # a reset, or still open long past the deadline: the lifetime tells
        lifetimes.append(time.monotonic() - started)
        writer.close()

    async def attack(stop: asyncio.Event):
        tasks = []
        for first in range(0, count, 50):
            tasks += [asyncio.create_task(one(i)) for i in range(first, min(first + 50, count))]
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        admitted = sum(1 for t in lifetimes if t >= deadline / 2)
        return (f"{count} silent connections to the TLS port from one address: {admitted} lived past half the "
                f"{deadline:.0f} s handshake deadline, the longest {max(lifetimes):.2f} s, {len(never)} not connected")

    await with_legit(server, "silenttls", attack, bound_mib=400)
    check(not never, f"silenttls: {len(never)} connections not made")
    check(sum(1 for t in lifetimes if t >= deadline / 2) <= 20,
          "silenttls: more than connections_per_ip (20) connections lived past half the deadline")
    check(max(lifetimes, default=0) < deadline + 2, f"silenttls: a connection lived {max(lifetimes):.2f} s")


async def auth_flood(server: Petrel, seconds: float, quiet_p99: float, clients: int = 50):
    """`clients` connections (one address each) sending AUTH PLAIN with made-up users; the
    legitimate client's commit p99 must stay within 3x (and 50 ms) of `quiet_p99`, its value
    with no attack."""
    import base64
    import ssl
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    attempts = refused = 0

    async def reply(reader) -> bytes:
        while True:
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line or line[3:4] != b"-":
                return line

    async def client(index: int, stop: asyncio.Event):
        nonlocal attempts, refused
        number = 0
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.submissions_port, ssl=context, local_addr=(attacker_address(index * 20), 0))
                await reply(reader)
                writer.write(b"EHLO flood.example\r\n")
                await reply(reader)
                while not stop.is_set():
                    number += 1
                    token = base64.b64encode(f"\0guess{index}-{number}@localhost\0wrong {number}".encode())
                    writer.write(b"AUTH PLAIN " + token + b"\r\n")
                    line = await reply(reader)
                    attempts += 1
                    if not line.startswith(b"535"):
                        refused += 1
                        break  # 421 after the session's error limit, or 454: a new connection
                writer.close()
            except (OSError, asyncio.TimeoutError, ssl.SSLError):
                await asyncio.sleep(0.05)

    async def attack(stop: asyncio.Event):
        tasks = [asyncio.create_task(client(i, stop)) for i in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        return (f"{clients} clients, {attempts} AUTH attempts in {seconds:.0f}s ({attempts / seconds:.0f}/s), "
                f"{refused} answered other than 535 (a closing 421 or a 454)")

    legit = await with_legit(server, "authflood", attack, bound_mib=600, interval=0.1)
    if legit.commits:
        p99 = percentile(legit.commits, 0.99)
        print(f"authflood: commit (DATA to 250) median {statistics.median(legit.commits) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms over {len(legit.commits)} messages", flush=True)
        check(p99 <= max(3 * quiet_p99, quiet_p99 + 0.05),
              f"authflood: commit p99 {p99 * 1000:.0f} ms, against {quiet_p99 * 1000:.0f} ms without the flood")


async def quiet_commits(server: Petrel, seconds: float) -> float:
    """The legitimate client alone, as the reference for authflood; returns its commit p99."""
    async def attack(stop: asyncio.Event):
        await asyncio.sleep(seconds)
        return f"no attack for {seconds:.0f}s"

    legit = await with_legit(server, "quiet", attack, bound_mib=600, interval=0.1)
    p99 = percentile(legit.commits, 0.99) if legit.commits else 0.0
    print(f"quiet: commit (DATA to 250) median {statistics.median(legit.commits or [0]) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms over {len(legit.commits)} messages", flush=True)
    return p99


def legit_process(port: int, name: str, interval: float):
    """The legitimate client's process: a message every `interval` seconds until stdin closes."""
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    number = 0
    while not closed.is_set():
        number += 1
        print(send_legit(port, f"{name}-{number}"), flush=True)
        closed.wait(interval)


async def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--legit":
        legit_process(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("petrel")
    parser.add_argument("--slowloris", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=20, help="clients of the unread and commands attacks")
    parser.add_argument("--only", nargs="*",
                        default=["slowloris", "flood", "unread", "commands", "pipeline", "silenttls"])
    arguments = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with tempfile.TemporaryDirectory(prefix="petrel-hostile-") as directory:
        config = "[inbound]\nverify = false\n"
        if "authflood" in arguments.only:
            # Guesses from each address are not blocked here: the point is what they cost.
            config += "failures = 1000\n"
        if "silenttls" in arguments.only:
            config += "[timeouts]\ntls_handshake = 4\n"
        server = Petrel(str(Path(arguments.petrel).resolve()), Path(directory), config=config,
                        submissions="silenttls" in arguments.only or "authflood" in arguments.only)
        server.add_user()
        server.start()
        try:
            for name in arguments.only:
                if name == "slowloris":
                    await slowloris(server, arguments.slowloris, arguments.seconds)
                elif name == "flood":
                    await flood(server, arguments.seconds / 2)
                elif name == "unread":
                    await unread(server, arguments.seconds / 2, arguments.clients)
                elif name == "commands":
                    await commands(server, arguments.seconds / 2, arguments.clients)
                elif name == "pipeline":
                    await pipeline(server)
                elif name == "silenttls":
                    await silent_tls(server, 1000, deadline=4)
                elif name == "authflood":
                    await auth_flood(server, arguments.seconds, await quiet_commits(server, arguments.seconds))
                else:
                    sys.exit(f"hostile.py: unknown attack {name}")
                await asyncio.sleep(1)
        finally:
            status = server.stop()
            check(status == 0, f"petrel exited with {status} after SIGTERM")
            if failures:
                print(server.log_tail(), file=sys.stderr)
    print(f"hostile.py: {'FAILED: ' + str(len(failures)) + ' checks' if failures else 'all checks passed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    asyncio.run(main())
