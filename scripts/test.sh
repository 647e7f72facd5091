#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# It installs what the tests need first, so it passes on a fresh Debian 12
# machine with the Rust toolchain, Python and Docker: Mosquitto for the MQTT
# tests, promtool (Debian's prometheus) and Chromium for the HTTP endpoint's
# tests, moto's S3 server for the S3 checkpoint store, and (through
# cross/test.sh) the ARM cross toolchains and qemu.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

need=()
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
# promtool checks /metrics; headless Chromium renders the job's page.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
  # A stale foreign-architecture index must not stop the install.
  apt-get update -qq || echo "scripts/test.sh: apt-get update reported errors; installing anyway" >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The tests start their own brokers (and no Prometheus server) on free loopback ports.
if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto prometheus >/dev/null 2>&1 || true; fi

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check
step "lint"
cargo clippy --workspace --all-targets -- -D warnings
step "tests (x86_64)"
cargo test --workspace
step "checkpoint store on S3 (a moto server on 127.0.0.1)"
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends python3-pip
  # Debian's own Python refuses user installs (PEP 668) without the flag.
  python3 -m pip install -q 'moto[server]' || python3 -m pip install -q --break-system-packages 'moto[server]'
fi
cargo clippy -p rivulet-runtime --features s3 --all-targets -- -D warnings
cargo test -p rivulet-runtime --features s3 --lib checkpoint::store
step "ARM builds and tests under qemu"
bash cross/test.sh
