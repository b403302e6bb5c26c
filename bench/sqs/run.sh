#!/usr/bin/env bash
# SNS+SQS steady state against an endpoint that keeps connections open, as AWS does:
# tomodachi-rs and Python tomodachi consume N JSON-enveloped SNS notifications each, in one
# run, from moto's WSGI application served by waitress (bench/sqs/moto_keepalive.py) on a port
# of its own. Reports API calls, service CPU and the server's TCP connections and requests per
# consumer window (tomodachi-sqs/examples/steady_state.rs does the measuring).
#
#   nice -n 19 cargo build --profile bench -p tomodachi-sqs --example steady_state   # first
#   flock /work/helpers/bench.lock bash bench/sqs/run.sh [messages] [rounds]  (1000, 1)
#
# Environment: BENCH_SQS_PORT (4570), BENCH_SQS_VENV (~/.cache/tomodachi-rs/venv-bench-moto,
# created here with moto[server] and waitress when missing), TOMODACHI_TEST_PYTHON_VENV (the
# Python tomodachi venv, scripts/test-env.sh makes it), STEADY_SKIP_PYTHON=1 (Rust only),
# CARGO_TARGET_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
messages=${1:-1000}
rounds=${2:-1}
cache=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
target=${CARGO_TARGET_DIR:-$cache/target}
port=${BENCH_SQS_PORT:-4570}
url=http://127.0.0.1:$port
bin=$target/release/examples/steady_state
[ -x "$bin" ] || { echo "build first: cargo build --profile bench -p tomodachi-sqs --example steady_state" >&2; exit 1; }

# shellcheck source=bench/sqs/moto_keepalive.sh
source "$here/moto_keepalive.sh"
log=$(mktemp /tmp/bench-sqs-moto.XXXXXX.log)
trap 'kill "${moto_keepalive_pid:-}" 2>/dev/null; wait "${moto_keepalive_pid:-}" 2>/dev/null || true' EXIT
moto_keepalive_start "$port" "$log"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "endpoint: $url (moto $("$moto_keepalive_venv/bin/python" -c 'import moto; print(moto.__version__)') on waitress $("$moto_keepalive_venv/bin/python" -c 'from importlib.metadata import version; print(version("waitress"))'))"
for round in $(seq 1 "$rounds"); do
  echo "-- round $round, $(date -u +%FT%TZ), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  TOMODACHI_TEST_MOTO_URL=$url timeout 900 "$bin" "$messages"
  echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
