#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/Corpus/<target>/ from the project's own test fixtures and docs
(run from the repository root; the seeds are committed, so this runs only when fixtures change).

Sources: the SMTP probes (Tests/PetrelServerTests/Fixtures/smtp/probes.yml), the captured DNS
packets (Tests/DNSCoreTests/Fixtures/*.hex), the RFC 7208 SPF suite and the DKIM/DMARC vectors
(Tests/MailAuthTests/Fixtures; licenses in their READMEs), and the TOML examples in docs/.
Each seed is named by the SHA-1 of its content."""
import hashlib
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Fuzz" / "Corpus"
seeds: dict[str, set[bytes]] = {name: set() for name in
                                ["command", "session", "dns", "spf", "dkim", "headers", "config"]}


def expand(text: str) -> str:
    text = re.sub(r"\{repeat:(\d+):([^{}]*)\}", lambda m: m.group(2) * min(int(m.group(1)), 600), text)
    text = re.sub(r"\{len:([^{}]*)\}", lambda m: str(len(m.group(1).encode("latin-1", "replace"))), text)
    for name, value in {"ID": "seed", "NONCE": "n0", "N": "1"}.items():
        text = text.replace("{" + name + "}", value)
    text = re.sub(r"\{([A-Z_]+)\}", lambda m: {"RCPT": "user@mx.test", "DOMAIN": "mx.test"}.get(m.group(1), "x@mx.test"),
                  text)
    return text.replace("{{", "{").replace("}}", "}")


def octets(text: str) -> bytes:
    return bytes(ord(c) & 0xFF if ord(c) < 0x100 else 0x3F for c in text)


def steps_bytes(steps, out: list[bytes]):
    for step in steps:
        if "send" in step:
            line = octets(expand(str(step["send"])))
            out.append(line + b"\r\n")
            seeds["command"].add(line[:512])
        elif "raw" in step:
            out.append(octets(expand(str(step["raw"]))))
        elif "raw_bytewise" in step:
            out.append(octets(expand(str(step["raw_bytewise"]))))
        elif "steps" in step:
            steps_bytes(step["steps"], out)


probes = yaml.safe_load((ROOT / "Tests/PetrelServerTests/Fixtures/smtp/probes.yml").read_text(encoding="utf-8"))
for probe in probes["probes"]:
    parts: list[bytes] = []
    steps_bytes(probe.get("steps", []), parts)
    session = b"".join(parts)[:8000]
    # The first octet is the fuzz target's switches: a port-25 session and a submission one.
    seeds["session"].add(b"\x00" + session)
    seeds["session"].add(b"\x83" + session)

for reply in [b"220 mx.test ESMTP\r\n", b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
              b"550 5.1.1 <a@b> no such user\r\n", b"421-4.7.0 try\r\n421 4.7.0 later\r\n", b"354 go ahead\r\n"]:
    seeds["command"].add(reply)

for hex_file in sorted((ROOT / "Tests/DNSCoreTests/Fixtures").glob("*.hex")):
    seeds["dns"].add(bytes.fromhex(hex_file.read_text()))

fixtures = ROOT / "Tests/MailAuthTests/Fixtures"
for path in [fixtures / "spf/rfc7208-tests.yml", fixtures / "dmarc/zone.yml"]:
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.search(r"(v=(?:spf1|DMARC1)[^\"']*)", line)
        if found:
            seeds["spf"].add(found.group(1).encode())
for line in (fixtures / "dkim/zone.yml").read_text(encoding="utf-8").splitlines():
    found = re.search(r"TXT: (.*)$", line)
    if found:
        seeds["dkim"].add(b"\x00" + found.group(1).strip().encode())
for path in sorted((fixtures / "dkim/messages").glob("*.eml")):
    data = path.read_bytes()
    header = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    for field in re.findall(rb"(?ims)^DKIM-Signature:.*?\r\n(?![ \t])", header):
        seeds["dkim"].add(b"\x01" + field)
    seeds["headers"].add(b"\x80" + data[:8000])

for doc in sorted((ROOT / "docs").glob("*.md")):
    for block in re.findall(r"```toml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
        seeds["config"].add(block.encode())

for name, contents in seeds.items():
    directory = OUT / name
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for content in contents:
        (directory / hashlib.sha1(content).hexdigest()).write_bytes(content)
    print(f"{name}: {len(contents)} seeds")
