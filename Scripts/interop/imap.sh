#!/usr/bin/env bash
# IMAP interop (docs/imap.md): a real petrel process read by real IMAP software.
#   1. Python's imaplib and imapclient: a tour of every command and extension petrel offers, each
#      response checked (Scripts/interop/interop_imap.py).
#   2. mbsync (isync) mirrors the account both ways: mail delivered over SMTP reaches the local
#      copy; a flag set and a message moved to Archive locally reach the server and its Maildir.
#   3. Dovecot (dovecot-imapd) serves the same Maildir beside petrel: flags and messages stored
#      through one show through the other, and a burst of deliveries is seen once by each.
#
# usage: Scripts/interop/imap.sh [path/to/petrel]    (default: .build/debug/petrel, built if missing)
# Needs python3 with imapclient; mbsync and dovecot are used when installed (CI installs both),
# and Dovecot only as root (it must run petrel's mail as a user of its own: it refuses root's).
set -euo pipefail
cd "$(dirname "$0")/../.."

PETREL=$(realpath "${1:-.build/debug/petrel}")
[ -x "$PETREL" ] || { swift build --product petrel && PETREL=$(realpath .build/debug/petrel); }
python3 -c 'import imapclient' 2>/dev/null || { echo "imap interop: pip install imapclient" >&2; exit 1; }

WORK=$(mktemp -d /tmp/petrel-imap-XXXXXX)
SERVER_PID=
DOVECOT_CONF=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$DOVECOT_CONF" ] && doveadm -c "$DOVECOT_CONF" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "imap interop: FAIL: $*" >&2; echo "--- server log" >&2; cat "$WORK/server.log" >&2; exit 1; }

# As root, petrel runs as a user of its own, so that Dovecot can be given that user for the mail.
AS=()
if [ "$(id -u)" -eq 0 ]; then
  id petrel-interop >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin petrel-interop
  chown petrel-interop "$WORK"
  AS=(runuser -u petrel-interop --)
fi
chmod 755 "$WORK"

USER_NAME=alice@example.test
PASSWORD='imap pass phrase'
cat > "$WORK/petrel.toml" <<CONF
hostname = "mx.example.test"
data_dir = "data"
domains = ["example.test"]
[listen]
smtp = ["127.0.0.1:0"]
imap = ["127.0.0.1:0"]
imaps = ["127.0.0.1:0"]
[dns]
servers = ["127.0.0.1:9"]
[inbound]
verify = false   # no DNS here: SPF, DKIM and DMARC are interop.sh's
[imap]
append_limit = 1000000
CONF
P() { "${AS[@]}" "$PETREL" "$@" --config "$WORK/petrel.toml"; }

"${AS[@]}" "$PETREL" serve --config "$WORK/petrel.toml" 2>"$WORK/server.log" &
SERVER_PID=$!
port_of() { sed -n "s/.* listening address=127\.0\.0\.1:\([0-9]*\) protocol=$1\$/\1/p" "$WORK/server.log" | head -n1; }
SMTP=; IMAP=; IMAPS=
for _ in $(seq 1 400); do
  SMTP=$(port_of smtp); IMAP=$(port_of imap); IMAPS=$(port_of imaps)
  [ -n "$SMTP" ] && [ -n "$IMAP" ] && [ -n "$IMAPS" ] && break
  sleep 0.05
done
[ -n "$IMAPS" ] || fail "the server did not start"
echo "imap interop: petrel on smtp $SMTP, imap $IMAP, imaps $IMAPS"

# 0. The README's way: mail for postmaster@ arrives while there is no account at all; the account
# made afterwards (the server running) adopts the Maildir, and IMAP reads the message.
python3 Scripts/interop/interop_imap.py deliver "$SMTP" postmaster@example.test "before the account"
printf '%s\n' "$PASSWORD" | P user add postmaster@example.test --password-stdin >/dev/null
python3 Scripts/interop/interop_imap.py expect "$IMAPS" postmaster@example.test "$PASSWORD" INBOX "before the account" \
  || fail "an account made after mail arrived does not read it"

# 1. The tour.
printf '%s\n' "$PASSWORD" | P user add "$USER_NAME" --password-stdin >/dev/null
python3 Scripts/interop/interop_imap.py tour "$SMTP" "$IMAP" "$IMAPS" "$USER_NAME" "$PASSWORD" || fail "the imaplib/imapclient tour"
SKIPPED=()

# 1b. A quota: 452 4.2.2 for a full mailbox, and the mail arrives once the user makes room.
printf '%s\n' "$PASSWORD" | P user add quota@example.test --password-stdin >/dev/null
P user quota quota@example.test 4K >/dev/null
python3 Scripts/interop/interop_imap.py quota "$SMTP" "$IMAPS" quota@example.test "$PASSWORD" || fail "the quota"
# 1c. COMPRESS=DEFLATE against Python's zlib.
python3 Scripts/interop/interop_imap.py compress "$IMAPS" "$USER_NAME" "$PASSWORD" || fail "COMPRESS=DEFLATE"

MAILDIR="$WORK/data/mail/$USER_NAME"
# 2. mbsync, both ways.
if command -v mbsync >/dev/null; then
  mkdir -p "$WORK/local"
  cat > "$WORK/mbsyncrc" <<RC
IMAPAccount petrel
Host 127.0.0.1
Port $IMAPS
User $USER_NAME
Pass "$PASSWORD"
SSLType IMAPS
CertificateFile $WORK/data/tls/self-signed-certificate.pem

IMAPStore remote
Account petrel

MaildirStore local
Path $WORK/local/
Inbox $WORK/local/INBOX
SubFolders Verbatim

Channel mirror
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
RC
  sync() { mbsync -q -c "$WORK/mbsyncrc" -a >>"$WORK/mbsync.log" 2>&1 || fail "mbsync: $(cat "$WORK/mbsync.log")"; }
  python3 Scripts/interop/interop_imap.py deliver "$SMTP" "$USER_NAME" "mbsync one"
  python3 Scripts/interop/interop_imap.py deliver "$SMTP" "$USER_NAME" "mbsync two"
  sync
  find_local() { grep -ls "^Subject: $1" "$WORK"/local/INBOX/{cur,new}/* | head -n1 || true; }
  one=$(find_local "mbsync one")
  two=$(find_local "mbsync two")
  [ -n "$one" ] && [ -n "$two" ] || fail "mbsync did not bring the delivered messages ($(ls -R "$WORK/local"))"
  echo "imap interop: ok: mbsync brought mail delivered over SMTP"
  # Locally: "one" moves to Archive (a new file there, as a mail client writes it), "two" is flagged.
  mkdir -p "$WORK/local/Archive/cur"
  base=$(basename "$one"); base=${base%%,U=*}; base=${base%%:2,*}
  mv "$one" "$WORK/local/Archive/cur/$base:2,S"
  case $two in *:2,*) mv "$two" "${two}F" ;; *) mv "$two" "$WORK/local/INBOX/cur/$(basename "$two"):2,F" ;; esac
  sync
  python3 Scripts/interop/interop_imap.py expect "$IMAPS" "$USER_NAME" "$PASSWORD" Archive "mbsync one" '\Seen' \
    || fail "the move to Archive made with mbsync"
  python3 Scripts/interop/interop_imap.py expect "$IMAPS" "$USER_NAME" "$PASSWORD" INBOX "mbsync two" '\Flagged' \
    || fail "the flag set with mbsync"
  grep -qs "^Subject: mbsync one" "$MAILDIR"/.Archive/cur/* || fail "the moved message is not in the Maildir's .Archive"
  if grep -qs "^Subject: mbsync one" "$MAILDIR"/cur/* "$MAILDIR"/new/*; then fail "the moved message is still in INBOX"; fi
  echo "imap interop: ok: the message moved with mbsync is in .Archive/cur of the Maildir"
  # And back: a flag set on the server reaches the local copy.
  python3 Scripts/interop/interop_imap.py flag "$IMAPS" "$USER_NAME" "$PASSWORD" "mbsync two" '\Answered'
  sync
  ls "$WORK"/local/INBOX/cur/ | grep -q ':2,[A-Z]*R' || fail "the server's flag did not reach mbsync's copy"
  echo "imap interop: ok: a flag set on the server reached mbsync's copy"
else
  echo "imap interop: mbsync is not installed (apt-get install isync): skipping the sync client" >&2
  SKIPPED+=(mbsync)
fi

# 3. Dovecot on the same Maildir.
if command -v dovecot >/dev/null && [ "$(id -u)" -eq 0 ]; then
  DOVECOT_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/dovecot"
  DOVECOT_CONF="$WORK/dovecot/dovecot.conf"
  cat > "$DOVECOT_CONF" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $WORK/dovecot/run
state_dir = $WORK/dovecot/state
log_path = $WORK/dovecot/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$WORK/data/mail/%u
passdb {
  driver = static
  args = password=dovecot
}
userdb {
  driver = static
  args = uid=petrel-interop gid=$(id -g petrel-interop) home=$WORK/dovecot/home/%u
}
service imap-login {
  inet_listener imap {
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
  dovecot -c "$DOVECOT_CONF" || fail "dovecot did not start"
  for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $DOVECOT_PORT), 1)" 2>/dev/null && break
    sleep 0.1
  done
  python3 Scripts/interop/interop_imap.py shared "$SMTP" "$IMAPS" "$DOVECOT_PORT" "$USER_NAME" "$PASSWORD" \
    || { cat "$WORK/dovecot/dovecot.log" >&2; fail "petrel and Dovecot on one Maildir"; }
else
  echo "imap interop: Dovecot is not installed or this is not root: skipping the shared-Maildir test" >&2
  SKIPPED+=(dovecot)
fi

grep -q '"imap session"' "$WORK/server.log" || fail "no session log lines"
if ((${#SKIPPED[@]})); then
  echo "imap interop: passed, but skipped: ${SKIPPED[*]}"
else
  echo "imap interop: all passed"
fi
