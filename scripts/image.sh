#!/usr/bin/env bash
# Builds decompte's OCI image with buildah (Debian's `buildah`), from nothing
# but this repository and this machine: no base image, no registry.
#
#   ./scripts/image.sh [--binary PATH] [--tag NAME] [--archive FILE]
#
# The image holds the `decompte` binary (built here in release with its
# PostgreSQL and S3 support unless --binary names one), the C libraries it
# links (from this Debian), the CA roots and a user `decompte` (uid 10001):
# no shell, no package manager. It runs as that user, with a read-only root
# filesystem; its data folder (/var/lib/decompte) is a volume. `--archive`
# also writes it as an OCI archive, to push with `skopeo copy` or load with
# `podman load`.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
tag="localhost/decompte:$(git rev-parse --short HEAD 2>/dev/null || echo dev)"
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --archive) archive="$2"; shift 2 ;;
    *) echo "image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

command -v buildah >/dev/null || {
  echo "image.sh: buildah is missing: apt-get install buildah (Debian)" >&2
  exit 1
}
if [ -z "$binary" ]; then
  cargo build --release --locked -p decompte --features postgres,aws
  binary=target/release/decompte
fi

rootfs=target/image/rootfs
rm -rf "$rootfs" target/image/data
# The data folder apart: the Containerfile copies it as the user's own.
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/var/lib" "$rootfs/tmp" \
  target/image/data
# Stripped: symbol names are not worth their megabytes in every pull.
install -s -m 0755 "$binary" "$rootfs/usr/local/bin/decompte"
# The libraries the binary links, and the loader, where it looks for them.
ldd "$binary" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }' | while read -r library; do
  mkdir -p "$rootfs$(dirname "$library")"
  cp -L "$library" "$rootfs$library"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'decompte:x:10001:10001:decompte:/var/lib/decompte:/nonexistent\n' >"$rootfs/etc/passwd"
printf 'decompte:x:10001:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

buildah bud --isolation chroot --layers=false -f Containerfile -t "$tag" target/image >&2
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push "$tag" "oci-archive:$archive" >&2
fi
echo "$tag"
