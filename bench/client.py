#!/usr/bin/env python3
"""SMTP clients for bench/run that smtp-source does not cover.

  client.py latency PORT COUNT [SIZE]     COUNT messages one after another, a new connection each,
                                          as smtp-source sends them; prints the end-of-data -> 250
                                          latency: "p50_ms p99_ms"
  client.py idle PORT PID CONNS           opens CONNS connections and reads each 220; while they are
                                          held, a new client's connect -> 220 time and a whole
                                          message; prints the server tree's memory before and after
  client.py big PORT PID MEGABYTES        one message of that size; prints the server tree's peak RSS
                                          above idle while it was received and stored
"""
import os
import socket
import statistics
import sys
import threading
import time


def tree_memory(root):
    """(RSS KiB, PSS KiB) of root and its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                pass
    rss = pss = 0
    queue = [root]
    while queue:
        pid = queue.pop()
        queue.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


class Session:
    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # The end-of-data mark goes out at once, not after the ACK of the content (Nagle).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def reply(self):
        """Reads one (possibly multi-line) reply; returns its code."""
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3])

    def command(self, text, expect):
        self.sock.sendall(text.encode() + b"\r\n")
        code = self.reply()
        if code != expect:
            raise RuntimeError(f"{text!r}: {code}, expected {expect}")

    def send_message(self, body):
        """MAIL, RCPT, DATA, content; returns the seconds from the end of data to the 250."""
        self.command("MAIL FROM:<sender@client.test>", 250)
        self.command("RCPT TO:<user@bench.test>", 250)
        self.command("DATA", 354)
        self.sock.sendall(body[:-5])
        start = time.perf_counter()
        self.sock.sendall(body[-5:])
        code = self.reply()
        elapsed = time.perf_counter() - start
        if code != 250:
            raise RuntimeError(f"end of data: {code}")
        return elapsed

    def close(self):
        self.sock.close()


def message(size):
    header = b"From: <sender@client.test>\r\nTo: <user@bench.test>\r\nSubject: bench\r\n\r\n"
    line = b"x" * 78 + b"\r\n"
    body = line * max(1, (size - len(header)) // len(line))
    return header + body + b".\r\n"


def one_message(port, body):
    session = Session(port)
    session.reply()
    session.command("EHLO client.test", 250)
    latency = session.send_message(body)
    session.command("QUIT", 221)
    session.close()
    return latency


def latency(port, count, size=4096):
    body = message(size)
    samples = sorted(one_message(port, body) for _ in range(count))
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"{p50 * 1000:.2f} {p99 * 1000:.2f}")


def idle(port, pid, count):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    time.sleep(1)
    rss0, pss0 = tree_memory(pid)
    held = []
    greeted = 0
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as error:
            print(f"connection {len(held) + 1}: {error}", file=sys.stderr)
            break
        held.append(sock)
    for sock in held:
        try:
            if sock.recv(512).startswith(b"220"):
                greeted += 1
        except OSError:
            pass
    time.sleep(5)
    rss1, pss1 = tree_memory(pid)
    # A new client while they are all held: time to its greeting, and a whole message.
    start = time.perf_counter()
    session = Session(port)
    code = session.reply()
    greeting_ms = (time.perf_counter() - start) * 1000
    session.command("EHLO client.test", 250)
    session.send_message(message(4096))
    session.command("QUIT", 221)
    total_ms = (time.perf_counter() - start) * 1000
    session.close()
    for sock in held:
        sock.close()
    per_connection = (rss1 - rss0) / greeted if greeted else 0
    per_connection_pss = (pss1 - pss0) / greeted if greeted else 0
    print(
        f"opened {len(held)} greeted {greeted} rss_kb {rss0}->{rss1} pss_kb {pss0}->{pss1} "
        f"new client: 220 after {greeting_ms:.1f} ms (code {code}), message accepted after {total_ms:.1f} ms"
    )
    print(f"{len(held)},{greeted},{rss0},{rss1},{per_connection:.1f},{per_connection_pss:.1f},{greeting_ms:.1f},{total_ms:.1f}")


def big(port, pid, megabytes):
    time.sleep(1)
    idle_rss, _ = tree_memory(pid)
    peak = [idle_rss]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], tree_memory(pid)[0])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    session = Session(port, timeout=600)
    session.reply()
    session.command("EHLO client.test", 250)
    session.command("MAIL FROM:<sender@client.test>", 250)
    session.command("RCPT TO:<user@bench.test>", 250)
    session.command("DATA", 354)
    line = b"y" * 998 + b"\r\n"
    block = b"From: <sender@client.test>\r\nSubject: big\r\n\r\n" + line * 1000
    sent = 0
    start = time.perf_counter()
    while sent < megabytes * 1024 * 1024:
        session.sock.sendall(block)
        sent += len(block)
        block = line * 1000
    session.sock.sendall(b".\r\n")
    code = session.reply()
    elapsed = time.perf_counter() - start
    session.command("QUIT", 221)
    session.close()
    time.sleep(0.5)
    done.set()
    watcher.join()
    print(f"sent {sent} octets in {elapsed:.1f} s, reply {code}; idle rss {idle_rss} kB, peak {peak[0]} kB")
    print(f"{sent},{code},{idle_rss},{peak[0]},{peak[0] - idle_rss}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "latency":
        latency(int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 else 4096)
    elif command == "idle":
        idle(int(args[0]), int(args[1]), int(args[2]))
    elif command == "big":
        big(int(args[0]), int(args[1]), int(args[2]))
    else:
        sys.exit(__doc__)
