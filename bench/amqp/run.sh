#!/usr/bin/env bash
# AMQP consume + ack throughput, service CPU per message and publish throughput with
# confirms, tomodachi-rs against bare lapin and Python tomodachi, in one run.
#
#   bash bench/amqp/run.sh [rounds] [messages]       (defaults: 3 rounds of 20000)
#
# Each round drains four queues pre-filled with <messages> JSON-enveloped messages:
#   consume tomodachi          facade service, .amqp(Binding, handler), JSON envelope (release)
#   consume tomodachi-otel     the same service instrumented: a span per message (batch-exported
#                              to a sink that drops it) and tomodachi's metrics aggregated
#   consume lapin-serial       bare lapin, ack awaited per delivery (lapin's README loop)
#   consume lapin-spawn        bare lapin, each delivery acked in its own task
#   consume python-tomodachi   Python tomodachi @amqp with JsonBase (bench/amqp/python_service.py)
# and each fill is one publish measurement (tomodachi-serial, lapin-confirms,
# tomodachi-concurrent, python-tomodachi). Prefetch is tomodachi's default (100 per consumer,
# 400 per channel) everywhere. Needs RabbitMQ (TOMODACHI_AMQP_HOST/PORT, default
# 127.0.0.1:5672 guest/guest) and the tomodachi venv (scripts/test-env.sh makes it).
# Prints the machine, the raw results (also in $BENCH_OUT, default
# /tmp/bench-amqp/results.jsonl) and Markdown tables with medians and ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${1:-3}
messages=${2:-20000}
cache=${TOMODACHI_RS_CACHE:-$HOME/.cache/tomodachi-rs}
target=${CARGO_TARGET_DIR:-$cache/target}
python=${TOMODACHI_TEST_PYTHON:-$cache/venv-tomodachi/bin/python}
out=${BENCH_OUT:-/tmp/bench-amqp/results.jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"
export TOMODACHI_AMQP_QUEUE_TTL=${TOMODACHI_AMQP_QUEUE_TTL:-300}

(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p tomodachi-bench --bin bench_amqp)
bench=$target/release/bench_amqp
log=$(dirname "$out")/services.log
: >"$log"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$rounds rounds of $messages messages; results in $out"

run() { # appends the JSON line "$@" prints to $out
  local line
  line=$(timeout 600 "$@" 2>>"$log" | tail -n1)
  echo "$line" | tee -a "$out"
}

for round in $(seq 1 "$rounds"); do
  echo "-- round $round"
  run "$bench" fill bench-amqp-tomodachi "$messages" tomodachi-serial
  run "$bench" consume bench-amqp-tomodachi "$messages" tomodachi
  run "$bench" fill bench-amqp-tomodachi "$messages" tomodachi-concurrent
  run "$bench" consume bench-amqp-tomodachi "$messages" tomodachi-otel
  run "$bench" fill bench-amqp-lapin "$messages" lapin-confirms
  run "$bench" consume bench-amqp-lapin "$messages" lapin-serial
  run "$bench" fill bench-amqp-lapin "$messages" tomodachi-concurrent
  run "$bench" consume bench-amqp-lapin "$messages" lapin-spawn
  "$bench" fill bench-amqp-python 0 lapin-confirms >/dev/null 2>>"$log"   # declare, bind, purge
  run "$python" "$here/python_publish.py" "$messages"
  result=$(dirname "$out")/python-result.json
  rm -f "$result"
  # tomodachi wants the service file relative to the working directory
  (cd "$here" && BENCH_QUEUE=bench-amqp-python BENCH_COUNT=$messages BENCH_RESULT=$result \
    timeout 600 "$(dirname "$python")/tomodachi" run --production python_service.py >>"$log" 2>&1)
  tee -a "$out" <"$result"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["case"], []).append(r)
med = lambda case, key: statistics.median(r[key] for r in by[case])
def runs(case, key, fmt):
    return ", ".join(fmt.format(r[key]) for r in by[case])

print("\n| consume + ack | msgs/s (median) | runs | CPU µs/msg (median) | runs |")
print("|---|---|---|---|---|")
consume = [c for c in ["consume tomodachi", "consume tomodachi-otel", "consume lapin-serial", "consume lapin-spawn", "consume python-tomodachi"] if c in by]
for c in consume:
    print(f"| {c[8:]} | {med(c, 'rate'):,.0f} | {runs(c, 'rate', '{:,.0f}')} | {med(c, 'cpu_us_per_msg'):.1f} | {runs(c, 'cpu_us_per_msg', '{:.1f}')} |")

a = med("consume tomodachi", "rate")
b = max(med("consume lapin-serial", "rate"), med("consume lapin-spawn", "rate"))
c = med("consume python-tomodachi", "rate")
cpu_a = med("consume tomodachi", "cpu_us_per_msg")
cpu_c = med("consume python-tomodachi", "cpu_us_per_msg")
print("\n| target | ratio | met |")
print("|---|---|---|")
print(f"| (a) tomodachi ≥ 0.9 × (b) the faster bare lapin | {a / b:.2f} | {'yes' if a >= 0.9 * b else 'no'} |")
for lapin in ["consume lapin-serial", "consume lapin-spawn"]:
    print(f"| (a) / {lapin[8:]} | {a / med(lapin, 'rate'):.2f} | |")
print(f"| (a) tomodachi ≥ 3 × (c) Python tomodachi | {a / c:.2f} | {'yes' if a >= 3 * c else 'no'} |")
print(f"| CPU/msg tomodachi ≤ 1/10 × Python's | 1/{cpu_c / cpu_a:.1f} | {'yes' if cpu_a * 10 <= cpu_c else 'no'} |")

# The same ratios within each round (the cases of one round ran minutes apart at most, so
# these pairings cancel some of the machine's drift).
def paired(x, y, key="rate"):
    return statistics.median(p[key] / q[key] for p, q in zip(by[x], by[y]))
print("\n| per-round ratio (median over rounds) | value |")
print("|---|---|")
print(f"| tomodachi / lapin-spawn | {paired('consume tomodachi', 'consume lapin-spawn'):.2f} |")
print(f"| tomodachi / lapin-serial | {paired('consume tomodachi', 'consume lapin-serial'):.2f} |")
print(f"| tomodachi-otel / tomodachi (instrumented, target ≥ 0.85) | {paired('consume tomodachi-otel', 'consume tomodachi'):.2f} |")
print(f"| tomodachi-otel CPU/msg - tomodachi CPU/msg (µs) | {statistics.median(p['cpu_us_per_msg'] - q['cpu_us_per_msg'] for p, q in zip(by['consume tomodachi-otel'], by['consume tomodachi'])):.1f} |")
print(f"| tomodachi / Python tomodachi | {paired('consume tomodachi', 'consume python-tomodachi'):.2f} |")
print(f"| Python CPU/msg / tomodachi CPU/msg | {paired('consume python-tomodachi', 'consume tomodachi', 'cpu_us_per_msg'):.1f} |")

print("\n| publish (with confirms unless noted) | msgs/s (median) | runs |")
print("|---|---|---|")
for p in [k for k in by if k.startswith("publish")]:
    print(f"| {p[8:]} | {med(p, 'rate'):,.0f} | {runs(p, 'rate', '{:,.0f}')} |")
PY
