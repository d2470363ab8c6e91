"""Sends broadcast messages on Telegram, in the time the bot's replies leave (see pacer.py).

Telegram has no idempotency key, so each recipient is marked `sending` just before its request
and recorded as soon as it ends: after a kill, exactly the rows left `sending` may have been
delivered without being recorded, and they are the only ones the next sender may send twice.
"""

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.engine import RowMapping
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ExtBot

from bot.app.service import WelfareService
from handlers.broadcaster import RETRY, Outcome
from handlers.telegram.channel import PLATFORM
from handlers.telegram.pacer import TURN_TAKEN, Pacer
from storage import broadcasts

log = logging.getLogger(__name__)
IN_FLIGHT = 32


class TelegramBroadcastSender:
    """Sends a run's Telegram messages, one chat at a time, many in flight."""

    platform = PLATFORM

    def __init__(self, service: WelfareService, bot: ExtBot[str], pacer: Pacer) -> None:
        self.service = service
        self.bot = bot
        # the bot's own pacer: broadcasts get the turns that replies and notices leave
        self.pacer = pacer
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
        with self.service.db.begin() as connection:
            # in flight when their sender died: delivered or not, nobody can tell, so again
            again = broadcasts.resume_unconfirmed(
                connection, run_id, PLATFORM, self.service.clock()
            )
        if again:
            log.warning("resending %d broadcast messages a stopped sender had in flight", again)
        # marked `sending`, not yet asked for
        taken: set[int] = set()
        while open_now():
            with self.service.db.begin() as connection:
                batch = broadcasts.pending(
                    connection, run_id, PLATFORM, self.service.clock(), limit=len(self._busy) + 1000
                )
            batch = [row for row in batch if row["id"] not in self._busy]
            if not batch:
                if not tasks:
                    break
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            for index, row in enumerate(batch):
                if not open_now():
                    break
                await slots.acquire()
                await self.pacer.acquire("broadcast")
                if not open_now():
                    slots.release()
                    break
                if row["id"] not in taken:
                    taken = self._take([r["id"] for r in batch[index : index + IN_FLIGHT]])
                if row["id"] not in taken:
                    slots.release()  # cancelled meanwhile
                    continue
                taken.discard(row["id"])
                self._busy.add(row["id"])
                task = asyncio.create_task(self._one(row, texts, record, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if taken:
            with self.service.db.begin() as connection:
                broadcasts.untake(connection, taken)
        if tasks:
            await asyncio.gather(*tasks)

    def _take(self, ids: list[int]) -> set[int]:
        """Mark the next recipients `sending` before their requests: a kill leaves them in flight.

        A few at a time (IN_FLIGHT), not one by one: bench/broadcast_bench.py's bot took 25.4
        CPU-seconds with a write per message, 13.2 with one per 32 (13.4 before any marking).
        """
        with self.service.db.begin() as connection:
            return broadcasts.take_for_sending(connection, ids, self.service.clock())

    async def _one(
        self, row: RowMapping, texts: dict[str, str], record: Outcome, slots: asyncio.Semaphore
    ) -> None:
        """Send one message (the pacer waits out 429s); record the outcome."""
        message = {"chat_id": row["recipient"], "text": texts.get(row["language"], texts["th"])}
        try:
            await self.bot.do_api_request("sendMessage", message, rate_limit_args=TURN_TAKEN)
            record([row["id"]], "sent")
            self._busy.discard(row["id"])
        except Forbidden:
            record([row["id"]], "failed", "blocked the bot")
            self.service.set_reachable(PLATFORM, row["recipient"], False)
            self._busy.discard(row["id"])
        except BadRequest as error:
            record([row["id"]], "failed", str(error)[:200])
            self._busy.discard(row["id"])
        except TelegramError as error:
            # a 5xx, the network, 429s past the pacer's patience: worth trying again, later
            log.warning("a broadcast message failed (%s); it is tried again later",
                        type(error).__name__)  # fmt: skip
            record([row["id"]], RETRY, f"Telegram: {error}"[:120])
            self._busy.discard(row["id"])
        finally:
            slots.release()
