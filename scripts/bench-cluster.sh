#!/usr/bin/env bash
# scripts/bench-cluster.sh — the seed job on 1, 2 and 3 worker slots over
# loopback beside the single process (not part of CI).
#
#   bash scripts/bench-cluster.sh [LINES] [SENSORS]     (default 10000000 1000)
#
# For each: wall time and events/s (LINES / wall, start-up included), peak
# RSS of every process (/usr/bin/time), checkpoints and bytes the store
# holds at the end, checkpoint duration and bytes uploaded per checkpoint
# (medians), bytes the workers sent each other per event. Then the recovery
# time with KEYS (default 1000000) keys of state, below. Release binaries
# from target/release.
set -euo pipefail
lines=${1:-10000000}
sensors=${2:-1000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/target/release
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }
cargo build --release -p rivulet-examples -p rivulet-agent --manifest-path "$root/Cargo.toml" >&2
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$bin/rivulet" generate --lines "$lines" --sensors "$sensors" --output "$tmp/in.csv"
port=$((20000 + RANDOM % 20000))

rss() { awk '{print $1}' "$1"; }
# The median of a field of the coordinator's "checkpoint complete" lines
# (took=Some(12.3ms) in milliseconds; numbers as they are).
median_of() {
  grep 'checkpoint complete' "$2" | grep -o "$1=[^ ]*" | sed -E 's/^[^=]*=//; s/^Some\((.*)\)$/\1/' |
    awk '/ms$/ { sub(/ms$/, ""); print; next } /µs$/ { sub(/µs$/, ""); print $1 / 1000; next }
         /s$/ { sub(/s$/, ""); print $1 * 1000; next } { print }' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", v[int((NR + 1) / 2)]; else printf "n/a" }'
}
rate() { awk -v n="$lines" -v s="$1" 'BEGIN { printf "%.2f M events/s", n / s / 1e6 }'; }

/usr/bin/time -f '%e %M' -o "$tmp/single.time" "$bin/sensor-average" --input "$tmp/in.csv" --output "$tmp/single.csv" \
  --state-dir "$tmp/single-state" --checkpoint-interval 1s 2>/dev/null
read -r wall kib <"$tmp/single.time"
echo "single process: ${wall} s, $(rate "$wall"), peak RSS $((kib / 1024)) MiB"

cluster() { # workers parallelism
  local w=$1 p=$2 d=$tmp/c$1
  mkdir -p "$d/store"
  port=$((port + 1))
  for ((k = 0; k < w; k++)); do
    RUST_LOG=rivulet=info /usr/bin/time -f '%M' -o "$d/w$k.time" "$bin/sensor-average" worker --coordinator "127.0.0.1:$port" --slot $k \
      --state-dir "$d/w$k" 2>"$d/w$k.log" &
  done
  RUST_LOG=rivulet=info /usr/bin/time -f '%e %M' -o "$d/coord.time" "$bin/sensor-average" coordinator --listen "127.0.0.1:$port" --workers "$w" \
    --checkpoint-store "file://$d/store" --input "$tmp/in.csv" --output "$d/out.csv" --parallelism "$p" \
    --checkpoint-interval 1s 2>"$d/coord.log"
  wait
  read -r wall ckib <"$d/coord.time"
  local workers=""
  for ((k = 0; k < w; k++)); do workers+=" $(($(rss "$d/w$k.time") / 1024))"; done
  cmp -s <(sort "$tmp/single.csv") <(sort "$d/out.csv") || { echo "$w workers: output differs" >&2; exit 1; }
  local wire
  wire=$(cat "$d"/w*.log | grep -o 'bytes_sent=[0-9]*' | cut -d= -f2 | awk -v n="$lines" '{ s += $1 } END { printf "%.1f", s / n }')
  echo "$w workers, parallelism $p: ${wall} s, $(rate "$wall"), peak RSS coordinator $((ckib / 1024)) MiB, workers(MiB):$workers;" \
    "$(grep -c 'checkpoint complete' "$d/coord.log") checkpoints, median $(median_of took "$d/coord.log") ms and" \
    "$(median_of uploaded_bytes "$d/coord.log") bytes uploaded each; $wire bytes on the wire per event;" \
    "store at the end $(du -sh "$d/store" | cut -f1)"
}
cluster 1 1
cluster 2 2
cluster 3 3

# Recovery: with KEYS sensors' state on 3 workers, worker 1 is killed (-9)
# after the third checkpoint and started again at once (as Swarm would),
# with its state dir kept (task-local recovery) or wiped (restore from the
# store); the time from the kill to the next committed checkpoint, which is
# when the sinks publish the next results.
recovery() { # input keys wipe
  local d=$tmp/kill-$3 pid1=
  mkdir -p "$d/store"
  port=$((port + 1))
  for k in 0 1 2; do
    "$bin/sensor-average" worker --coordinator "127.0.0.1:$port" --slot $k --state-dir "$d/w$k" 2>"$d/w$k.log" &
    [[ $k == 1 ]] && pid1=$!
  done
  RUST_LOG=rivulet=info "$bin/sensor-average" coordinator --listen "127.0.0.1:$port" --workers 3 \
    --checkpoint-store "file://$d/store" --input "$1" --output "$d/out.csv" --parallelism 3 \
    --checkpoint-interval 1s 2>"$d/coord.log" &
  local coord=$!
  until grep -q "checkpoint complete generation=1 epoch=3" "$d/coord.log" 2>/dev/null; do sleep 0.05; done
  kill -9 "$pid1"
  local t0 t1
  t0=$(date +%s.%N)
  [[ $3 == wiped ]] && rm -rf "$d/w1"
  "$bin/sensor-average" worker --coordinator "127.0.0.1:$port" --slot 1 --state-dir "$d/w1" 2>"$d/w1b.log" &
  until grep -q "checkpoint complete generation=2 epoch=" "$d/coord.log" 2>/dev/null; do sleep 0.01; done
  t1=$(date +%s.%N)
  echo "kill -9 of a worker, $2 keys, state dir $3: next committed checkpoint after" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s", b - a }')"
  wait "$coord"
  wait
}
keys=${KEYS:-1000000}
"$bin/rivulet" generate --lines $((keys * 3)) --sensors "$keys" --output "$tmp/keys.csv"
recovery "$tmp/keys.csv" "$keys" kept
recovery "$tmp/keys.csv" "$keys" wiped
