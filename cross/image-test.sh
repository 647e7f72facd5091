#!/usr/bin/env bash
# cross/image-test.sh — builds the linux/amd64 image on the local Docker
# Engine and runs it: `rivulet --help` in the container, then the seed job
# (sensor-average) on generated data, whose sorted output must be
# byte-identical to the same static binary run outside the container.
# A missing Docker Engine or seed job is a failure, never a skip.
#
# Ends with `image: N passed, N failed`; exits 1 if any failed.
# Knobs: CROSS_E2E_EVENTS (default 200000), CROSS_E2E_KEYS (default 500).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

events=${CROSS_E2E_EVENTS:-200000}
keys=${CROSS_E2E_KEYS:-500}

passed=0 failed=0
pass() { passed=$((passed + 1)); log "PASS $*"; }
fail() { failed=$((failed + 1)); log "FAIL $*"; }
finish() {
  echo "image: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v docker >/dev/null; then
  fail "amd64 image: docker not found (apt-get install docker.io)"
  finish
fi
if ! docker info >/dev/null 2>&1; then
  fail "amd64 image: the Docker Engine is not reachable (start it: systemctl start docker)"
  finish
fi

if ! image=$("$CROSS_DIR/image.sh" x86_64); then
  fail "docker build of the linux/amd64 image"
  finish
fi
pass "docker build $image ($(docker image inspect "$image" --format '{{.Size}}') bytes)"

if docker run --rm --network none "$image" --help >/dev/null; then
  pass "rivulet --help in $image"
else
  fail "rivulet --help in $image"
fi

bin_dir=$(release_dir x86_64)
if ! why=$(seed_job_ready "$bin_dir"); then
  fail "seed job in $image: $why"
  finish
fi

gen_sensor_csv "$events" "$keys" 11 >"$work/in.csv"
mkdir -p "$work/state-host" "$work/state-ctr"
"$bin_dir/sensor-average" --input "$work/in.csv" --output "$work/host.csv" \
  --parallelism 2 --state-dir "$work/state-host"
if ! timeout 900 docker run --rm --network none -v "$work:/data" \
  --entrypoint /usr/local/bin/sensor-average "$image" \
  --input /data/in.csv --output /data/ctr.csv --parallelism 2 --state-dir /data/state-ctr; then
  fail "seed job in $image exited non-zero"
elif [[ ! -s "$work/ctr.csv" ]]; then
  fail "seed job in $image wrote no output"
elif cmp -s <(LC_ALL=C sort "$work/host.csv") <(LC_ALL=C sort "$work/ctr.csv"); then
  pass "seed job in $image: output byte-identical to the host run ($(wc -l <"$work/ctr.csv") lines)"
else
  fail "seed job in $image: output differs from the host run"
fi
finish
