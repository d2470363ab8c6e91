"""Sends broadcast messages on Telegram: paced under the bot's limit, every 429 honoured."""

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import RowMapping
from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.app.service import WelfareService
from handlers.broadcaster import Outcome
from handlers.telegram.channel import PLATFORM, seconds
from storage import broadcasts

log = logging.getLogger(__name__)
# Telegram allows about 30 messages a second to different chats; stay a little under it
DEFAULT_RATE = 28.0
IN_FLIGHT = 32
ATTEMPTS = 5


class Pacer:
    """A token bucket: sends at a steady rate, catching up a short lag by a small burst.

    The burst is what the limit leaves above the rate (limit 30, rate 28: 2), so a send
    that was late because the process was busy is made up without exceeding the limit in
    any second; a 429 empties the bucket and holds every send for its retry_after.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.tokens = 1.0
        self.stamp = time.monotonic()
        self.paused_until = 0.0

    async def wait(self) -> None:
        """Wait until a send is allowed, and take it."""
        while True:
            now = time.monotonic()
            if now < self.paused_until:
                await asyncio.sleep(self.paused_until - now)
                continue
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)

    def pause(self, wait: float) -> None:
        """Hold every send back for a number of seconds (a 429's retry_after)."""
        self.paused_until = max(self.paused_until, time.monotonic() + wait)
        self.tokens = 0.0


class TelegramBroadcastSender:
    """Sends a run's Telegram messages, one chat at a time, many in flight."""

    platform = PLATFORM

    def __init__(
        self, service: WelfareService, bot: Bot, rate: float = DEFAULT_RATE, burst: float = 2.0
    ) -> None:
        self.service = service
        self.bot = bot
        self.pacer = Pacer(rate, burst)
        self.retries_after = 0
        # sending now, or given up on for this pass (they stay pending for the next one)
        self._busy: set[int] = set()

    async def quota_left(self) -> int | None:
        """Telegram has no monthly quota."""
        return None

    async def send(
        self, run_id: int, texts: dict[str, str], record: Outcome, open_now: Callable[[], bool]
    ) -> None:
        """Send to every pending recipient while open_now() holds."""
        slots = asyncio.Semaphore(IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        self._busy = set()
        while open_now():
            with self.service.db.begin() as connection:
                batch = broadcasts.pending(
                    connection, run_id, PLATFORM, limit=len(self._busy) + 1000
                )
            batch = [row for row in batch if row["id"] not in self._busy]
            if not batch:
                if not tasks:
                    break
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            for row in batch:
                if not open_now():
                    break
                await slots.acquire()
                await self.pacer.wait()
                self._busy.add(row["id"])
                task = asyncio.create_task(self._one(row, texts, record, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(
        self, row: RowMapping, texts: dict[str, str], record: Outcome, slots: asyncio.Semaphore
    ) -> None:
        """Send one message, retrying after 429s; record the outcome."""
        message = {"chat_id": row["recipient"], "text": texts.get(row["language"], texts["th"])}
        try:
            for attempt in range(ATTEMPTS):
                if attempt:
                    await self.pacer.wait()
                try:
                    await self.bot.do_api_request("sendMessage", message)
                except RetryAfter as error:
                    self.retries_after += 1
                    self.pacer.pause(seconds(error.retry_after))
                    continue
                record([row["id"]], "sent")
                self._busy.discard(row["id"])
                return
            log.warning("Telegram kept answering 429; leaving a recipient pending")
        except Forbidden:
            record([row["id"]], "failed", "blocked the bot")
            self.service.set_reachable(PLATFORM, row["recipient"], False)
            self._busy.discard(row["id"])
        except BadRequest as error:
            record([row["id"]], "failed", str(error)[:200])
            self._busy.discard(row["id"])
        except TelegramError as error:
            log.warning("a broadcast message failed (%s); it stays pending", type(error).__name__)
        finally:
            slots.release()
