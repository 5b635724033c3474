#!/usr/bin/env python3
"""Hostile clients against a real petrel server, while a legitimate client keeps sending mail.

    Scripts/hostile.py PETREL_BINARY [--slowloris N] [--seconds S] [--clients N] [--only NAME ...]

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
    """One message from 127.0.0.1; "ok ID SECONDS" or "error ID WHAT"."""
    started = time.monotonic()
    try:
        with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.1", 0), timeout=30) as client:
            client.ehlo("legit.example")
            client.sendmail("legit@example.net", ["alice@localhost"], message(ident, lines=20))
        return f"ok {ident} {time.monotonic() - started:.4f}"
    except Exception as error:  # noqa: BLE001 - any failure is a finding
        return f"error {ident} {error!r}"


class Legit:
    """Sends a message every `interval` seconds from a process of its own (so that the attackers'
    work in this one cannot delay it); records how long each took."""

    def __init__(self, server: Petrel, name: str):
        self.server = server
        self.name = name
        self.times: list[float] = []
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
                self.times.append(float(detail))
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


async def with_legit(server: Petrel, name: str, attack, bound_mib: float):
    """Runs `attack(stop)` with the legitimate client and the memory watcher alongside."""
    stop = asyncio.Event()
    legit = Legit(server, name)
    memory = Memory(server)
    watchers = [asyncio.create_task(legit.run(stop)), asyncio.create_task(memory.watch(stop))]
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
    parser.add_argument("--only", nargs="*", default=["slowloris", "flood", "unread", "commands", "pipeline"])
    arguments = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with tempfile.TemporaryDirectory(prefix="petrel-hostile-") as directory:
        server = Petrel(str(Path(arguments.petrel).resolve()), Path(directory), config="[auth]\nverify = false\n")
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
