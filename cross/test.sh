#!/usr/bin/env bash
# cross/test.sh — the ARM checks CI runs (`bash cross/test.sh`).
#
#   1. builds the release binaries for x86_64, aarch64 and armv7 (static);
#   2. runs the runtime crate's test suite under qemu-user for each ARM
#      target (aarch64: unit, integration and doc tests; armv7: see
#      CROSS_ARMV7_TESTS below);
#   3. runs the seed job, sensor-average, on generated data on x86_64 and
#      under qemu for each ARM target, and requires the sorted outputs to be
#      byte-identical;
#   4. cross/image-test.sh: the linux/amd64 image built and run on the local
#      Docker Engine.
#
# A missing prerequisite (Docker, qemu, a toolchain, a target that does not
# build, the seed job) is a FAIL that says what to install: nothing is
# skipped unless asked for with one of the opt-outs below (never set by
# scripts/test.sh or CI).
#
# Ends with `cross: N passed, N failed, N skipped`; exits 1 if any failed.
# Opt-outs: CROSS_TARGETS (default "aarch64 armv7": the ARM targets checked),
# CROSS_IMAGE_TEST=0 (no image test).
# Knobs: CROSS_E2E_EVENTS (default 200000), CROSS_E2E_KEYS (default 500),
# CROSS_ARMV7_TESTS (default "lib": the runtime's unit tests; "all" adds the
# integration and doc tests), CARGO_TARGET_DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

events=${CROSS_E2E_EVENTS:-200000}
keys=${CROSS_E2E_KEYS:-500}
armv7_tests=${CROSS_ARMV7_TESTS:-lib}
read -r -a arm_targets <<<"${CROSS_TARGETS:-aarch64 armv7}"

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); log "PASS $*"; }
fail() { failed=$((failed + 1)); log "FAIL $*"; }
skip() { skipped=$((skipped + 1)); log "SKIP $*"; }

for t in "${arm_targets[@]}"; do
  target_vars "$t" || die "CROSS_TARGETS: unknown target '$t' (known: aarch64 armv7)"
done
case $armv7_tests in
  lib | all) ;;
  *) die "CROSS_ARMV7_TESTS: '$armv7_tests' is neither lib nor all" ;;
esac
if [[ " ${arm_targets[*]} " != *" aarch64 "* || " ${arm_targets[*]} " != *" armv7 "* ]]; then
  skip "ARM targets left out by CROSS_TARGETS='${CROSS_TARGETS:-}' (checked: ${arm_targets[*]:-none})"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- 1. builds -------------------------------------------------------------
declare -A built=()
for t in x86_64 "${arm_targets[@]}"; do
  rc=0
  start=$SECONDS
  "$CROSS_DIR/build.sh" "$t" || rc=$?
  case $rc in
    0) built[$t]=1 && pass "build $t ($((SECONDS - start)) s)" ;;
    "$EXIT_TOOLCHAIN_UNAVAILABLE") fail "build $t: no std of exactly rustc-web's version for $t can be installed (versions above)" ;;
    *) fail "build $t (exit $rc)" ;;
  esac
done

# --- 2. runtime test suite under qemu ----------------------------------------
for t in "${arm_targets[@]}"; do
  if [[ -z "${built[$t]:-}" ]]; then
    fail "runtime tests on $t: not run, the $t build failed (above)"
    continue
  fi
  target_vars "$t"
  if ! command -v "$RUNNER" >/dev/null; then
    fail "runtime tests on $t: $RUNNER not found (apt-get install qemu-user-static)"
    continue
  fi
  # armv7 runs the unit tests by default: see CROSS_ARMV7_TESTS above and
  # cross/README.md for what that covers and why.
  scope=()
  [[ $t == armv7 && $armv7_tests == lib ]] && scope=(--lib)
  start=$SECONDS
  if (
    cargo_env "$t"
    # Doc tests are linked by rustdoc, which does not see the target's
    # RUSTFLAGS: static for them too, so qemu needs no sysroot.
    export RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -C target-feature=+crt-static"
    # Tests that start a copy of their own binary run it under the same
    # emulator (no binfmt registration is assumed).
    export RIVULET_TEST_RUNNER="$RUNNER"
    cd "$ROOT"
    log "cargo ${CARGO_Z[*]} test -p rivulet-runtime ${scope[*]} --target $TRIPLE --profile cross-test (runner $RUNNER)"
    cargo "${CARGO_Z[@]}" test -p rivulet-runtime "${scope[@]}" --target "$TRIPLE" --profile cross-test
  ); then
    pass "runtime tests${scope[*]:+ (${scope[*]})} on $t under qemu ($((SECONDS - start)) s)"
  else
    fail "runtime tests on $t under qemu"
  fi
done

# --- 3. seed job end to end, ARM vs x86 --------------------------------------
# run_seed_job TARGET OUT: runs sensor-average for TARGET on the shared input.
run_seed_job() {
  local t=$1 out=$2 runner=""
  target_vars "$t"
  [[ -n "$RUNNER" ]] && runner=$RUNNER
  rm -rf "$work/state-$t"
  mkdir -p "$work/state-$t"
  # shellcheck disable=SC2086 # runner is one word or empty
  timeout 900 $runner "$(release_dir "$t")/sensor-average" \
    --input "$work/in.csv" --output "$out" \
    --parallelism 2 --state-dir "$work/state-$t"
}

x86_dir=$(release_dir x86_64)
if [[ -z "${built[x86_64]:-}" ]]; then
  fail "seed job end to end: not run, the x86_64 reference did not build"
elif ! why=$(seed_job_ready "$x86_dir"); then
  fail "seed job end to end: $why"
else
  gen_sensor_csv "$events" "$keys" 7 >"$work/in.csv"
  log "seed job input: $events events, $keys keys ($(wc -c <"$work/in.csv") bytes)"
  if ! run_seed_job x86_64 "$work/out-x86_64.csv"; then
    fail "seed job on x86_64 (reference) exited non-zero"
  elif [[ ! -s "$work/out-x86_64.csv" ]]; then
    fail "seed job on x86_64 wrote no output"
  else
    LC_ALL=C sort "$work/out-x86_64.csv" >"$work/ref.sorted"
    for t in "${arm_targets[@]}"; do
      if [[ -z "${built[$t]:-}" ]]; then
        fail "seed job on $t: not run, the $t build failed (above)"
        continue
      fi
      start=$SECONDS
      if ! run_seed_job "$t" "$work/out-$t.csv"; then
        fail "seed job on $t under qemu exited non-zero"
        continue
      fi
      LC_ALL=C sort "$work/out-$t.csv" >"$work/$t.sorted"
      if cmp -s "$work/ref.sorted" "$work/$t.sorted"; then
        pass "seed job on $t: output byte-identical to x86_64 ($(wc -l <"$work/ref.sorted") lines, $((SECONDS - start)) s)"
      else
        fail "seed job on $t: output differs from x86_64; first differences:"
        diff "$work/ref.sorted" "$work/$t.sorted" | head -n 10 >&2 || true
      fi
    done
  fi
fi

# --- 4. the amd64 image on the local Docker Engine ---------------------------
if [[ "${CROSS_IMAGE_TEST:-1}" == 0 ]]; then
  skip "amd64 image test: CROSS_IMAGE_TEST=0"
elif ! command -v docker >/dev/null; then
  fail "amd64 image test: docker not found (apt-get install docker.io; CROSS_IMAGE_TEST=0 opts out)"
elif ! docker info >/dev/null 2>&1; then
  fail "amd64 image test: the Docker Engine is not reachable (start it: systemctl start docker; CROSS_IMAGE_TEST=0 opts out)"
elif "$CROSS_DIR/image-test.sh"; then
  pass "amd64 image test"
else
  fail "amd64 image test"
fi

echo "cross: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
