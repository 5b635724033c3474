# Helpers for bench/run: start and stop each server, and read its process tree's memory and CPU.
# Sourced, not run. Every server listens on 127.0.0.1 only and delivers into a Maildir under its
# own directory; nothing it does needs DNS.
BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

die() { echo "bench: $*" >&2; exit 1; }

# wait_greeting PORT [SECONDS=30]: until the server on 127.0.0.1:PORT answers 220.
wait_greeting() {
  local i line
  for i in $(seq $((${2:-30} * 10))); do
    if { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
      read -r -t 5 line <&9; printf 'QUIT\r\n' >&9; exec 9<&- 9>&-
      case $line in 220*) return 0 ;; esac
    fi
    sleep 0.1
  done
  return 1
}

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() {
  if { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then exec 9<&- 9>&-; return 1; fi
  return 0
}

# tree_pids PID: PID and its descendants, one per line.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { children[$2] = children[$2] " " $1 }
    END { queue[1] = root; n = 1
          for (i = 1; i <= n; i++) { print queue[i]
            m = split(children[queue[i]], c, " "); for (j = 1; j <= m; j++) queue[++n] = c[j] } }'
}

# tree_memory PID: "RSS_KB PSS_KB PROCESSES" summed over the tree (PSS shares pages fairly
# between processes; RSS counts a shared page once per process).
tree_memory() {
  local files="" pid
  for pid in $(tree_pids "$1"); do files="$files /proc/$pid/smaps_rollup"; done
  cat $files 2>/dev/null | awk '/^Rss:/ { r += $2; n++ } /^Pss:/ { p += $2 } END { print r + 0, p + 0, n + 0 }'
}

# tree_cpu PID: CPU seconds (user + system) used by the tree so far, including its children that
# have exited and been waited for (Postfix's master waits for its smtpd, cleanup, virtual...).
tree_cpu() {
  local files="" pid
  for pid in $(tree_pids "$1"); do files="$files /proc/$pid/stat"; done
  # Fields 14-17 (utime stime cutime cstime), in clock ticks; the command name (field 2) may
  # hold spaces, so count from the closing parenthesis.
  cat $files 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '
    { sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { printf "%.2f\n", t / hz }'
}

# delivered DIR: messages in the Maildirs under DIR (files in new/ and cur/ beside a tmp/).
delivered() {
  find "$1" -maxdepth 5 -type d \( -name new -o -name cur \) 2>/dev/null | while read -r d; do
    if [ -d "${d%/*}/tmp" ]; then ls -f "$d" | grep -vc '^\.\.\?$' || true; fi
  done | awk '{ n += $1 } END { print n + 0 }'
}

# stop_tree PID: TERM the tree, KILL what is left after 10 s.
stop_tree() {
  local pids i
  pids=$(tree_pids "$1")
  kill -TERM $pids 2>/dev/null
  for i in $(seq 100); do kill -0 $pids 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL $pids 2>/dev/null
  return 0
}

# ---- Petrel: release build, production durability (file and directory fsynced before 250).
# SPF/DKIM/DMARC checks are off, as Postfix does none; the connection limits are raised so that
# 200 concurrent clients (and the 10,000 idle ones) from 127.0.0.1 are served.
petrel_start() {  # PORT DIR
  local port=$1 dir=$2
  port_free "$port" || die "port $port is in use (an earlier run's server?)"
  mkdir -p "$dir"
  cat >"$dir/petrel.toml" <<TOML
hostname = "bench.local"
data_dir = "$dir/data"
domains = ["bench.test"]
[listen]
smtp = ["127.0.0.1:$port"]
# [auth] verify, not [inbound]: the baseline binary of a comparison may predate [inbound].
[auth]
verify = false
[limits]
connections = 20000
connections_per_ip = 20000
message_size = 209715200
[dns]
servers = ["127.0.0.1:9"]
TOML
  "$PETREL" user add user@bench.test --config "$dir/petrel.toml" >/dev/null || die "petrel user add failed"
  "$PETREL" serve --config "$dir/petrel.toml" >"$dir/petrel.log" 2>&1 &
  echo $! >"$dir/server.pid"
  wait_greeting "$port" || die "petrel did not greet on $port: $(tail -n 5 "$dir/petrel.log")"
}
petrel_maildir() { echo "$1/data/mail"; }

# ---- Postfix 3.7 from Debian, a private instance (postfix -c DIR/etc): smtpd -> cleanup (fsyncs
# the queue file before 250) -> qmgr -> virtual(8) (tmp/, fsync, rename into new/).
postfix_start() {  # PORT DIR
  local port=$1 dir=$2
  port_free "$port" || die "port $port is in use (an earlier run's server?)"
  mkdir -p "$dir/etc" "$dir/data" "$dir/queue" "$dir/Maildir/tmp" "$dir/Maildir/new" "$dir/Maildir/cur"
  chown -R 65534:65534 "$dir/Maildir"; chmod 755 "$dir"; chown postfix "$dir/data"
  cat >"$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
myhostname = bench.local
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
message_size_limit = 209715200
virtual_mailbox_limit = 0
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $dir
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
CF
  cat >"$dir/etc/master.cf" <<CF
127.0.0.1:$port inet n - n - 11000 smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CF
  postfix -c "$dir/etc" check >"$dir/check.log" 2>&1
  postfix -c "$dir/etc" start >"$dir/start.log" 2>&1 || die "postfix start failed: $(cat "$dir/start.log")"
  awk '{ print $1; exit }' "$dir/queue/pid/master.pid" >"$dir/server.pid"
  wait_greeting "$port" || die "postfix did not greet on $port"
}
postfix_maildir() { echo "$1/Maildir"; }

server_stop() {  # DIR
  [ -s "$1/server.pid" ] && stop_tree "$(cat "$1/server.pid")"
  rm -f "$1/server.pid"
}

# ---- Another petrel binary ($PETREL_BASELINE), for before/after comparisons of one change in
# one run: SERVERS="petrel baseline" PETREL_BASELINE=/path/to/old/petrel bench/run
baseline_start() { PETREL=${PETREL_BASELINE:?set PETREL_BASELINE to a petrel binary} petrel_start "$@"; }
baseline_maildir() { petrel_maildir "$@"; }
