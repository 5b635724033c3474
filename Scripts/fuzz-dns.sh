#!/usr/bin/env bash
# Fuzzes DNSCore's packet decoder with libFuzzer and AddressSanitizer.
#
#   Scripts/fuzz-dns.sh [SECONDS]     (default 600; 0 runs until stopped)
#
# The corpus starts from the packets captured from Knot (Tests/DNSCoreTests/Fixtures/*.hex)
# and grows in .build/fuzz/dns-corpus; a crashing input is written to .build/fuzz/ as
# crash-<sha1>, and replayed with: .build/fuzz/dns-decoder .build/fuzz/crash-<sha1>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
out=.build/fuzz
mkdir -p "$out/dns-corpus"

swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name DNSFuzz \
    Sources/DNSCore/*.swift Fuzz/DNSDecoder/main.swift -o "$out/dns-decoder" 2> >(grep -v "Cannot export local symbol" >&2)

python3 - "$out/dns-corpus" Tests/DNSCoreTests/Fixtures/*.hex <<'PY'
import pathlib, sys
for hex_file in map(pathlib.Path, sys.argv[2:]):
    (pathlib.Path(sys.argv[1]) / f"seed-{hex_file.stem}").write_bytes(bytes.fromhex(hex_file.read_text()))
PY

cd "$out"
exec ./dns-decoder -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 dns-corpus
