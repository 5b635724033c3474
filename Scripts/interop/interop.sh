#!/usr/bin/env bash
# Interop: real third-party clients (swaks, Python's smtplib, openssl s_client, Python's scramp,
# nmap's smtp-open-relay)
# talk to a real petrel process: plain SMTP, STARTTLS, implicit TLS, AUTH PLAIN, LOGIN and
# SCRAM-SHA-256. Delivered Maildir files are checked byte for byte (and read back with Python's
# mailbox.Maildir, a standard Maildir reader). Outbound mail leaves through the queue to remote
# MX hosts found by MX lookup: aiosmtpd (127.0.0.2:25) and a private Postfix (127.0.0.3:25,
# STARTTLS), where dkimpy verifies its RSA and Ed25519 signatures (Scripts/interop/interop_delivery.py).
# Mail authentication against dkimpy and pyspf (Scripts/interop/interop_auth.py), with petrel's resolver
# asking a DNS server on loopback (Scripts/interop/dns/serve_zone.py) that publishes fresh DKIM keys.
#
# usage: Scripts/interop/interop.sh [path/to/petrel]    (default: .build/debug/petrel, built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."

PETREL=${1:-.build/debug/petrel}
[ -x "$PETREL" ] || swift build --product petrel
command -v swaks >/dev/null || { echo "interop: swaks is not installed (apt-get install swaks)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/petrel-interop-XXXXXX)
SERVER_PID=
DNS_PID=
RECEIVER_PID=
POSTFIX_DIR=
KNOT_PID=
RECORDS_PID=
cleanup() {
  [ -n "$KNOT_PID" ] && kill "$KNOT_PID" 2>/dev/null && wait "$KNOT_PID" 2>/dev/null || true
  [ -n "$RECORDS_PID" ] && kill "$RECORDS_PID" 2>/dev/null && wait "$RECORDS_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null || true
  [ -n "$RECEIVER_PID" ] && kill "$RECEIVER_PID" 2>/dev/null && wait "$RECEIVER_PID" 2>/dev/null || true
  [ -n "$POSTFIX_DIR" ] && postfix -c "$POSTFIX_DIR/etc" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}

# A private Postfix instance as the MX of postfix.example (127.0.0.3:25), delivering into
# DIR/Maildir, offering STARTTLS with a self-signed certificate.
start_postfix() {
  local dir=$1
  mkdir -p "$dir/etc" "$dir/data" "$dir/queue" "$dir/Maildir"
  chmod 755 "$WORK" "$dir"
  chown postfix "$dir/data"
  chown nobody "$dir/Maildir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.postfix.example" \
    -keyout "$dir/etc/key.pem" -out "$dir/etc/cert.pem" >/dev/null 2>&1
  cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
myhostname = mx.postfix.example
mydestination =
# 127.0.0.3 is bound in master.cf; Postfix accepts only addresses of an interface here.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = postfix.example
virtual_mailbox_base = $dir
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_tls_security_level = may
smtpd_tls_cert_file = $dir/etc/cert.pem
smtpd_tls_key_file = $dir/etc/key.pem
smtpd_tls_received_header = yes
CF
  cat > "$dir/etc/master.cf" <<CF
127.0.0.3:25 inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
tlsmgr    unix - - n 1000? 1 tlsmgr
postlog   unix-dgram n - n - 1 postlogd
CF
  # Postfix reports errors to the terminal only: script(1) gives it one.
  script -qc "postfix -c '$dir/etc' start" "$dir/start.log" >/dev/null 2>&1 \
    || fail "postfix did not start: $(cat "$dir/start.log")"
}
trap cleanup EXIT
fail() { echo "interop: FAIL: $*" >&2; echo "--- server log" >&2; cat "$WORK/server.log" >&2; exit 1; }

# The DNS petrel sees: fresh DKIM keys, SPF and DMARC for interop.example; our own DKIM keys
# (RSA and Ed25519) for example.test; remote.example's MX at 127.0.0.2 (aiosmtpd) and
# postfix.example's at 127.0.0.3 (Postfix); NXDOMAIN for the rest.
python3 Scripts/interop/interop_auth.py keys "$WORK"
DNS_PORT=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat > "$WORK/petrel.toml" <<CONF
hostname = "mx.example.test"
data_dir = "data"
domains = ["example.test"]
[listen]
smtp = ["127.0.0.1:0"]
submission = ["127.0.0.1:0"]
submissions = ["127.0.0.1:0"]
[dns]
servers = ["127.0.0.1:$DNS_PORT"]
timeout = 1
attempts = 1
[limits]
errors = 50   # nmap's smtp-open-relay tries its 16 relay forms in one session
CONF
P() { "$PETREL" "$@" --config "$WORK/petrel.toml"; }
P dkim keygen example.test --selector rsa2026 >/dev/null
P dkim keygen example.test --selector ed2026 --algorithm ed25519 >/dev/null
P dkim list example.test >"$WORK/dkim-records.txt"
python3 Scripts/interop/interop_delivery.py zone "$WORK" "$WORK/dkim-records.txt"
python3 Scripts/interop/dns/serve_zone.py "$WORK/auth-zone.yml" --port "$DNS_PORT" >"$WORK/dns.log" 2>&1 &
DNS_PID=$!
python3 Scripts/interop/interop_auth.py wait "$DNS_PORT"

# The remote MX hosts: aiosmtpd, and Postfix when installed (CI installs it).
python3 Scripts/interop/interop_delivery.py receiver "$WORK/received" >"$WORK/aiosmtpd.log" 2>&1 &
RECEIVER_PID=$!
POSTFIX_DIR=
if command -v postfix >/dev/null; then
  POSTFIX_DIR="$WORK/postfix"
  start_postfix "$POSTFIX_DIR"
fi
PASSWORD='s3cret pass phrase'
printf '%s\n' "$PASSWORD" | P user add alice@example.test --password-stdin >/dev/null
P user add "jösé@example.test" >/dev/null
P user add carol@example.test >/dev/null
P alias add team@example.test alice@example.test carol@example.test >/dev/null

"$PETREL" serve --config "$WORK/petrel.toml" 2>"$WORK/server.log" &
SERVER_PID=$!
port_of() { sed -n "s/.* listening address=127\.0\.0\.1:\([0-9]*\) protocol=$1\$/\1/p" "$WORK/server.log" | head -n1; }
PORT=; SUBMISSION=; SUBMISSIONS=
for _ in $(seq 1 400); do
  PORT=$(port_of smtp); SUBMISSION=$(port_of submission); SUBMISSIONS=$(port_of submissions)
  [ -n "$PORT" ] && [ -n "$SUBMISSION" ] && [ -n "$SUBMISSIONS" ] && break
  sleep 0.05
done
[ -n "$SUBMISSIONS" ] || fail "server did not start"
echo "interop: petrel listening on smtp $PORT, submission $SUBMISSION, submissions $SUBMISSIONS"

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

# nmap's smtp-open-relay script (Debian's nmap): its 16 combinations of sender and recipient forms
# (user@domain, %-hacks, quoted, bang paths, source routes, IP literals) must all be refused.
if command -v nmap >/dev/null; then
  # '+' runs the script on a port nmap does not take for SMTP.
  nmap -Pn -n -p "$PORT" --script +smtp-open-relay \
    --script-args smtp-open-relay.domain=example.test,smtp-open-relay.ip=127.0.0.1 127.0.0.1 \
    >"$WORK/nmap.log" 2>&1 || fail "nmap: $(cat "$WORK/nmap.log")"
  grep -q "doesn't seem to be an open relay, all tests failed" "$WORK/nmap.log" \
    || fail "nmap smtp-open-relay: $(cat "$WORK/nmap.log")"
  echo "interop: nmap smtp-open-relay: not an open relay (all 16 forms refused)"
elif [ -n "${CI:-}" ]; then
  fail "nmap is not installed"
fi

# --- TLS with openssl s_client: STARTTLS on the smtp port, implicit TLS on submissions.
for mode in starttls implicit; do
  if [ $mode = starttls ]; then
    args=(-starttls smtp -connect "127.0.0.1:$PORT")
  else
    args=(-connect "127.0.0.1:$SUBMISSIONS")
  fi
  # s_client reads stdin only after the handshake; give it the time, and keep stdin open for the reply.
  { sleep 1; printf 'EHLO openssl.example.net\r\n'; sleep 1; printf 'QUIT\r\n'; sleep 0.5; } \
    | timeout 10 openssl s_client "${args[@]}" -tls1_3 -quiet >"$WORK/openssl-$mode.log" 2>&1 || true
  grep -q '^250-AUTH\|^250-PIPELINING' "$WORK/openssl-$mode.log" || fail "no EHLO reply over TLS ($mode): $(cat "$WORK/openssl-$mode.log")"
  # What is accepted: TLS 1.3, and TLS 1.2 with an ECDHE AEAD suite; what is not: CBC suites, TLS 1.1.
  for offer in "-tls1_3" "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256" \
    "!-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA" "!-tls1_1 -cipher DEFAULT@SECLEVEL=0"; do
    expect_ok=1
    [ "${offer:0:1}" = "!" ] && { expect_ok=0; offer=${offer:1}; }
    # shellcheck disable=SC2086
    if timeout 10 openssl s_client "${args[@]}" $offer </dev/null >"$WORK/openssl-offer.log" 2>&1; then ok=1; else ok=0; fi
    [ $ok -eq $expect_ok ] || fail "openssl s_client $offer ($mode): expected success=$expect_ok: $(grep -m1 'Cipher is' "$WORK/openssl-offer.log")"
  done
done
echo "interop: openssl s_client ok (STARTTLS and implicit TLS; TLS 1.3 and 1.2 ECDHE-AEAD only)"

# --- swaks with TLS and AUTH: PLAIN and LOGIN over STARTTLS on submission, PLAIN over implicit TLS.
swaks_auth() {
  swaks --server "127.0.0.1:$1" "${@:2}" --auth-user alice@example.test --auth-password "$PASSWORD" \
    --from alice@example.test --helo laptop.example.net >"$WORK/swaks-auth.log" 2>&1 \
    || fail "swaks ${*:2}: $(tail -n 8 "$WORK/swaks-auth.log")"
}
swaks_auth "$SUBMISSION" --tls --auth PLAIN --to someone@remote.example --header "X-Interop: swaks-plain"
swaks_auth "$SUBMISSION" --tls --auth LOGIN --to carol@example.test --header "X-Interop: swaks-login"
swaks_auth "$SUBMISSIONS" --tlsc --auth PLAIN --to someone@remote.example --header "X-Interop: swaks-tlsc"
swaks --server "127.0.0.1:$SUBMISSIONS" --tlsc --auth PLAIN --auth-user alice@example.test --auth-password wrong \
  --to x@remote.example >"$WORK/swaks-wrong.log" 2>&1 && fail "a wrong password was accepted"
grep -q '535 5.7.8' "$WORK/swaks-wrong.log" || fail "a wrong password did not get 535 5.7.8"
echo "interop: swaks TLS and AUTH ok"

# --- Python smtplib, then byte-for-byte checks of every delivered file.
python3 Scripts/interop/interop_check.py "$PORT" "$WORK/data/mail" "$WORK/swaks.eml" "$SUBMISSION" "$PASSWORD" \
  || fail "smtplib / Maildir checks"

# --- Outbound: the three messages submitted for remote.example (swaks twice, scramp) leave
# through the queue to aiosmtpd, found by MX lookup, each signed twice; dkimpy verifies both.
python3 Scripts/interop/interop_delivery.py check "$WORK/received" 3 "$DNS_PORT" || fail "delivery to aiosmtpd"
for _ in $(seq 1 100); do
  [ "$(P queue list)" = "the queue is empty" ] && break
  sleep 0.1
done
[ "$(P queue list)" = "the queue is empty" ] || fail "petrel queue list: $(P queue list)"
grep 'to=<someone@remote.example>' "$WORK/server.log" | grep -q 'relay=mx.remote.example\[127.0.0.2\].*status=sent' \
  || fail "no delivery log line"
echo "interop: delivery to aiosmtpd ok; petrel queue list is empty"

# --- Postfix as the destination MX: STARTTLS (its self-signed certificate: unverified, used).
if [ -n "$POSTFIX_DIR" ]; then
  swaks_auth "$SUBMISSION" --tls --auth PLAIN --to someone@postfix.example --header "X-Interop: postfix"
  python3 Scripts/interop/interop_delivery.py check "$POSTFIX_DIR/Maildir" 1 "$DNS_PORT" || fail "delivery to Postfix: $(tail -n 20 "$POSTFIX_DIR/postfix.log")"
  grep 'to=<someone@postfix.example>' "$WORK/server.log" | grep 'relay=mx.postfix.example\[127.0.0.3\]' \
    | grep 'status=sent' | grep 'verified=no' | grep -q 'tls=TLSv1.[23]' \
    || fail "the delivery to Postfix is not logged as sent over TLS: $(grep 'postfix.example' "$WORK/server.log")"
  echo "interop: delivery to Postfix ok (STARTTLS, unverified certificate recorded)"
else
  echo "interop: Postfix not installed; delivery to Postfix skipped"
fi

# --- Mail authentication: dkimpy-signed mail through `petrel check dkim` and through SMTP, and
# pyspf against `petrel check spf` on the whole RFC 7208 suite served over DNS.
python3 Scripts/interop/interop_auth.py dkim "$PETREL" "$WORK/petrel.toml" "$WORK" || fail "dkimpy and petrel check dkim"
python3 Scripts/interop/interop_auth.py smtp "$PORT" "$WORK/data/mail/carol@example.test" "$WORK" || fail "DKIM/DMARC over SMTP"
python3 Scripts/interop/interop_auth.py signing "$PETREL" "$WORK/petrel.toml" || fail "petrel dkim sign and dkimpy"
python3 Scripts/interop/interop_auth.py spf "$PETREL" "$WORK" Tests/MailAuthTests/Fixtures/spf/rfc7208-tests.yml \
  || fail "pyspf and petrel check spf"

# --- petrel init, petrel dns and petrel doctor, as on a clean machine: the zone petrel dns
# prints is served by Knot as it is; pyspf and dkimpy check it; doctor finds it all ok against a
# running server with a CA-issued certificate, and names a record once it is broken.
if command -v knotd >/dev/null || [ -x /usr/sbin/knotd ]; then
  RECORDS="$WORK/records"
  mkdir -p "$RECORDS/run"
  "$PETREL" init --domain example.com --hostname mail.example.com --ip 203.0.113.7 \
    --data-dir "$RECORDS/data" --config "$RECORDS/petrel.toml" >"$RECORDS/init.txt" || fail "petrel init"
  "$PETREL" dkim keygen example.com --selector ed --algorithm ed25519 --config "$RECORDS/petrel.toml" >/dev/null
  # The provider's PTR joins the zone (petrel dns prints it commented out: it is not ours to set).
  { printf '$ORIGIN .\n$TTL 300\n@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60\n@ IN NS ns.invalid.\n'
    "$PETREL" dns --format zone --config "$RECORDS/petrel.toml" | sed "s/^; (set by the address's owner) //"
  } >"$RECORDS/good.zone"
  KNOT_PORT=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$RECORDS/knot.conf" <<KNOT
server:
    rundir: "$RECORDS/run"
    listen: 127.0.0.1@$KNOT_PORT
database:
    storage: "$RECORDS/db"
zone:
  - domain: .
    file: "$RECORDS/root.zone"
    semantic-checks: off
log:
  - target: stderr
    any: error
KNOT
  knot_serve() {  # ZONE: (re)start Knot serving ZONE as the root zone
    [ -n "$KNOT_PID" ] && { kill "$KNOT_PID"; wait "$KNOT_PID" 2>/dev/null || true; }
    rm -rf "$RECORDS/db"
    cp "$1" "$RECORDS/root.zone"
    "$(command -v knotd || echo /usr/sbin/knotd)" -c "$RECORDS/knot.conf" 2>"$RECORDS/knot.log" &
    KNOT_PID=$!
    python3 Scripts/interop/interop_auth.py wait "$KNOT_PORT"
  }
  knot_serve "$RECORDS/good.zone"
  python3 Scripts/interop/interop_records.py "$KNOT_PORT" "$PETREL" "$RECORDS/petrel.toml" \
    || fail "petrel dns records with pyspf and dkimpy: $(cat "$RECORDS/knot.log")"

  # The server as init configured it, on free ports instead of 25/587/465/143/993, with a certificate
  # from a (test) certificate authority instead of the self-signed one.
  free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  sed -i -e "s/^smtp = .*/smtp = [\"127.0.0.1:$(free_port)\"]/" \
    -e "s/^submission = .*/submission = [\"127.0.0.1:$(free_port)\"]/" \
    -e "s/^submissions = .*/submissions = [\"127.0.0.1:$(free_port)\"]/" \
    -e "s/^imap = .*/imap = [\"127.0.0.1:$(free_port)\"]/" \
    -e "s/^imaps = .*/imaps = [\"127.0.0.1:$(free_port)\"]/" "$RECORDS/petrel.toml"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -keyout "$RECORDS/ca.key" -out "$RECORDS/ca.pem" >/dev/null 2>&1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mail.example.com" \
    -keyout "$RECORDS/key.pem" -out "$RECORDS/host.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:mail.example.com\n' >"$RECORDS/san.ext"
  openssl x509 -req -in "$RECORDS/host.csr" -CA "$RECORDS/ca.pem" -CAkey "$RECORDS/ca.key" -CAcreateserial \
    -days 2 -extfile "$RECORDS/san.ext" -out "$RECORDS/cert.pem" >/dev/null 2>&1
  printf '\n[tls]\ncertificate = "%s"\nkey = "%s"\n' "$RECORDS/cert.pem" "$RECORDS/key.pem" >>"$RECORDS/petrel.toml"
  "$PETREL" serve --config "$RECORDS/petrel.toml" 2>"$RECORDS/server.log" &
  RECORDS_PID=$!
  for _ in $(seq 1 200); do grep -q 'protocol=imaps' "$RECORDS/server.log" && break; sleep 0.05; done
  "$PETREL" doctor --config "$RECORDS/petrel.toml" --dns "127.0.0.1:$KNOT_PORT" >"$RECORDS/doctor.txt" \
    || fail "petrel doctor after petrel init: $(cat "$RECORDS/doctor.txt")"
  tail -n 1 "$RECORDS/doctor.txt" | grep -q ' 0 missing, 0 wrong$' || fail "doctor: $(cat "$RECORDS/doctor.txt")"
  CHECKS=$(grep -c '^ok ' "$RECORDS/doctor.txt")
  grep -v '^_dmarc\.example\.com\.' "$RECORDS/good.zone" >"$RECORDS/broken.zone"
  knot_serve "$RECORDS/broken.zone"
  "$PETREL" doctor --config "$RECORDS/petrel.toml" --dns "127.0.0.1:$KNOT_PORT" >"$RECORDS/doctor.txt" \
    && fail "doctor exited 0 without a DMARC record"
  grep -q '^missing TXT _dmarc.example.com' "$RECORDS/doctor.txt" || fail "doctor: $(cat "$RECORDS/doctor.txt")"
  echo "interop: petrel init, dns and doctor ok (all $CHECKS checks ok; then a removed DMARC record named)"
  kill "$RECORDS_PID"; wait "$RECORDS_PID" 2>/dev/null || true
  RECORDS_PID=
  kill "$KNOT_PID"; wait "$KNOT_PID" 2>/dev/null || true
  KNOT_PID=
else
  echo "interop: knotd not installed; petrel dns records not checked"
fi

# --- SIGTERM: a clean stop with exit status 0.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "petrel did not exit 0 on SIGTERM"
SERVER_PID=
grep -q ' info connection ' "$WORK/server.log" || fail "no connection log lines"
grep -q ' info "message accepted" ' "$WORK/server.log" || fail "no message log lines"
echo "interop: all checks passed"
