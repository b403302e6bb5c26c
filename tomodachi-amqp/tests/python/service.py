"""A Python tomodachi service with one @amqp handler (interop tests of tomodachi-amqp).

env: ROUTING_KEY, SERVICE_UUID, QUEUE_NAME (optional: competing on that queue; without it
     tomodachi's default non-competing queue), PREFETCH (optional, default 100),
     QUEUE_TTL (optional, default 120).
stdout: {"ready": true} once started, then one JSON line per message handled with its
        data, envelope topic, message_uuid and tomodachi's routing_key keyword.
"""

import json
import os

import tomodachi
from tomodachi.envelope.json_base import JsonBase

ROUTING_KEY = os.environ["ROUTING_KEY"]
QUEUE_NAME = os.environ.get("QUEUE_NAME") or None


class InteropService(tomodachi.Service):
    name = "python-interop"
    uuid = os.environ["SERVICE_UUID"]
    message_envelope = JsonBase
    options = tomodachi.Options(
        amqp=tomodachi.Options.AMQP(
            queue_ttl=int(os.environ.get("QUEUE_TTL", "120")),
            qos=tomodachi.Options.AMQP.QOS(queue_prefetch_count=int(os.environ.get("PREFETCH", "100"))),
        )
    )

    @tomodachi.amqp(ROUTING_KEY, queue_name=QUEUE_NAME)
    async def on_message(self, data, metadata, routing_key, message_uuid):
        line = {"data": data, "topic": metadata["topic"], "message_uuid": message_uuid, "routing_key": routing_key}
        print(json.dumps(line), flush=True)

    async def _started_service(self):
        print(json.dumps({"ready": True}), flush=True)
