#!/usr/bin/env bash
# Runs the reliability suite (tests/reliability): kill -9 loop, outage, limits, storage faults,
# process scenarios, fuzzing and load, against the reference server on loopback.
#
# Usage: scripts/test-reliability.sh [CARGO TEST ARGS ...]
#        for example `scripts/test-reliability.sh --test kill` runs one scenario family.
# Environment:
#   GROUPSCOPE_LONG=1               long variants: 100 kills, a 10 minute outage, thousands of
#                                   fuzz cases and 60 s of load (about 25 minutes in all).
#   CARGO_TARGET_DIR                cargo's build folder (default: target).
#   GROUPSCOPE_RELIABILITY_REPORT   file for the measured figures, one JSON line per scenario
#                                   (default: $CARGO_TARGET_DIR/reliability-figures.jsonl).
# The storage tests use chattr and mount a small tmpfs; without root they print "skipped:".
set -uo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export GROUPSCOPE_RELIABILITY_REPORT=${GROUPSCOPE_RELIABILITY_REPORT:-$CARGO_TARGET_DIR/reliability-figures.jsonl}
mkdir -p "$(dirname "$GROUPSCOPE_RELIABILITY_REPORT")"
rm -f "$GROUPSCOPE_RELIABILITY_REPORT"

status=0
cargo test -p groupscope-reliability --no-fail-fast "$@" || status=$?

echo "=== reliability figures ($GROUPSCOPE_RELIABILITY_REPORT)"
if [ -f "$GROUPSCOPE_RELIABILITY_REPORT" ]; then
    cat "$GROUPSCOPE_RELIABILITY_REPORT"
else
    echo "no figures were written"
fi
exit $status
