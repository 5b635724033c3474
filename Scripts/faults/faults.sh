#!/usr/bin/env bash
# Crash, fault and hostile-client tests against a real petrel process (docs/security.md).
#
#   Scripts/faults/faults.sh [--short] [path/to/petrel]     (default .build/release/petrel, built if missing)
#
# Long form (the figures in docs/security.md): 50 kill -9 under load, disk full, read-only data
# directory, DNS failing (Scripts/faults/faults.py), then 5,000 slowloris connections and the other
# hostile clients (Scripts/faults/hostile.py). --short (CI, on a debug build): 5 kills, 1,000 slowloris
# connections, 4 flooding clients.
# Needs root for the tmpfs and bind mounts and the remote MX on 127.0.0.2:25 (the parts that
# need it are skipped otherwise), and Python's aiosmtpd and dnslib.
set -euo pipefail
cd "$(dirname "$0")/../.."

kills=50 slowloris=5000 seconds=20 clients=20
if [ "${1:-}" = "--short" ]; then
  kills=5 slowloris=1000 seconds=8 clients=4
  shift
fi
PETREL=${1:-.build/release/petrel}
[ -x "$PETREL" ] || swift build -c release --product petrel

python3 Scripts/faults/faults.py "$PETREL" --kills "$kills"
python3 Scripts/faults/hostile.py "$PETREL" --slowloris "$slowloris" --seconds "$seconds" --clients "$clients"
