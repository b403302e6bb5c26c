#!/usr/bin/env bash
# Server CPU time per keep-alive request under load: utime + stime of the server process
# (from /proc) over a `wrk -t2 -c50` run, divided by the requests wrk completed. Less
# sensitive to other load on the machine than req/s (the CPU a request costs the server
# hardly depends on how often it is scheduled).
#
#   bash bench/http/cpu.sh [seconds, default 4] [rounds, default 3] [servers, default "tomodachi axum"]
#
# Runs the servers (tomodachi: --production --logger json, as run.sh; tomodachi-nolog: the
# same with TOMODACHI_HTTP_ACCESS_LOG=false; axum; axum+trace, stderr to a file) one after
# the other, GET /hello and POST /echo, `rounds` times. Uses the release builds and the wrk scripts that
# run.sh leaves in $BENCH_OUT (default /tmp/bench-http): run run.sh first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-4}
rounds=${2:-3}
servers=${3:-"tomodachi axum"}
target=${CARGO_TARGET_DIR:-$root/target}
out=${BENCH_OUT:-/tmp/bench-http}
bin=$target/release
port=19951
[ -f "$out/post.lua" ] || { echo "no $out/post.lua: run bench/http/run.sh first" >&2; exit 1; }
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for path in /hello /echo; do
    for server in $servers; do
      port=$((port + 1))
      case $server in
        tomodachi)
          TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=5 \
            "$bin/bench_http_tomodachi" --production --logger "${LOGGER:-json}" > /dev/null 2>> "$out/cpu-$server.log" &
          ;;
        tomodachi-nolog)
          TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=5 TOMODACHI_HTTP_ACCESS_LOG=false \
            "$bin/bench_http_tomodachi" --production --logger "${LOGGER:-json}" > /dev/null 2>> "$out/cpu-$server.log" &
          ;;
        axum) "$bin/bench_http_axum" "$port" > /dev/null 2>&1 & ;;
        axum+trace) "$bin/bench_http_axum_trace" "$port" > /dev/null 2>> "$out/cpu-axum_trace.log" & ;;
      esac
      pid=$!
      trap 'kill "$pid" 2>/dev/null || true' EXIT
      for _ in $(seq 1 400); do curl -sf -o /dev/null "http://127.0.0.1:$port/hello" && break; sleep 0.05; done
      script="$out/report.lua"
      [ "$path" = /echo ] && script="$out/post.lua"
      before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      requests=$(wrk -t2 -c50 -d"${seconds}s" -s "$script" "http://127.0.0.1:$port$path" | awk '/^RESULT/ {print $6}')
      after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      kill -TERM "$pid"
      wait "$pid" 2> /dev/null || true
      awk -v r="$round" -v s="$server" -v p="$path" -v a="$before" -v b="$after" -v n="$requests" -v hz="$hz" \
        'BEGIN {printf "%s %-15s %-6s %8d requests %6.2f us CPU/request\n", r, s, p, n, (b - a) / hz * 1e6 / n}'
    done
  done
done
