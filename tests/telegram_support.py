"""Fixtures' building blocks for Telegram tests: the fake Bot API and the channel under test."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import uvicorn
from sqlalchemy import Engine

from bot.domain.messages import Contact, Input, Location, Photo, Press, Text
from handlers.web import create_app
from tests.fakes.telegram_api import FakeTelegram, Updates

if TYPE_CHECKING:
    from handlers.telegram.channel import TelegramChannel

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


class Screen:
    """What one Telegram user sees, and a thumb that presses only buttons on it."""

    def __init__(self, fake: FakeTelegram, channel: "TelegramChannel", user: Updates) -> None:
        self.fake = fake
        self.channel = channel
        self.user = user
        self.chat = int(user.chat["id"])

    def keyboard_message(self) -> tuple[int, list[dict]]:
        """Return the newest message with inline buttons and its buttons as they are now."""
        for (chat, message_id), shown in sorted(self.fake.shown.items(), reverse=True):
            inline = (shown["reply_markup"] or {}).get("inline_keyboard")
            if chat == self.chat and inline:
                return message_id, [b for row in inline for b in row]
        raise AssertionError("no buttons are shown")

    async def press(self, data: str) -> None:
        """Press the button carrying `data`, which must be on the newest keyboard."""
        message_id, buttons = self.keyboard_message()
        shown = [b["callback_data"] for b in buttons]
        assert data in shown, f"{data} is not among the buttons shown: {shown}"
        await self.send(self.user.press(data, message_id))

    async def send(self, update: dict) -> None:
        """Send an update and wait until the bot has handled it."""
        self.fake.push(update)
        await wait_sent(self.fake, lambda fake: fake.acknowledged > update["update_id"])
        await self.channel.idle()

    def last_text(self) -> str:
        """Return the newest message's text."""
        return self.fake.texts(self.chat)[-1]
