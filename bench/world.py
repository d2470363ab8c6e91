"""The simulated world for benchmarks: a fake Telegram Bot API whose users answer every reply.

Run as a separate process so the bot under test has its own core. Each simulated volunteer sends
its next message as soon as the bot's replies to the previous one have arrived, and the world
prints one JSON line of measurements when every volunteer is done.
"""

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import resource
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_api import BOT_USER, COUNTED, Updates  # noqa: E402
from tests.telegram_support import as_update  # noqa: E402
from tests.transcripts import FIRST_PROPOSAL  # noqa: E402


def expected_replies() -> list[int]:
    """Count the bot's messages for each step of the transcript, by running the real service."""
    from bot.app.service import WelfareService
    from bot.domain.province import load_province
    from handlers.telegram.render import render_all
    from storage.db import make_engine, upgrade
    from tests.helpers import Chat

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/count.db"
        upgrade(url)
        service = WelfareService(make_engine(url), load_province("CM"))
        chat = Chat(service)
        return [len(render_all(chat.send(event))) for event in FIRST_PROPOSAL]


@dataclass
class Volunteer:
    """One simulated person working through their script."""

    chat_id: int
    script: list[dict[str, Any]]
    expected: list[int]
    step: int = 0
    received: int = 0
    handed_out_at: float = 0.0


@dataclass
class World:
    """The fake Bot API with simulated volunteers behind it."""

    volunteers: dict[int, Volunteer]
    queue: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    latencies: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    remaining: int = 0
    updates_handed_out: int = 0
    requests: int = 0
    started: float = 0.0
    finished: float = 0.0
    message_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # messages Telegram accepts in any one second before answering 429 (None: no limit)
    rate_limit: float | None = None
    too_many: int = 0
    recent: collections.deque = field(default_factory=collections.deque)

    def begin(self) -> None:
        """Queue every volunteer's first message."""
        self.remaining = len(self.volunteers)
        self.started = time.perf_counter()
        for volunteer in self.volunteers.values():
            self.queue.append(volunteer.script[0])
        self.arrived.set()

    async def handle(self, request: Request) -> JSONResponse:
        """Answer one Bot API call."""
        self.requests += 1
        method = request.path_params["method"]
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        if method == "getUpdates":
            return JSONResponse({"ok": True, "result": await self.get_updates(params)})
        if method == "getMe":
            return JSONResponse({"ok": True, "result": BOT_USER})
        if method == "getWebhookInfo":
            info = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
            return JSONResponse({"ok": True, "result": info})
        if method in COUNTED and self.over_limit():
            body = {"ok": False, "error_code": 429, "parameters": {"retry_after": 1},
                    "description": "Too Many Requests: retry after 1"}  # fmt: skip
            return JSONResponse(body, status_code=429)
        # a toggle's answer redraws the pressed buttons in place instead of a new message
        if method in ("sendMessage", "editMessageReplyMarkup"):
            chat_id = int(params["chat_id"])
            self.on_message(chat_id)
            message = {
                "message_id": next(self.message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": params.get("text", ""),
            }
            return JSONResponse({"ok": True, "result": message})
        return JSONResponse({"ok": True, "result": True})

    def over_limit(self) -> bool:
        """Tell whether one more message would pass the rate limit (and count a 429 if so)."""
        if self.rate_limit is None:
            return False
        now = time.perf_counter()
        while self.recent and self.recent[0] <= now - 1.0:
            self.recent.popleft()
        if len(self.recent) >= self.rate_limit:
            self.too_many += 1
            return True
        self.recent.append(now)
        return False

    async def get_updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        if not self.queue:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), float(params.get("timeout") or 0))
            except TimeoutError:
                return []
        batch, self.queue = self.queue[:100], self.queue[100:]
        now = time.perf_counter()
        for update in batch:
            chat_id = _chat_of(update)
            self.volunteers[chat_id].handed_out_at = now
        self.updates_handed_out += len(batch)
        return batch

    def on_message(self, chat_id: int) -> None:
        volunteer = self.volunteers.get(chat_id)
        if volunteer is None or volunteer.step >= len(volunteer.script):
            return
        volunteer.received += 1
        if volunteer.received < volunteer.expected[volunteer.step]:
            return
        self.latencies.append(time.perf_counter() - volunteer.handed_out_at)
        volunteer.step += 1
        volunteer.received = 0
        if volunteer.step < len(volunteer.script):
            self.queue.append(volunteer.script[volunteer.step])
            self.arrived.set()
            return
        self.remaining -= 1
        if self.remaining == 0:
            self.finished = time.perf_counter()
            self.done.set()

    def report(self) -> dict[str, Any]:
        """Return the measurements."""
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

        wall = (self.finished or time.perf_counter()) - self.started
        return {
            "volunteers": len(self.volunteers),
            "finished": len(self.volunteers) - self.remaining,
            "too_many": self.too_many,
            "updates": self.updates_handed_out,
            "wall_s": wall,
            "updates_per_s": self.updates_handed_out / wall if wall else 0.0,
            "completed_per_s": len(self.volunteers) / wall if wall else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "requests": self.requests,
            "world_cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime,
        }


def _chat_of(update: dict[str, Any]) -> int:
    if "message" in update:
        return int(update["message"]["chat"]["id"])
    return int(update["callback_query"]["from"]["id"])


def build(mode: str, count: int) -> World:
    """Build the volunteers of a run: the questionnaire, or the same number of echo messages."""
    expected = expected_replies() if mode == "questionnaire" else [1] * len(FIRST_PROPOSAL)
    volunteers = {}
    for n in range(count):
        chat_id = 10_000 + n
        maker = Updates(chat_id)
        if mode == "questionnaire":
            script = [as_update(maker, event) for event in FIRST_PROPOSAL]
        else:
            script = [maker.text(f"echo {i}") for i in range(len(FIRST_PROPOSAL))]
        volunteers[chat_id] = Volunteer(chat_id, script, expected)
    return World(volunteers)


async def main() -> None:
    """Serve the world until every volunteer is done; print the report as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["questionnaire", "echo"], default="questionnaire")
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--deadline", type=float, default=None, help="report after this long")
    args = parser.parse_args()
    world = build(args.mode, args.volunteers)
    world.rate_limit = args.rate_limit
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    app = Starlette(routes=[Route("/bot{token}/{method}", world.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="error", access_log=False, lifespan="off")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    # written whole under another name first, so the bench never reads half a port number
    partial = args.port_file.with_suffix(".partial")
    partial.write_text(str(sock.getsockname()[1]))
    partial.rename(args.port_file)
    world.begin()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(world.done.wait(), args.deadline)
    print(json.dumps(world.report()), flush=True)
    # stay up until the bench has stopped its bot, so nothing it still polls for fails
    await asyncio.to_thread(sys.stdin.read)
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
