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
# The data both functions read (the referential, the contours, the DSFR's
# files) is not in their zips: it is their data layer, unpacked by Lambda
# at /opt, with a MANIFEST of the files' SHA-256 that each function
# compares with its own at start (decompte-bundle; same files, same order).
layer=target/lambda/layer
rm -rf "$layer" && mkdir -p "$layer/decompte"
{ find data -maxdepth 1 -type f -name '*.csv'; find templates/static/dsfr -type f ! -name '*.rs' ! -name '*.md'; } \
  | LC_ALL=C sort > "$layer/files"
xargs -a "$layer/files" -d '\n' cp --parents -t "$layer/decompte"
(cd "$layer/decompte" && xargs -a ../files -d '\n' sha256sum > MANIFEST)
(cd "$layer" && python3 - <<'PY'
import os, zipfile
with zipfile.ZipFile("layer.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
    for folder, _, names in sorted(os.walk("decompte")):
        for name in sorted(names):
            path = os.path.join(folder, name)
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source:
                out.writestr(info, source.read(), compresslevel=9)
PY
)
# A zip is uploaded at each deployment and unpacked at each cold start: the
# build fails when one grows past its ceiling, 5 MB for a function's code
# (issue 21) and 6 MB for the data layer.
check() {
  local zip=$1 ceiling=$2 size
  size=$(stat -c %s "$zip")
  printf '[lambda] %s: %s bytes (ceiling %s)\n' "$zip" "$size" "$ceiling" >&2
  if [ "$size" -gt "$ceiling" ]; then
    echo "$zip is $size bytes, over its ceiling of $ceiling: see what the change added (cargo bloat --profile lambda -p decompte-<function> --crates, or the layer's files)" >&2
    exit 1
  fi
}
for function in ingest-fn publish-fn; do
  dir=target/lambda/$function
  # Keep the binary beside its zip: the tests run it.
  rm -f "$dir/bootstrap" && python3 -m zipfile -e "$dir/bootstrap.zip" "$dir"
  chmod +x "$dir/bootstrap"
  check "$dir/bootstrap.zip" "${DECOMPTE_ZIP_CEILING:-5000000}"
done
check "$layer/layer.zip" "${DECOMPTE_LAYER_CEILING:-6000000}"
