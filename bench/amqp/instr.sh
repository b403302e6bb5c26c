#!/usr/bin/env bash
# Instructions per consumed message of bench_amqp's consumers, load-independent: callgrind
# counts every instruction of the consumer process (all threads) draining a queue pre-filled
# with N messages, for two sizes; per message = (Ir at the larger - Ir at the smaller) /
# (larger - smaller), which removes start-up, connection and shutdown.
#
#   bash bench/amqp/instr.sh [reps] <name>=<bench_amqp binary> [<name>=<binary> ...]
#
# SIZES (default "2000 4000") and CASES (default "tomodachi lapin-spawn") select the runs;
# each fill is made natively by the first binary. The first binary is the baseline of the
# ratios. Needs valgrind and RabbitMQ (TOMODACHI_AMQP_HOST/PORT, default 127.0.0.1:5672).
# Raw lines in $BENCH_OUT (default /tmp/bench-amqp/instr.jsonl), callgrind files beside it.
set -euo pipefail
reps=${1:-3}
shift
sizes=${SIZES:-2000 4000}
cases=${CASES:-tomodachi lapin-spawn}
out=${BENCH_OUT:-/tmp/bench-amqp/instr.jsonl}
dir=$(dirname "$out")
mkdir -p "$dir"
: >"$out"
export TOMODACHI_AMQP_QUEUE_TTL=${TOMODACHI_AMQP_QUEUE_TTL:-300}
fill=${1#*=}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%FT%TZ)"
for rep in $(seq 1 "$reps"); do
  for size in $sizes; do
    for side in "$@"; do
      name=${side%%=*} bench=${side#*=}
      for case in $cases; do
        if [ "$case" = lapin-spawn ] || [ "$case" = lapin-serial ]; then
          queue=bench-amqp-lapin filler=lapin-confirms
        else
          queue=bench-amqp-tomodachi filler=tomodachi-concurrent
        fi
        "$fill" fill "$queue" "$size" "$filler" >/dev/null 2>>"$dir/instr.log"
        file=$dir/callgrind.$name.$case.$size.$rep
        line=$(valgrind --tool=callgrind --callgrind-out-file="$file" \
          "$bench" consume "$queue" "$size" "$case" 2>>"$dir/instr.log" | tail -n1)
        ir=$(grep -m1 '^totals:' "$file" | awk '{print $2}')
        echo "{\"side\":\"$name\",\"case\":\"$case\",\"size\":$size,\"rep\":$rep,\"ir\":$ir,\"run\":$line}" | tee -a "$out"
      done
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%FT%TZ)"

python3 - "$out" "${1%%=*}" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = sys.argv[2]
by = {}
for r in rows:
    by.setdefault((r["side"], r["case"]), {}).setdefault(r["size"], []).append(r["ir"])
per = {}
for key, sizes in by.items():
    small, large = min(sizes), max(sizes)
    # Every pairing of a small run with a large one; the median and the range.
    pairs = [(b - a) / (large - small) for a in sizes[small] for b in sizes[large]]
    per[key] = (statistics.median(pairs), min(pairs), max(pairs))
print("\n| case | build | instructions / message (median) | range | / " + base + " |")
print("|---|---|---:|---:|---:|")
for (side, case), (med, lo, hi) in sorted(per.items(), key=lambda kv: (kv[0][1], kv[0][0] != base)):
    ratio = med / per[(base, case)][0]
    print(f"| {case} | {side} | {med:,.0f} | {lo:,.0f}–{hi:,.0f} | {ratio:.3f} |")
PY
