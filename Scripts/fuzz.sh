#!/usr/bin/env bash
# Runs a libFuzzer target with AddressSanitizer.
#
#   Scripts/fuzz.sh TARGET [SECONDS]     (default 600; 0 runs until stopped)
#
# Targets:
#   dns        DNSCore's packet decoder (Fuzz/DNSDecoder); seeds: the packets captured from Knot
#   mailauth   SPF and DMARC records, macro-strings, header sections, DKIM-Signature fields, From
#              address lists, IDNA (Fuzz/MailAuthParsers); seeds: the conformance fixtures
#
# Each target is compiled from its sources with `swiftc -sanitize=fuzzer,address` (the toolchain
# ships libFuzzer). The corpus grows in .build/fuzz/TARGET-corpus; a crashing input is written to
# .build/fuzz/ as crash-<sha1>, and replayed with: .build/fuzz/TARGET .build/fuzz/crash-<sha1>
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: Scripts/fuzz.sh dns|mailauth [SECONDS]}
seconds=${2:-600}
out=.build/fuzz
corpus="$out/$target-corpus"
mkdir -p "$corpus"

module=Fuzz
case $target in
dns)
  sources=(Sources/DNSCore/*.swift Fuzz/DNSDecoder/main.swift)
  python3 - "$corpus" Tests/DNSCoreTests/Fixtures/*.hex <<'PY'
import pathlib, sys
for hex_file in map(pathlib.Path, sys.argv[2:]):
    (pathlib.Path(sys.argv[1]) / f"seed-{hex_file.stem}").write_bytes(bytes.fromhex(hex_file.read_text()))
PY
  ;;
mailauth)
  # The parsers only: MailCore (pure), the SPF and DMARC record code, the DKIM-Signature reader
  # (SPFVerifier comes along for SPFResult, DNSCore for it).
  sources=(Sources/MailCore/*/*.swift Sources/DNSCore/*.swift Sources/MailAuth/SPF/*.swift
    Sources/MailAuth/DKIM/TagList.swift Sources/MailAuth/DKIM/DKIMSignature.swift
    Sources/MailAuth/DMARC/DMARCRecord.swift Fuzz/MailAuthParsers/main.swift)
  module=MailCore  # MailCore names itself in a few places
  python3 - "$corpus" <<'PY'
import hashlib, pathlib, re, sys
corpus = pathlib.Path(sys.argv[1])
fixtures = pathlib.Path("Tests/MailAuthTests/Fixtures")
seeds = []
for path in sorted((fixtures / "dkim" / "messages").glob("*.eml")):
    data = path.read_bytes()
    seeds.append(data.split(b"\r\n\r\n", 1)[0] + b"\r\n")
for path in [fixtures / "spf" / "rfc7208-tests.yml", fixtures / "dmarc" / "zone.yml"]:
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.search(r"(v=(?:spf1|DMARC1)[^\"']*)", line)
        if found:
            seeds.append(found.group(1).encode())
for seed in seeds:
    (corpus / ("seed-" + hashlib.sha1(seed).hexdigest())).write_bytes(seed)
PY
  ;;
*)
  echo "fuzz.sh: unknown target '$target' (dns or mailauth)" >&2
  exit 64
  ;;
esac

# One module from all the sources: their imports of each other go (copies under .build/fuzz).
copies="$out/$target-sources"
rm -rf "$copies" && mkdir -p "$copies"
for source in "${sources[@]}"; do
  sed -E '/^import (MailCore|DNSCore)$/d' "$source" >"$copies/$(echo "$source" | tr / _)"
done
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name "$module" "$copies"/*.swift -o "$out/$target" \
  2> >(grep -v "Cannot export local symbol" >&2)

cd "$out"
exec "./$target" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 \
  -print_final_stats=1 "$target-corpus"
