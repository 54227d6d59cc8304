#!/usr/bin/env bash
# Runs every test of decompte: unit tests, the store conformance suite, the
# command-line tests, and the end-to-end tests against a real HTTP server on
# loopback, driven by headless Chromium and checked by lychee, frictionless and
# axe-core. scripts/tools.sh installs those first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/tools.sh
cargo test --workspace --locked "$@"
