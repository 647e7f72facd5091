#!/usr/bin/env bash
# cross/image.sh [TARGET...] — FROM scratch images around the static binaries.
#
# For each TARGET (default: x86_64 aarch64 armv7) builds the release binaries
# with cross/build.sh, stages them as the image's root file system and runs
# `docker build --platform P` with deploy/images/Dockerfile. Nothing is pulled.
#
#   x86_64 -> linux/amd64   -> rivulet:<version>-amd64
#   aarch64 -> linux/arm64  -> rivulet:<version>-arm64
#   armv7  -> linux/arm/v7  -> rivulet:<version>-armv7
# Env: IMAGE_REPO (default rivulet), IMAGE_TAG (default the workspace
# version), IMAGE_CARGO_ARGS (what cross/build.sh passes to cargo build,
# split on spaces; default: the whole workspace's binaries). Prints the image names built, one a line, on stdout.
#
# Exit codes: 0 every target's image built; 1 a build failed (or Docker is
# missing); 2 usage.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=${IMAGE_REPO:-rivulet}
tag=${IMAGE_TAG:-$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")}
[[ $# -gt 0 ]] || set -- x86_64 aarch64 armv7

command -v docker >/dev/null || die "docker not found (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker Engine is not reachable (docker info)"

# is_static FILE: no ELF interpreter, so it runs in an empty image.
is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

for t in "$@"; do
  target_vars "$t" || { log "unknown target '$t'"; exit "$EXIT_USAGE"; }
  rc=0
  # shellcheck disable=SC2086 # split on purpose
  "$CROSS_DIR/build.sh" "$t" ${IMAGE_CARGO_ARGS:-} >&2 || rc=$?
  [[ $rc -eq 0 ]] || die "build for $t failed (exit $rc)"

  target_vars "$t"
  bin_dir=$(release_dir "$t")
  rm -rf "$ctx/rootfs"
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/var/lib/rivulet"
  chmod 1777 "$ctx/rootfs/tmp"
  n=0
  while IFS= read -r -d '' bin; do
    is_static "$bin" || die "$bin is dynamically linked: it cannot run in a scratch image"
    cp "$bin" "$ctx/rootfs/usr/local/bin/"
    n=$((n + 1))
  done < <(find "$bin_dir" -maxdepth 1 -type f -perm -u+x -print0)
  [[ $n -gt 0 ]] || die "no binaries in $bin_dir"

  arch=${PLATFORM#linux/}
  arch=${arch//\//} # amd64, arm64, armv7
  image="$repo:$tag-${arch}"
  log "docker build --platform $PLATFORM -t $image ($n binaries)"
  docker build --quiet --platform "$PLATFORM" -f "$ROOT/deploy/images/Dockerfile" -t "$image" "$ctx" >&2
  echo "$image"
done
