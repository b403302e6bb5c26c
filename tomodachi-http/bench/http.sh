#!/usr/bin/env bash
# Compares tomodachi-http (production defaults: access log on, JSON records to a file) with
# bare axum serving the same handlers: GET /hello and POST /echo (1 KB JSON), without
# keep-alive (tomodachi's default, `Connection: close` per request) and with keep-alive.
# Reports req/s, p50, p99, idle and peak RSS, and launch-to-first-200 time.
#
# Usage: bash tomodachi-http/bench/http.sh [seconds per run, default 10]
# Needs `wrk` (Debian package) and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p tomodachi-http --example bench_server
BIN="$TARGET/release/examples/bench_server"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - > "$WORK/body.json" <<'PY'
import json
print(json.dumps({"items": [{"id": i, "name": "sheep-%04d" % i} for i in range(40)]})[:1024], end="")
PY
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
cat > "$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA
cat "$WORK/report.lua" >> "$WORK/post.lua"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

printf "%-22s %-6s %-10s %10s %9s %9s %7s %9s %9s %10s\n" server path connection "req/s" "p50 ms" "p99 ms" errors "idle KB" "peak KB" "first 200"
PORT=19800
for mode in tomodachi tomodachi-keepalive axum; do
  for connection in close keep-alive; do
    [[ "$mode" == "tomodachi" && "$connection" == "keep-alive" ]] && continue
    [[ "$mode" == "tomodachi-keepalive" && "$connection" == "close" ]] && continue
    PORT=$((PORT + 1))
    start=$(date +%s%N)
    "$BIN" "$mode" "$PORT" "$WORK/$mode.log" & pid=$!
    until curl -sf "http://127.0.0.1:$PORT/hello" > /dev/null; do :; done
    first=$(( ($(date +%s%N) - start) / 1000000 ))
    idle=$(rss_kb "$pid")
    headers=()
    [[ "$connection" == "close" ]] && headers=(-H "Connection: close")
    for path in /hello /echo; do
      script="$WORK/report.lua"; [[ "$path" == /echo ]] && script="$WORK/post.lua"
      result=$(wrk -t2 -c50 -d"${DURATION}s" "${headers[@]}" -s "$script" "http://127.0.0.1:$PORT$path" | awk '/^RESULT/ {print $2, $3, $4, $5}')
      read -r rps p50 p99 errors <<< "$result"
      printf "%-22s %-6s %-10s %10s %9s %9s %7s %9s %9s %8sms\n" "$mode" "$path" "$connection" "$rps" "$p50" "$p99" "$errors" "$idle" "$(hwm_kb "$pid")" "$first"
    done
    kill -TERM "$pid"; wait "$pid" 2> /dev/null || true
  done
done
