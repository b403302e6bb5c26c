"""Publish throughput of Python tomodachi's amqp_publish (bench/amqp/run.sh): publishes
<count> JsonBase-enveloped messages on routing key bench.amqp (amq.topic), one awaited after
the other, as a handler would. tomodachi publishes without publisher confirms.

usage: python_publish.py <count>
stdout: one JSON line {"case", "messages", "seconds", "rate"}; the clock starts after a
        first (warm-up) publish has opened the connection.
"""

import asyncio
import json
import sys
import time
import types
import uuid

from tomodachi.envelope.json_base import JsonBase
from tomodachi.options import Options
from tomodachi.transport.amqp import AmqpTransport

TEXT = "a payload of a typical size for an event"


async def main() -> None:
    count = int(sys.argv[1])
    service = types.SimpleNamespace(
        name="bench-amqp-python-publisher",
        uuid=str(uuid.uuid4()),
        message_envelope=JsonBase,
        context={"options": Options()},
    )
    await AmqpTransport.publish(service, {"n": 0, "text": TEXT}, routing_key="bench.warm-up")
    started = time.perf_counter()
    for n in range(1, count + 1):
        await AmqpTransport.publish(service, {"n": n, "text": TEXT}, routing_key="bench.amqp")
    seconds = time.perf_counter() - started
    await AmqpTransport.protocol.close()
    AmqpTransport.transport.close()
    line = {"case": "publish python-tomodachi (no confirms)", "messages": count, "seconds": seconds, "rate": count / seconds}
    print(json.dumps(line), flush=True)


asyncio.run(main())
