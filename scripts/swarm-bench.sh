#!/usr/bin/env bash
# scripts/swarm-bench.sh — the Swarm deployment's figures on this machine's
# Docker Engine (not part of CI).
#
#   bash scripts/swarm-bench.sh [RUNS]            (default 3)
#
# On a one-node swarm (made with `docker swarm init` when none is active,
# and left again at the end) it deploys the seed job with the embedded
# broker, a coordinator and three worker slots, RUNS times, and prints:
#   - the time from `rivulet deploy` to the first result published on MQTT
#     (`averages/<sensor>`), while `rivulet simulate` publishes 1,000 live
#     readings/s from 100 sensors (1 s tumbling windows, 300 ms
#     checkpoints): median, min and max of the runs;
#   - the idle RSS of each container (the cgroup's rss, and `docker stats`)
#     20 s after the readings stopped, in the last run;
#   - the size of each rivulet image (`docker image inspect`) of the tag
#     below, for every platform cross/image.sh has built (it builds amd64;
#     SWARM_BENCH_TARGETS="x86_64 aarch64 armv7" builds the ARM ones too,
#     installing their cross toolchains).
# Needs: Docker, python3, the Rust toolchain. Progress on stderr, figures on
# stdout. These are figures, not tests: nothing here fails on a number.
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tag=${IMAGE_TAG:-swarm-bench}
targets=${SWARM_BENCH_TARGETS:-x86_64}
# What the image holds: the binaries, without the Docker client (as the
# deploy test builds it, so both share the cross build's cache).
export IMAGE_CARGO_ARGS=${IMAGE_CARGO_ARGS:-"-p rivulet-agent -p rivulet-examples --bins --no-default-features --features embedded-broker,http"}
log() { printf '[swarm-bench] %s\n' "$*" >&2; }

command -v docker >/dev/null || { log "docker not found (apt-get install docker.io)"; exit 1; }
command -v python3 >/dev/null || { log "python3 not found"; exit 1; }
log "building the rivulet CLI and the images ($targets)"
cargo build -q -p rivulet-agent --manifest-path "$root/Cargo.toml" >&2
rivulet=${CARGO_TARGET_DIR:-$root/target}/debug/rivulet
# shellcheck disable=SC2086 # split on purpose
mapfile -t images < <(IMAGE_TAG=$tag bash "$root/cross/image.sh" $targets)
image=$(printf '%s\n' "${images[@]}" | grep -- '-amd64$')

made_swarm=0
if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != active ]]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  made_swarm=1
fi
tmp=$(mktemp -d)
job=rvbench$$
cleanup() {
  [[ -n ${sim:-} ]] && kill "$sim" 2>/dev/null || true
  "$rivulet" down --purge -f "$tmp/rivulet.toml" >/dev/null 2>&1 || true
  [[ $made_swarm == 1 ]] && docker swarm leave --force >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/rivulet.toml" <<EOF
[job]
name = "$job"
workers = 3
parallelism = 3
checkpoint_interval = "300ms"
worker_timeout = "10s"
args = ["--topic", "sensors/{sensor_id}/temp", "--client-id", "$job-engine", "--publish", "averages/{sensor_id}", "--window", "1s"]
log = "warn"
[checkpoint_store]
kind = "volume"
[broker]
kind = "embedded"
[images]
amd64 = "$image"
[network]
trusted_lan = true
[ports]
broker = $port
EOF

# first_result PORT: waits for the broker at PORT, subscribes to
# averages/# (MQTT 3.1.1, QoS 0) and returns when the first result arrives.
first_result() {
  python3 - "$1" <<'EOF'
import socket, struct, sys, time
port = int(sys.argv[1])
def packet(kind, body):
    n, enc = len(body), b""
    while True:
        b, n = n % 128, n // 128
        enc += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return bytes([kind]) + enc + body
def utf8(t):
    return struct.pack(">H", len(t)) + t.encode()
def read(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        b += chunk
    return b
def first_publish():
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    s.sendall(packet(0x10, utf8("MQTT") + b"\x04\x02\x00\x3c" + utf8("swarm-bench-sub")))
    s.sendall(packet(0x82, b"\x00\x01" + utf8("averages/#") + b"\x00"))
    while True:
        kind = read(s, 1)[0] >> 4
        n, shift = 0, 0
        while True:
            b = read(s, 1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        read(s, n)
        if kind == 3:  # PUBLISH: the first result
            return
# Until the broker's task is up, the published port resets connections.
while True:
    try:
        first_publish()
        break
    except OSError:
        time.sleep(0.1)
EOF
}

times=()
for run in $(seq "$runs"); do
  start=$(date +%s.%N)
  first_result "$port" >"$tmp/sub.out" 2>&1 &
  sub=$!
  "$rivulet" deploy -f "$tmp/rivulet.toml" >"$tmp/deploy.out"
  # The simulator retries until the broker's service is up.
  (
    until "$rivulet" simulate --mqtt "mqtt://127.0.0.1:$port" --mqtt-v311 --sensors 100 --rate 1000 \
      --count 60000 >/dev/null 2>&1; do sleep 0.2; done
  ) &
  sim=$!
  if ! timeout 180 tail --pid="$sub" -f /dev/null; then
    log "no result within 180 s"; "$rivulet" logs -f "$tmp/rivulet.toml" --tail 20 >&2; exit 1
  fi
  wait "$sub" || { cat "$tmp/sub.out" >&2; exit 1; }
  end=$(date +%s.%N)
  t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  times+=("$t")
  log "run $run: first result $t s after rivulet deploy"
  if [[ $run == "$runs" ]]; then
    pkill -P "$sim" 2>/dev/null || true
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
    sim=
    log "readings stopped; idle for 20 s"
    sleep 20
    echo "idle memory of each container, 20 s after the readings stopped (run $run):"
    for c in $(docker ps -q --filter "label=com.docker.stack.namespace=$job"); do
      name=$(docker inspect --format '{{index .Config.Labels "com.docker.swarm.service.name"}}' "$c")
      id=$(docker inspect --format '{{.Id}}' "$c")
      stat=/sys/fs/cgroup/memory/docker/$id/memory.stat
      [[ -r $stat ]] || stat=$(find /sys/fs/cgroup -path "*$id*" -name memory.stat 2>/dev/null | head -1)
      rss=$(awk '$1 == "rss" || $1 == "anon" { printf "%.1f MiB", $2 / 1048576; exit }' "$stat" 2>/dev/null || echo n/a)
      usage=$(docker stats --no-stream --format '{{.MemUsage}}' "$c")
      printf '  %-24s rss %-10s docker stats %s\n' "${name#"$job"_}" "$rss" "$usage"
    done
  else
    kill "$sim" 2>/dev/null || true
    pkill -P "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
    sim=
  fi
  "$rivulet" down --purge -f "$tmp/rivulet.toml" >/dev/null
  # The volumes go once their containers have.
  for _ in $(seq 120); do
    [[ -z $(docker ps -aq --filter "label=com.docker.stack.namespace=$job") ]] && break
    sleep 0.5
  done
  for v in $(docker volume ls -q --filter "name=${job}_"); do docker volume rm "$v" >/dev/null 2>&1 || true; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -g)
median=$(printf '%s\n' "$sorted" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "rivulet deploy -> first result on MQTT: median ${median} s of $runs runs (min $(head -1 <<<"$sorted") s, max $(tail -1 <<<"$sorted") s)"
echo "image sizes (docker image inspect --format {{.Size}}):"
for i in "${images[@]}"; do
  size=$(docker image inspect --format '{{.Size}}' "$i")
  printf '  %-28s %s bytes (%.1f MiB)\n' "$i" "$size" "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')"
done
