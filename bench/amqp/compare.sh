#!/usr/bin/env bash
# Two builds of bench_amqp (say, before and after a change), alternating in one run:
# consume + ack (tomodachi, bare lapin spawning a task per delivery) and publish with
# confirms (tomodachi serial and concurrent, bare lapin pipelined).
#
#   bash bench/amqp/compare.sh <before-binary> <after-binary> [rounds] [messages]
#
# Build each binary first (`cargo build --release -p tomodachi-bench --bin bench_amqp` in a
# worktree of each commit, copied aside). Rounds run in ABBA order (before first in odd
# rounds, after first in even ones) so drift cancels. Prints the raw results (also in
# $BENCH_OUT, default /tmp/bench-amqp/compare.jsonl) and a table: medians per side,
# after / before, and the per-round paired ratio.
set -euo pipefail
before=$1
after=$2
rounds=${3:-3}
messages=${4:-20000}
out=${BENCH_OUT:-/tmp/bench-amqp/compare.jsonl}
mkdir -p "$(dirname "$out")"
: >"$out"
log=$(dirname "$out")/compare.log
: >"$log"
export TOMODACHI_AMQP_QUEUE_TTL=${TOMODACHI_AMQP_QUEUE_TTL:-300}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

side() { # <name> <binary>: one side's cases, each line tagged with the side
  local name=$1 bench=$2 line
  for args in \
    "fill bench-amqp-tomodachi $messages tomodachi-serial" \
    "consume bench-amqp-tomodachi $messages tomodachi" \
    "fill bench-amqp-tomodachi $messages tomodachi-concurrent" \
    "consume bench-amqp-tomodachi $messages tomodachi" \
    "fill bench-amqp-lapin $messages lapin-confirms" \
    "consume bench-amqp-lapin $messages lapin-spawn"; do
    # shellcheck disable=SC2086
    line=$(timeout 600 "$bench" $args 2>>"$log" | tail -n1)
    echo "{\"side\":\"$name\",${line#\{}" | tee -a "$out"
  done
}

for round in $(seq 1 "$rounds"); do
  echo "-- round $round"
  if ((round % 2)); then
    side before "$before"
    side after "$after"
  else
    side after "$after"
    side before "$before"
  fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["side"], r["case"]), []).append(r)
cases = sorted({r["case"] for r in rows})
print("\n| case | metric | before (median) | after (median) | after / before | paired (median) |")
print("|---|---|---|---|---|---|")
for case in cases:
    for key in ["rate", "cpu_us_per_msg"]:
        if key not in by[("before", case)][0]:
            continue
        b = [r[key] for r in by[("before", case)]]
        a = [r[key] for r in by[("after", case)]]
        paired = statistics.median(x / y for x, y in zip(a, b))
        fmt = "{:,.0f}" if key == "rate" else "{:.1f}"
        print(f"| {case} | {'msgs/s' if key == 'rate' else 'CPU µs/msg'} | {fmt.format(statistics.median(b))} | {fmt.format(statistics.median(a))} | {statistics.median(a) / statistics.median(b):.3f} | {paired:.3f} |")
for side in ["before", "after"]:
    t = statistics.median(r["rate"] for r in by[(side, "consume tomodachi")])
    l = statistics.median(r["rate"] for r in by[(side, "consume lapin-spawn")])
    print(f"\n{side}: consume tomodachi / lapin-spawn = {t / l:.2f}")
PY
