"""Runs the retention job in the running bot: hourly across all workers, off the event loop.

Every worker looks every CHECK_SECONDS whether the pruning is due (storage/jobs.py); the one
that finds it due and takes the job's lock prunes, then sets the next time an hour on. So with
any number of workers each hour's pruning runs once; one killed mid-pruning leaves it due, and
another worker prunes on its next look.
"""

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.app.service import WelfareService
from storage import jobs
from storage.retention import Pruned

log = logging.getLogger(__name__)
JOB = "retention"
PRUNE_SECONDS = 3600.0
# a look costs one indexed read; often enough that a killed worker's pruning is soon redone
CHECK_SECONDS = 5.0


class Pruner:
    """Prunes what is past its retention period, every hour by default."""

    def __init__(
        self,
        service: WelfareService,
        every: float = PRUNE_SECONDS,
        check_every: float = CHECK_SECONDS,
    ) -> None:
        self.service = service
        self.every = timedelta(seconds=every)
        self.check_every = check_every
        # set after each pruning this worker ran, finished or failed
        self.ran = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Prune now if due, and look again every few seconds."""
        self._task = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        """Stop pruning (a pruning under way finishes its batch)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        while True:
            try:
                # in a thread: a large first pruning must not hold up anyone's answer
                pruned = await asyncio.to_thread(self.prune_if_due)
                if pruned is not None:
                    log.info("pruned %s", pruned.summary())
                    self.ran.set()
            except Exception:
                log.exception("pruning failed; trying again shortly")
                self.ran.set()
            await asyncio.sleep(self.check_every)

    def prune_if_due(self) -> Pruned | None:
        """Prune if it is due and no other worker is at it; return what went (None: not run)."""
        if not self._due():
            return None
        connection = self.service.db.connect()
        held = False
        try:
            held = jobs.hold(connection, JOB)
            # again under the lock: another worker may have pruned since the first look
            if not held or not jobs.due(connection, JOB, self.service.clock()):
                return None
            pruned = self.service.prune()
            now = self.service.clock()
            jobs.done(connection, JOB, now, now + self.every)
            return pruned
        finally:
            try:
                connection.rollback()
                if held:
                    jobs.let_go(connection, JOB)
            except Exception:
                # a connection that may still hold the lock must not go back to the pool
                connection.invalidate()
            connection.close()

    def _due(self) -> bool:
        with self.service.db.connect() as connection:
            return jobs.due(connection, JOB, self.service.clock())
