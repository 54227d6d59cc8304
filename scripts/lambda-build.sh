#!/usr/bin/env bash
# Builds both Lambda functions as AWS deploys them: binaries of the `lambda`
# profile (optimised for size, see Cargo.toml) linked by
# zig against Amazon Linux 2023's glibc (cargo lambda build; cargo-lambda and
# ziglang from PyPI, installed by scripts/tools.sh), zipped as
# target/lambda/{ingest-fn,publish-fn}/bootstrap.zip. The end-to-end tests run
# these very binaries under the emulator. Incremental: fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-lambda >/dev/null || { echo "cargo-lambda is missing: run ./scripts/tools.sh" >&2; exit 1; }
cargo lambda build --profile lambda --locked -p decompte-ingest-fn -p decompte-publish-fn --output-format zip "$@"
for function in ingest-fn publish-fn; do
  dir=target/lambda/$function
  # Keep the binary beside its zip: the tests run it.
  rm -f "$dir/bootstrap" && python3 -m zipfile -e "$dir/bootstrap.zip" "$dir"
  chmod +x "$dir/bootstrap"
  printf '[lambda] %s: bootstrap.zip %s bytes\n' "$function" "$(stat -c %s "$dir/bootstrap.zip")" >&2
done
