#!/usr/bin/env bash
# Builds and runs a libFuzzer target with AddressSanitizer (docs/security.md).
#
#   Scripts/fuzz/fuzz.sh TARGET [SECONDS] [JOBS]   (SECONDS default 600, 0 runs until stopped; JOBS 1)
#   Scripts/fuzz/fuzz.sh all SECONDS               (each target in turn: the CI smoke)
#   Scripts/fuzz/fuzz.sh build                     (build every target, run none)
#
# Targets (Fuzz/<Name>/main.swift, executable fuzz-<target>):
#   command  SMTP command lines (SMTPCommandParser) and a remote server's replies (SMTPReplyParser)
#   session  the inbound framer (commands, DATA, BDAT, SASL lines) driving ServerSession
#   dns      DNS messages (DNSMessage decoder, DNSLookupResult)
#   spf      SPF records and macro-strings, DMARC records
#   dkim     DKIM-Signature fields, key records (RSA and Ed25519 keys), canonicalization
#   headers  header sections, MessageScanner, From address lists, IDNA, Authentication-Results
#   config   the TOML configuration loader
#   imap     what an IMAP client sends: the framer (lines, literals, limits) and the command parser
#
# The targets exist in Package.swift only when PETREL_FUZZ is set, and are built in their own
# scratch directory (.build/fuzz) with `-sanitize=fuzzer,address`. The committed seeds are in
# Fuzz/Corpus/TARGET; what the fuzzer finds grows .build/fuzz/corpus/TARGET. A crashing input is
# written as .build/fuzz/crash-<sha1>; replay it with `.build/fuzz/release/fuzz-TARGET FILE`, fix
# the bug, and make the input a regression test.
set -euo pipefail
cd "$(dirname "$0")/../.."
targets=(command session dns spf dkim headers config imap)
target=${1:?usage: Scripts/fuzz/fuzz.sh TARGET|all|build [SECONDS] [JOBS]  (targets: ${targets[*]})}
seconds=${2:-600}
jobs=${3:-1}
scratch=.build/fuzz

build() {
  local product
  for product in "$@"; do
    echo "fuzz.sh: building fuzz-$product" >&2
    PETREL_FUZZ=1 swift build -c release --scratch-path "$scratch" --product "fuzz-$product" \
      -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing -Xswiftc -use-ld=lld \
      2> >(grep -v "Cannot export local symbol" >&2)
  done
}

run() {
  local name=$1 corpus="$scratch/corpus/$1"
  mkdir -p "$corpus"
  echo "fuzz.sh: fuzz-$name for ${seconds}s" >&2
  # The first directory takes new inputs; the committed seeds are read, never written.
  local parallel=()
  if ((jobs > 1)); then parallel=(-jobs="$jobs" -workers="$jobs"); fi
  # A Swift trap must reach libFuzzer as the signal it is, not go through Swift's backtracer.
  (cd "$scratch" && SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=../../Fuzz/lsan.supp" \
    "./release/fuzz-$name" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=./ "${parallel[@]}" \
    "corpus/$name" "../../Fuzz/Corpus/$name")
}

case $target in
build)
  build "${targets[@]}"
  ;;
all)
  build "${targets[@]}"
  for name in "${targets[@]}"; do run "$name"; done
  ;;
*)
  if [[ ! " ${targets[*]} " =~ " $target " ]]; then
    echo "fuzz.sh: unknown target '$target' (one of: ${targets[*]}, all, build)" >&2
    exit 64
  fi
  build "$target"
  run "$target"
  ;;
esac
