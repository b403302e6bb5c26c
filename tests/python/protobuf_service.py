"""A Python tomodachi service with the ProtobufBase envelope (protobuf wire tests).

env: PB_TRANSPORT (sns or amqp), PB_TOPIC (topic or routing key), PB_QUEUE (queue name),
     PB_COUNT (messages to handle before exiting), TOMODACHI_TEST_MOTO_URL (sns).
stdout: "STARTED" once started, then one JSON line per Person handled.
"""

import json
import os

import tomodachi
from tomodachi.envelope.protobuf_base import ProtobufBase

from protobuf_person import Person, describe

URL = os.environ.get("TOMODACHI_TEST_MOTO_URL", "http://127.0.0.1:4566")
TRANSPORT = os.environ["PB_TRANSPORT"]
COUNT = int(os.environ.get("PB_COUNT", "1"))


class ProtobufService(tomodachi.Service):
    name = "python-protobuf"
    message_envelope = ProtobufBase
    options = tomodachi.Options(
        aws_sns_sqs={"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        aws_endpoint_urls={"sns": URL, "sqs": URL},
        amqp=tomodachi.Options.AMQP(queue_ttl=120),
    )
    handled = 0

    async def handle(self, data, metadata, service):
        print(json.dumps(describe(data, metadata, service.get("name"))), flush=True)
        ProtobufService.handled += 1
        if ProtobufService.handled == COUNT:
            tomodachi.exit(0)

    if TRANSPORT == "sns":

        @tomodachi.aws_sns_sqs(os.environ["PB_TOPIC"], queue_name=os.environ["PB_QUEUE"], proto_class=Person)
        async def on_sns(self, data, metadata, service):
            await self.handle(data, metadata, service)

    else:

        @tomodachi.amqp(os.environ["PB_TOPIC"], queue_name=os.environ["PB_QUEUE"], proto_class=Person)
        async def on_amqp(self, data, metadata, service):
            await self.handle(data, metadata, service)

    async def _started_service(self):
        print("STARTED", flush=True)
