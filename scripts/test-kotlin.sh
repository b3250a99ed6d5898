#!/usr/bin/env bash
# Builds the groupscope-ffi library, regenerates its Kotlin bindings, and runs the Kotlin (JUnit)
# suite against a reference server on loopback.
#
# Installs what is missing: Debian's JDK, JNA and JUnit 4 through apt-get (needs root), and the
# Kotlin compiler from the npm package kotlin-compiler into ${GROUPSCOPE_CACHE:-~/.cache/groupscope}.
# Exits non-zero when any step fails, including a missing toolchain that could not be installed.
set -euo pipefail

KOTLIN_VERSION=2.4.20
WORKSPACE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}
cd "$WORKSPACE"
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR=$TARGET_DIR
LIB_DIR=$TARGET_DIR/debug
BUILD=$WORKSPACE/build

log() { printf '== test-kotlin: %s\n' "$*" >&2; }

install_toolchain() {
    local packages=()
    command -v javac >/dev/null || packages+=(openjdk-17-jdk-headless)
    [ -f /usr/share/java/jna.jar ] || packages+=(libjna-java)
    [ -f /usr/share/java/junit4.jar ] || packages+=(junit4)
    if [ ${#packages[@]} -gt 0 ]; then
        log "installing ${packages[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    fi

    if [ ! -x "$CACHE/kotlinc/package/bin/kotlinc" ]; then
        log "installing kotlin-compiler@$KOTLIN_VERSION from npm into $CACHE/kotlinc"
        rm -rf "$CACHE/kotlinc"
        mkdir -p "$CACHE/kotlinc"
        (cd "$CACHE/kotlinc" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null \
            && tar xzf "kotlin-compiler-$KOTLIN_VERSION.tgz")
    fi
}

build_library() {
    log "building groupscope-ffi, uniffi-bindgen and groupscope-server into $TARGET_DIR"
    cargo build -p groupscope-ffi
    cargo build -p uniffi-bindgen
    cargo build -p groupscope-server
    cargo build -p groupscope-ffi --example parity
}

generate_bindings() {
    log "generating Kotlin bindings into build/bindings/kotlin"
    rm -rf "$BUILD/bindings/kotlin"
    "$LIB_DIR/uniffi-bindgen" generate --library "$LIB_DIR/libgroupscope_ffi.so" \
        --language kotlin --out-dir "$BUILD/bindings/kotlin" --no-format
}

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}

start_server() {
    local first_line
    mkdir -p "$BUILD/kotlin"
    coproc SERVER { exec "$LIB_DIR/groupscope-server" serve --listen 127.0.0.1:0 --db :memory: 2>"$BUILD/kotlin/server.log"; }
    SERVER_PID=$SERVER_PID
    trap stop_server EXIT
    if ! read -r -t 30 first_line <&"${SERVER[0]}"; then
        log "groupscope-server printed no address within 30 s; see $BUILD/kotlin/server.log"
        exit 1
    fi
    GROUPSCOPE_SERVER_URL=${first_line#listening on }
    case $GROUPSCOPE_SERVER_URL in
        http://127.0.0.1:*) ;;
        *) log "unexpected first line from groupscope-server: $first_line"; exit 1 ;;
    esac
    export GROUPSCOPE_SERVER_URL
    log "reference server listening on $GROUPSCOPE_SERVER_URL"
}

run_rust_parity_scenario() {
    GROUPSCOPE_PARITY_TOKEN=parity-rust-kotlin-$$
    export GROUPSCOPE_PARITY_TOKEN
    log "running the parity scenario from Rust with token $GROUPSCOPE_PARITY_TOKEN"
    rm -rf "$BUILD/kotlin/parity-data"
    "$TARGET_DIR/debug/examples/parity" "$GROUPSCOPE_SERVER_URL" "$GROUPSCOPE_PARITY_TOKEN" "$BUILD/kotlin/parity-data"
}

# Runs bindings/examples/parity.py when GROUPSCOPE_PYTHON names a Python interpreter with the
# groupscope package installed; PythonParityTest then compares its records with the Rust run's.
PARITY_TESTS=(groupscope.ParityTest)
run_python_parity_scenario() {
    if [ -z "${GROUPSCOPE_PYTHON:-}" ]; then
        log "Python parity NOT RUN: set GROUPSCOPE_PYTHON to a Python interpreter with groupscope installed"
        return
    fi
    GROUPSCOPE_PARITY_PYTHON_TOKEN=parity-python-kotlin-$$
    export GROUPSCOPE_PARITY_PYTHON_TOKEN
    log "running the parity scenario from Python ($GROUPSCOPE_PYTHON) with token $GROUPSCOPE_PARITY_PYTHON_TOKEN"
    rm -rf "$BUILD/kotlin/parity-data-python"
    "$GROUPSCOPE_PYTHON" bindings/examples/parity.py "$GROUPSCOPE_SERVER_URL" "$GROUPSCOPE_PARITY_PYTHON_TOKEN" \
        "$BUILD/kotlin/parity-data-python"
    PARITY_TESTS+=(groupscope.PythonParityTest)
}

run_tests() {
    local kotlin=$CACHE/kotlinc/package
    local classpath="/usr/share/java/jna.jar:/usr/share/java/junit4.jar:/usr/share/java/hamcrest.jar:$kotlin/lib/kotlin-test.jar:$kotlin/lib/kotlin-test-junit.jar"
    local sources=("$BUILD"/bindings/kotlin/groupscope/*.kt bindings/kotlin/src/main/kotlin/groupscope/*.kt bindings/kotlin/src/test/kotlin/groupscope/*.kt)

    log "compiling ${#sources[@]} Kotlin files"
    rm -f "$BUILD/kotlin/tests.jar"
    if ! "$kotlin/bin/kotlinc" "${sources[@]}" -cp "$classpath" -include-runtime -d "$BUILD/kotlin/tests.jar"; then
        log "Kotlin compilation failed"
        exit 1
    fi

    log "running JUnit"
    java -Djna.library.path="$LIB_DIR" -cp "$BUILD/kotlin/tests.jar:$classpath" org.junit.runner.JUnitCore \
        groupscope.PropertyEncoderTest groupscope.GroupsTest groupscope.ClientTest "${PARITY_TESTS[@]}"
}

install_toolchain
build_library
generate_bindings
start_server
run_rust_parity_scenario
run_python_parity_scenario
run_tests
