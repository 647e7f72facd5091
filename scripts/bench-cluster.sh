#!/usr/bin/env bash
# scripts/bench-cluster.sh — the seed job on 1, 2 and 3 worker slots over
# loopback beside the single process (not part of CI).
#
#   bash scripts/bench-cluster.sh [LINES] [SENSORS]     (default 10000000 1000)
#
# For each: wall time and events/s (LINES / wall, start-up included), peak
# RSS of every process (/usr/bin/time), checkpoints and bytes the store
# holds at the end. Then the recovery time: with SENSORS keys of state, a
# worker is killed (-9) and started again, and the time until the next
# checkpoint commits is printed. Release binaries from target/release.
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
    /usr/bin/time -f '%M' -o "$d/w$k.time" "$bin/sensor-average" worker --coordinator "127.0.0.1:$port" --slot $k \
      --state-dir "$d/w$k" 2>"$d/w$k.log" &
  done
  /usr/bin/time -f '%e %M' -o "$d/coord.time" "$bin/sensor-average" coordinator --listen "127.0.0.1:$port" --workers "$w" \
    --checkpoint-store "file://$d/store" --input "$tmp/in.csv" --output "$d/out.csv" --parallelism "$p" \
    --checkpoint-interval 1s 2>"$d/coord.log"
  wait
  read -r wall ckib <"$d/coord.time"
  local workers=""
  for ((k = 0; k < w; k++)); do workers+=" $(($(rss "$d/w$k.time") / 1024))"; done
  cmp -s <(sort "$tmp/single.csv") <(sort "$d/out.csv") || { echo "$w workers: output differs" >&2; exit 1; }
  echo "$w workers, parallelism $p: ${wall} s, $(rate "$wall"), peak RSS coordinator $((ckib / 1024)) MiB, workers(MiB):$workers;" \
    "$(grep -o 'after [0-9]* checkpoints' "$d/coord.log"), store at the end $(du -sh "$d/store" | cut -f1)"
}
cluster 1 1
cluster 2 2
cluster 3 3

# Recovery: a worker killed mid-run and started again; time to the next commit.
d=$tmp/kill
mkdir -p "$d/store"
port=$((port + 1))
for k in 0 1 2; do
  "$bin/sensor-average" worker --coordinator "127.0.0.1:$port" --slot $k --state-dir "$d/w$k" 2>"$d/w$k.log" &
  eval "pid$k=\$!"
done
RUST_LOG=rivulet=info "$bin/sensor-average" coordinator --listen "127.0.0.1:$port" --workers 3 \
  --checkpoint-store "file://$d/store" --input "$tmp/in.csv" --output "$d/out.csv" --parallelism 3 \
  --checkpoint-interval 1s 2>"$d/coord.log" &
coord=$!
until grep -q "epoch=3" "$d/coord.log" 2>/dev/null; do sleep 0.05; done
kill -9 "$pid1"
t0=$(date +%s.%N)
"$bin/sensor-average" worker --coordinator "127.0.0.1:$port" --slot 1 --state-dir "$d/w1" 2>"$d/w1b.log" &
until grep -q "generation=2 epoch=" "$d/coord.log" 2>/dev/null; do sleep 0.01; done
t1=$(date +%s.%N)
echo "kill -9 of a worker ($sensors keys) to the next committed checkpoint: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s", b - a }')"
wait "$coord"
