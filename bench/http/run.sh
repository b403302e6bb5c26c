#!/usr/bin/env bash
# HTTP benchmark: tomodachi-rs (through the facade, production defaults) against bare axum
# with the same handlers and against Python tomodachi, in one run.
#
#   bash bench/http/run.sh [seconds per case, default 10] [runs, default 3]
#
# Servers (all on 127.0.0.1, release builds):
#   tomodachi  bench_http_tomodachi --production --logger json, stderr (JSON log records,
#              access log on) appended to a file; keep-alive mode sets
#              TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=5
#   axum       bench_http_axum: axum::serve, same handlers, no logging
#   axum+headers  the same with tomodachi's keep-alive response headers (Server,
#              Connection, Keep-Alive; keep-alive mode only): the cost of that wire
#              behaviour alone (not in the default list)
#   axum+trace bench_http_axum_trace: what an axum user writes for the same job: the
#              three headers plus tower-http's TraceLayer (span per request, one JSON
#              record per response at info level, tracing-subscriber's JSON formatter,
#              tracing-appender's non-blocking writer), stderr appended to a file
#              (keep-alive mode only; not in the default list)
#   tomodachi-nolog  tomodachi with TOMODACHI_HTTP_ACCESS_LOG=false (keep-alive mode
#              only; not in the default list)
#   python     tomodachi run --production --logger json python_service.py, stderr to a file;
#              keep-alive mode sets keepalive_timeout=5
# Modes: close (wrk -H "Connection: close": one request per connection, tomodachi's
# default) and keep-alive (wrk's default). Paths: GET /hello, POST /echo (1 KB JSON).
# wrk -t2 -c50 for each case. Run r starts the server list at its r-th server (the order
# rotates: on 2 shared cores a server's place in the sequence moved its figures by up to
# 20 % in repeated A/B runs). Each server is started fresh for every (run, mode); the
# startup time is exec to the first 200 of GET /hello, idle RSS is read 1 s after that,
# peak RSS (VmHWM) after the load. The tables show the median over the runs, and the
# ratio to axum's median of the same run.
#
# Needs wrk (apt-get install wrk), curl, python3, and the venv
# ~/.cache/tomodachi-rs/venv-tomodachi (tomodachi 0.29; scripts/test-env.sh makes it).
# Raw samples go to $BENCH_OUT (default /tmp/bench-http), one TSV line per case and run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
duration=${1:-10}
runs=${2:-3}
cache=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
target=${CARGO_TARGET_DIR:-$root/target}
venv=${TOMODACHI_VENV:-$cache/venv-tomodachi}
out=${BENCH_OUT:-/tmp/bench-http}
servers=${BENCH_SERVERS:-"tomodachi axum python"}
port=19801

if ! command -v wrk > /dev/null; then
  echo "installing wrk" >&2
  apt-get install -y -q wrk > /dev/null || { apt-get update -q > /dev/null && apt-get install -y -q wrk > /dev/null; }
fi
[[ "$servers" != *python* ]] || [ -x "$venv/bin/tomodachi" ] || { echo "no Python tomodachi at $venv" >&2; exit 1; }

bins=(--bin bench_http_tomodachi --bin bench_http_axum --bin bench_http_axum_trace)
[[ "$servers" != *otel* ]] || bins+=(--bin bench_http_tomodachi_otel)
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p tomodachi-bench "${bins[@]}")
bin=$target/release

mkdir -p "$out"
rm -f "$out"/*.log "$out/samples.tsv"
python3 - > "$out/body.json" << 'PY'
import json
items = [{"id": i, "name": "sheep-%04d" % i, "counted": i % 2 == 0} for i in range(40)]
body = json.dumps({"flock": "bench", "items": items})
# Exactly 1024 bytes of valid JSON: trim items, pad the name.
while len(body) > 1024:
    items.pop()
    body = json.dumps({"flock": "bench", "items": items})
body = json.dumps({"flock": "bench" + "x" * (1024 - len(body)), "items": items})
assert len(body) == 1024, len(body)
print(body, end="")
PY
cat > "$out/report.lua" << 'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors, summary.requests))
end
LUA
{
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  echo "local f = io.open(\"$out/body.json\", \"rb\"); wrk.body = f:read(\"*a\"); f:close()"
  cat "$out/report.lua"
} > "$out/post.lua"

now_ns() { date +%s%N; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
stop() {
  kill -TERM "$1" 2> /dev/null || true
  for _ in $(seq 1 200); do kill -0 "$1" 2> /dev/null || { wait "$1" 2> /dev/null || true; return 0; }; sleep 0.05; done
  kill -KILL "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

# start SERVER MODE LOG: starts the server in the background, sets $pid.
start() {
  local server=$1 mode=$2 log=$3 keepalive=0
  [ "$mode" = keep-alive ] && keepalive=5
  case $server in
    tomodachi)
      TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=$keepalive \
        "$bin/bench_http_tomodachi" --production --logger json > /dev/null 2>> "$log" &
      ;;
    tomodachi-nolog) # BENCH_SERVERS="tomodachi tomodachi-nolog axum+trace axum": access log off
      TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=$keepalive \
        TOMODACHI_HTTP_ACCESS_LOG=false "$bin/bench_http_tomodachi" --production --logger json > /dev/null 2>> "$log" &
      ;;
    axum+trace) "$bin/bench_http_axum_trace" "$port" > /dev/null 2>> "$log" & ;;
    tomodachi+otel) # BENCH_SERVERS="tomodachi tomodachi+otel axum": spans and metrics on
      TOMODACHI_HTTP_HOST=127.0.0.1 TOMODACHI_HTTP_PORT=$port TOMODACHI_HTTP_KEEPALIVE_TIMEOUT=$keepalive \
        "$bin/bench_http_tomodachi_otel" --production --logger json > /dev/null 2>> "$log" &
      ;;
    axum) "$bin/bench_http_axum" "$port" > /dev/null 2>> "$log" & ;;
    axum+headers) # BENCH_SERVERS="tomodachi axum+headers axum": tomodachi's 3 response headers
      BENCH_TOMODACHI_HEADERS=1 "$bin/bench_http_axum" "$port" > /dev/null 2>> "$log" &
      ;;
    python)
      # tomodachi resolves the service file against the working directory.
      (cd "$here" && PORT=$port KEEPALIVE=$keepalive exec "$venv/bin/tomodachi" run --production \
        --logger json python_service.py > /dev/null 2>> "$log") &
      ;;
  esac
  pid=$!
}

printf 'run\tserver\tmode\tpath\treq_s\tp50_ms\tp99_ms\terrors\trequests\tstartup_ms\tidle_kb\tpeak_kb\n' > "$out/samples.tsv"
read -r -a server_list <<< "$servers"
for run in $(seq 1 "$runs"); do
  shift_by=$(((run - 1) % ${#server_list[@]}))
  rotated=("${server_list[@]:shift_by}" "${server_list[@]:0:shift_by}")
  for mode in close keep-alive; do
    for server in "${rotated[@]}"; do
      # Keep-alive only: the headers of axum+headers and axum+trace are those of a
      # keep-alive response; tomodachi-nolog is the keep-alive target's variant.
      case $server in axum+headers | axum+trace | tomodachi-nolog) [ "$mode" = close ] && continue ;; esac
      port=$((port + 1))
      log="$out/$server-$mode-$run.log"
      t0=$(now_ns)
      start "$server" "$mode" "$log"
      ok=0
      for _ in $(seq 1 4000); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/hello"; then ok=1; break; fi
        kill -0 "$pid" 2> /dev/null || break
      done
      startup_ms=$((($(now_ns) - t0) / 1000000))
      if [ "$ok" != 1 ]; then
        echo "$server did not answer; see $log" >&2
        stop "$pid"
        exit 1
      fi
      sleep 1
      idle=$(rss_kb "$pid")
      headers=()
      [ "$mode" = close ] && headers=(-H "Connection: close")
      for path in /hello /echo; do
        script="$out/report.lua"
        [ "$path" = /echo ] && script="$out/post.lua"
        read -r rps p50 p99 errors requests < <(wrk -t2 -c50 -d"${duration}s" "${headers[@]}" -s "$script" \
          "http://127.0.0.1:$port$path" | awk '/^RESULT/ {print $2, $3, $4, $5, $6}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$server" "$mode" "$path" \
          "$rps" "$p50" "$p99" "$errors" "$requests" "$startup_ms" "$idle" "$(hwm_kb "$pid")" >> "$out/samples.tsv"
        printf '%s %-15s %-10s %-6s %8s req/s  p50 %7s ms  p99 %7s ms  errors %s\n' "$run" "$server" "$mode" "$path" \
          "$rps" "$p50" "$p99" "$errors" >&2
      done
      stop "$pid"
    done
  done
done

# Access-log records written vs requests wrk completed (the first curl adds one).
for server in tomodachi python; do
  [[ " $servers " == *" $server "* ]] || continue
  logs=("$out/$server"-close-*.log "$out/$server"-keep-alive-*.log)
  logged=$(cat "${logs[@]}" 2> /dev/null | grep -c '"logger": "tomodachi.http.response"' || true)
  served=$(awk -F'\t' -v s="$server" '$2 == s {n += $9} END {print n}' "$out/samples.tsv")
  terminated=$(cat "${logs[@]}" 2> /dev/null | grep -c '"message": "terminated service"' || true)
  echo "$server: $logged access-log records for $served requests completed by wrk (+ $((runs * 2)) probes, + requests in flight at wrk's end); 'terminated service' in $terminated of $((runs * 2)) logs" >&2
done

python3 - "$out/samples.tsv" << 'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(values):
    return statistics.median(values)
cases = {}
for r in rows:
    cases.setdefault((r["server"], r["mode"], r["path"]), []).append(r)
baseline = {}
for r in rows:
    if r["server"] == "axum":
        baseline[(r["run"], r["mode"], r["path"])] = float(r["req_s"])
order = [s for s in ("tomodachi", "tomodachi-nolog", "tomodachi+otel", "axum+trace", "axum+headers", "axum", "python") if any(k[0] == s for k in cases)]
print("| server | mode | path | req/s | × axum | p50 ms | p99 ms | errors | startup ms | idle RSS MB | peak RSS MB |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode in ("close", "keep-alive"):
    for path in ("/hello", "/echo"):
        for server in order:
            samples = cases.get((server, mode, path))
            if not samples:
                continue
            ratios = [float(r["req_s"]) / baseline[(r["run"], mode, path)]
                      for r in samples if (r["run"], mode, path) in baseline]
            ratio = "%.2f" % med(ratios) if ratios else "-"
            print("| %s | %s | %s | %.0f | %s | %.2f | %.2f | %d | %.0f | %.1f | %.1f |" % (
                server, mode, path,
                med([float(r["req_s"]) for r in samples]), ratio,
                med([float(r["p50_ms"]) for r in samples]),
                med([float(r["p99_ms"]) for r in samples]),
                sum(int(r["errors"]) for r in samples),
                med([float(r["startup_ms"]) for r in samples]),
                med([float(r["idle_kb"]) for r in samples]) / 1024,
                med([float(r["peak_kb"]) for r in samples]) / 1024))
# The targets of issue 18, keep-alive: per-run ratios (paired within each run), median.
def paired(server, anchor, mode, path):
    base = {r["run"]: float(r["req_s"]) for r in rows
            if r["server"] == anchor and r["mode"] == mode and r["path"] == path}
    return [float(r["req_s"]) / base[r["run"]] for r in rows
            if r["server"] == server and r["mode"] == mode and r["path"] == path and r["run"] in base]
targets = [("tomodachi", "axum+trace", "keep-alive", 1.3), ("tomodachi-nolog", "axum", "keep-alive", 0.9),
           ("tomodachi", "axum", "close", 1.0)]
lines = []
for server, anchor, mode, goal in targets:
    for path in ("/hello", "/echo"):
        ratios = paired(server, anchor, mode, path)
        if ratios:
            lines.append("| %s / %s | %s | %s | %.2f (%s) | ≥ %.1f | %s |" % (
                server, anchor, mode, path, med(ratios), ", ".join("%.2f" % r for r in ratios), goal,
                "✓" if med(ratios) >= goal else "✗"))
if lines:
    print("\n| ratio | mode | path | median (per run) | target | |")
    print("|---|---|---|---:|---:|---|")
    print("\n".join(lines))
# Instrumented against plain tomodachi, paired within each run.
plain = {(r["run"], r["mode"], r["path"]): float(r["req_s"]) for r in rows if r["server"] == "tomodachi"}
otel = [r for r in rows if r["server"] == "tomodachi+otel" and (r["run"], r["mode"], r["path"]) in plain]
if otel:
    print("\n| mode | path | tomodachi+otel / tomodachi (median of runs, target ≥ 0.85) |")
    print("|---|---|---:|")
    for mode in ("close", "keep-alive"):
        for path in ("/hello", "/echo"):
            ratios = [float(r["req_s"]) / plain[(r["run"], mode, path)] for r in otel if r["mode"] == mode and r["path"] == path]
            if ratios:
                print("| %s | %s | %.2f |" % (mode, path, med(ratios)))
PY
