"""A queue worker on PostgreSQL: handles stored events one volunteer at a time, across processes.

The stored events are the jobs (storage/queue.py): a worker takes a volunteer's turn (an advisory
lock on its own connection), handles that volunteer's oldest waiting event, sends the replies,
records them and gives the turn back. A worker that dies loses its connections, so its turns and
its unsent outbox rows are free for the others at once; the sweep picks the rows up within a
second. LISTEN/NOTIFY wakes workers as events are stored; a poll catches anything missed.
"""

import asyncio
import contextlib
import contextvars
import logging
import secrets
from collections.abc import Awaitable, Coroutine, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from bot.app.service import TURN, Delivery, WelfareService
from handlers import metrics
from storage import queue

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
SWEEP_SECONDS = 1.0
# volunteers whose orphaned rows one platform's sweep sends at once; each holds a turn (a pooled
# connection) while it sends, so 8 turns + 2 platforms x 4 + the worker's own stay within the
# pool's 20 (storage/db.py) with room for the short transactions between them
SWEEP_IN_FLIGHT = 4


class Channel(Protocol):
    """What a worker needs of a platform's channel."""

    def process(
        self, payload: dict[str, Any], received_at: datetime | None = None
    ) -> Awaitable[None]:
        """Handle one stored event (stored at received_at) and send its replies."""

    def deliver(self, delivery: Delivery) -> Awaitable[bool]:
        """Send one outbox row's replies and confirm them; False when it is kept to retry."""


class Worker:
    """Takes waiting events off the shared queue, a few volunteers at a time."""

    def __init__(
        self,
        service: WelfareService,
        channels: Mapping[str, Channel],
        concurrency: int = 8,
        poll_seconds: float = POLL_SECONDS,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.service = service
        self.channels = dict(channels)
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self._busy: set[str] = set()
        self._turns: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._life: Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Register as a live worker, then listen, take events and sweep for orphaned replies."""
        self._life = self.service.db.connect()
        while True:
            worker_id = secrets.randbelow(2**31 - 2) + 1
            if queue.hold_worker(self._life, worker_id):
                break
        self.service.owner = worker_id
        log.info("queue worker %s started", worker_id)
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._take_forever()),
            # each platform swept on its own: a slow LINE never holds Telegram's rows back
            *(asyncio.create_task(self._sweep_forever(platform)) for platform in self.channels),
        ]

    async def stop(self, grace: float) -> None:
        """Stop taking events, let turns in progress finish for up to grace seconds, then go."""
        self._stopping.set()
        self._wake.set()
        if self._turns:
            _done, late = await asyncio.wait(set(self._turns), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d events unfinished; another worker redoes them", len(late))
                await asyncio.gather(*late, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._life is not None:
            self._life.close()

    # taking events ------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Wake the taker whenever a web process stores events (NOTIFY), reconnecting on loss."""
        import psycopg

        url = self.service.db.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {queue.CHANNEL}")
                    async for _notice in connection.notifies():
                        self._wake.set()
            except psycopg.Error as error:
                log.warning("listening for new events failed (%s); polling meanwhile", error)
                await asyncio.sleep(self.poll_seconds)

    async def _take_forever(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._take()
            except Exception:
                log.exception("looking for events failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def _take(self) -> None:
        """Start a turn for each volunteer whose oldest event waits, up to the free slots."""
        free = self.concurrency - len(self._turns)
        if free <= 0:
            return
        with self.service.db.connect() as connection:
            # more than the free slots: some heads belong to volunteers busy in other workers
            rows = queue.waiting(connection, list(self.channels), free * 4 + 16)
        for row in rows:
            if free <= 0:
                break
            key = f"{row.platform}:{row.user_key or f'event-{row.id}'}"
            if key in self._busy:
                continue
            self._busy.add(key)
            free -= 1
            self._spawn(self._turn(key, row.platform, row.user_key, row.id))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # a fresh context: a turn's connection must never leak into tasks it starts
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            work, context=contextvars.Context()
        )
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _turn(self, key: str, platform: str, recipient: str | None, event_pk: int) -> None:
        """Handle one volunteer's oldest event under their turn, if nobody else has it."""
        try:
            with self._holding(key) as connection:
                if connection is None:
                    return
                waiting = queue.still_waiting(connection, event_pk)
                if waiting is None:
                    return
                payload, received_at = waiting
                channel = self.channels[platform]
                with metrics.HANDLING.labels(platform).time():
                    # what a dead worker left unsent for this volunteer goes first, in order
                    orphans = self.service.claim_orphans(platform, recipient) if recipient else []
                    for delivery in orphans:
                        await channel.deliver(delivery)
                    await channel.process(payload, received_at)
                    self.service.flush_delivered()
                    if recipient:
                        # a send that failed (the platform down) is retried by the next sweep
                        self.service.release_unsent(platform, recipient)
                metrics.HANDLED.labels(platform).inc()
        except Exception:
            log.exception("handling a queued event failed; it stays queued")
        finally:
            self._busy.discard(key)
            self._wake.set()

    @contextlib.contextmanager
    def _holding(self, key: str):  # type: ignore[no-untyped-def]
        """Yield a connection holding the volunteer's turn (None when another session has it)."""
        connection = self.service.db.connect()
        taken = False
        try:
            taken = queue.take_turn(connection, key)
            if not taken:
                yield None
                return
            token = TURN.set(connection)
            try:
                yield connection
            finally:
                TURN.reset(token)
        finally:
            try:
                if taken:
                    connection.rollback()
                    queue.end_turn(connection, key)
            except Exception:
                # a connection that may still hold the turn must not go back to the pool
                connection.invalidate()
            connection.close()

    # orphaned replies ---------------------------------------------------------------------------

    async def _sweep_forever(self, platform: str) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self._sweep(platform)
            except Exception:
                log.exception("taking over orphaned replies failed; trying again shortly")

    async def sweep(self) -> int:
        """Send outbox rows that no live worker owns, every platform at once; return how many."""
        return sum(await asyncio.gather(*(self._sweep(platform) for platform in self.channels)))

    async def _sweep(self, platform: str) -> int:
        """Send one platform's orphaned rows that are due, a few volunteers at a time."""
        recipients = self.service.orphaned_recipients(platform)
        slots = asyncio.Semaphore(SWEEP_IN_FLIGHT)
        sent = await asyncio.gather(
            *(self._send_orphans(platform, recipient, slots) for recipient in recipients)
        )
        return sum(sent)

    async def _send_orphans(self, platform: str, recipient: str, slots: asyncio.Semaphore) -> int:
        """Send one volunteer's orphaned rows in order under their turn; return how many went.

        The rows are claimed only once the turn is held, so a turn of theirs elsewhere never
        finds them claimed and goes on without them. A row that fails waits longer before each
        new try (storage/queue.py), and the rows behind it wait with it, never overtaking it.
        """
        key = f"{platform}:{recipient}"
        sent = 0
        async with slots:
            if key in self._busy:
                return 0  # their turn is on here; a later sweep takes what it leaves
            self._busy.add(key)
            try:
                with self._holding(key) as connection:
                    if connection is None:
                        return 0  # another worker has the volunteer: it sends these first
                    deliveries = self.service.claim_orphans(platform, recipient, due_only=True)
                    try:
                        for delivery in deliveries:
                            if not await self._try(platform, delivery):
                                break
                            sent += 1
                        self.service.flush_delivered()
                    finally:
                        # what was not sent goes back: the failed row after its wait, the rest
                        # at once (they wait behind it all the same)
                        rest = [d.outbox_id for d in deliveries[sent:]]
                        self.service.retry_later(rest[:1])
                        self.service.release(rest[1:])
            except Exception:
                # rows claimed but not handed back stay this worker's until it restarts
                log.exception("sending orphaned replies failed")
            finally:
                self._busy.discard(key)
        return sent

    async def _try(self, platform: str, delivery: Delivery) -> bool:
        """Send one orphaned row; False when it failed and is kept for a later try."""
        try:
            return await self.channels[platform].deliver(delivery)
        except Exception:
            log.exception("an orphaned reply failed again; it is tried again later")
            return False
