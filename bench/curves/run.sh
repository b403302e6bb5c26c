#!/usr/bin/env bash
# Cost curves (issue 18 item 4): how the cost of tomodachi-rs grows with the work.
#
#   bash bench/curves/run.sh build            # release build, niced (do this outside the lock)
#   flock /work/helpers/bench.lock bash bench/curves/run.sh rss       # ≈ 2 min
#   flock /work/helpers/bench.lock bash bench/curves/run.sh cpu       # ≈ 2 min
#   flock /work/helpers/bench.lock bash bench/curves/run.sh envelope  # ≈ 1 min
#   flock /work/helpers/bench.lock bash bench/curves/run.sh consume   # ≈ 3 min
#   bash bench/curves/run.sh plot             # PNGs and tables from $BENCH_OUT
# (several parts in one call run one after the other)
#
# rss       bench_curves_server (tomodachi: production defaults, JSON access log to a file,
#           keep-alive on with TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=300; axum: axum::serve, same
#           handlers), started fresh for every point. After its first GET /hello and 1 s,
#           VmRSS is read; then `bench_curves hold <http|ws> N` opens N keep-alive
#           connections (each has served one GET /hello) or N WebSockets (each has echoed one
#           text frame) and holds them idle; 2 s after the last one is open VmRSS is read
#           again. Bytes per connection = (RSS with N - RSS before) / N, same process.
# cpu       the same servers, keep-alive: `bench_curves post` sends a fixed number of
#           POST /echo requests with a JSON body of 1 KB / 64 KB / 1 MB over 4 connections;
#           server CPU = utime + stime from /proc/<pid>/stat (clock ticks) across them.
# envelope  `bench_curves envelope <bytes>`: seal and open of tomodachi-core's JsonEnvelope
#           (zlib + base64 from 60 000 characters of data) against serde_json alone.
# consume   `bench_curves consume <amqp|sqs> <concurrency> <n>` with a handler that sleeps
#           10 ms: RabbitMQ on 127.0.0.1:5672; SQS against moto served by waitress, which
#           keeps connections open as AWS does (bench/sqs/moto_keepalive.py on port
#           $CURVES_SQS_PORT, default 4571, started and stopped here; its venv is
#           bench/sqs's). CURVES_SQS_MOTO=shared uses $TOMODACHI_TEST_MOTO_URL instead
#           (moto's own server, a new TCP connection per call).
#
# Every step is bounded by `timeout`; loopback only. Raw results: $BENCH_OUT (default
# /tmp/bench-curves), one JSON line per point in <part>.jsonl, with the load average.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
target=${CARGO_TARGET_DIR:-$root/target}
bin=${CURVES_BIN:-$target/release}
out=${BENCH_OUT:-/tmp/bench-curves}
venv=${CURVES_VENV:-$cache/venv-plot}
port=19811
mkdir -p "$out"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Waits (≤ 10 s) until GET /hello answers 200 on $port.
wait_up() {
  local i
  for i in $(seq 1 100); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/hello"; then return 0; fi
    sleep 0.1
  done
  echo "server on $port did not come up" >&2
  return 1
}

# Starts server $1 (tomodachi | axum) in the background; sets $server_pid.
start_server() {
  if [ "$1" = tomodachi ]; then
    TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=300 \
      timeout 300 "$bin/bench_curves_server" tomodachi --production --logger json \
      2>> "$out/tomodachi-access.log" &
  else
    timeout 300 "$bin/bench_curves_server" axum "$port" 2>> "$out/axum.log" &
  fi
  server_pid=$!
  wait_up
  # `timeout` is the parent: measure the server itself, its only child.
  local child
  child=$(pgrep -P "$server_pid" | head -n1)
  server_proc=${child:-$server_pid}
}

stop_server() {
  kill "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
}

[ $# -gt 0 ] || set -- usage
for part in "$@"; do
case "$part" in
build)
  cd "$root"
  CARGO_TARGET_DIR=$target nice -n 19 cargo build --release -j 2 -q -p tomodachi-bench \
    --features sqs --bin bench_curves --bin bench_curves_server
  ;;

rss)
  ulimit -n "$(ulimit -Hn)"
  echo "open files: client $(ulimit -n)" >&2
  : > "$out/rss.jsonl"
  for server in tomodachi axum; do
    for kind in http ws; do
      if [ "$kind" = http ]; then counts="0 1000 5000 10000"; else counts="0 1000 5000"; fi
      for n in $counts; do
        load_before=$(loadavg)
        start_server "$server"
        limit=$(awk '/Max open files/ {print $4}' "/proc/$server_proc/limits")
        sleep 1
        before=$(rss_kb "$server_proc")
        after=$before
        opened=0
        if [ "$n" -gt 0 ]; then
          timeout 120 "$bin/bench_curves" hold "$kind" "$port" "$n" 60 > "$out/hold.out" &
          client=$!
          for _ in $(seq 1 600); do
            grep -q held "$out/hold.out" 2> /dev/null && break
            kill -0 "$client" 2> /dev/null || break
            sleep 0.1
          done
          grep -q held "$out/hold.out" || { echo "client failed: $server $kind $n" >&2; stop_server; exit 1; }
          opened=$(sed -n 's/.*"open_seconds":\([0-9.]*\).*/\1/p' "$out/hold.out")
          sleep 2
          after=$(rss_kb "$server_proc")
          kill "$client" 2> /dev/null || true
          wait "$client" 2> /dev/null || true
        fi
        stop_server
        printf '{"server":"%s","kind":"%s","connections":%d,"rss_before_kb":%d,"rss_kb":%d,"open_seconds":%s,"server_nofile":"%s","load_before":"%s","load_after":"%s"}\n' \
          "$server" "$kind" "$n" "$before" "$after" "${opened:-0}" "$limit" "$load_before" "$(loadavg)" \
          | tee -a "$out/rss.jsonl"
        sleep 1
      done
    done
  done
  ;;

cpu)
  ulimit -n "$(ulimit -Hn)"
  tck=$(getconf CLK_TCK)
  : > "$out/cpu.jsonl"
  for run in 1 2; do
    for server in tomodachi axum; do
      start_server "$server"
      # Warm-up: connections, buffers, the allocator's arenas.
      timeout 60 "$bin/bench_curves" post "$port" 65536 400 4 > /dev/null
      for spec in 1024:20000 65536:3000 1048576:200; do
        bytes=${spec%%:*} requests=${spec##*:}
        load_before=$(loadavg)
        t0=$(cpu_ticks "$server_proc")
        line=$(timeout 120 "$bin/bench_curves" post "$port" "$bytes" "$requests" 4)
        t1=$(cpu_ticks "$server_proc")
        echo "$line" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
r.update(server='$server', run=$run, cpu_ticks=$t1 - $t0, clk_tck=$tck,
         cpu_us_per_request=($t1 - $t0) * 1e6 / $tck / r['requests'],
         load_before='$load_before', load_after='$(loadavg)')
print(json.dumps(r))" | tee -a "$out/cpu.jsonl"
      done
      stop_server
    done
  done
  ;;

envelope)
  : > "$out/envelope.jsonl"
  for bytes in 1024 16384 57344 65536 262144 1048576; do
    load_before=$(loadavg)
    timeout 120 "$bin/bench_curves" envelope "$bytes" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
r.update(load_before='$load_before', load_after='$(loadavg)')
print(json.dumps(r))" | tee -a "$out/envelope.jsonl"
  done
  ;;

consume)
  : >> "$out/consume.jsonl"
  endpoint=shared
  case " ${CURVES_BROKERS:-amqp sqs} " in *" sqs "*)
    if [ "${CURVES_SQS_MOTO:-keepalive}" = keepalive ]; then
      # shellcheck source=bench/sqs/moto_keepalive.sh
      source "$root/bench/sqs/moto_keepalive.sh"
      trap 'kill "${moto_keepalive_pid:-}" 2>/dev/null || true' EXIT
      moto_keepalive_start "${CURVES_SQS_PORT:-4571}" "$out/moto-keepalive.log"
      moto_venv=$moto_keepalive_venv moto_url=$moto_keepalive_url
      export TOMODACHI_TEST_MOTO_URL=$moto_url
      endpoint=keepalive
    fi
  esac
  for broker in ${CURVES_BROKERS:-amqp sqs}; do
    for spec in 1:200 8:1000 64:6000 256:20000; do
      c=${spec%%:*} n=${spec##*:}
      # moto's ReceiveMessage slows with the queue's depth (≈ 0.5 s a call with 600
      # messages queued: bench/curves/moto_receive.py), which would bend the curve by
      # depth, not concurrency: the same 300 messages at every point.
      [ "$broker" = sqs ] && n=300
      load_before=$(loadavg)
      timeout 240 "$bin/bench_curves" consume "$broker" "$c" "$n" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
r.update(load_before='$load_before', load_after='$(loadavg)')
if r['broker'] == 'sqs':
    r['endpoint'] = '$endpoint'
print(json.dumps(r))" | tee -a "$out/consume.jsonl"
    done
  done
  if [ "$endpoint" = keepalive ]; then
    # What one ReceiveMessage costs moto against the queue's depth (same endpoint).
    timeout 600 "$moto_venv/bin/python" "$here/moto_receive.py" "$moto_url" 100 300 600 |
      tee "$out/moto-receive.txt"
  fi
  ;;

plot)
  if [ ! -x "$venv/bin/python" ]; then
    nice -n 19 python3 -m venv "$venv"
    nice -n 19 "$venv/bin/pip" install -q matplotlib
  fi
  "$venv/bin/python" "$here/plot.py" "$out" "$here"
  ;;

*)
  echo "usage: bash bench/curves/run.sh <build|rss|cpu|envelope|consume|plot>..." >&2
  exit 2
  ;;
esac
done
