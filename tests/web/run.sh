#!/usr/bin/env bash
# Runs the browser tests of the web page. Starts groupscope-server on a loopback port with an
# in-memory store, loads the known dataset and drives Debian's Chromium through playwright-core.
# The tests use the page the server embeds. When the server does not serve one, serve.mjs serves
# server/web from disk and forwards /api/ to the server. Screenshots go to docs/screenshots/.
#
# Installs what it needs: the chromium Debian package, and playwright-core from npm into
# ${GROUPSCOPE_CACHE:-~/.cache/groupscope}/web-npm. Uses GROUPSCOPE_SERVER_BIN when set,
# otherwise builds groupscope-server with cargo.
# Prints `N passed, N failed` last and exits non-zero when anything failed.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}
PLAYWRIGHT_VERSION=1.65.2

fail() {
    echo "tests/web: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

if [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium from Debian"
    apt-get update -qq || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || fail "installing chromium failed"
fi

NODE_DIR=$CACHE/web-npm
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
    ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$NODE_DIR/node_modules/playwright-core/package.json"; then
    echo "installing playwright-core $PLAYWRIGHT_VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION") ||
        fail "npm install playwright-core failed"
fi

SERVER_BIN=${GROUPSCOPE_SERVER_BIN:-}
if [ -z "$SERVER_BIN" ]; then
    cargo build -q -p groupscope-server --bin groupscope-server || fail "building groupscope-server failed"
    SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/groupscope-server
fi

WORK=$(mktemp -d)
SERVER_PID=
PROXY_PID=
cleanup() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# Waits for the first line of a log file that matches a prefix and prints the URL after it.
wait_for_url() {
    local file=$1 prefix=$2
    for _ in $(seq 1 100); do
        if line=$(grep -m1 "^$prefix" "$file" 2>/dev/null); then
            echo "${line#"$prefix "}"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

node -e 'import("./tests/web/dataset.mjs").then((m) => process.stdout.write(m.PROJECT_TOML))' > "$WORK/project.toml"

"$SERVER_BIN" serve --listen 127.0.0.1:0 --db :memory: --config "$WORK/project.toml" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
SERVER_URL=$(wait_for_url "$WORK/server.log" "listening on") || {
    cat "$WORK/server.log" >&2
    fail "groupscope-server did not start"
}

# Test the page the binary embeds when it serves one; otherwise serve server/web from disk.
if node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$SERVER_URL/app.js"; then
    echo "testing the page embedded in groupscope-server"
    PAGE_URL=$SERVER_URL
else
    echo "testing server/web through tests/web/serve.mjs, because groupscope-server does not serve the page"
    node tests/web/serve.mjs --api "$SERVER_URL" > "$WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    PAGE_URL=$(wait_for_url "$WORK/proxy.log" "serving") || {
        cat "$WORK/proxy.log" >&2
        fail "the page server did not start"
    }
fi

mkdir -p docs/screenshots
status=0
GROUPSCOPE_NODE_MODULES=$NODE_DIR/node_modules node tests/web/page.test.mjs \
    --server "$SERVER_URL" --page "$PAGE_URL/" --screenshots docs/screenshots \
    --user-data-dir "$WORK/chromium-profile" || status=$?
if [ $status -ne 0 ] && [ -s "$WORK/server.log" ]; then
    echo "--- groupscope-server log" >&2
    tail -n 40 "$WORK/server.log" >&2
fi
exit $status
