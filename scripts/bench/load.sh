#!/usr/bin/env bash
# The load test: 1,000 writes/s by default, ten times a national peak (every
# commune of France declaring within six minutes is about 100 a second),
# against `decompte serve` on SQLite, on loopback, for 5 minutes, while the
# same address sends failed logins (wrong codes) at about 200/s; then, still
# under that load, a mairie behind that address logs in with its right code.
# Prints the writes' rate, latency percentiles and 5xx count, the failed
# logins' answers, and the mairie's status. Needs wrk (Debian package).
#   scripts/bench/load.sh [duration, default 5m] [writes/s, default 1000]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-5m}
rate=${2:-1000}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p decompte
work=$(mktemp -d)
trap 'kill $server $attack 2>/dev/null || true; rm -rf "$work"' EXIT
bin=target/release/decompte
issue() { $bin --data-dir "$work/data" credentials issue --json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_code"])'; }
# Each mairie declares with its own code (a prefecture's would need its second factor).
$bin --data-dir "$work/data" credentials issue --role commune --every-commune --json \
  | python3 -c 'import json,sys; [print(c["commune"], c["access_code"]) for c in map(json.loads, sys.stdin)]' > "$work/communes.txt"
mairie=$(issue --role commune --commune 56260)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn $bin --data-dir "$work/data" --publish-every 3600 --old-day-after 0 serve --listen "127.0.0.1:$port" >/dev/null 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# 32 connections, each pausing so that together they send about $rate a second.
connections=32
delay_ms=$(( connections * 1000 / rate ))
# The attacker: wrong codes of the same commune, 4 connections pausing 20 ms.
cat > "$work/attack.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function delay() return 20 end
wrk.headers["Authorization"] = "Bearer 56260-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do all[status] = (all[status] or 0) + n end
  end
  local text = ""
  for status, n in pairs(all) do text = text .. string.format(" %d×%d", n, status) end
  io.write(string.format("failed logins: %d sent (%.0f/s), answers:%s\n",
    summary.requests, summary.requests / (summary.duration / 1e6), text))
end
LUA
wrk -t1 -c4 -d"$duration" -s "$work/attack.lua" "http://127.0.0.1:$port/api/v1/me" > "$work/attack.txt" &
attack=$!
( sleep 30
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $mairie" "http://127.0.0.1:$port/api/v1/me")
  echo "the mairie's right code, from the attacking address, 30 s into the attack: $status" > "$work/mairie.txt" ) &
echo "writes: $rate/s asked ($connections connections, ${delay_ms} ms between requests on each), for $duration"
DECOMPTE_BENCH_COMMUNES="$work/communes.txt" DECOMPTE_BENCH_THREADS=2 \
  DECOMPTE_BENCH_DELAY_MS=$delay_ms \
  wrk -t2 -c$connections -d"$duration" --latency -s scripts/bench/post-report.lua "http://127.0.0.1:$port"
wait $attack || true
cat "$work/attack.txt" "$work/mairie.txt"
echo "reports stored: $(( $($bin --data-dir "$work/data" export 2>/dev/null | tail -n +2 | wc -l) ))"
