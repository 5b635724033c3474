#!/usr/bin/env bash
# Runs the test suite under a sanitizer (docs/security.md):
#
#   Scripts/sanitize.sh address|thread [swift test arguments, e.g. --filter SMTPCoreTests]
#
# Each sanitizer builds in its own scratch directory (.build/address, .build/thread), with the
# Swift and C code instrumented; the petrel binary that the CLI and crash tests start is built
# the same way. A report from the sanitizer fails the run (halt_on_error), as does any test.
#
# Instrumented code runs several times slower (ThreadSanitizer five to fifteen times, Address-
# Sanitizer two to three), so PETREL_TEST_SLOWDOWN (10 and 3 unless set) stretches the time bounds
# the tests wait within: a run fails on a report, not on the clock.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:?usage: Scripts/sanitize.sh address|thread [swift test arguments]}
shift
case $sanitizer in
address)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=1}
  export PETREL_TEST_SLOWDOWN=${PETREL_TEST_SLOWDOWN:-3}
  ;;
thread)
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:second_deadlock_stack=1}
  export PETREL_TEST_SLOWDOWN=${PETREL_TEST_SLOWDOWN:-10}
  ;;
*)
  echo "sanitize.sh: address or thread, not '$sanitizer'" >&2
  exit 64
  ;;
esac
# A trap reaches the sanitizer's handler directly, not Swift's backtracer.
export SWIFT_BACKTRACE=enable=no
swift build --build-tests --sanitize="$sanitizer" --scratch-path ".build/$sanitizer"
swift test --skip-build --sanitize="$sanitizer" --scratch-path ".build/$sanitizer" "$@"
