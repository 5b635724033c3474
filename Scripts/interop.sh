#!/usr/bin/env bash
# Interop: real third-party clients (swaks, Python's smtplib) send through a real petrel
# process, and the delivered Maildir files are checked byte for byte (and read back with
# Python's mailbox.Maildir, a standard Maildir reader).
#
# usage: Scripts/interop.sh [path/to/petrel]    (default: .build/debug/petrel, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

PETREL=${1:-.build/debug/petrel}
[ -x "$PETREL" ] || swift build --product petrel
command -v swaks >/dev/null || { echo "interop: swaks is not installed (apt-get install swaks)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/petrel-interop-XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "interop: FAIL: $*" >&2; echo "--- server log" >&2; cat "$WORK/server.log" >&2; exit 1; }

cat > "$WORK/petrel.toml" <<CONF
hostname = "mx.example.test"
data_dir = "data"
domains = ["example.test"]
[listen]
smtp = ["127.0.0.1:0"]
CONF
P() { "$PETREL" "$@" --config "$WORK/petrel.toml"; }
P user add alice@example.test >/dev/null
P user add "jösé@example.test" >/dev/null
P user add carol@example.test >/dev/null
P alias add team@example.test alice@example.test carol@example.test >/dev/null

"$PETREL" serve --config "$WORK/petrel.toml" 2>"$WORK/server.log" &
SERVER_PID=$!
PORT=
for _ in $(seq 1 200); do
  PORT=$(sed -n 's/.* listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -n1)
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || fail "server did not start"
echo "interop: petrel listening on 127.0.0.1:$PORT"

# --- swaks: a fixed message (no tokens), plain and pipelined; dot-stuffing by swaks.
printf 'From: <bob@example.net>\nTo: <alice@example.test>\nSubject: swaks interop\nMessage-ID: <swaks-1@example.net>\nX-Interop: swaks\n\nHello from swaks.\n.leading dot\n..two dots\n' > "$WORK/swaks.eml"
swaks --server "127.0.0.1:$PORT" --helo swaks.example.net --from bob@example.net --to alice@example.test \
  --data "@$WORK/swaks.eml" >"$WORK/swaks1.log" 2>&1 || fail "swaks plain: $(tail -n 5 "$WORK/swaks1.log")"
swaks --server "127.0.0.1:$PORT" --helo swaks.example.net --pipeline --from bob@example.net --to alice+x@example.test \
  --data "@$WORK/swaks.eml" >"$WORK/swaks2.log" 2>&1 || fail "swaks pipelined: $(tail -n 5 "$WORK/swaks2.log")"
grep -q '^<\*\* *250' "$WORK/swaks1.log" && fail "swaks saw an error"
grep -q 'PIPELINING' "$WORK/swaks2.log" || fail "PIPELINING not advertised"

# Refusals swaks must see: unknown user 550 5.1.1, relaying 554 5.7.1 (swaks exits 24 on RCPT failure).
set +e
swaks --server "127.0.0.1:$PORT" --from bob@example.net --to nobody@example.test >"$WORK/swaks3.log" 2>&1; rc=$?
set -e
[ $rc -eq 24 ] && grep -q '550 5.1.1' "$WORK/swaks3.log" || fail "unknown user not refused with 550 5.1.1 (rc=$rc)"
set +e
swaks --server "127.0.0.1:$PORT" --from bob@example.net --to victim@elsewhere.example >"$WORK/swaks4.log" 2>&1; rc=$?
set -e
[ $rc -eq 24 ] && grep -q '554 5.7.1' "$WORK/swaks4.log" || fail "relaying not refused with 554 5.7.1 (rc=$rc)"
echo "interop: swaks ok"

# --- Python smtplib, then byte-for-byte checks of every delivered file.
python3 Scripts/interop_check.py "$PORT" "$WORK/data/mail" "$WORK/swaks.eml" || fail "smtplib / Maildir checks"

# --- SIGTERM: a clean stop with exit status 0.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "petrel did not exit 0 on SIGTERM"
SERVER_PID=
grep -q ' info connection ' "$WORK/server.log" || fail "no connection log lines"
grep -q ' info "message accepted" ' "$WORK/server.log" || fail "no message log lines"
echo "interop: all checks passed"
