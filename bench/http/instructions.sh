#!/usr/bin/env bash
# Server instructions per keep-alive request, independent of machine load: each server of
# run.sh runs under `valgrind --tool=callgrind`; a client sends N requests on one
# keep-alive connection, and the count with 1 request is subtracted:
#
#   bash bench/http/instructions.sh [N, default 2000] [servers, default "tomodachi axum"]
#
# Servers: tomodachi, tomodachi-nolog (TOMODACHI_HTTP_ACCESS_LOG=false), axum, axum+trace
# (bench_http_axum_trace: tower-http's TraceLayer, JSON records, non-blocking writer, the
# three headers), tomodachi+otel (bench_http_tomodachi_otel: the same
# service with traces and metrics on, spans batch-exported to a sink that drops them) and
# axum+headers (bare axum adding tomodachi's Server/Connection/Keep-Alive headers).
#
# MODE=close sends each request on a new connection with `Connection: close` (tomodachi's
# default mode; servers get keepalive timeout 0 then), MODE=keep-alive (the default) all on one.
#
# Prints, per server and path (GET /hello, POST /echo with 1 KB of JSON), the server's
# instructions per request (all threads). Needs valgrind and python3; the callgrind
# profiles stay in $BENCH_OUT (default /tmp/bench-http-ir) for callgrind_annotate.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-2000}
servers=${2:-"tomodachi axum"}
target=${CARGO_TARGET_DIR:-$root/target}
out=${BENCH_OUT:-/tmp/bench-http-ir}
port=19901
mkdir -p "$out"
bins=(--bin bench_http_tomodachi --bin bench_http_axum --bin bench_http_axum_trace)
[[ "$servers" != *otel* ]] || bins+=(--bin bench_http_tomodachi_otel)
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p tomodachi-bench "${bins[@]}")
bin=$target/release

cat > "$out/client.py" << 'PY'
import http.client, json, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
items = [{"id": i, "name": "sheep-%04d" % i, "counted": i % 2 == 0} for i in range(40)]
body = json.dumps({"flock": "bench", "items": items})
while len(body) > 1024:
    items.pop()
    body = json.dumps({"flock": "bench", "items": items})
body = json.dumps({"flock": "bench" + "x" * (1024 - len(body)), "items": items}).encode()
close = len(sys.argv) > 4 and sys.argv[4] == "close"
headers = {"Connection": "close"} if close else {}
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    if close:
        conn = http.client.HTTPConnection("127.0.0.1", port)
    if path == "/echo":
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    else:
        conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    if close:
        conn.close()
PY

# measure SERVER PATH COUNT: prints the server's total instructions.
measure() {
  local server=$1 path=$2 count=$3 profile keepalive=5
  [ "${MODE:-keep-alive}" = close ] && keepalive=0
  port=$((port + 1))
  profile="$out/callgrind.${server//[+-]/_}.${MODE:-keep-alive}.${path#/}.$count"
  local cmd=(valgrind --tool=callgrind -q --callgrind-out-file="$profile")
  case $server in
    tomodachi | tomodachi-nolog | tomodachi+otel)
      local example=bench_http_tomodachi access_log=true
      [ "$server" = tomodachi+otel ] && example=bench_http_tomodachi_otel
      [ "$server" = tomodachi-nolog ] && access_log=false
      TOMODACHI_HTTP_ACCESS_LOG=$access_log TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=$keepalive \
        "${cmd[@]}" "$bin/$example" --production --logger "${LOGGER:-json}" \
        > /dev/null 2>> "$out/${server//[+-]/_}.log" &
      ;;
    axum) "${cmd[@]}" "$bin/bench_http_axum" "$port" > /dev/null 2>> "$out/$server.log" & ;;
    axum+trace) "${cmd[@]}" "$bin/bench_http_axum_trace" "$port" > /dev/null 2>> "$out/axum_trace.log" & ;;
    axum+headers)
      BENCH_TOMODACHI_HEADERS=1 "${cmd[@]}" "$bin/bench_http_axum" "$port" > /dev/null 2>> "$out/axum_headers.log" &
      ;;
  esac
  local pid=$!
  for _ in $(seq 1 600); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2> /dev/null && break
    sleep 0.1
  done
  python3 "$out/client.py" "$port" "$path" "$count" "${MODE:-keep-alive}"
  kill -TERM "$pid"
  wait "$pid" 2> /dev/null || true
  awk '/^summary:/ {print $2}' "$profile"
}

for server in $servers; do
  for path in /hello /echo; do
    one=$(measure "$server" "$path" 1)
    many=$(measure "$server" "$path" "$((n + 1))")
    printf '%-16s %-6s %8d instructions/request\n' "$server" "$path" "$(((many - one) / n))"
  done
done
