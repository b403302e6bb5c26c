#!/usr/bin/env bash
# AMQP consume + ack throughput, service CPU per message and publish throughput with
# confirms, tomodachi-rs against bare lapin and Python tomodachi, in one run.
#
#   bash bench/amqp/run.sh [rounds] [messages]       (defaults: 3 rounds of 20000)
#
# Each round drains five fills of a queue with <messages> JSON-enveloped messages:
#   consume tomodachi            facade service, .amqp(Binding, handler), JSON envelope (release),
#                                acks coalesced (amqp.ack.batch_size 32, max_delay_ms 10)
#   consume tomodachi-ack-each   the same service acking each delivery alone (batch_size 1)
#   consume tomodachi-otel       the same service instrumented: a span per message (batch-exported
#                                to a sink that drops it) and tomodachi's metrics aggregated
#   consume lapin-serial         bare lapin, ack awaited per delivery (lapin's README loop)
#   consume lapin-spawn          bare lapin, each delivery acked in its own task (handlers
#                                concurrent up to the same prefetch: the fair baseline)
#   consume python-tomodachi     Python tomodachi @amqp with JsonBase (bench/amqp/python_service.py)
# and each fill is one publish measurement with confirms (tomodachi-serial,
# tomodachi-concurrent, tomodachi-batch, lapin-confirms, lapin-confirm-each, python-tomodachi).
# Prefetch is tomodachi's default (100 per consumer, 400 per channel) everywhere. Needs
# RabbitMQ (TOMODACHI_AMQP_HOST/PORT, default 127.0.0.1:5672 guest/guest) and, unless
# BENCH_PYTHON=0, the tomodachi venv (scripts/test-env.sh makes it).
# BENCH_BIN=<path> runs a bench_amqp built beforehand instead of building one.
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

bench=${BENCH_BIN:-}   # a bench_amqp built beforehand, or build it now
if [ -z "$bench" ]; then
  (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p tomodachi-bench --bin bench_amqp)
  bench=$target/release/bench_amqp
fi
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
  run "$bench" fill bench-amqp-tomodachi "$messages" tomodachi-batch
  run "$bench" consume bench-amqp-tomodachi "$messages" tomodachi-ack-each
  run "$bench" fill bench-amqp-lapin "$messages" lapin-confirms
  run "$bench" consume bench-amqp-lapin "$messages" lapin-serial
  run "$bench" fill bench-amqp-lapin "$messages" lapin-confirm-each
  run "$bench" consume bench-amqp-lapin "$messages" lapin-spawn
  [ "${BENCH_PYTHON:-1}" = 0 ] && continue
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
consume = [c for c in ["consume tomodachi", "consume tomodachi-ack-each", "consume tomodachi-otel", "consume lapin-serial", "consume lapin-spawn", "consume python-tomodachi"] if c in by]
for c in consume:
    print(f"| {c[8:]} | {med(c, 'rate'):,.0f} | {runs(c, 'rate', '{:,.0f}')} | {med(c, 'cpu_us_per_msg'):.1f} | {runs(c, 'cpu_us_per_msg', '{:.1f}')} |")

# Ratios within each round (the cases of one round ran a minute apart at most, so these
# pairings cancel some of the machine's drift), median over the rounds.
def paired(x, y, key="rate"):
    return statistics.median(p[key] / q[key] for p, q in zip(by[x], by[y]))
ok = lambda met: "✓" if met else "✗"
rate = paired("consume tomodachi", "consume lapin-spawn")
cpu = paired("consume tomodachi", "consume lapin-spawn", "cpu_us_per_msg")
batch = paired("publish tomodachi-batch", "publish lapin-confirm-each")
concurrent = paired("publish tomodachi-concurrent", "publish lapin-confirm-each")
print("\n| target (issue 18) | per-round ratio (median) | met |")
print("|---|---|---|")
print(f"| consume + ack: tomodachi ≥ 1.25 × lapin-spawn msgs/s | {rate:.2f} | {ok(rate >= 1.25)} |")
print(f"| CPU/msg: tomodachi ≤ 0.7 × lapin-spawn | {cpu:.2f} | {ok(cpu <= 0.7)} |")
print(f"| publish: tomodachi-batch ≥ 1.25 × lapin-confirm-each | {batch:.2f} | {ok(batch >= 1.25)} |")
print(f"| publish: tomodachi-concurrent ≥ 1.25 × lapin-confirm-each | {concurrent:.2f} | {ok(concurrent >= 1.25)} |")

print("\n| other per-round ratios (median) | value |")
print("|---|---|")
print(f"| tomodachi / tomodachi-ack-each (what coalescing buys) | {paired('consume tomodachi', 'consume tomodachi-ack-each'):.2f} |")
print(f"| tomodachi-ack-each / lapin-spawn | {paired('consume tomodachi-ack-each', 'consume lapin-spawn'):.2f} |")
print(f"| tomodachi / lapin-serial | {paired('consume tomodachi', 'consume lapin-serial'):.2f} |")
print(f"| tomodachi-otel / tomodachi | {paired('consume tomodachi-otel', 'consume tomodachi'):.2f} |")
print(f"| publish tomodachi-batch / lapin-confirms (pipelined) | {paired('publish tomodachi-batch', 'publish lapin-confirms'):.2f} |")
if "consume python-tomodachi" in by:
    print(f"| tomodachi / Python tomodachi | {paired('consume tomodachi', 'consume python-tomodachi'):.2f} |")
    print(f"| Python CPU/msg / tomodachi CPU/msg | {paired('consume python-tomodachi', 'consume tomodachi', 'cpu_us_per_msg'):.1f} |")

print("\n| publish (with confirms) | msgs/s (median) | runs |")
print("|---|---|---|")
for p in [k for k in by if k.startswith("publish")]:
    print(f"| {p[8:]} | {med(p, 'rate'):,.0f} | {runs(p, 'rate', '{:,.0f}')} |")
PY
