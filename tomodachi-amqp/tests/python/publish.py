"""Publish one message the way Python tomodachi does (interop tests of tomodachi-amqp).

Uses tomodachi's own AmqpTransport.publish (JsonBase envelope, routing-key prefix and
encoding, amq.topic) with a service object carrying a name, a uuid and options.

usage: publish.py <routing_key> <data as JSON>
env:   SERVICE_NAME, SERVICE_UUID, AMQP_ROUTING_KEY_PREFIX (optional)
stdout: one JSON line {"message_uuid": ..., "topic": ...} of the message sent.
"""

import asyncio
import json
import os
import sys
import types

from tomodachi.envelope.json_base import JsonBase
from tomodachi.options import Options
from tomodachi.transport.amqp import AmqpTransport


async def main() -> None:
    routing_key, data = sys.argv[1], json.loads(sys.argv[2])
    options = Options(amqp=Options.AMQP(routing_key_prefix=os.environ.get("AMQP_ROUTING_KEY_PREFIX", "")))
    service = types.SimpleNamespace(
        name=os.environ["SERVICE_NAME"],
        uuid=os.environ["SERVICE_UUID"],
        message_envelope=JsonBase,
        context={"options": options},
    )
    sent = {}
    real_build = JsonBase.build_message

    async def build(svc, topic, payload, **kwargs):
        message = await real_build(svc, topic, payload, **kwargs)
        parsed = json.loads(message)
        sent.update(message_uuid=parsed["metadata"]["message_uuid"], topic=parsed["metadata"]["topic"])
        return message

    JsonBase.build_message = build
    await AmqpTransport.publish(service, data, routing_key=routing_key)
    await AmqpTransport.protocol.close()
    AmqpTransport.transport.close()
    print(json.dumps(sent), flush=True)


asyncio.run(main())
