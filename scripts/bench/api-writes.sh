#!/usr/bin/env bash
# Measures API report writes per second on the local server (SQLite), on loopback,
# with wrk (Debian package). Prints writes/s and latency percentiles.
#   scripts/bench/api-writes.sh [duration, default 10s] [connections, default 16]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10s}
connections=${2:-16}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p decompte
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
bin=target/release/decompte
# Each mairie declares with its own code (a prefecture's would need its second factor).
$bin --data-dir "$work/data" credentials issue --role commune --every-commune --json \
  | python3 -c 'import json,sys; [print(c["commune"], c["access_code"]) for c in map(json.loads, sys.stdin)]' > "$work/communes.txt"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn $bin --data-dir "$work/data" --publish-every 3600 --old-day-after 0 serve --listen "127.0.0.1:$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
DECOMPTE_BENCH_COMMUNES="$work/communes.txt" DECOMPTE_BENCH_THREADS=2 \
  wrk -t2 -c"$connections" -d"$duration" --latency -s scripts/bench/post-report.lua "http://127.0.0.1:$port"
echo "reports stored: $($bin --data-dir "$work/data" export 2>/dev/null | tail -n +2 | wc -l) (one CSV row each)"
