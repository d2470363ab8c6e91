"""Pooled PostgreSQL connections: pinged only after lying idle, replaced when found dead."""

import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from storage.db import make_engine


def end_session_of(engine: Engine, url: str) -> None:
    """End the server session behind the engine's one pooled connection, as a restart would."""
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = make_engine(url)
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        gone = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        deadline = time.monotonic() + 10
        # the server ends the session asynchronously: wait until it no longer lists it
        while connection.execute(gone, {"pid": pid}).scalar_one():
            assert time.monotonic() < deadline, "the session did not end"
            connection.rollback()
    admin.dispose()


def test_an_idle_connection_found_dead_is_replaced(postgres_url: str) -> None:
    """A connection idle past the threshold is pinged; a dead one gives way to a new one."""
    engine = make_engine(postgres_url, ping_after=0.0)
    end_session_of(engine, postgres_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(postgres_url: str) -> None:
    """Under load no checkout pays a round trip: a dead recent connection fails its first use."""
    engine = make_engine(postgres_url, ping_after=3600.0)
    end_session_of(engine, postgres_url)
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    # the failure invalidated the pool: the next use gets a live connection
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()
