#!/usr/bin/env bash
# Runs every test suite of the project: Rust, Python, Kotlin, Swift, the official Mixpanel SDKs
# against the reference server, the web page in headless Chromium, and the reliability suite.
# Installs what it needs on a fresh Debian machine.
#
# Usage: scripts/test.sh [SUITE ...]    SUITE is rust, python, kotlin, swift, official-sdks,
#                                       web or reliability; with none, every suite runs.
# Environment: CARGO_TARGET_DIR (default: target), GROUPSCOPE_CACHE (default:
# ~/.cache/groupscope) for downloaded toolchains and virtual environments.
set -uo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export GROUPSCOPE_CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}
export CARGO_TERM_COLOR=never
mkdir -p "$GROUPSCOPE_CACHE"

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
    suites=(rust python kotlin swift official-sdks web reliability)
fi

echo "=== building groupscope-server"
if ! cargo build -p groupscope-server --bin groupscope-server; then
    echo "building groupscope-server failed; every suite needs it" >&2
    echo "suites: 0 passed, ${#suites[@]} failed"
    exit 1
fi
export GROUPSCOPE_SERVER_BIN="$CARGO_TARGET_DIR/debug/groupscope-server"

# The Python suite installs the wheel into this interpreter, and the Kotlin suite's parity
# test runs the same scenario from it, so the python suite runs before kotlin.
python_interpreter=$GROUPSCOPE_CACHE/venv-python/bin/python

passed=0
failed=0
failed_names=()
for suite in "${suites[@]}"; do
    case "$suite" in
        official-sdks) script=tests/official-sdks/run.sh ;;
        web) script=tests/web/run.sh ;;
        *) script=scripts/test-$suite.sh ;;
    esac
    if [ ! -f "$script" ]; then
        echo "unknown suite '$suite': expected one of rust, python, kotlin, swift, official-sdks, web, reliability" >&2
        failed=$((failed + 1))
        failed_names+=("$suite")
        continue
    fi

    if [ "$suite" = kotlin ] && [ -z "${GROUPSCOPE_PYTHON:-}" ] && [ -x "$python_interpreter" ]; then
        export GROUPSCOPE_PYTHON=$python_interpreter
    fi

    echo "=== $suite ($script)"
    start=$SECONDS
    if bash "$script"; then
        passed=$((passed + 1))
        echo "=== $suite passed in $((SECONDS - start)) s"
    else
        failed=$((failed + 1))
        failed_names+=("$suite")
        echo "=== $suite FAILED after $((SECONDS - start)) s"
    fi
done

if [ $failed -gt 0 ]; then
    echo "failed suites: ${failed_names[*]}"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
