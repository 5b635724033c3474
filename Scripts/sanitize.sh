#!/usr/bin/env bash
# Runs the test suite under a sanitizer (docs/security.md):
#
#   Scripts/sanitize.sh address|thread [swift test arguments, e.g. --filter SMTPCoreTests]
#
# Each sanitizer builds in its own scratch directory (.build/address, .build/thread), with the
# Swift and C code instrumented; the petrel binary that the CLI and crash tests start is built
# the same way. A report from the sanitizer fails the run (halt_on_error), as does any test.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:?usage: Scripts/sanitize.sh address|thread [swift test arguments]}
shift
case $sanitizer in
address) export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=1} ;;
thread) export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:second_deadlock_stack=1} ;;
*)
  echo "sanitize.sh: address or thread, not '$sanitizer'" >&2
  exit 64
  ;;
esac
# A trap reaches the sanitizer's handler directly, not Swift's backtracer.
export SWIFT_BACKTRACE=enable=no
swift build --build-tests --sanitize="$sanitizer" --scratch-path ".build/$sanitizer"
swift test --skip-build --sanitize="$sanitizer" --scratch-path ".build/$sanitizer" "$@"
