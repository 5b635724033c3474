"""A petrel server under test, for Scripts/faults/faults.py and Scripts/faults/hostile.py: a configuration in a
temporary directory, `petrel user add`, `petrel serve` started (and killed, and restarted), its
log, its memory, and what it stored."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

PASSWORD = "a harness pass phrase"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class Petrel:
    """`petrel serve` on loopback ports of its own. `config` is appended to the generated
    configuration (TOML sections beyond [listen])."""

    def __init__(self, binary: str, directory: Path, config: str = "", data_dir: Path | None = None,
                 submissions: bool = False, imaps: bool = False):
        self.binary = binary
        self.directory = directory
        self.data_dir = data_dir or directory / "data"
        self.port = free_port()
        self.submissions_port = free_port() if submissions else None
        self.imaps_port = free_port() if imaps else None
        self.config_path = directory / "petrel.toml"
        self.reconfigure(config)
        self.process: subprocess.Popen | None = None
        self.log_path = directory / "petrel.log"
        self.starts = 0

    def reconfigure(self, config: str):
        """Writes the configuration: the fixed part, then `config`; read at the next start."""
        listen = f'smtp = ["127.0.0.1:{self.port}"]\n'
        if self.submissions_port:
            listen += f'submissions = ["127.0.0.1:{self.submissions_port}"]\n'
        if self.imaps_port:
            listen += f'imaps = ["127.0.0.1:{self.imaps_port}"]\n'
        self.config_path.write_text(f'data_dir = "{self.data_dir}"\nhostname = "mx.harness.test"\n'
                                    f"[listen]\n{listen}{config}\n")

    def petrel(self, *arguments: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.binary, *arguments, "--config", str(self.config_path)], input=stdin,
                                capture_output=True, text=True, cwd=self.directory)
        if check and result.returncode != 0:
            raise RuntimeError(f"petrel {' '.join(arguments)}: {result.stderr.strip()}")
        return result

    def add_user(self, address: str = "alice@localhost"):
        self.petrel("user", "add", address, "--password-stdin", stdin=PASSWORD + "\n")

    def start(self, wait: bool = True, timeout: float = 30):
        self.starts += 1
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([self.binary, "serve", "--config", str(self.config_path)],
                                        cwd=self.directory, stdout=log, stderr=log)
        log.close()
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"petrel exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                    if connection.recv(512).startswith(b"220"):
                        connection.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"petrel did not answer on port {self.port}:\n{self.log_tail()}")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
                return -9
        return self.process.returncode if self.process else 0

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log_path.read_text(errors="replace"))) if self.log_path.exists() else 0

    # What is stored.

    def maildir_files(self, address: str = "alice@localhost") -> list[Path]:
        files = []
        for sub in ["new", "cur"]:
            directory = self.data_dir / "mail" / address / sub
            if directory.exists():
                files += sorted(directory.iterdir())
        return files

    def queue_files(self) -> list[Path]:
        directory = self.data_dir / "queue"
        return sorted(directory.glob("*.eml")) if directory.exists() else []

    def incoming_files(self) -> list[Path]:
        directory = self.data_dir / "incoming"
        return sorted(directory.iterdir()) if directory.exists() else []


def test_id(content: bytes) -> str | None:
    found = re.search(rb"^X-Test-Id: (\S+)\r?$", content, re.M)
    return found.group(1).decode() if found else None


def message(test_id: str, lines: int | None = None, sender: str = "sender@example.net") -> bytes:
    """A message whose every line can be checked: the body is a function of the id and the
    number of lines (X-Test-Lines)."""
    count = lines if lines is not None else 1 + sum(test_id.encode()) % 200
    body = "".join(f"line {n} of {test_id} {'abcdefghij' * (n % 8)}\r\n" for n in range(count))
    return (f"From: <{sender}>\r\nSubject: harness {test_id}\r\nX-Test-Id: {test_id}\r\n"
            f"X-Test-Lines: {count}\r\n\r\n{body}").encode()


def body_of(content: bytes) -> bytes:
    """The part of a stored copy that comes from the client (from our Subject on), CRLF line
    ends (Maildir copies have LF)."""
    start = content.find(b"Subject: harness ")
    text = content[start:] if start >= 0 else b""
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def expected_body(content: bytes) -> bytes | None:
    """What `body_of(content)` must be, from the id and line count the content names."""
    ident = test_id(content)
    lines = re.search(rb"^X-Test-Lines: (\d+)\r?$", content, re.M)
    if ident is None or lines is None:
        return None
    whole = message(ident, lines=int(lines.group(1)))
    return whole[whole.find(b"Subject: harness "):]
