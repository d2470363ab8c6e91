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
import time
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
# how long a turn waits, at most, for another live worker's rows of the volunteer to settle
SETTLE_SECONDS = 0.05
SETTLE_TRIES = 20
# a worker looks at once for the NOTIFYs of its share of the volunteers (storage.queue.share_of)
# and this long after one of another's share, in case that worker is busy or gone: both
# looking at every NOTIFY cost about one lost take_turn and one more look per event
STEAL_SECONDS = 0.1


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
        # the live workers' ids as last read, and when (monotonic seconds)
        self._peers: tuple[int, ...] = ()
        self._peers_at = float("-inf")
        self._steal: asyncio.TimerHandle | None = None

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
        if self._steal is not None:
            self._steal.cancel()
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
                    async for notice in connection.notifies():
                        self._notified(notice.payload)
            except psycopg.Error as error:
                log.warning("listening for new events failed (%s); polling meanwhile", error)
                await asyncio.sleep(self.poll_seconds)

    def _notified(self, payload: str) -> None:
        """Wake the taker now for this worker's share of a NOTIFY, a moment later for another's."""
        me = self.service.owner
        if me is None or queue.share_of(payload, self._peers, me):
            self._wake.set()
        elif self._steal is None:
            self._steal = asyncio.get_running_loop().call_later(STEAL_SECONDS, self._stolen)

    def _stolen(self) -> None:
        self._steal = None
        self._wake.set()

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
            if time.monotonic() - self._peers_at >= self.poll_seconds:
                self._peers = queue.live_workers(connection)
                self._peers_at = time.monotonic()
            # more than the free slots: some heads belong to volunteers busy in other workers
            share = queue.rank_of(self._peers, self.service.owner or 0)
            rows = queue.waiting(connection, list(self.channels), free * 4 + 16, share)
        for event_pk, platform, user_key in rows:
            if free <= 0:
                break
            key = f"{platform}:{user_key or f'event-{event_pk}'}"
            if key in self._busy:
                continue
            self._busy.add(key)
            free -= 1
            self._spawn(self._turn(key, platform, user_key, event_pk))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # a fresh context: a turn's connection must never leak into tasks it starts
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            work, context=contextvars.Context()
        )
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _turn(self, key: str, platform: str, recipient: str | None, event_pk: int) -> None:
        """Handle one volunteer's oldest event under their turn, if nobody else has it.

        Three round trips besides the event's own transaction: take the turn, look (is the event
        still waiting, did a dead worker leave this volunteer replies), and finish (delivered
        rows deleted, failed ones given back, and the turn, in one statement).
        """
        me = self.service.owner
        assert me is not None
        connection = self.service.db.connect()
        taken = ran = False
        try:
            taken = ran = queue.take_turn(connection, key)
            if not taken:
                return
            event, orphaned = await self._look(connection, event_pk, platform, recipient)
            if event is not None or orphaned:
                await self._handle(connection, platform, recipient, event, orphaned)
            done = self.service.delivered_ids()
            # a send that failed (the platform down) is given back, to retry after a wait
            queue.finish_turn(connection, key, done, platform, recipient, me, self.service.clock())
            taken = False
            self.service.forget_delivered(done)
        except Exception:
            log.exception("handling a queued event failed; it stays queued")
        finally:
            self._let_go(connection, key, taken)
            self._busy.discard(key)
            if ran:
                # look again at once: this volunteer's next event, or another's, may wait. Not
                # after a turn another worker holds: that worker goes on with the volunteer, and
                # looking again at once only lost take_turn over and over (2 workers, docs/
                # benchmarks.md); a NOTIFY, a turn of ours ending or the poll looks again
                self._wake.set()

    async def _look(
        self, connection: Connection, event_pk: int, platform: str, recipient: str | None
    ) -> tuple[tuple[dict[str, Any], datetime] | None, bool]:
        """Return the event (payload, arrival) while it waits, and whether orphans of it wait.

        Rows of the volunteer that another live worker owns are given a moment to settle: its
        courier finishes sending them, or the server notices that it died (a killed worker's
        sessions end one by one, so its turn can be free while it still looks alive); they then
        are orphans and go first, in order.
        """
        me = self.service.owner
        assert me is not None
        event, orphaned, elsewhere = queue.look(connection, event_pk, platform, recipient, me)
        for _ in range(SETTLE_TRIES):
            if not elsewhere:
                break
            await asyncio.sleep(SETTLE_SECONDS)
            event, orphaned, elsewhere = queue.look(connection, event_pk, platform, recipient, me)
        return event, orphaned

    async def _handle(
        self,
        connection: Connection,
        platform: str,
        recipient: str | None,
        event: tuple[dict[str, Any], datetime] | None,
        orphaned: bool,
    ) -> None:
        """Send what a dead worker left this volunteer, then handle the event, on the turn."""
        channel = self.channels[platform]
        token = TURN.set(connection)
        try:
            with metrics.HANDLING.labels(platform).time():
                # what a dead worker left unsent for this volunteer goes first, in order
                if orphaned and recipient:
                    for delivery in self.service.claim_orphans(platform, recipient):
                        await channel.deliver(delivery)
                if event is not None:
                    await channel.process(*event)
        finally:
            TURN.reset(token)
        if event is not None:
            metrics.HANDLED.labels(platform).inc()

    @staticmethod
    def _let_go(connection: Connection, key: str, taken: bool) -> None:
        """Close a turn's connection, giving the turn back if a failure left it held."""
        try:
            if taken:
                connection.rollback()
                queue.end_turn(connection, key)
        except Exception:
            # a connection that may still hold the turn must not go back to the pool
            connection.invalidate()
        connection.close()

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
            self._let_go(connection, key, taken)

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
