#!/usr/bin/env bash
# scripts/bench-sql.sh — the seed job as SQL beside the Rust sensor-average
# and beside Apache Flink 2.3 running the same SQL, in one sitting (not part
# of CI).
#
#   bash scripts/bench-sql.sh [LINES] [RUNS]      (default 10000000 3)
#
# Each run: wall time (events/s = LINES / wall) and peak RSS. Rivulet's
# runs are whole processes under /usr/bin/time (start-up included); Flink's
# time is from submitting the INSERT to its end (the JVM's start is not
# counted) and its RSS the JVM's VmHWM; Flink runs with parallelism 2,
# default heap state and no checkpoints. Both SQL jobs write to a
# blackhole sink (the job's 21,000 result rows cost nothing to write).
# Installs Java 17 and PyFlink as scripts/flink-golden.sh does.
set -euo pipefail
lines=${1:-10000000}
runs=${2:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/target/release
export DEBIAN_FRONTEND=noninteractive
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time
command -v java >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless
venv=${FLINK_VENV:-$HOME/.cache/rivulet/flink-venv}
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" || { apt-get install -y -qq python3-venv && python3 -m venv "$venv"; }
"$venv/bin/python" -c 'import pyflink' 2>/dev/null || "$venv/bin/pip" install -q 'apache-flink==2.3.0'
cargo build --release -p rivulet-examples -p rivulet-agent --manifest-path "$root/Cargo.toml" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/rivulet" generate --lines "$lines" --output "$tmp/in.csv" >&2
cat >"$tmp/seed.sql" <<SQL
CREATE TABLE readings (
  sensor_id STRING, ts_ms BIGINT, temp_f DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');
CREATE TABLE averages (sensor_id STRING, window_end TIMESTAMP(3), avg_c DOUBLE, n BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO averages
SELECT sensor_id, window_end, AVG((temp_f - 32) * 5 / 9), COUNT(*)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, sensor_id;
SQL
sed "s|{input}|$tmp/in.csv|" "$tmp/seed.sql" >"$tmp/rivulet.sql"

rate() { awk -v n="$lines" -v s="$1" 'BEGIN { printf "%.2f", n / s / 1e6 }'; }
report() { # name, then lines "wall mib"
  sort -g | awk -v name="$1" -v n="$lines" '{ w[NR] = $1; m[NR] = $2 } END {
    mid = int((NR + 1) / 2); printf "%-28s median %.2f s = %.2f M events/s, peak RSS %d MiB (runs: %d)\n", name, w[mid], n / w[mid] / 1e6, m[mid], NR }'
}
for ((i = 0; i < runs; i++)); do
  /usr/bin/time -f '%e %M' -o "$tmp/t" "$bin/sensor-average" --input "$tmp/in.csv" --output "$tmp/out.csv" 2>/dev/null
  awk '{ printf "%s %d\n", $1, $2 / 1024 }' "$tmp/t" >>"$tmp/rust"
  /usr/bin/time -f '%e %M' -o "$tmp/t" "$bin/rivulet" sql -f "$tmp/rivulet.sql" 2>/dev/null
  awk '{ printf "%s %d\n", $1, $2 / 1024 }' "$tmp/t" >>"$tmp/sql"
  "$venv/bin/python" "$root/scripts/flink-sql-bench.py" "$tmp/seed.sql" "$tmp/in.csv" 2 2>/dev/null |
    sed -n 's/^flink wall_s=\([^ ]*\) peak_rss_mib=\(.*\)$/\1 \2/p' >>"$tmp/flink"
done
report "Rust sensor-average" <"$tmp/rust"
report "rivulet sql (seed job)" <"$tmp/sql"
report "Flink 2.3 SQL, parallelism 2" <"$tmp/flink"
