"""Python tomodachi's side of bench/amqp/run.sh: one @amqp handler with the JsonBase
envelope that drains a pre-filled queue, then reports and exits.

    tomodachi run --production bench/amqp/python_service.py

env: BENCH_QUEUE (the queue, bound to amq.topic with routing key bench.amqp),
     BENCH_COUNT (messages to handle, then tomodachi.exit()), BENCH_RESULT (a file for the
     result line), TOMODACHI_AMQP_QUEUE_TTL (default 300, as bench_amqp declares it).
result: one JSON line {"case", "messages", "seconds", "rate", "cpu_us_per_msg"}, clocked from
        the first message handled to the last, CPU as the sum of the process's threads'
        /proc/self/task/*/schedstat (the same measure as bench_amqp).
"""

import json
import os
import time

import tomodachi
from tomodachi.envelope.json_base import JsonBase

QUEUE = os.environ["BENCH_QUEUE"]
COUNT = int(os.environ["BENCH_COUNT"])
RESULT = os.environ["BENCH_RESULT"]


def cpu_ns() -> int:
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


class BenchService(tomodachi.Service):
    name = "bench-amqp-python"
    message_envelope = JsonBase
    options = tomodachi.Options(amqp=tomodachi.Options.AMQP(queue_ttl=int(os.environ.get("TOMODACHI_AMQP_QUEUE_TTL", "300"))))

    count = 0
    first = None

    @tomodachi.amqp("bench.amqp", queue_name=QUEUE)
    async def on_event(self, data):
        BenchService.count += 1
        if BenchService.count == 1:
            BenchService.first = (time.perf_counter(), cpu_ns())
        if BenchService.count == COUNT:
            t1, c1 = time.perf_counter(), cpu_ns()
            t0, c0 = BenchService.first
            intervals = max(COUNT - 1, 1)
            seconds = t1 - t0
            line = {
                "case": "consume python-tomodachi",
                "messages": COUNT,
                "seconds": seconds,
                "rate": intervals / seconds,
                "cpu_us_per_msg": (c1 - c0) / 1000 / intervals,
            }
            with open(RESULT, "w") as f:
                f.write(json.dumps(line) + "\n")
            tomodachi.exit()
