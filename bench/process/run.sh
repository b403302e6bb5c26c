#!/usr/bin/env bash
# Startup time (exec to the first 200 of GET /sheep) and idle RSS of the quickstart,
# against Python tomodachi running the same service, in one run.
#
#   bash bench/process/run.sh [runs]
#
# Needs a release build of the quickstart (built here) and the tomodachi venv
# (scripts/test-env.sh makes it). Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-20}
cache=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
target=${CARGO_TARGET_DIR:-$cache/target}
python=${TOMODACHI_TEST_PYTHON:-$cache/venv-tomodachi/bin/python}
port=19731

(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -p tomodachi-examples --example quickstart -q)
rust_bin=$target/release/examples/quickstart

now_ms() { date +%s%3N; }

# Starts "$@" in the background, waits for the first 200, prints "<ms> <pid>".
start_and_time() {
  local start pid
  start=$(now_ms)
  "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 2000); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/sheep"; then
      echo "$(( $(now_ms) - start )) $pid"
      return 0
    fi
    sleep 0.005
  done
  kill -9 "$pid" 2>/dev/null || true
  echo "timeout $pid"
  return 1
}

stop() { kill -TERM "$1" 2>/dev/null || true; for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; kill -9 "$1" 2>/dev/null || true; }

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

measure() {
  local label=$1; shift
  local times=() rss=""
  for i in $(seq 1 "$runs"); do
    read -r ms pid < <(start_and_time "$@")
    times+=("$ms")
    if [ "$i" = 1 ]; then sleep 2; rss=$(rss_kb "$pid"); fi
    stop "$pid"
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | median)
  echo "| $label | $med | $(( rss / 1024 )).$(( (rss % 1024) * 10 / 1024 )) |"
}

echo "| service | startup to first 200, median of $runs (ms) | idle RSS (MB) |"
echo "|---|---|---|"
measure "tomodachi-rs quickstart (release, --production)" env TOMODACHI_HTTP_PORT=$port "$rust_bin" --production --logger disabled
# tomodachi resolves the service file against the working directory.
measure "Python tomodachi 0.29 (same service)" env -C "$here" PORT=$port "$(dirname "$python")/tomodachi" run --production --logger disabled python_service.py
