"""A Python tomodachi service for the interop tests, configured by environment variables.

PY_TOPIC, PY_QUEUE, PY_FILTER (JSON), PY_VISIBILITY, PY_DLQ, PY_MAX_RECEIVE: the
@aws_sns_sqs arguments. PY_SETUP_ONLY=1: exit once started (setup only). Otherwise every
message is printed as one JSON line and the service exits after the first one.
"""
import json
import os
import sys
import time

import tomodachi
from tomodachi.envelope import JsonBase

URL = os.environ.get("TOMODACHI_TEST_MOTO_URL", "http://127.0.0.1:4566")

kwargs = {}
if os.environ.get("PY_FILTER"):
    kwargs["filter_policy"] = json.loads(os.environ["PY_FILTER"])
if os.environ.get("PY_VISIBILITY"):
    kwargs["visibility_timeout"] = int(os.environ["PY_VISIBILITY"])
if os.environ.get("PY_DLQ"):
    kwargs["dead_letter_queue_name"] = os.environ["PY_DLQ"]
    kwargs["max_receive_count"] = int(os.environ["PY_MAX_RECEIVE"])


def printable(value):
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    return value


class InteropService(tomodachi.Service):
    name = "python-interop"
    message_envelope = JsonBase
    options = tomodachi.Options(
        aws_sns_sqs={
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        },
        aws_endpoint_urls={"sns": URL, "sqs": URL},
    )

    @tomodachi.aws_sns_sqs(
        os.environ.get("PY_TOPIC") or None, queue_name=os.environ["PY_QUEUE"], competing=True, **kwargs
    )
    async def handler(self, data, topic, message_attributes, service):
        count = int(os.environ.get("PY_COUNT") or 0)
        if count:
            # Benchmark mode: process CPU time (user + system, ns clock) at the first and the
            # last message, no output between.
            InteropService.handled = getattr(InteropService, "handled", 0) + 1
            if InteropService.handled == 1:
                print("CPU-FIRST {}".format(time.process_time()), flush=True)
            if InteropService.handled == count:
                print("CPU-LAST {}".format(time.process_time()), flush=True)
                tomodachi.exit(0)
            return
        line = {
            "data": data,
            "topic": topic,
            "attributes": {k: printable(v) for k, v in message_attributes.items()},
            "sender": service.get("name"),
        }
        print(json.dumps(line), flush=True)
        tomodachi.exit(0)

    async def _started_service(self):
        print("STARTED", flush=True)
        if os.environ.get("PY_SETUP_ONLY"):
            tomodachi.exit(0)
