# shellcheck shell=bash
# Shared by the cross/ scripts: target table, toolchain install from Debian's
# packages, and the cargo environment for one target. Sourced, never run.
#
# Everything is passed to cargo through environment variables set in the
# calling script's process only, so a plain `cargo build` on the host (and
# every other engineer's build) never sees a cross linker, runner or flag.

CROSS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CROSS_DIR/.." && pwd)

# Cross builds go to a target directory outside the clone unless
# CARGO_TARGET_DIR says otherwise: std is built from source for armv7 and
# every target is a fat-LTO release build, so a kept directory (as any CI
# caches builds) saves most of their time; an empty one works too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${RIVULET_CROSS_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rivulet/cross-target}}"

# Exit codes shared by the scripts (documented in cross/README.md).
readonly EXIT_USAGE=2
readonly EXIT_TOOLCHAIN_UNAVAILABLE=3

# Debian's rustc (rustc-web): its std for aarch64 comes as a Debian package,
# and its std source (rust-web-src) is what armv7's std is built from.
readonly DEB_RUSTC=/usr/bin/rustc
readonly DEB_RUSTDOC=/usr/bin/rustdoc
# Where rust-web-src puts the std source: cargo's -Z build-std finds it
# through the compiler's sysroot (/usr).
readonly DEB_RUST_SRC=/usr/lib/rustlib/src/rust/library
# What -Z build-std builds for a target whose std is not installed.
readonly BUILD_STD_CRATES=std,panic_unwind

log() { printf '[cross] %s\n' "$*" >&2; }
die() { printf '[cross] error: %s\n' "$*" >&2; exit 1; }

# target_vars NAME: sets TRIPLE, DEB_ARCH, LINKER, RUNNER, PLATFORM, PKGS and
# BUILD_STD (1 when std is built from rust-web-src instead of installed).
target_vars() {
  BUILD_STD=0
  case "$1" in
    aarch64 | arm64)
      TRIPLE=aarch64-unknown-linux-gnu DEB_ARCH=arm64 PLATFORM=linux/arm64
      LINKER=aarch64-linux-gnu-gcc RUNNER=qemu-aarch64-static
      PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross "libstd-rust-web-dev:arm64")
      ;;
    armv7 | armhf)
      # No armhf std package is used (and no armhf dpkg architecture is
      # added): std is compiled for the target from Debian's std source for
      # the same compiler, with -Z build-std.
      TRIPLE=armv7-unknown-linux-gnueabihf DEB_ARCH="" PLATFORM=linux/arm/v7
      LINKER=arm-linux-gnueabihf-gcc RUNNER=qemu-arm-static BUILD_STD=1
      PKGS=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross rust-web-src)
      ;;
    x86_64 | amd64)
      # Static host build, for the linux/amd64 image and as the reference
      # the ARM outputs are compared with. Same compiler as the ARM builds.
      # No linker setting: for the host triple cargo would apply it to build
      # scripts too, and their fingerprints would flip between targets.
      TRIPLE=x86_64-unknown-linux-gnu DEB_ARCH="" PLATFORM=linux/amd64
      LINKER="" RUNNER=""
      PKGS=(gcc libc6-dev "libstd-rust-web-dev:amd64")
      ;;
    *) return 1 ;;
  esac
  PKGS+=(rustc-web)
  [[ -n "$RUNNER" ]] && PKGS+=(qemu-user-static)
  return 0
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_get() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}

pkg_installed_version() {
  dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
    awk '$1 == "install" && $3 == "installed" { print $4 }'
}

pkg_candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'
}

has_foreign_arch() {
  dpkg --print-foreign-architectures | grep -qx "$1"
}

# rust_min_version: the workspace's rust-version (what fjall & co. need).
rust_min_version() {
  sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n1
}

# std_pkg: the package whose version must equal rustc-web's for TRIPLE:
# the std source for a build-std target, the installed std otherwise.
std_pkg() {
  if [[ $BUILD_STD == 1 ]]; then
    echo rust-web-src
  else
    echo "libstd-rust-web-dev:${DEB_ARCH:-amd64}"
  fi
}

# toolchain_ready: every package installed, and std (or its source) has
# exactly the compiler's version (a std from another release is rejected).
toolchain_ready() {
  local p
  for p in "${PKGS[@]}"; do
    [[ -n "$(pkg_installed_version "$p")" ]] || return 1
  done
  [[ -z "$DEB_ARCH" ]] || has_foreign_arch "$DEB_ARCH" || return 1
  [[ "$(pkg_installed_version "$(std_pkg)")" == "$(pkg_installed_version rustc-web)" ]] || return 1
  command -v cargo >/dev/null || return 1
  if [[ $BUILD_STD == 1 ]]; then
    [[ -f "$DEB_RUST_SRC/std/Cargo.toml" ]]
  else
    [[ -d "/usr/lib/rustlib/$TRIPLE/lib" ]]
  fi
}

# ensure_toolchain NAME: installs what building NAME needs. Quick (no apt
# call at all) when everything is there. Returns EXIT_TOOLCHAIN_UNAVAILABLE,
# having said which versions disagree, when Debian has no std (or std
# source) of exactly rustc-web's version for the target.
ensure_toolchain() {
  target_vars "$1" || die "unknown target '$1'"
  if toolchain_ready; then
    return 0
  fi
  command -v cargo >/dev/null || PKGS+=(cargo-web)
  command -v apt-get >/dev/null || die "apt-get not found: this needs Debian 12 (bookworm)"

  if [[ -n "$DEB_ARCH" ]] && ! has_foreign_arch "$DEB_ARCH"; then
    log "adding the $DEB_ARCH architecture to dpkg"
    as_root dpkg --add-architecture "$DEB_ARCH"
  fi
  log "apt-get update"
  # Non-zero when any one index fails (e.g. a foreign architecture's mirror
  # mid-sync). That alone must not stop us: what we need is checked below.
  if ! apt_get update -q >/tmp/cross-apt-update.$$ 2>&1; then
    log "apt-get update reported errors (continuing; needed packages are checked next):"
    grep -E '^(E|W):' /tmp/cross-apt-update.$$ | head -n 5 >&2 || true
  fi
  rm -f /tmp/cross-apt-update.$$

  local rustc_ver std_ver min std
  std=$(std_pkg)
  rustc_ver=$(pkg_candidate rustc-web)
  std_ver=$(pkg_candidate "$std")
  min=$(rust_min_version)
  if [[ -z "$rustc_ver" || "$rustc_ver" == "(none)" ]]; then
    die "Debian's rustc-web is not installable (apt-cache policy rustc-web)"
  fi
  if [[ "$std_ver" != "$rustc_ver" ]] ||
    dpkg --compare-versions "${rustc_ver%%+*}" lt "${min:-0}"; then
    log "error: no std for $TRIPLE of exactly the compiler's version can be installed:"
    log "  rustc-web candidate: ${rustc_ver}"
    log "  $std candidate: ${std_ver:-none}"
    log "  the workspace needs rust >= ${min:-?}; a std from another release is never used."
    log "  (apt-cache policy rustc-web $std shows where each comes from)"
    return "$EXIT_TOOLCHAIN_UNAVAILABLE"
  fi

  log "apt-get install ${PKGS[*]}"
  apt_get install -y -q --no-install-recommends "${PKGS[@]}" >/tmp/cross-apt-install.$$ 2>&1 || {
    tail -n 20 /tmp/cross-apt-install.$$ >&2
    rm -f /tmp/cross-apt-install.$$
    die "apt-get install failed"
  }
  rm -f /tmp/cross-apt-install.$$
  toolchain_ready || die "toolchain for $TRIPLE still incomplete after install ($(std_pkg) $(pkg_installed_version "$(std_pkg)") against rustc-web $(pkg_installed_version rustc-web))"
}

# cargo_env NAME: exports the cargo configuration for NAME (call after
# ensure_toolchain), and sets CARGO_Z to the -Z flags cargo needs for it
# (pass them right after `cargo`). Target-scoped variables only: build scripts and proc
# macros are still built for the host, dynamically, as usual.
cargo_env() {
  target_vars "$1" || die "unknown target '$1'"
  local up=${TRIPLE^^}
  up=${up//-/_}
  export RUSTC=$DEB_RUSTC RUSTDOC=$DEB_RUSTDOC
  if [[ -n "$LINKER" ]]; then
    export "CARGO_TARGET_${up}_LINKER=$LINKER"
    # For crates that build C (cc-rs): the same cross gcc and its ar.
    export "CC_${TRIPLE//-/_}=$LINKER" "AR_${TRIPLE//-/_}=${LINKER%gcc}ar"
  fi
  local flags_var="CARGO_TARGET_${up}_RUSTFLAGS"
  export "$flags_var=${!flags_var:-} -C target-feature=+crt-static"
  # -Z build-std (armv7) is unstable: RUSTC_BOOTSTRAP lets the stable
  # compiler and cargo accept it, for this script's process only. It is set
  # for every target alike because the targets share the host's build
  # scripts and proc macros (target/release/), whose fingerprints include
  # it: alternating a setting between targets would rebuild them, and
  # everything above them, at each switch.
  export RUSTC_BOOTSTRAP=1
  CARGO_Z=()
  [[ $BUILD_STD == 1 ]] && CARGO_Z=(-Z "build-std=$BUILD_STD_CRATES")
  if [[ -n "$RUNNER" ]]; then
    # Statically linked, so qemu needs no sysroot (and must not get one:
    # `-L /usr/<triple>` makes dynamic binaries hang at their first thread).
    export "CARGO_TARGET_${up}_RUNNER=$RUNNER"
  fi
  if [[ -n "${RUSTFLAGS:-}" ]]; then
    log "warning: RUSTFLAGS is set and overrides the target's flags; unset it for a static build"
  fi
}

# target_dir: cargo's target directory (honours CARGO_TARGET_DIR and config).
target_dir() {
  local dir
  dir=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n1 | cut -d'"' -f4)
  echo "${dir:-${CARGO_TARGET_DIR:-$ROOT/target}}"
}

# release_dir NAME: where build.sh leaves NAME's binaries.
release_dir() {
  target_vars "$1" || die "unknown target '$1'"
  echo "$(target_dir)/$TRIPLE/release"
}

# has_bin NAME: does the workspace define a binary target NAME?
has_bin() {
  (cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null) |
    grep -q "\"kind\":\[\"bin\"\],[^}]*\"name\":\"$1\"\|\"name\":\"$1\",[^}]*\"kind\":\[\"bin\"\]"
}

# gen_sensor_csv EVENTS KEYS [SEED]: the seed job's input on stdout, in its
# contract's format (headerless `sensor_id,ts_ms,temp_f`, e.g.
# `s0042,1700000001234,71.35`). Event time advances 1 ms per 10 events
# (10 k events/s); timestamps jitter back by up to 2 s so out-of-order input
# and late data are exercised. Deterministic for a given awk and SEED.
gen_sensor_csv() {
  awk -v n="$1" -v keys="$2" -v seed="${3:-42}" 'BEGIN {
    srand(seed)
    width = length(sprintf("%d", keys - 1)); if (width < 4) width = 4
    fmt = "s%0" width "d,%.0f,%.2f\n"
    base = 1700000000000
    for (i = 0; i < n; i++) {
      k = (keys >= n) ? i : int(rand() * keys)
      ts = base + int(i / 10) - (rand() < 0.05 ? int(rand() * 2000) : 0)
      printf fmt, k, ts, 40 + (k % 37) + rand() * 10
    }
  }'
}

# seed_job_ready DIR: is DIR/sensor-average there and does it take the
# contract's CLI (`--input IN --output OUT [--parallelism N] [--state-dir D]`)?
# Prints why not (test.sh and image-test.sh fail with that reason).
seed_job_ready() {
  local bin=$1/sensor-average runner=${2:-}
  if ! has_bin sensor-average; then
    echo "the workspace has no sensor-average binary target yet"
    return 1
  fi
  if [[ ! -x "$bin" ]]; then
    echo "$bin was not built"
    return 1
  fi
  # shellcheck disable=SC2086 # runner is one word or empty
  if ! $runner "$bin" --help 2>&1 | grep -q -- '--input'; then
    echo "sensor-average does not take --input yet (its --help shows no such flag: still a stub)"
    return 1
  fi
}
