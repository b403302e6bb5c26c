"""How long one moto ReceiveMessage call takes against the depth of the queue.

    python bench/curves/moto_receive.py http://127.0.0.1:4571 [depth ...]   (default 100 600)

For each depth: a new queue, `depth` messages sent in batches of 10, then drained with
ReceiveMessage (10 at a time, long polling) and DeleteMessageBatch; prints the depth, the
calls and the mean and slowest ReceiveMessage. moto finds the visible messages by walking
the whole queue in Python, so each call costs more the deeper the queue: what bends the SQS
consume curve of bench/curves when the backlog grows (see BENCHMARKS.md, Cost curves).
Needs boto3 (moto's venv has it). Loopback endpoints only.
"""
import sys
import time

import boto3


def probe(client, depth):
    url = client.create_queue(QueueName=f"probe-{depth}-{time.time_ns()}")["QueueUrl"]
    for start in range(0, depth, 10):
        entries = [{"Id": str(j), "MessageBody": str(start + j)} for j in range(min(10, depth - start))]
        client.send_message_batch(QueueUrl=url, Entries=entries)
    got, times = 0, []
    deadline = time.monotonic() + 120
    while got < depth and time.monotonic() < deadline:
        began = time.monotonic()
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=20).get("Messages", [])
        times.append(time.monotonic() - began)
        got += len(messages)
        if messages:
            client.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)],
            )
    client.delete_queue(QueueUrl=url)
    print(f"depth {depth}: {len(times)} receives, mean {sum(times) / len(times) * 1000:.0f} ms, "
          f"slowest {max(times) * 1000:.0f} ms, {got} messages")


def main():
    endpoint = sys.argv[1]
    depths = [int(d) for d in sys.argv[2:]] or [100, 600]
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    for depth in depths:
        probe(client, depth)


if __name__ == "__main__":
    main()
