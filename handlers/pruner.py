"""Runs the retention job in the running bot: at start, then periodically, off the event loop."""

import asyncio
import contextlib
import logging

from bot.app.service import WelfareService

log = logging.getLogger(__name__)
PRUNE_SECONDS = 3600.0


class Pruner:
    """Prunes what is past its retention period, every hour by default."""

    def __init__(self, service: WelfareService, every: float = PRUNE_SECONDS) -> None:
        self.service = service
        self.every = every
        # set after each pruning, finished or failed
        self.ran = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Prune now and then every period."""
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
                pruned = await asyncio.to_thread(self.service.prune)
                log.info("pruned %s", pruned.summary())
            except Exception:
                log.exception("pruning failed; trying again next time")
            self.ran.set()
            await asyncio.sleep(self.every)
