"""The simulated LINE world for benchmarks: a fake Messaging API and volunteers posting webhooks.

Run as its own process. It serves the fake API, writes its port to --port-file, and waits for
POST /start?bot=<webhook url>; each volunteer then posts its next signed webhook as soon as the
bot's reply to the previous one has arrived. One JSON line of figures is printed at the end.
"""

import argparse
import asyncio
import json
import random
import resource
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.line_api import FakeLine  # noqa: E402
from tests.line_support import LineUser, body, sign  # noqa: E402
from tests.transcripts import FIRST_PROPOSAL  # noqa: E402


class World:
    """Volunteers, their scripts, and the measurements."""

    def __init__(self, count: int, think: float) -> None:
        self.think = think
        self.random = random.Random(2570)
        self.tokens = FakeLine(validate=False)
        self.users = [LineUser(self.tokens, f"U{n:032x}") for n in range(count)]
        self.by_id = {u.user_id: u for u in self.users}
        self.scripts = {u.user_id: list(FIRST_PROPOSAL) for u in self.users}
        self.steps: dict[str, int] = {u.user_id: 0 for u in self.users}
        self.posted_at: dict[str, float] = {}
        self.step_latency: list[float] = []
        # when each reply arrived (seconds from the start), beside step_latency
        self.step_at: list[float] = []
        self.first_done = 0.0
        self.webhook_latency: list[float] = []
        self.events = 0
        self.redelivered = 0
        self.remaining = count
        self.done = asyncio.Event()
        self.bot_url = ""
        self.http: aiohttp.ClientSession | None = None
        self.started = 0.0
        self.finished = 0.0
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, request: Request) -> JSONResponse:
        """Begin: every volunteer sends its first message."""
        self.bot_url = request.query_params["bot"]
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        self.started = time.perf_counter()
        loop = asyncio.get_running_loop()
        for user in self.users:
            loop.call_later(self.random.uniform(0, 2 * self.think), self._send, user)
        return JSONResponse({})

    def _send(self, user: LineUser) -> None:
        task = asyncio.create_task(self._post(user))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self, user: LineUser) -> None:
        step = self.scripts[user.user_id][self.steps[user.user_id]]
        raw = body(user.as_event(step))
        headers = {"Content-Type": "application/json", "X-Line-Signature": sign(raw)}
        assert self.http is not None
        self.posted_at[user.user_id] = begun = time.perf_counter()
        while True:
            try:
                async with self.http.post(self.bot_url, data=raw, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                break
            except aiohttp.ClientError:
                # a kept-alive connection the server closed as it was reused: LINE redelivers a
                # failed webhook, and the bot ignores an event it has stored already
                self.redelivered += 1
        self.webhook_latency.append(time.perf_counter() - begun)
        self.events += 1

    async def api(self, request: Request) -> JSONResponse:
        """The fake Messaging API: each reply or push moves its volunteer on."""
        payload = await request.json()
        if request.url.path == "/v2/bot/message/reply":
            user_id = self.tokens.tokens.pop(payload["replyToken"])
        else:
            user_id = payload["to"]
        now = time.perf_counter()
        self.step_latency.append(now - self.posted_at[user_id])
        self.step_at.append(now - self.started)
        self.steps[user_id] += 1
        if self.steps[user_id] < len(self.scripts[user_id]):
            if self.think:
                # people do not answer in step: each pause is drawn around the mean
                pause = self.random.uniform(0, 2 * self.think)
                asyncio.get_running_loop().call_later(pause, self._send, self.by_id[user_id])
            else:
                self._send(self.by_id[user_id])
        else:
            self.first_done = self.first_done or time.perf_counter() - self.started
            self.remaining -= 1
            if not self.remaining:
                self.finished = time.perf_counter()
                self.done.set()
        sent = [{"id": "1", "quoteToken": "q"} for _ in payload["messages"]]
        return JSONResponse({"sentMessages": sent})

    def report(self) -> dict[str, Any]:
        """Return the figures."""

        def pct(values: list[float], p: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

        wall = self.finished - self.started
        # while every volunteer is at it: after the first pauses (up to twice the mean) and
        # before the first volunteer is done; the ramp and the tail offer less
        begin = 2 * self.think
        end = max(self.first_done, begin + 1)
        steady = [lat for at, lat in zip(self.step_at, self.step_latency, strict=True)
                  if begin <= at <= end]  # fmt: skip
        return {
            "volunteers": len(self.users),
            "events": self.events,
            "wall_s": wall,
            "events_per_s": self.events / wall,
            "completed_per_s": len(self.users) / wall,
            "webhook_p50_ms": pct(self.webhook_latency, 0.5),
            "webhook_p99_ms": pct(self.webhook_latency, 0.99),
            "step_p50_ms": pct(self.step_latency, 0.5),
            "step_p99_ms": pct(self.step_latency, 0.99),
            "steady_per_s": len(steady) / (end - begin),
            "steady_p50_ms": pct(steady or [0.0], 0.5),
            "steady_p99_ms": pct(steady or [0.0], 0.99),
            "redelivered": self.redelivered,
            "world_cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime,
        }


async def main() -> None:
    """Serve the world until every volunteer is done; print the figures as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    world = World(args.volunteers, args.think_ms / 1000)
    app = Starlette(
        routes=[
            Route("/start", world.start, methods=["POST"]),
            Route("/v2/bot/message/{kind}", world.api, methods=["POST"]),
        ]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    partial = args.port_file.with_suffix(".partial")
    partial.write_text(str(sock.getsockname()[1]))
    partial.rename(args.port_file)
    await world.done.wait()
    print(json.dumps(world.report()), flush=True)
    # stay up until the bench has stopped the bot, so nothing it still sends fails
    await asyncio.to_thread(sys.stdin.read)
    if world.http is not None:
        await world.http.close()
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
