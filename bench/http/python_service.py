"""The Python tomodachi server of bench/http/run.sh: GET /hello and POST /echo.

PORT sets the port; KEEPALIVE=5 turns keep-alive on (tomodachi's default is off, every
response closes its connection). Run as
`tomodachi run --production --logger json python_service.py 2>> access.log`.
"""

import os

import tomodachi


class HttpBench(tomodachi.Service):
    name = "http-bench"
    options = tomodachi.Options(
        http=tomodachi.Options.HTTP(
            host="127.0.0.1",
            port=int(os.environ.get("PORT", "9700")),
            keepalive_timeout=int(os.environ.get("KEEPALIVE", "0")),
        )
    )

    @tomodachi.http("GET", r"/hello")
    async def hello(self, request):
        return "hello"

    @tomodachi.http("POST", r"/echo")
    async def echo(self, request):
        body = await request.read()
        return tomodachi.HttpResponse(body=body, status=200, content_type="application/json")
