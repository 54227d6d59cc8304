#!/usr/bin/env bash
# Runs every test of decompte: unit tests, the store conformance suite, the
# command-line tests and the end-to-end tests against a real HTTP server on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
