#!/usr/bin/env bash
# Run ALL tests: formatting, lints, unit tests (no root, fake host trees), then the VM suite.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { printf '\n== %s (t=%ss)\n' "$1" "$SECONDS"; }

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --all-targets -- -D warnings
stage "cargo test"
cargo test --all 2>&1 | tee /tmp/dbhost-unit.log
stage "done"
