"""Set-up that every process does at start, done by one process at a time (storage/setup.py)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import Engine

from storage import setup

# how often a process waiting for another's set-up asks again for its lock
WAIT_SECONDS = 0.5


@contextlib.asynccontextmanager
async def alone(db: Engine | None, name: str) -> AsyncIterator[None]:
    """Hold a set-up's lock for the with-block, waiting while another process holds it."""
    if db is None or db.dialect.name != "postgresql":
        yield  # SQLite: one process uses the file
        return
    # connecting can take seconds (CONNECT_TIMEOUT_SECONDS): off the loop that answers webhooks
    connection = await asyncio.to_thread(db.connect)
    try:
        # pg_try_advisory_lock, not a waiting pg_advisory_lock: a stop must not wait on a thread
        while not setup.hold(connection, name):  # noqa: ASYNC110 (another process's lock)
            await asyncio.sleep(WAIT_SECONDS)
        try:
            yield
        finally:
            setup.let_go(connection, name)
    except BaseException:
        # a connection that may still hold the lock must not go back to the pool
        connection.invalidate()
        raise
    finally:
        connection.close()
