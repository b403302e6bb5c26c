"""Build a message with Python tomodachi's JsonBase envelope (wire tests of tomodachi-rs).

stdin: one JSON request object
    {"service": {"name": "svc", "uuid": "abc"}, "topic": "orders", "data": <any JSON>,
     "uuid4": "<uuid, optional>", "timestamp": <float, optional>}
stdout: the message exactly as JsonBase.build_message returns it (no trailing newline).

With --batch, stdin is a JSON array of such requests and stdout is a JSON array of the
messages (as strings), in order.

"uuid4" and "timestamp" pin the values build_message takes from uuid.uuid4() and
time.time(), so a message can be rebuilt byte for byte.
"""

import argparse
import asyncio
import json
import sys
import time
import types
import uuid

from tomodachi.envelope.json_base import JsonBase

_real_uuid4 = uuid.uuid4
_real_time = time.time


async def build(request):
    service = types.SimpleNamespace(**request["service"])
    pinned_uuid = request.get("uuid4")
    pinned_time = request.get("timestamp")
    uuid.uuid4 = (lambda: uuid.UUID(pinned_uuid)) if pinned_uuid is not None else _real_uuid4
    time.time = (lambda: float(pinned_time)) if pinned_time is not None else _real_time
    try:
        return await JsonBase.build_message(service, request["topic"], request["data"])
    finally:
        uuid.uuid4 = _real_uuid4
        time.time = _real_time


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", action="store_true", help="stdin/stdout are JSON arrays")
    args = parser.parse_args()
    request = json.loads(sys.stdin.read())
    if args.batch:
        sys.stdout.write(json.dumps([await build(r) for r in request]))
    else:
        sys.stdout.write(await build(request))
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
