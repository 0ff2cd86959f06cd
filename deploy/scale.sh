#!/usr/bin/env bash
# Throughput through a real HAProxy with 1, 2 and 3 gateways over the same
# 5 masters, all on loopback, in one run. Prints a Markdown table.
#
#   deploy/scale.sh [seconds per step, default 5] [workers, default 64]
#
# Needs redis-server, haproxy and python3; builds the release binaries.
# Every process it starts is stopped on exit. The load generator, HAProxy,
# the gateways and the masters all share this machine's cores: read the
# figures as "what this box does", not as what separate machines would do.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
workers=${2:-64}
connections=6   # divisible by 1, 2 and 3: roundrobin gives every gateway an equal share

cargo build --release -q -p lockgate -p lockgate-loadtest
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime of the given pids, in clock ticks.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

masters=(); master_pids=()
for i in 1 2 3 4 5; do
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --dbfilename "m$i.rdb" --logfile "$work/m$i.log" &
  pids+=($!); master_pids+=($!); masters+=("127.0.0.1:$port")
done
for m in "${masters[@]}"; do
  until redis-cli -p "${m##*:}" ping >/dev/null 2>&1; do sleep 0.05; done
done

gw_ports=(); gw_pids=()
for i in 1 2 3; do
  port=$(free_port); admin=$(free_port)
  args=(--listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --log-level warn)
  for m in "${masters[@]}"; do args+=(--master "$m"); done
  # Brand-new masters that this script just started: initialise at once.
  LOCKGATE_LOCK_BOOTSTRAP=immediate LOCKGATE_MASTER_TIMEOUT_MS=100 \
    "$bin/lockgate" "${args[@]}" >>"$work/gw$i.log" 2>&1 &
  pids+=($!); gw_pids+=($!); gw_ports+=("$port:$admin")
  until curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; do sleep 0.1; done
done

nproc_=$(nproc)
echo "scale: $nproc_ CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg) at start, 5 masters, $workers workers over $connections connections, ${secs} s per step, unique keys (no contention)"
echo
echo "| gateways | lock cycles/s | acquire p50 ms | acquire p99 ms | masters CPU | gateways CPU | HAProxy CPU |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in 1 2 3; do
  front=$(free_port)
  {
    printf 'global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n'
    printf 'frontend locks\n  bind 127.0.0.1:%s\n  default_backend gateways\n' "$front"
    printf 'backend gateways\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n'
    for ((i = 0; i < n; i++)); do
      pa=${gw_ports[$i]}
      printf '  server gw%d 127.0.0.1:%s check port %s inter 1s\n' "$i" "${pa%%:*}" "${pa##*:}"
    done
  } > "$work/haproxy$n.cfg"
  haproxy -db -f "$work/haproxy$n.cfg" 2>>"$work/haproxy.log" &
  hp=$!; pids+=("$hp")
  until redis-cli -p "$front" ping >/dev/null 2>&1; do sleep 0.05; done
  m0=$(ticks "${master_pids[@]}"); g0=$(ticks "${gw_pids[@]}"); h0=$(ticks "$hp")
  t0=$(date +%s.%N)
  "$bin/lockgate-loadtest" run --target "127.0.0.1:$front" --scenario unique \
    --workers "$workers" --connections "$connections" --warmup-ms 1000 \
    --duration-ms "$((secs * 1000))" --no-progress --json "$work/run$n.json" > "$work/run$n.txt"
  t1=$(date +%s.%N)
  m1=$(ticks "${master_pids[@]}"); g1=$(ticks "${gw_pids[@]}"); h1=$(ticks "$hp")
  kill "$hp"; wait "$hp" 2>/dev/null || true
  python3 - "$work/run$n.json" "$n" "$t0" "$t1" "$hz" "$m0" "$m1" "$g0" "$g1" "$h0" "$h1" <<'PY'
import json, sys
f, n, t0, t1, hz = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
m0, m1, g0, g1, h0, h1 = map(int, sys.argv[6:12])
r = json.load(open(f))
wall = t1 - t0
cores = lambda a, b: f"{(b - a) / hz / wall:.2f}"
s = r["safety"]
assert s["duplicate_tokens"] == 0 and s["backwards_tokens"] == 0, s
g = r["acquire_granted"]
print(f"| {n} | {r['cycle']['per_sec']:.0f} | {g['p50_ms']:.2f} | {g['p99_ms']:.2f} "
      f"| {cores(m0, m1)} | {cores(g0, g1)} | {cores(h0, h1)} |")
PY
done
echo
echo "CPU columns: cores busy on average over each step (warm-up included). The rest of the $nproc_ cores went to the load generator and to whatever else runs on this machine."
