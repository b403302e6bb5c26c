#!/usr/bin/env bash
# Server CPU time per HTTP request, tomodachi against the same server instrumented
# (bench_http_tomodachi vs bench_http_tomodachi_otel), keep-alive, paired round by round.
# CPU time (utime + stime of the server process) moves far less with the machine's load
# than requests per second do.
#
#   bash bench/otel_http_cpu.sh [rounds, default 3] [seconds per case, default 5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
duration=${2:-5}
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p tomodachi-bench \
  --bin bench_http_tomodachi --bin bench_http_tomodachi_otel)
bin=$target/release
out=$(mktemp -d)
port=19901
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cat > "$out/report.lua" << 'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d\n", summary.requests))
end
LUA
{
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  echo 'wrk.body = "{\"data\": \"" .. string.rep("x", 1000) .. "\"}"'
  cat "$out/report.lua"
} > "$out/post.lua"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| round | path | tomodachi µs/req | instrumented µs/req | ratio (CPU) |\n|---|---|---:|---:|---:|\n'
for round in $(seq 1 "$rounds"); do
  for path in /hello /echo; do
    declare -A us=()
    for server in bench_http_tomodachi bench_http_tomodachi_otel; do
      port=$((port + 1))
      TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=5 \
        "$bin/$server" --production --logger json > /dev/null 2>> "$out/$server.log" &
      pid=$!
      trap 'kill "$pid" 2>/dev/null || true' EXIT
      until curl -sf -o /dev/null "http://127.0.0.1:$port/hello"; do kill -0 "$pid"; sleep 0.02; done
      script=$out/report.lua
      [ "$path" = /echo ] && script=$out/post.lua
      before=$(cpu_ticks "$pid")
      requests=$(wrk -t1 -c10 -d"${duration}s" -s "$script" "http://127.0.0.1:$port$path" | awk '/^RESULT/ {print $2}')
      after=$(cpu_ticks "$pid")
      kill -TERM "$pid"; wait "$pid" || true
      us[$server]=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$tck" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
    done
    printf '| %s | %s | %s | %s | %.2f |\n' "$round" "$path" "${us[bench_http_tomodachi]}" \
      "${us[bench_http_tomodachi_otel]}" "$(awk -v a="${us[bench_http_tomodachi]}" -v b="${us[bench_http_tomodachi_otel]}" 'BEGIN {print a / b}')"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$out"
