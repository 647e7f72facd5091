#!/usr/bin/env bash
# cross/footprint.sh [TARGET...] — the footprint budget, measured.
#
# For each TARGET (default: x86_64 aarch64 armv7) builds the release binaries with cross/build.sh and
# measures, natively on x86_64 and under qemu-user for ARM:
#   - stripped size of each binary (budget: rivulet <= 8 MB on aarch64);
#   - idle RSS and start-up time of `rivulet --help` (median of 10 runs);
#   - time to the first result: sensor-average on a one-line input;
#   - the seed job's peak RSS fed at 10 k events/s through a FIFO
#     (FOOTPRINT_PACED_SECONDS, default 20), and on 1 M distinct keys.
# Prints a Markdown table on stdout (for the README); progress on stderr.
# These are figures, not tests: nothing here fails on a number.
#
# Under qemu-user, RSS includes the emulator itself and times are emulated:
# the "qemu baseline" row (an empty static C program) is what to subtract.
# Knobs: FOOTPRINT_KEYS_EVENTS (default 1000000), FOOTPRINT_PACED_SECONDS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -gt 0 ]] || set -- x86_64 aarch64 armv7
paced_seconds=${FOOTPRINT_PACED_SECONDS:-20}
rate=10000
many=${FOOTPRINT_KEYS_EVENTS:-1000000}

command -v python3 >/dev/null && [[ -x /usr/bin/time ]] || {
  log "installing time and python3"
  apt_get install -y -q --no-install-recommends time python3 >/dev/null
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen_sensor_csv 1 1 >"$work/one.csv"
gen_sensor_csv $((rate * paced_seconds)) 1000 3 >"$work/paced.csv"
gen_sensor_csv "$many" "$many" 5 >"$work/keys.csv"

# peak RSS (KiB) and wall seconds of a command: "KIB SECONDS"
measure() { /usr/bin/time -f '%M %e' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" && cat "$work/time"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1000000 }'; }

# median_ms CMD...: median wall time of 10 runs, in ms.
median_ms() {
  local t0 t1
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f ms", (v[5] + v[6]) / 2000 }'
}

# pace FILE: writes FILE to stdout at $rate lines/s, 100 ms at a time.
pace() {
  python3 - "$1" "$rate" <<'EOF'
import sys, time
path, rate = sys.argv[1], int(sys.argv[2])
step = rate // 10
out = sys.stdout.buffer
start = time.monotonic()
with open(path, 'rb') as f:
    lines = f.readlines()
for i in range(0, len(lines), step):
    out.write(b''.join(lines[i:i + step]))
    out.flush()
    delay = start + (i + step) / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
EOF
}

# seed_job RUNNER BIN INPUT NAME: runs the seed job with a fresh state dir.
seed_job() {
  local runner=$1 bin=$2 input=$3 name=$4
  rm -rf "$work/state"
  mkdir -p "$work/state"
  # shellcheck disable=SC2086
  measure timeout 1800 $runner "$bin" --input "$input" --output "$work/$name.out" --state-dir "$work/state"
}

declare -A row=()
cols=()
for t in "$@"; do
  rc=0
  "$CROSS_DIR/build.sh" "$t" >&2 || rc=$?
  [[ $rc -eq 0 ]] || die "build for $t failed (exit $rc)"
  target_vars "$t"
  dir=$(release_dir "$t")
  runner=$RUNNER
  col="$t${runner:+ (qemu)}"
  cols+=("$col")
  log "measuring $col"

  for b in rivulet sensor-average; do
    [[ -x "$dir/$b" ]] || continue
    size=$(stat -c %s "$dir/$b")
    stripped=stripped
    readelf -S "$dir/$b" | grep -q '\.symtab' && stripped="NOT stripped"
    row["size $b"]+="| $(mb "$size") ($stripped) "
  done

  if [[ -n "$runner" ]]; then
    printf 'int main(void) { return 0; }\n' | "$LINKER" -static -x c - -o "$work/null-$t"
    read -r kib _ < <(measure "$runner" "$work/null-$t")
    row["qemu baseline RSS"]+="| $(mib "$kib") "
  else
    row["qemu baseline RSS"]+="| – "
  fi

  # shellcheck disable=SC2086
  read -r kib _ < <(measure $runner "$dir/rivulet" --help)
  row["idle RSS"]+="| $(mib "$kib") "
  # shellcheck disable=SC2086
  row["start-up"]+="| $(median_ms $runner "$dir/rivulet" --help) "

  if ! why=$(seed_job_ready "$dir" "$runner"); then
    log "no seed-job figures: $why"
    for k in "first result" "seed RSS paced" "seed RSS keys"; do row[$k]+="| n/a "; done
    continue
  fi
  read -r _ secs < <(seed_job "$runner" "$dir/sensor-average" "$work/one.csv" one)
  row["first result"]+="| $(awk -v s="$secs" 'BEGIN { printf "%.0f ms", s * 1000 }') "

  log "  seed job at $rate events/s for ${paced_seconds} s"
  rm -f "$work/fifo"
  mkfifo "$work/fifo"
  pace "$work/paced.csv" >"$work/fifo" &
  pacer=$!
  if read -r kib secs < <(seed_job "$runner" "$dir/sensor-average" "$work/fifo" paced); then
    row["seed RSS paced"]+="| $(mib "$kib") ($(awk -v s="$secs" -v n=$((rate * paced_seconds)) 'BEGIN { printf "%.0f", n / s }') ev/s kept) "
  else
    row["seed RSS paced"]+="| failed "
  fi
  wait "$pacer" || true

  log "  seed job on $many distinct keys"
  if read -r kib secs < <(seed_job "$runner" "$dir/sensor-average" "$work/keys.csv" keys); then
    row["seed RSS keys"]+="| $(mib "$kib"), $(awk -v s="$secs" -v n="$many" 'BEGIN { printf "%.1f s, %.0f k ev/s", s, n / s / 1000 }') "
  else
    row["seed RSS keys"]+="| failed ($(tail -n 1 "$work/stderr")) "
  fi
done

[[ ${#cols[@]} -gt 0 ]] || die "nothing could be built"
printf '| measure | %s |\n' "$(IFS='|'; echo "${cols[*]}" | sed 's/|/ | /g')"
printf '|---|%s\n' "$(printf -- '---|%.0s' "${cols[@]}")"
label() {
  case $1 in
    "size rivulet") echo "rivulet binary (static, stripped)" ;;
    "size sensor-average") echo "sensor-average binary" ;;
    "qemu baseline RSS") echo "qemu baseline RSS (empty static C program)" ;;
    "idle RSS") echo "idle RSS (\`rivulet --help\`)" ;;
    "start-up") echo "start-up (\`rivulet --help\`, median of 10)" ;;
    "first result") echo "seed job, 1-line input, start to exit" ;;
    "seed RSS paced") echo "seed job peak RSS at $rate ev/s (1 k keys, ${paced_seconds} s)" ;;
    "seed RSS keys") echo "seed job on $many distinct keys: peak RSS, time" ;;
  esac
}
for k in "size rivulet" "size sensor-average" "qemu baseline RSS" "idle RSS" "start-up" \
  "first result" "seed RSS paced" "seed RSS keys"; do
  [[ -n "${row[$k]:-}" ]] && printf '| %s %s|\n' "$(label "$k")" "${row[$k]}"
done
