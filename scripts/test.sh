#!/usr/bin/env bash
# Runs every test of decompte: unit tests, the store conformance suite, the
# command-line tests, and the end-to-end tests against a real HTTP server on
# loopback, driven by headless Chromium and checked by lychee, frictionless and
# axe-core; both Lambda functions, built for AWS by scripts/lambda-build.sh,
# under the Lambda emulator with DynamoDB Local and moto; the SAM template
# checked by cfn-lint and checkov. scripts/tools.sh installs those first if they
# are missing; then every parser of outside input fuzzed for a minute
# (scripts/fuzz.sh). (`cargo test` alone runs the tier that needs nothing but
# Rust.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/tools.sh
./scripts/lambda-build.sh
cargo test --workspace --locked --features decompte-tests/components "$@"
./scripts/fuzz.sh
