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
# A function's zip is uploaded at each deployment and unpacked at each cold
# start: the build fails when one grows past its ceiling. Issue 21 aims at
# 5 MB; the ceiling stands just above today's size so that it only goes
# down (8,663,315 and 8,049,330 bytes on 2026-12-06).
ceiling=${DECOMPTE_ZIP_CEILING:-8800000}
for function in ingest-fn publish-fn; do
  dir=target/lambda/$function
  # Keep the binary beside its zip: the tests run it.
  rm -f "$dir/bootstrap" && python3 -m zipfile -e "$dir/bootstrap.zip" "$dir"
  chmod +x "$dir/bootstrap"
  size=$(stat -c %s "$dir/bootstrap.zip")
  printf '[lambda] %s: bootstrap.zip %s bytes (ceiling %s)\n' "$function" "$size" "$ceiling" >&2
  if [ "$size" -gt "$ceiling" ]; then
    echo "$dir/bootstrap.zip is $size bytes, over the ceiling of $ceiling: see what the change added to the function (cargo bloat --profile lambda -p decompte-$function --crates)" >&2
    exit 1
  fi
done
