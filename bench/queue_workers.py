"""The worker processes of bench/queue_bench.py: our queue's worker, or a procrastinate worker.

Both run the same trivial job on the same engine: read the stored event while it still waits,
then in one transaction mark it processed (`inbox.claim_event`, as the bot does) and write one
row to `bench_done`. So the two differ only in how a job is found, locked and finished.

    python bench/queue_workers.py ours|procrastinate --database-url URL [--stall-flag FILE]

A worker prints "ready" once set up, waits for a line on stdin, then works until killed.
"""

import argparse
import asyncio
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, make_url, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.service import TURN  # noqa: E402
from handlers.worker import Worker  # noqa: E402
from storage import inbox, queue  # noqa: E402
from storage.db import make_engine  # noqa: E402

PLATFORM = "line"
TASK = "bench_handle_event"
RETRY_TASK = "bench_retry_stalled_jobs"
DONE_TABLE = (
    "CREATE TABLE bench_done (id bigserial PRIMARY KEY, volunteer text NOT NULL,"
    " seq int NOT NULL, enqueued double precision NOT NULL, done double precision NOT NULL,"
    " worker int NOT NULL)"
)
_DONE = text(
    "INSERT INTO bench_done (volunteer, seq, enqueued, done, worker) VALUES (:v, :s, :t, :d, :w)"
)


def conninfo(url: str) -> str:
    """Return a libpq URI (no SQLAlchemy driver name) for psycopg and procrastinate."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def stalls_here(flag: str | None, payload: dict[str, Any]) -> bool:
    """True for the first worker to reach the event marked to stall; it leaves its pid by flag."""
    if flag is None or not payload.get("stall"):
        return False
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    Path(flag + ".tmp").write_text(str(os.getpid()))
    os.rename(flag + ".tmp", flag + ".pid")  # the bench sees the pid file only when complete
    return True


async def handle(connection: Connection, payload: dict[str, Any], flag: str | None) -> None:
    """Mark the event processed and write one row, in one transaction (the job of both engines)."""
    with connection.begin():
        if not inbox.claim_event(connection, PLATFORM, payload["event_id"]):
            return
        if stalls_here(flag, payload):
            await asyncio.sleep(3600)  # the bench SIGKILLs this process here, mid-transaction
        row = {
            "v": payload["volunteer"],
            "s": payload["seq"],
            "t": payload["t"],
            "d": time.time(),
            "w": os.getpid(),
        }
        connection.execute(_DONE, row)


class BenchService:
    """What handlers.worker.Worker needs of WelfareService, without the outbox.

    Sending replies (and a dead worker's unsent ones first) is the same work whichever queue
    finds the jobs, so neither engine does it here.
    """

    def __init__(self, url: str) -> None:
        self.db = make_engine(url)
        self.owner: int | None = None

    def claim_orphans(
        self, platform: str, recipient: str | None = None, due_only: bool = False
    ) -> list[Any]:
        """No outbox rows in this benchmark."""
        return []

    def orphaned_recipients(self, platform: str) -> list[str]:
        """No outbox rows in this benchmark."""
        return []

    def retry_later(self, outbox_ids: list[int]) -> None:
        """No outbox rows in this benchmark."""

    def release(self, outbox_ids: list[int]) -> None:
        """No outbox rows in this benchmark."""

    def flush_delivered(self) -> None:
        """No outbox rows in this benchmark."""

    def release_unsent(self, platform: str, recipient: str) -> None:
        """No outbox rows in this benchmark."""


class BenchChannel:
    """Handles a stored event on the connection that holds the volunteer's turn."""

    def __init__(self, flag: str | None) -> None:
        self.flag = flag

    async def process(self, payload: dict[str, Any], received_at: datetime | None = None) -> None:
        """Run the trivial job under the turn the worker took."""
        connection = TURN.get()
        assert connection is not None
        await handle(connection, payload, self.flag)

    async def deliver(self, delivery: Any) -> bool:
        """No outbox rows in this benchmark."""
        return True


async def ready_then_go() -> None:
    """Tell the bench this process is set up, then wait for its word to start."""
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def run_ours(url: str, concurrency: int, flag: str | None) -> None:
    """Run handlers.worker.Worker, the product's worker loop, on storage/queue.py."""
    service = BenchService(url)
    service.db.connect().close()
    worker = Worker(cast(Any, service), {PLATFORM: BenchChannel(flag)}, concurrency=concurrency)
    await ready_then_go()
    await worker.start()
    await asyncio.Event().wait()


async def run_procrastinate(
    url: str, concurrency: int, flag: str | None, heartbeat: float, stalled_after: float
) -> None:
    """Run a procrastinate worker with heartbeat-based retry of stalled jobs every second."""
    import procrastinate

    # it warns that an app made in __main__ cannot be found by import path; tasks go by name here
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    engine = make_engine(url)
    engine.connect().close()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))

    @app.task(name=TASK)
    async def handle_event(event_pk: int) -> None:
        with engine.connect() as connection:
            waiting = queue.still_waiting(connection, event_pk)
            if waiting is not None:
                await handle(connection, waiting[0], flag)

    # procrastinate's recipe for a killed worker's jobs, checked every second (6th field)
    @app.periodic(cron="* * * * * *")
    @app.task(name=RETRY_TASK, queueing_lock=RETRY_TASK)
    async def retry_stalled_jobs(timestamp: int) -> None:
        manager = app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
            await manager.retry_job(job)

    async with app.open_async():
        await ready_then_go()
        await app.run_worker_async(
            concurrency=concurrency,
            fetch_job_polling_interval=1.0,  # as our worker's POLL_SECONDS (default 5)
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=stalled_after,
        )


def main() -> None:
    """Run one worker process for the queue benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["ours", "procrastinate"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stall-flag")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--stalled-after", type=float, default=5.0)
    args = parser.parse_args()
    if args.engine == "ours":
        asyncio.run(run_ours(args.database_url, args.concurrency, args.stall_flag))
    else:
        asyncio.run(
            run_procrastinate(
                args.database_url,
                args.concurrency,
                args.stall_flag,
                args.heartbeat,
                args.stalled_after,
            )
        )


if __name__ == "__main__":
    main()
