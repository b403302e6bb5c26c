"""Publish one Person with Python tomodachi's ProtobufBase envelope (protobuf wire tests).

usage: protobuf_publish.py sns <topic> <id> <name> <notes length>
       protobuf_publish.py amqp <routing key> <id> <name> <notes length>
env:   TOMODACHI_TEST_MOTO_URL (sns)
"""

import asyncio
import os
import sys
import types

import tomodachi
from tomodachi.envelope.protobuf_base import ProtobufBase

from protobuf_person import Person


async def main() -> None:
    transport, target, person_id, name, notes = sys.argv[1:6]
    person = Person(id=person_id, name=name, notes="n" * int(notes))
    url = os.environ.get("TOMODACHI_TEST_MOTO_URL", "http://127.0.0.1:4566")
    options = tomodachi.Options(
        aws_sns_sqs={"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        aws_endpoint_urls={"sns": url, "sqs": url},
    )
    service = types.SimpleNamespace(
        name="python-publisher",
        uuid="11111111-2222-3333-4444-555555555555",
        message_envelope=ProtobufBase,
        context={"options": options},
    )
    if transport == "sns":
        from tomodachi.transport.aws_sns_sqs import AWSSNSSQSTransport, connector

        await AWSSNSSQSTransport.publish(service, person, target)
        await connector.close()
    else:
        from tomodachi.transport.amqp import AmqpTransport

        await AmqpTransport.publish(service, person, routing_key=target)
        await AmqpTransport.protocol.close()
        AmqpTransport.transport.close()
    print("sent", flush=True)


asyncio.run(main())
