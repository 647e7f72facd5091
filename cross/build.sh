#!/usr/bin/env bash
# cross/build.sh TARGET [CARGO_ARGS...]
#
# Builds the workspace's release binaries for TARGET, statically linked, with
# Debian's rustc (rustc-web) and the gcc cross linker, and leaves them in
# <target-dir>/<triple>/release/. Installs what it needs through apt first
# (nothing is installed when everything already is). For armv7, std itself
# is compiled from Debian's std source (rust-web-src) with -Z build-std.
#
#   TARGET   aarch64 (aarch64-unknown-linux-gnu: Pi 3/4/5, 64-bit OS)
#            armv7   (armv7-unknown-linux-gnueabihf: Raspberry Pi OS 32-bit)
#            x86_64  (x86_64-unknown-linux-gnu, static: the amd64 image)
#   CARGO_ARGS  passed to `cargo build` (default: --workspace --bins)
#
# Exit codes: 0 built; 1 failed; 2 usage; 3 no std (or std source) of
# exactly rustc-web's version can be installed for TARGET (both versions are
# printed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit "$EXIT_USAGE"
}

[[ $# -ge 1 ]] || usage
target=$1
shift
target_vars "$target" || usage

rc=0
ensure_toolchain "$target" || rc=$?
[[ $rc -eq 0 ]] || exit "$rc"
cargo_env "$target"

[[ $# -gt 0 ]] || set -- --workspace --bins
log "cargo ${CARGO_Z[*]} build --release --target $TRIPLE $*"
(cd "$ROOT" && cargo "${CARGO_Z[@]}" build --release --target "$TRIPLE" "$@")

out=$(release_dir "$target")
log "binaries in $out:"
find "$out" -maxdepth 1 -type f -perm -u+x -printf '  %f (%s bytes)\n' >&2
