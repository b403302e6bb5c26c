"""Publishes or sends one message with Python tomodachi (no running service needed).

usage: publish.py publish <topic> <data-json> <attributes-json>
       publish.py send <queue-name-or-url> <data-json> <attributes-json>
Prints the message id.
"""
import asyncio
import json
import os
import sys

import tomodachi
from tomodachi.envelope import JsonBase
from tomodachi.transport.aws_sns_sqs import AWSSNSSQSTransport, connector


class PythonService:
    name = "python-publisher"
    uuid = "11111111-2222-3333-4444-555555555555"
    message_envelope = JsonBase


def options():
    url = os.environ.get("TOMODACHI_TEST_MOTO_URL", "http://127.0.0.1:4566")
    return tomodachi.Options(
        aws_sns_sqs={
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        },
        aws_endpoint_urls={"sns": url, "sqs": url},
    )


async def main() -> None:
    mode, target, data, attributes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    attributes = {k: (v.encode() if isinstance(v, str) and k.startswith("bytes") else v) for k, v in attributes.items()}
    service = PythonService()
    service.context = {"options": options()}
    if mode == "publish":
        message_id = await AWSSNSSQSTransport.publish(service, data, target, message_attributes=attributes)
    else:
        message_id = await AWSSNSSQSTransport.send_message(service, data, target, message_attributes=attributes)
    print(message_id, flush=True)
    await connector.close()


asyncio.run(main())
