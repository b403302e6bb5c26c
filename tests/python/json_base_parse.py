"""Parse a message with Python tomodachi's JsonBase envelope (wire tests of tomodachi-rs).

stdin: one payload, exactly as it travels on the wire.
stdout: the message dict returned by JsonBase.parse_message, as JSON (json.dumps defaults).

With --batch, stdin is a JSON array of payloads (strings) and stdout is a JSON array of the
message dicts, in order.
"""

import argparse
import asyncio
import json
import sys

from tomodachi.envelope.json_base import JsonBase


async def parse(payload):
    message, message_uuid, timestamp = await JsonBase.parse_message(payload)
    # parse_message hands these back twice; they must agree with the dict.
    assert message_uuid == message["metadata"]["message_uuid"]
    assert timestamp == message["metadata"]["timestamp"]
    return message


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", action="store_true", help="stdin/stdout are JSON arrays")
    args = parser.parse_args()
    raw = sys.stdin.buffer.read().decode("utf-8")
    if args.batch:
        result = [await parse(p) for p in json.loads(raw)]
    else:
        result = await parse(raw)
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
