"""Sends due broadcasts: one run at a time per worker under a lease, paced per platform.

Every recipient's row is written before anything is sent and updated as each send ends, so a
worker killed mid-run leaves exactly the unsent rows pending; whoever takes the run over
(the same process after a restart, or another worker once the lease lapses) sends only those.
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
from storage import broadcasts

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)
DRAFT_IDLE = timedelta(hours=24)
TICK_SECONDS = 5.0


class Outcome(Protocol):
    """Records what became of recipients (called by senders as each send ends)."""

    def __call__(self, ids: Sequence[int], status: str, reason: str | None = None) -> None:
        """Record a status for deliveries."""


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
    ) -> None:
        self.service = service
        self.senders = {sender.platform: sender for sender in senders}
        self.quiet = quiet or QuietHours()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        # how long a run stays claimed without renewal: after a crash, the wait to resume
        self.lease = lease
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
            run = broadcasts.claim_run(connection, self.worker, now, now + self.lease)
            if run is None:
                return False
            broadcasts.materialize(connection, run, fiscal_year(now), now)
        if not await self._within_quota(run):
            return True
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
        """Send a run on every platform at once, keeping the lease alive meanwhile."""
        texts = message_texts(run)
        keeper = asyncio.create_task(self._keep_lease(run["id"]))

        def record(ids: Sequence[int], status: str, reason: str | None = None) -> None:
            with self.service.db.begin() as connection:
                broadcasts.mark(connection, ids, status, self.service.clock(), reason)
            metrics.BROADCAST_SENT.labels(status).inc(len(ids))

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
            if not broadcasts.finish_if_done(connection, run["id"], self.service.clock()):
                broadcasts.release(connection, run["id"])

    async def _keep_lease(self, run_id: int) -> None:
        """Renew the lease on a run; end (stopping the senders) if another worker took it."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 4)
            now = self.service.clock()
            with self.service.db.begin() as connection:
                if not broadcasts.renew(connection, run_id, self.worker, now + self.lease):
                    log.warning("lost the lease on broadcast run %s", run_id)
                    return
