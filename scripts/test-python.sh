#!/usr/bin/env bash
# Builds the groupscope wheel, installs it into a virtual environment, checks the type stubs
# with mypy.stubtest, and runs the pytest suite against a loopback sink and groupscope-server.
#
# The virtual environment lives in ${GROUPSCOPE_CACHE:-~/.cache/groupscope}/venv-python and is
# reused. Needs python3 (3.9 or later) with venv and pip, a Rust toolchain, and PyPI and
# crates.io on the first run. GROUPSCOPE_SERVER_BIN names a prebuilt groupscope-server; without
# it the script builds one. Extra arguments go to pytest. Exits non-zero when any step fails.
set -euo pipefail

WORKSPACE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}
VENV=$CACHE/venv-python
PYTHON=${PYTHON:-python3}
cd "$WORKSPACE"
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR=$TARGET_DIR
WHEEL_DIR=$TARGET_DIR/wheels-python

log() { printf '== test-python: %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    mkdir -p "$CACHE"
    "$PYTHON" -m venv "$VENV"
fi
log "installing the build and test tools into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "maturin>=1.9,<2" "pytest>=8" "pytest-timeout>=2" "mypy>=1.10" "mixpanel==5.4.1" "gunicorn>=22"

if ! command -v make >/dev/null 2>&1; then
    # The extension's allocator (jemalloc) is built from C sources with make.
    log "installing make"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null
fi

log "running the binding's Rust unit tests"
cargo test --quiet -p groupscope-python

log "building the wheel (release, abi3)"
rm -rf "$WHEEL_DIR"
(cd python && "$VENV/bin/maturin" build --release --quiet --out "$WHEEL_DIR")
WHEEL=$(ls "$WHEEL_DIR"/groupscope-*.whl)
log "installing $(basename "$WHEEL")"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

log "checking the type stubs with mypy.stubtest"
(cd /tmp && "$VENV/bin/python" -m mypy.stubtest groupscope)

if [ -z "${GROUPSCOPE_SERVER_BIN:-}" ]; then
    log "building groupscope-server"
    cargo build --quiet -p groupscope-server
    export GROUPSCOPE_SERVER_BIN=$TARGET_DIR/debug/groupscope-server
fi
log "using $GROUPSCOPE_SERVER_BIN"

log "running pytest against the installed wheel"
# Running from a copy of the tests keeps the source tree's groupscope/ off sys.path, so the
# tests import the installed wheel.
TESTS=$(mktemp -d)
trap 'rm -rf "$TESTS"' EXIT
cp python/pyproject.toml "$TESTS/"
cp -r python/tests "$TESTS/tests"
(cd "$TESTS" && "$VENV/bin/python" -m pytest -p no:cacheprovider tests "$@")
