"""Fixtures' building blocks for Telegram tests: the fake Bot API and the channel under test."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import uvicorn
from sqlalchemy import Engine

from bot.domain.messages import Contact, Input, Location, Photo, Press, Text
from handlers.web import create_app
from tests.fakes.telegram_api import FakeTelegram, Updates

TOKEN = "123456:TEST-token-not-real"


def as_update(updates: Updates, event: Input) -> dict:
    """Return the Telegram update a volunteer's neutral input comes as."""
    if isinstance(event, Text):
        return updates.text(event.text)
    if isinstance(event, Press):
        return updates.press(event.data)
    if isinstance(event, Photo):
        return updates.photo(event.file_id)
    if isinstance(event, Contact):
        return updates.contact(event.phone)
    if isinstance(event, Location):
        return updates.location(event.latitude, event.longitude)
    raise TypeError(event)


async def wait_sent(fake: FakeTelegram, predicate: Callable[[FakeTelegram], bool]) -> None:
    """Wait, without blocking the bot's event loop, until the fake saw what the test needs."""
    await asyncio.to_thread(fake.wait_for, predicate)


def sent_text_containing(
    fragment: str, chat_id: int | None = None
) -> Callable[[FakeTelegram], bool]:
    """Return a predicate: some message (to a chat) contains a fragment."""
    return lambda fake: any(fragment in t for t in fake.texts(chat_id))


@contextlib.asynccontextmanager
async def web_server(routes: list, database: Engine) -> AsyncIterator[str]:
    """Serve the real web app in the current event loop; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(create_app(routes, database), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
