#!/usr/bin/env bash
# Builds the groupscope-ffi library, regenerates its Swift bindings into the SwiftPM package at
# bindings/swift, and runs the XCTest suite against a reference server on loopback.
#
# Swift 6.0 comes from Debian 13 (trixie)'s swiftlang package, whose compiler needs glibc 2.38,
# so it runs in a trixie chroot under ${GROUPSCOPE_CACHE:-~/.cache/groupscope}/trixie, created
# with debootstrap when missing (about 540 MB of downloads, 2.6 GB on disk). Needs root for
# apt-get, debootstrap, chroot and mount. The workspace is bind-mounted at the same path inside
# the chroot. /proc is mounted there too, because swiftc finds its libraries through
# /proc/self/exe. Both are unmounted on exit. Exits non-zero when any step fails.
set -euo pipefail

WORKSPACE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}
ROOT=$CACHE/trixie
cd "$WORKSPACE"
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR=$TARGET_DIR
LIB_DIR=$TARGET_DIR/debug
BUILD=$WORKSPACE/build
PACKAGE=$WORKSPACE/bindings/swift

log() { printf '== test-swift: %s\n' "$*" >&2; }

install_toolchain() {
    if [ -x "$ROOT/usr/libexec/swift/bin/swift-frontend" ]; then
        return
    fi

    log "creating the Debian trixie chroot with swiftlang in $ROOT"
    if ! command -v debootstrap >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    rm -rf "$ROOT"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase trixie "$ROOT" >/dev/null
    chroot "$ROOT" apt-get update -qq
    chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swiftlang libc6-dev >/dev/null
    chroot "$ROOT" apt-get clean
}

build_library() {
    log "building groupscope-ffi, uniffi-bindgen and groupscope-server into $TARGET_DIR"
    cargo build -p groupscope-ffi
    cargo build -p uniffi-bindgen
    cargo build -p groupscope-server
    cargo build -p groupscope-ffi --example parity
}

generate_bindings() {
    log "generating Swift bindings into build/bindings/swift and bindings/swift/Sources"
    rm -rf "$BUILD/bindings/swift"
    "$LIB_DIR/uniffi-bindgen" generate --library "$LIB_DIR/libgroupscope_ffi.so" \
        --language swift --out-dir "$BUILD/bindings/swift" --no-format

    rm -rf "$PACKAGE/Sources/GroupScopeFFI" "$PACKAGE/Sources/GroupScope/Generated"
    mkdir -p "$PACKAGE/Sources/GroupScopeFFI" "$PACKAGE/Sources/GroupScope/Generated"
    cp "$BUILD/bindings/swift/GroupScopeFFI.h" "$PACKAGE/Sources/GroupScopeFFI/"
    # SwiftPM requires a system library target's module map to be named module.modulemap.
    cp "$BUILD/bindings/swift/GroupScopeFFI.modulemap" "$PACKAGE/Sources/GroupScopeFFI/module.modulemap"
    # The generated file is renamed so it cannot clash with the hand-written GroupScope.swift.
    cp "$BUILD/bindings/swift/GroupScope.swift" "$PACKAGE/Sources/GroupScope/Generated/GroupScopeBindings.swift"
}

SERVER_PID=
MOUNTS=()
cleanup() {
    local index
    for ((index = ${#MOUNTS[@]} - 1; index >= 0; index--)); do
        umount "${MOUNTS[index]}" || log "could not unmount ${MOUNTS[index]}"
    done
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

start_server() {
    local first_line
    mkdir -p "$BUILD/swift"
    coproc SERVER { exec "$LIB_DIR/groupscope-server" serve --listen 127.0.0.1:0 --db :memory: 2>"$BUILD/swift/server.log"; }
    SERVER_PID=$SERVER_PID
    if ! read -r -t 30 first_line <&"${SERVER[0]}"; then
        log "groupscope-server printed no address within 30 s; see $BUILD/swift/server.log"
        exit 1
    fi
    GROUPSCOPE_SERVER_URL=${first_line#listening on }
    case $GROUPSCOPE_SERVER_URL in
        http://127.0.0.1:*) ;;
        *) log "unexpected first line from groupscope-server: $first_line"; exit 1 ;;
    esac
    log "reference server listening on $GROUPSCOPE_SERVER_URL"
}

run_rust_parity_scenario() {
    GROUPSCOPE_PARITY_TOKEN=parity-rust-swift-$$
    log "running the parity scenario from Rust with token $GROUPSCOPE_PARITY_TOKEN"
    rm -rf "$BUILD/swift/parity-data"
    "$TARGET_DIR/debug/examples/parity" "$GROUPSCOPE_SERVER_URL" "$GROUPSCOPE_PARITY_TOKEN" "$BUILD/swift/parity-data"
}

bind_mount() {
    local source=$1
    mkdir -p "$ROOT$source"
    mount --bind "$source" "$ROOT$source"
    MOUNTS+=("$ROOT$source")
}

mount_chroot() {
    if ! mountpoint -q "$ROOT/proc"; then
        mount -t proc proc "$ROOT/proc"
        MOUNTS+=("$ROOT/proc")
    fi
    bind_mount "$WORKSPACE"
    case $TARGET_DIR/ in
        "$WORKSPACE"/*) ;;
        *) bind_mount "$TARGET_DIR" ;;
    esac
}

run_tests() {
    log "running swift test in the chroot"
    chroot "$ROOT" env -C "$PACKAGE" HOME=/root \
        LD_LIBRARY_PATH="$LIB_DIR" GROUPSCOPE_LIB_DIR="$LIB_DIR" GROUPSCOPE_SERVER_URL="$GROUPSCOPE_SERVER_URL" \
        GROUPSCOPE_PARITY_TOKEN="$GROUPSCOPE_PARITY_TOKEN" \
        swift test --disable-swift-testing --scratch-path "$BUILD/swift/package"
}

install_toolchain
build_library
generate_bindings
start_server
run_rust_parity_scenario
mount_chroot
run_tests
