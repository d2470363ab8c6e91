"""Builds chat exports in a worker process, so the bot answers everyone while one is made."""

import asyncio
import contextvars
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor

from bot.app.service import WelfareService
from bot.reports.export_job import build_in_worker

log = logging.getLogger(__name__)


def worker_pool() -> Executor:
    """Return one worker process for exports.

    A process, not a thread: a thread writing 100,000 rows holds the GIL and delays every
    volunteer's answer on the event loop (bench/export_bench.py measures both).
    """
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_yield_to_bot)


def _yield_to_bot() -> None:
    """Lower the worker's priority: on a busy machine the bot's answers get the CPU first."""
    if hasattr(os, "nice"):
        os.nice(10)


class Exporter:
    """Takes each export asked for in chat, builds it off the event loop, and sends it."""

    def __init__(self, service: WelfareService, pool: Executor | None = None) -> None:
        self.service = service
        self._pool = pool
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Build exports as they are asked for, and those a restart left unbuilt."""
        self.service.on_export = self.schedule
        for export_id in self.service.pending_exports():
            self.schedule(export_id)

    async def stop(self) -> None:
        """Finish the exports in flight and stop the worker."""
        self.service.on_export = None
        await self.idle()
        if self._pool is not None:
            self._pool.shutdown()

    def schedule(self, export_id: int) -> None:
        """Start building one export."""
        # a fresh context: the asking turn's connection (a queue worker's) is not the export's
        task = asyncio.get_running_loop().create_task(
            self._build(export_id), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _build(self, export_id: int) -> None:
        service = self.service
        if self._pool is None:
            self._pool = worker_pool()
        url = service.db.url.render_as_string(hide_password=False)
        try:
            rows: int | None = await asyncio.get_running_loop().run_in_executor(
                self._pool, build_in_worker, url, export_id, str(service.data_dir),
                service.province.code,
            )  # fmt: skip
        except Exception:
            log.exception("export %s failed", export_id)
            rows = None
        delivery = service.complete_export(export_id, rows)
        if delivery is not None and service.on_outbox is not None:
            service.on_outbox(delivery)

    async def idle(self) -> None:
        """Wait until every export started so far is built and handed on."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
