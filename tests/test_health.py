"""/healthz and the schema check at start: the database answers, at the revision the code needs."""

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bot.app.settings import Settings
from bot.app.wiring import build_service
from handlers.web import create_app
from storage.db import SchemaOutdated, head_revision, make_engine, upgrade
from tests.conftest import throwaway_postgres


async def health(url: str) -> tuple[int, dict[str, str]]:
    """Ask the real web app's /healthz about a database; return the status and the body."""
    transport = httpx.ASGITransport(app=create_app([], make_engine(url)))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        response = await client.get("/healthz")
    return response.status_code, response.json()


async def test_healthz_is_ok_at_the_newest_schema(sqlite_url: str) -> None:
    """A reachable database at the head revision is healthy, and says which revision it is."""
    status, body = await health(sqlite_url)
    assert (status, body["status"], body["schema"]) == (200, "ok", head_revision())


async def test_healthz_logs_nothing_when_healthy(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A health check every 2 s per process (Caddy's) adds no line to the logs when all is well."""
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        status, body = await health(pg_url)
        assert (status, body["schema"]) == (200, head_revision())
    # httpx is the test's own client, logging its requests
    logged = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "httpx"]
    assert [r.getMessage() for r in logged] == []


async def test_healthz_fails_on_an_empty_database(tmp_path: Path) -> None:
    """A database with no schema at all is 503, and says so."""
    status, body = await health(f"sqlite:///{tmp_path / 'empty.db'}")
    assert status == 503
    assert "no schema" in body["database"]


async def test_healthz_fails_when_the_database_is_down() -> None:
    """A database that refuses connections is 503, not ok."""
    status, body = await health("postgresql://postgres@127.0.0.1:1/none")
    assert (status, body) == (503, {"status": "error", "database": "unreachable"})


async def test_healthz_fails_on_an_old_schema(tmp_path: Path) -> None:
    """A database one migration behind is 503 and says what to run."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    status, body = await health(url)
    assert status == 503
    assert "run `welfarebot db upgrade`" in body["database"]


@pytest.fixture
def old_postgres() -> Iterator[str]:
    """Return a fresh PostgreSQL database left at the first schema revision."""
    yield from throwaway_postgres("0001")


def test_postgresql_at_an_old_schema_refuses_to_start(old_postgres: str) -> None:
    """PostgreSQL is never upgraded on start: an old schema stops the start with what to run."""
    with pytest.raises(SchemaOutdated, match="run `welfarebot db upgrade`"):
        build_service(Settings(database_url=old_postgres))
    upgrade(old_postgres)
    assert build_service(Settings(database_url=old_postgres)).db.dialect.name == "postgresql"


def test_sqlite_still_upgrades_itself_on_start(tmp_path: Path) -> None:
    """One process owns an SQLite file, so it keeps upgrading it on start."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    service = build_service(Settings(database_url=url))
    with service.db.connect() as connection:
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert found == head_revision()
