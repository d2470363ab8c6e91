"""One pace for everything the bot sends on Telegram: replies first, broadcasts fill the rest.

Telegram allows a bot about 30 messages a second in all; past it every call answers 429. The
`Pacer` hands out sends from a `Bucket` (the rate) to waiting callers in priority order:
replies to what a volunteer just did, then notices (status changes, reminders), then
broadcasts. Each kind waits in arrival order, so one chat's messages keep their order.

To share one rate among several processes (web and workers on PostgreSQL), give each
process's Pacer the same shared Bucket: anything with the two methods of `Bucket`, e.g. one
row updated by `UPDATE ... RETURNING` that holds the tokens, their time stamp and the end of a
429's pause. Priorities then hold within each process; the rate holds across all of them.

Why not python-telegram-bot's AIORateLimiter: it has no priorities (a broadcast of thousands
queued ahead would hold every reply behind it), its limiter lives in one process and cannot
be shared, and past `max_retries` (0 by default) it raises the 429 as an error.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Literal, Protocol

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from handlers import metrics

log = logging.getLogger(__name__)

Kind = Literal["reply", "notice", "broadcast"]
KINDS: tuple[Kind, ...] = ("reply", "notice", "broadcast")
# Telegram allows about 30 a second; a little under it leaves room for the jitter of the
# network and the event loop (measured: 28 gave no 429 in tests/test_telegram_pacing.py)
DEFAULT_RATE = 28.0
# calls that are not messages to anyone; Telegram does not count them against the rate
UNPACED = frozenset(
    {"getMe", "getFile", "getWebhookInfo", "setWebhook", "deleteWebhook", "setMyCommands",
     "deleteMyCommands", "close", "logOut"}
)  # fmt: skip
# a broadcast's sender takes its turn itself, to check quiet hours just before each send
TURN_TAKEN = "broadcast, turn taken"
# a call refused with 429 this many times in a row gives up (and stays in the outbox)
ATTEMPTS = 20


def seconds(wait: object) -> float:
    """Return a retry_after (seconds or a timedelta, by PTB's setting) in seconds."""
    total = getattr(wait, "total_seconds", None)
    return float(total() if callable(total) else wait)  # type: ignore[arg-type]


class Bucket(Protocol):
    """The rate every send is taken from; swap in a shared one to pace several processes."""

    async def take(self) -> float:
        """Take one send and return 0.0 if the rate allows it now; else return the seconds
        to wait before asking again, taking nothing."""

    async def hold(self, wait: float) -> None:
        """Allow no send for `wait` seconds (Telegram answered 429 with that retry_after)."""


class TokenBucket:
    """An in-process token bucket: a steady rate with a burst of at most `burst` sends.

    Any second then carries at most rate + burst sends, so rate + burst must stay within
    Telegram's limit (28 + 1 under 30).
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.clock = clock
        self.tokens = 1.0
        self.stamp = clock()
        self.paused_until = 0.0

    async def take(self) -> float:
        """Take one send if a token is there; else return the wait for the next."""
        now = self.clock()
        if now < self.paused_until:
            return self.paused_until - now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    async def hold(self, wait: float) -> None:
        """Hold every send back for `wait` seconds, and start again from an empty bucket."""
        self.paused_until = max(self.paused_until, self.clock() + wait)
        self.tokens = 0.0


class Pacer:
    """Hands out sends from a bucket to waiting callers: replies, then notices, then broadcasts.

    `await pacer.acquire(kind)` returns when this caller may send one message. Callers of one
    kind are served in the order they asked; a higher kind waiting always goes first.
    """

    def __init__(self, bucket: Bucket | None = None) -> None:
        self.bucket: Bucket = bucket if bucket is not None else TokenBucket()
        self._waiting: dict[Kind, deque[asyncio.Future[None]]] = {k: deque() for k in KINDS}
        self._runner: asyncio.Task[None] | None = None

    async def acquire(self, kind: Kind = "reply") -> None:
        """Wait until one message of this kind may be sent."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[kind].append(waiter)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._hand_out())
        await waiter

    async def hold(self, wait: float) -> None:
        """Hold every send back (a 429's retry_after), in every process sharing the bucket."""
        await self.bucket.hold(wait)

    def waiting(self) -> int:
        """Return how many callers wait for a send."""
        return sum(1 for queue in self._waiting.values() for w in queue if not w.done())

    def _next(self) -> asyncio.Future[None] | None:
        """Return the first caller still waiting, by priority (dropping those who gave up)."""
        for kind in KINDS:
            queue = self._waiting[kind]
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                return queue[0]
        return None

    async def _hand_out(self) -> None:
        while self._next() is not None:
            try:
                wait = await self.bucket.take()
            except Exception:
                # a shared bucket may be briefly out of reach; the callers wait, not fail
                log.warning("the Telegram rate bucket failed; trying again", exc_info=True)
                wait = 1.0
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            # chosen after the wait, so a reply that came meanwhile goes before a broadcast
            waiter = self._next()
            if waiter is not None:
                waiter.set_result(None)


class PacedRateLimiter(BaseRateLimiter[str]):
    """Puts every Bot API call of python-telegram-bot through a Pacer and honours 429s.

    A call's kind comes as `rate_limit_args` ("reply" when not given; `TURN_TAKEN` for a
    broadcast whose sender already waited its turn). A 429 holds the bucket for its
    retry_after and the call waits its turn again, so it is sent later, not dropped.
    """

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.retries_after = 0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for the call's turn, make it, and after a 429 wait and make it again."""
        if endpoint in UNPACED:
            return await callback(*args, **kwargs)
        taken = rate_limit_args == TURN_TAKEN
        kind: Kind = "broadcast" if taken else rate_limit_args or "reply"  # type: ignore[assignment]
        attempt = 1
        while True:
            if not taken:
                await self.pacer.acquire(kind)
            taken = False
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                self.retries_after += 1
                metrics.RATE_LIMITED.labels("telegram").inc()
                if attempt == ATTEMPTS:
                    raise
                wait = seconds(error.retry_after)
                log.info("Telegram asked to wait %.0f s (try %d); holding sends", wait, attempt)
                await self.pacer.hold(wait)
                attempt += 1
