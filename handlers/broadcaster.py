"""Sends due broadcasts: one run at a time per worker, held as broadcast_hold.py says, paced.

Every recipient's row is written before anything is sent and updated as each send ends, so a
worker killed mid-run leaves exactly the unsent rows pending (and the ones in flight `sending`);
whoever takes the run over (another worker within seconds on PostgreSQL, the same process
after a restart on SQLite) sends only those. A send that fails for now (a 5xx, the network) is
tried again after RETRY_DELAYS, then given up on with its reason.
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy.engine import RowMapping

from bot.app.service import WelfareService
from bot.conversation import views
from bot.domain.calendar import fiscal_year
from bot.domain.i18n import text
from bot.domain.messages import Notice, Reply
from bot.domain.schedule import QuietHours
from handlers import metrics
from handlers.broadcast_hold import RunHold, run_hold
from storage import broadcasts

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)
DRAFT_IDLE = timedelta(hours=24)
# how often a worker looks for due broadcasts, and so the wait before a dead one's run is taken
TICK_SECONDS = 2.0
# the waits after a recipient's 1st, 2nd … failed send; one more failure gives up (7 attempts
# over about half an hour: a platform's outage of minutes is ridden out, a dead one is reported)
RETRY_DELAYS = tuple(timedelta(seconds=30 * 2**n) for n in range(6))
# the status a sender records for a send that failed for now and is worth trying again
RETRY = "retry"


class Outcome(Protocol):
    """Records what became of recipients (called by senders as each send ends)."""

    def __call__(self, ids: Sequence[int], status: str, reason: str | None = None) -> None:
        """Record a status for deliveries (RETRY: failed for now, with why)."""


class Sender(Protocol):
    """Sends one run's messages on one platform."""

    platform: str

    async def send(
        self,
        run_id: int,
        texts: dict[str, str],
        record: Outcome,
        open_now: Callable[[], bool],
    ) -> None:
        """Send to every pending recipient of a run while open_now() holds."""

    async def quota_left(self) -> int | None:
        """Return how many more messages the platform allows this month (None: no limit)."""


def message_texts(run: RowMapping) -> dict[str, str]:
    """Return a run's message per language, each saying how to turn reminders off."""
    return {
        "th": f"{run['text_th']}\n\n{text('th', 'broadcast.footer')}",
        "en": f"{run['text_en'] or run['text_th']}\n\n{text('en', 'broadcast.footer')}",
    }


class Broadcaster:
    """Starts due runs and sends them through the platforms' senders."""

    def __init__(
        self,
        service: WelfareService,
        senders: Sequence[Sender],
        quiet: QuietHours | None = None,
        worker: str | None = None,
        lease: timedelta = LEASE,
        hold: RunHold | None = None,
    ) -> None:
        self.service = service
        self.senders = {sender.platform: sender for sender in senders}
        self.quiet = quiet or QuietHours()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        # the lease is SQLite's only: how long a run stays claimed without renewal
        self.hold = hold or run_hold(service.db, self.worker, lease, service.clock)
        self._task: asyncio.Task[None] | None = None

    def start(self, every: float = TICK_SECONDS) -> None:
        """Look for work every few seconds."""
        self._task = asyncio.create_task(self._forever(every))

    async def stop(self) -> None:
        """Stop looking for work (a run in progress stays pending for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self, every: float) -> None:
        while True:
            try:
                self.remind_drafts()
                while await self.tick():
                    pass
            except Exception:
                log.exception("sending broadcasts failed; trying again shortly")
            await asyncio.sleep(every)

    def remind_drafts(self) -> int:
        """Queue one reminder to each volunteer whose draft has been idle for a day."""
        now = self.service.clock()
        if self.quiet.quiet(now):
            return 0
        queued = []
        with self.service.db.begin() as connection:
            for row in broadcasts.idle_drafts(connection, now - DRAFT_IDLE):
                reply = views.draft_reminder(row["language"])
                notice = Notice(row["platform"], row["platform_user_id"], (reply,))
                queued.append(self.service.queue(connection, notice))
                broadcasts.mark_reminded(connection, row["id"], now)
        for delivery in queued:
            if self.service.on_outbox is not None:
                self.service.on_outbox(delivery)
        return len(queued)

    async def tick(self) -> bool:
        """Start what is due and send one run; tell whether a run was worked on."""
        now = self.service.clock()
        if self.quiet.quiet(now):
            return False
        with self.service.db.begin() as connection:
            broadcasts.start_due(connection, now)
        with self.hold.claim(now) as run:
            if run is None:
                return False
            with self.service.db.begin() as connection:
                broadcasts.materialize(connection, run, fiscal_year(now), now)
            if await self._within_quota(run):
                await self._send(run)
        return True

    async def _within_quota(self, run: RowMapping) -> bool:
        """Refuse the whole broadcast if LINE's monthly quota cannot carry it."""
        sender = self.senders.get("line")
        if sender is None:
            return True
        with self.service.db.begin() as connection:
            waiting = broadcasts.count_pending(connection, run["id"], "line")
            # runs of other workers count too: each writes its rows before it weighs them, so
            # of two runs weighed at once each sees the other's (LINE counts neither yet)
            elsewhere = broadcasts.count_pending_elsewhere(connection, run["id"], "line")
        if not waiting:
            return True
        left = await sender.quota_left()
        if left is None or waiting + elsewhere <= left:
            return True
        reason = f"LINE quota: {waiting} recipients, {left} messages left this month"
        if elsewhere:
            reason += f", {elsewhere} of them taken by broadcasts still sending"
        log.warning("broadcast %s refused: %s", run["broadcast_id"], reason)
        platform, _, user = str(run["created_by"]).partition(":")
        told = None
        with self.service.db.begin() as connection:
            broadcasts.refuse(connection, run["broadcast_id"], reason, self.service.clock())
            if platform in self.senders:
                language = self.service.default_language
                refusal = text(language, "bc.refused", id=run["broadcast_id"], reason=reason)
                told = self.service.queue(connection, Notice(platform, user, (Reply(refusal),)))
        if told is not None and self.service.on_outbox is not None:
            self.service.on_outbox(told)
        return False

    async def _send(self, run: RowMapping) -> None:
        """Send a run on every platform at once, while this worker still holds it."""
        texts = message_texts(run)
        keeper = asyncio.create_task(self.hold.keep(run["id"]))

        def record(ids: Sequence[int], status: str, reason: str | None = None) -> None:
            now = self.service.clock()
            done = len(ids)
            with self.service.db.begin() as connection:
                if status == RETRY:
                    # only those given up on are done (failed); the others wait their turn
                    done = broadcasts.retry_later(connection, ids, reason or status, now,
                                                  RETRY_DELAYS)  # fmt: skip
                    status = "failed"
                else:
                    broadcasts.mark(connection, ids, status, now, reason)
            metrics.BROADCAST_SENT.labels(status).inc(done)

        def open_now() -> bool:
            return not keeper.done() and not self.quiet.quiet(self.service.clock())

        try:
            await asyncio.gather(
                *(s.send(run["id"], texts, record, open_now) for s in self.senders.values())
            )
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        with self.service.db.begin() as connection:
            broadcasts.finish_if_done(connection, run["id"], self.service.clock())
