"""Database engines and sessions: SQLite in WAL with immediate write transactions, or PostgreSQL.

`engine.begin()` is a write transaction; `reading(engine)` is a read-only one, which on SQLite
never takes the write lock, so a long export reads while volunteers' answers commit.
"""

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, column, create_engine, event, exc, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
_VERSIONS = table("alembic_version", column("version_num"))
# a server that does not answer fails the start or a health check instead of hanging it
CONNECT_TIMEOUT_SECONDS = 10
READ_ONLY = "welfarebot_read_only"
# a pooled connection idle longer than this is pinged before use; one used more recently is
# trusted. Pinging on every checkout (pool_pre_ping) cost a round trip and about 0.2 ms of CPU on
# each of the queue's several checkouts per event (bench/scale_bench.py, see docs/benchmarks.md)
PING_IDLE_SECONDS = 5.0


class SchemaOutdated(Exception):
    """The database's schema is not the revision this version of the code needs."""


def normalize_url(url: str) -> str:
    """Return a URL with the project's drivers (psycopg 3 for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, ping_after: float = PING_IDLE_SECONDS) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and BEGIN IMMEDIATE transactions."""
    url = normalize_url(url)
    # hide_parameters keeps names and phone numbers out of error messages and logs
    if not url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_size=10,
            max_overflow=10,
            hide_parameters=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        ping_idle(engine, ping_after)
        return engine
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": 30},
        # every use ends its own transaction, so the pool's extra rollback on return is waste
        pool_reset_on_return=None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # let SQLAlchemy, not the driver, decide when transactions begin
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a killed process; only power loss can drop the last commits
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # a deferred transaction that later writes can fail at once with "database is locked",
        # so writers take the lock up front; readers never write, and in WAL never wait or block.
        # Issued on the driver's connection directly, as it runs once per inbound event
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.connection.dbapi_connection.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def ping_idle(engine: Engine, after: float) -> None:
    """Ping a pooled connection before use when it lay idle for `after` seconds; replace it if dead.

    A server restarted under a busy process still fails the first use of each connection
    already open, which also invalidates the rest of the pool (SQLAlchemy's optimistic handling).
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # the pool then opens a new connection in its place (it tries three times)
            raise exc.DisconnectionError() from error


def run_alone(connection: Connection, sql: LiteralString, params: Any) -> list[tuple[Any, ...]]:
    """Run one PostgreSQL statement committed on its own, on the driver's connection; its rows.

    For the queue's statements, run several times per event: psycopg in autocommit cost about
    0.1 ms of CPU a statement against 0.35-0.56 ms through SQLAlchemy Core with its BEGIN and
    COMMIT round trips (bench/scale_bench.py, docs/benchmarks.md). The SQLAlchemy connection
    must not be in a transaction.
    """
    driver = cast(psycopg.Connection[Any], connection.connection.driver_connection)
    driver.autocommit = True
    try:
        return driver.execute(sql, params).fetchall()
    finally:
        if not driver.closed:
            driver.autocommit = False


def run_within(
    connection: Connection, sql: LiteralString, params: Any, row_factory: Any = None
) -> "psycopg.Cursor[Any]":
    """Run one PostgreSQL statement in the connection's transaction, on the driver; its cursor.

    For the statements of every event's transaction: psycopg straight cost about 0.08 ms of CPU
    a statement against 0.16 ms through SQLAlchemy Core (docs/benchmarks.md, "Scale-out"). The
    transaction stays SQLAlchemy's, which commits or rolls it back.
    """
    if not connection.in_transaction():
        connection.begin()  # as SQLAlchemy's own execute would: the caller ends it
    driver = cast(psycopg.Connection[Any], connection.connection.driver_connection)
    if row_factory is None:
        return driver.execute(sql, params)
    return driver.cursor(row_factory=row_factory).execute(sql, params)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """Open a read-only transaction on its own connection: one snapshot, no write lock."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with connection.begin():
                yield connection
            return
        connection.execution_options(**{READ_ONLY: True})
        # on the driver's connection: outside a transaction, as SQLAlchemy would begin one
        driver = connection.connection.dbapi_connection
        assert driver is not None
        driver.execute("PRAGMA query_only = ON")
        try:
            with connection.begin():
                yield connection
        finally:
            driver.execute("PRAGMA query_only = OFF")


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory used by every repository call."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration for a database URL, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring a database's schema up to a revision (the newest by default)."""
    command.upgrade(alembic_config(url), revision)


@functools.cache  # the migrations ship with the code; /healthz asks every 2 s per process
def head_revision() -> str:
    """Return the newest schema revision this code has a migration for."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the database's schema revision (None for an empty database); connects once."""
    # read straight from Alembic's table: its MigrationContext logs two INFO lines each time,
    # and /healthz runs this every 2 s per process (deploy/Caddyfile)
    with engine.connect() as connection:
        if not inspect(connection).has_table(_VERSIONS.name):
            return None
        return connection.execute(select(_VERSIONS.c.version_num)).scalar()


def check_schema(engine: Engine) -> str:
    """Return the database's revision, or raise SchemaOutdated unless it is the newest."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        found = f"revision {current}" if current else "no schema"
        raise SchemaOutdated(
            f"The database has {found}, this version needs {head}: run `welfarebot db upgrade`."
        )
    return current
