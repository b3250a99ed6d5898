#!/usr/bin/env bash
# Runs the official Mixpanel SDKs for Python (PyPI `mixpanel`) and Node (npm `mixpanel`)
# against groupscope-server on loopback and checks that their events and group updates are
# attributed. Exits non-zero on any failure.
#
# Environment:
#   GROUPSCOPE_CACHE   folder for the venv and node_modules (default ~/.cache/groupscope)
#   CARGO_TARGET_DIR   cargo target folder (default: the workspace's target/)
#   SERVER_BIN         a prebuilt groupscope-server binary, skipping the cargo build
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${GROUPSCOPE_CACHE:-$HOME/.cache/groupscope}/official-sdks
PYTHON=${PYTHON:-python3}
MIXPANEL_PY_VERSION=5.4.1

# Every request of this script goes to 127.0.0.1; keep proxies out of the way.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

if [ -z "${SERVER_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q -p groupscope-server --bin groupscope-server)
  SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/groupscope-server
fi

mkdir -p "$CACHE"
if [ ! -x "$CACHE/venv/bin/python" ]; then
  "$PYTHON" -m venv "$CACHE/venv"
fi
if ! "$CACHE/venv/bin/python" -c "import mixpanel, sys; sys.exit(mixpanel.__version__ != '$MIXPANEL_PY_VERSION')" 2>/dev/null; then
  "$CACHE/venv/bin/pip" install -q "mixpanel==$MIXPANEL_PY_VERSION"
fi
mkdir -p "$CACHE/npm"
if ! cmp -s "$HERE/package.json" "$CACHE/npm/package.json" || [ ! -d "$CACHE/npm/node_modules/mixpanel" ]; then
  cp "$HERE/package.json" "$CACHE/npm/package.json"
  (cd "$CACHE/npm" && npm install --no-audit --no-fund --silent)
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

TOKEN=official-sdk-token
SECRET=official-sdk-secret
cat > "$WORK/project.toml" <<TOML
token = "$TOKEN"
secret = "$SECRET"

[[group_keys]]
property = "company_id"
display_name = "Company"
set_up_at = "2020-01-01T00:00:00Z"
TOML

mkfifo "$WORK/stdout"
"$SERVER_BIN" serve --listen 127.0.0.1:0 --db "$WORK/events.db" --config "$WORK/project.toml" \
  > "$WORK/stdout" 2> "$WORK/server.log" &
SERVER_PID=$!
exec 3< "$WORK/stdout"
if ! read -r -t 30 FIRST_LINE <&3; then
  echo "groupscope-server did not print its address within 30 s; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
BASE=${FIRST_LINE#listening on }
PORT=${BASE##*:}
echo "groupscope-server is listening on $BASE"

status=0
echo "--- mixpanel (PyPI) $MIXPANEL_PY_VERSION"
"$CACHE/venv/bin/python" "$HERE/mixpanel_python.py" "$BASE" "$TOKEN" "$SECRET" || status=1
echo "--- mixpanel (npm)"
NODE_PATH="$CACHE/npm/node_modules" node "$HERE/mixpanel_node.js" "$PORT" "$TOKEN" || status=1

if [ "$status" -ne 0 ]; then
  echo "official SDK tests failed; server log:" >&2
  tail -n 50 "$WORK/server.log" >&2
fi
exit "$status"
