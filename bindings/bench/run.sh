#!/usr/bin/env bash
# Measures the cost of one call across the boundary from Kotlin and from Swift, with properties
# as JSON text (what the library uses) and as a typed uniffi map, for docs/benchmarks.md.
#
# Builds a release libgroupscope_ffi with the representation-benchmark feature, generates its
# bindings into build/bench/, starts a reference server on 127.0.0.1 for the delivery worker,
# and runs the Kotlin and Swift harnesses. Run scripts/test-kotlin.sh and scripts/test-swift.sh
# once first: they install the toolchains this script uses. Needs root for the Swift chroot.
set -euo pipefail

WORKSPACE=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}
ROOT=$CACHE/trixie
cd "$WORKSPACE"
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR=$TARGET_DIR
RELEASE=$TARGET_DIR/release
BENCH=$WORKSPACE/build/bench

log() { printf '== bench: %s\n' "$*" >&2; }

cargo build --release -p groupscope-ffi --features representation-benchmark
cargo build -p uniffi-bindgen
cargo build -p groupscope-server
rm -rf "$BENCH"
for language in kotlin swift; do
    "$TARGET_DIR/debug/uniffi-bindgen" generate --library "$RELEASE/libgroupscope_ffi.so" \
        --language "$language" --out-dir "$BENCH/$language" --no-format
done

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

coproc SERVER { exec "$TARGET_DIR/debug/groupscope-server" serve --listen 127.0.0.1:0 --db :memory: 2>"$BENCH/server.log"; }
SERVER_PID=$SERVER_PID
read -r -t 30 first_line <&"${SERVER[0]}"
SERVER_URL=${first_line#listening on }
case $SERVER_URL in
    http://127.0.0.1:*) ;;
    *) log "unexpected first line from groupscope-server: $first_line"; exit 1 ;;
esac

log "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "Kotlin (JNA), $(java -version 2>&1 | head -1)"
KOTLIN=$CACHE/kotlinc/package
"$KOTLIN/bin/kotlinc" "$BENCH"/kotlin/groupscope/*.kt bindings/kotlin/src/main/kotlin/groupscope/*.kt \
    bindings/kotlin/bench/TrackBenchmark.kt -cp /usr/share/java/jna.jar -include-runtime -d "$BENCH/kotlin-bench.jar"
java -Djna.library.path="$RELEASE" -cp "$BENCH/kotlin-bench.jar:/usr/share/java/jna.jar" groupscope.TrackBenchmarkKt "$SERVER_URL"

log "load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "Swift (swiftc -O in the trixie chroot)"
if ! mountpoint -q "$ROOT/proc"; then
    mount -t proc proc "$ROOT/proc"
    MOUNTS+=("$ROOT/proc")
fi
for source in "$WORKSPACE" "$TARGET_DIR"; do
    if [ "$source" = "$WORKSPACE" ] || [[ $source/ != "$WORKSPACE"/* ]]; then
        mkdir -p "$ROOT$source"
        mount --bind "$source" "$ROOT$source"
        MOUNTS+=("$ROOT$source")
    fi
done
cp "$BENCH/swift/GroupScope.swift" "$BENCH/swift/GroupScopeBindings.swift"
chroot "$ROOT" env -C "$WORKSPACE" HOME=/root swiftc -O -module-name GroupScope \
    -Xcc -fmodule-map-file="$BENCH/swift/GroupScopeFFI.modulemap" -I "$BENCH/swift" \
    -L "$RELEASE" -lgroupscope_ffi \
    "$BENCH/swift/GroupScopeBindings.swift" bindings/swift/Sources/GroupScope/GroupScope.swift \
    bindings/swift/Sources/GroupScope/PropertyEncoder.swift bindings/swift/Benchmarks/main.swift \
    -o "$BENCH/swift-bench"
chroot "$ROOT" env LD_LIBRARY_PATH="$RELEASE" "$BENCH/swift-bench" "$SERVER_URL"
