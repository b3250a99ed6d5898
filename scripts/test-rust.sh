#!/usr/bin/env bash
# Runs the Rust tests of every crate except the Python extension, which pytest covers
# through the installed wheel.
set -euo pipefail

cd "$(dirname "$0")/.."
cargo test --workspace --exclude groupscope-python --exclude uniffi-bindgen
