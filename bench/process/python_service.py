"""The quickstart's equivalent in Python tomodachi: a sheep counter and a heartbeat.

Baseline for bench/process/run.sh (startup time to the first 200, idle RSS).
"""

import asyncio
import random

import tomodachi


class SheepCounter(tomodachi.Service):
    name = "sleepy-sheep-counter"
    options = tomodachi.Options(http=tomodachi.Options.HTTP(port=int(__import__("os").environ.get("PORT", "9700"))))
    count = 0

    @tomodachi.http("POST", r"/sheep")
    async def add(self, request):
        await asyncio.sleep(random.random())
        self.count += 1
        return 200, str(self.count)

    @tomodachi.http("GET", r"/sheep")
    async def get(self, request):
        return 200, str(self.count)

    @tomodachi.heartbeat
    async def beat(self):
        pass
