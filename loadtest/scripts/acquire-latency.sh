#!/usr/bin/env bash
# Acquire latency with 5 healthy masters, then with 1 of 5 SIGSTOPped, in one
# run, using redis-benchmark (Debian's redis-tools) against dev mode.
# Each request is LOCK.ACQUIRE on a random key of 1M with a 10 s TTL.
# Usage: loadtest/scripts/acquire-latency.sh [requests] [clients]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20000}
C=${2:-16}
PORT=${PORT:-16380}
ADMIN=${ADMIN:-19380}
cargo build --release -q -p lockgate
./target/release/lockgate dev --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN > /tmp/lockgate-bench.log 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null' EXIT
for _ in $(seq 50); do redis-cli -p $PORT PING >/dev/null 2>&1 && break; sleep 0.2; done
sleep 0.5
bench() {
  redis-benchmark -p $PORT -n "$N" -c "$C" -r 1000000 --csv \
    LOCK.ACQUIRE "bench:__rand_int__" 10000 2>/dev/null | tail -1
}
echo "machine: $(nproc) cores, $(uname -m), $(redis-server --version | awk '{print $3}')"
echo 'columns: "test","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms"'
echo "healthy (5 of 5):"
bench
VICTIM=$(redis-cli -p $PORT INFO lockgate | awk -F'[=:,]' '/^master0:/ {print $4}')
PID=$(pgrep -f "redis-server.*[:]$VICTIM( |$)" | awk "NR==1")
kill -STOP "$PID"
echo "1 of 5 SIGSTOPped (port $VICTIM):"
bench
kill -CONT "$PID"
