"""Set-up done at start by one process at a time (the LINE rich menu): a session advisory lock.

Every web and worker process starts with the same set-up, often all at once. On PostgreSQL a
session advisory lock (SETUP, the set-up's name's hash) lets one do it while the others wait,
then find it done; it goes with the session if that process dies. SQLite has one process.
"""

from sqlalchemy import Connection, text

from storage.queue import SETUP

_HOLD = text("SELECT pg_try_advisory_lock(:ns, hashtext(:name))").bindparams(ns=SETUP)
_LET_GO = text("SELECT pg_advisory_unlock(:ns, hashtext(:name))").bindparams(ns=SETUP)


def hold(connection: Connection, name: str) -> bool:
    """Take a set-up's lock on this session; False when another session holds it."""
    got = bool(connection.execute(_HOLD, {"name": name}).scalar_one())
    connection.commit()
    return got


def let_go(connection: Connection, name: str) -> None:
    """Give a set-up's lock back."""
    connection.execute(_LET_GO, {"name": name})
    connection.commit()
