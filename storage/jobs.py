"""Periodic jobs run once per occurrence across workers: a row's next time, and a session lock.

A job's row says when it is next due. The worker that finds it due takes the job's lock, checks
again, runs it and moves the time on: on PostgreSQL a session advisory lock (JOBS, the name's
hash) on a connection of its own, gone with the session if the worker dies, so the job stays
due and the next worker to look runs it. SQLite has one process, so there it needs no lock.
Each function ends its transaction: the connection may hold the lock a long while.
"""

from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain.calendar import as_utc
from storage.models import ScheduledJob
from storage.queue import JOBS

_jobs = cast(Table, ScheduledJob.__table__)
_HOLD = text("SELECT pg_try_advisory_lock(:ns, hashtext(:name))").bindparams(ns=JOBS)
_LET_GO = text("SELECT pg_advisory_unlock(:ns, hashtext(:name))").bindparams(ns=JOBS)


def _postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def due(connection: Connection, name: str, now: datetime) -> bool:
    """Tell whether a job is due (one that never ran is)."""
    next_at = connection.execute(select(_jobs.c.next_at).where(_jobs.c.name == name)).scalar()
    connection.commit()
    return next_at is None or as_utc(next_at) <= now


def hold(connection: Connection, name: str) -> bool:
    """Take a job's lock on this session; False when another session holds it."""
    if not _postgresql(connection):
        return True
    got = bool(connection.execute(_HOLD, {"name": name}).scalar_one())
    connection.commit()
    return got


def let_go(connection: Connection, name: str) -> None:
    """Give a job's lock back."""
    if _postgresql(connection):
        connection.execute(_LET_GO, {"name": name})
        connection.commit()


def done(connection: Connection, name: str, now: datetime, next_at: datetime) -> None:
    """Record a run of a job that finished now, and when it is next due."""
    insert = postgresql.insert if _postgresql(connection) else sqlite.insert
    statement = insert(_jobs).values(name=name, next_at=next_at, ran_at=now, runs=1)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[_jobs.c.name],
            set_={"next_at": next_at, "ran_at": now, "runs": _jobs.c.runs + 1},
        )
    )
    connection.commit()
