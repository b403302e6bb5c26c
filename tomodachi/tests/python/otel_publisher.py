"""A Python tomodachi service, run with --opentelemetry-instrument, that publishes one AMQP
message from a scheduled function (interop test of tomodachi-rs's OpenTelemetry support).

env:    ROUTING_KEY (the routing key to publish to, on amq.topic)
stdout: one JSON line {"published": true} once the message is sent.
"""

import json
import os

import tomodachi
from tomodachi.envelope.json_base import JsonBase


class Service(tomodachi.Service):
    name = "python-otel-publisher"
    message_envelope = JsonBase

    @tomodachi.schedule(interval=3600, immediately=True)
    async def publish_once(self) -> None:
        await tomodachi.amqp_publish(self, {"from": "python"}, routing_key=os.environ["ROUTING_KEY"])
        print(json.dumps({"published": True}), flush=True)
