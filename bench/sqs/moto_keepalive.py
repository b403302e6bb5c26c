"""moto's WSGI application served by waitress, which keeps HTTP/1.1 connections open (moto's
own server answers every request with `Connection: close`), as AWS does.

    python moto_keepalive.py 127.0.0.1 4570

`GET /__bench/counts` answers `{"connections": <accepted TCP connections>, "requests": <HTTP
requests>}` since the start, so that a benchmark can check its client reuses connections.
"""
import json
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

counts = {"connections": 0, "requests": 0}
lock = threading.Lock()


class CountingChannel(HTTPChannel):
    """One per accepted TCP connection."""

    def __init__(self, *args, **kwargs):
        with lock:
            counts["connections"] += 1
        super().__init__(*args, **kwargs)


BaseWSGIServer.channel_class = CountingChannel
moto = DomainDispatcherApplication(create_backend_app)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/__bench/counts":
        with lock:
            body = json.dumps(counts).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    with lock:
        counts["requests"] += 1
    return moto(environ, start_response)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    # Threads: a long-polling ReceiveMessage holds one while the others answer.
    server = create_server(app, host=host, port=port, threads=8, ident="moto-waitress")
    print("listening on http://{}:{}".format(host, port), flush=True)
    server.run()


if __name__ == "__main__":
    main()
