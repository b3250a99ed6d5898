#!/usr/bin/env bash
# Runs the Rust tests of every crate except three that other suites cover: the Python
# extension (pytest on the installed wheel), the bindgen binary (built by the Kotlin and Swift
# suites) and the reliability suite (scripts/test-reliability.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
cargo test --workspace --exclude groupscope-python --exclude uniffi-bindgen --exclude groupscope-reliability
