"""How a worker holds the broadcast run it sends: a session lock on PostgreSQL, a lease on SQLite.

On PostgreSQL the run's advisory lock is held by a connection of the worker's own, like the
volunteers' turns (storage/queue.py): when the worker dies, the server ends its session and the
lock goes with it, so another worker's next tick (TICK_SECONDS) takes the run over, with no
lease to lapse. SQLite has no session locks, and only one process (`welfarebot run`) uses its
file, so there a lease renewed while sending stays: it only matters when that process is killed
and restarted, which then waits for the lease (BROADCAST_LEASE_SECONDS) before resuming.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import RowMapping

from storage import broadcasts

log = logging.getLogger(__name__)
# how often a sending worker checks that its lock's session is still alive
CHECK_SECONDS = 2.0


class RunHold(Protocol):
    """Claims a run for this worker and keeps it while the run is sent."""

    def claim(self, now: datetime) -> contextlib.AbstractContextManager[RowMapping | None]:
        """Hold the oldest run with work due that nobody holds, for the with-block (or None)."""

    async def keep(self, run_id: int) -> None:
        """Keep holding a claimed run; return only once it is no longer this worker's."""


def run_hold(db: Engine, worker: str, lease: timedelta, clock: Callable[[], datetime]) -> RunHold:
    """Return the way runs are held on this database."""
    if db.dialect.name == "postgresql":
        return SessionLock(db, worker)
    return Lease(db, worker, lease, clock)


class Lease:
    """A run claimed until a time, renewed while it is sent (SQLite)."""

    def __init__(
        self, db: Engine, worker: str, lease: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.worker = worker
        self.lease = lease
        self.clock = clock

    @contextlib.contextmanager
    def claim(self, now: datetime) -> Iterator[RowMapping | None]:
        """Lease a run for the with-block, then let it go."""
        with self.db.begin() as connection:
            run = broadcasts.claim_run(connection, self.worker, now, now + self.lease)
        try:
            yield run
        finally:
            if run is not None:
                with self.db.begin() as connection:
                    broadcasts.release(connection, run["id"])

    async def keep(self, run_id: int) -> None:
        """Renew the lease; return if another worker took the run (the lease lapsed)."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 4)
            with self.db.begin() as connection:
                until = self.clock() + self.lease
                if not broadcasts.renew(connection, run_id, self.worker, until):
                    log.warning("lost the lease on broadcast run %s", run_id)
                    return


class SessionLock:
    """A run held by an advisory lock on a connection of its own (PostgreSQL)."""

    def __init__(self, db: Engine, worker: str, check_every: float = CHECK_SECONDS) -> None:
        self.db = db
        self.worker = worker
        self.check_every = check_every
        self._held: dict[int, Connection] = {}

    @contextlib.contextmanager
    def claim(self, now: datetime) -> Iterator[RowMapping | None]:
        """Lock the oldest run with work due that no live session holds, for the with-block."""
        connection = self.db.connect()
        run: RowMapping | None = None
        try:
            for run_id in broadcasts.runs_due(connection, now):
                if not broadcasts.hold_run(connection, run_id):
                    continue
                # re-read under the lock: its holder may have finished it just before dying
                run = broadcasts.take_held(connection, run_id, self.worker, now)
                if run is not None:
                    break
                broadcasts.let_go(connection, run_id)
            if run is not None:
                self._held[run["id"]] = connection
            yield run
        finally:
            try:
                connection.rollback()
                if run is not None:
                    self._held.pop(run["id"], None)
                    broadcasts.let_go(connection, run["id"])
            except Exception:
                # a connection that may still hold the lock must not go back to the pool
                connection.invalidate()
            connection.close()

    async def keep(self, run_id: int) -> None:
        """Check the lock's session every few seconds; return once it is gone."""
        connection = self._held[run_id]
        while True:
            await asyncio.sleep(self.check_every)
            try:
                held = broadcasts.still_held(connection, run_id)
            except Exception:
                log.exception("lost the connection holding broadcast run %s", run_id)
                return
            if not held:
                log.warning("lost the lock on broadcast run %s", run_id)
                return
