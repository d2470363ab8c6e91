"""Shared fixtures: migrated SQLite files, PostgreSQL when configured, the service."""

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.app.service import WelfareService
from bot.domain.province import load_province
from storage.db import make_engine, normalize_url, upgrade
from storage.models import Base
from tests.fakes.line_api import FakeLine
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import Chat, Clock

PG_REASON = "TEST_DATABASE_URL is not set; PostgreSQL tests need a server (see .ci/run)"

# tests that run the bot as several processes and kill them: each already keeps both cores busy,
# so pytest-xdist runs them one after another on one worker while the other runs the rest
PROCESS_TESTS = {
    "test_soak", "test_scale_out", "test_broadcast_takeover", "test_scheduled_once",
    "test_crash", "test_line_crash", "test_broadcast_crash", "test_shared_rate",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the multi-process tests in one xdist group (`--dist loadgroup`)."""
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in PROCESS_TESTS:
            item.add_marker(pytest.mark.xdist_group("processes"))


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the data directory at a temporary folder, so no test writes the real one."""
    home = tmp_path / "welfarebot-home"
    monkeypatch.setenv("WELFAREBOT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an SQLite file migrated once by Alembic, to copy for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """Return the URL of a fresh migrated SQLite file."""
    path = tmp_path / "welfarebot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def throwaway_postgres(revision: str = "head") -> Iterator[str]:
    """Create a PostgreSQL database migrated to a revision, yield its URL, then drop it."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip(PG_REASON)
    name = f"welfarebot_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalize_url(base).rsplit("/", 1)[0] + f"/{name}"
    upgrade(url, revision)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Create a throw-away PostgreSQL database, migrated by Alembic, for this test session."""
    yield from throwaway_postgres()


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """Return the session's PostgreSQL database, emptied."""
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Return a fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def clock() -> Clock:
    """Return a clock set to 29 Nov 2026 10:00 Bangkok time (fiscal year 2570)."""
    return Clock()


def make_service(url: str, clock: Clock, data_dir: Path | None = None) -> WelfareService:
    """Return the real service on a database, its files under a directory."""
    return WelfareService(make_engine(url), load_province("CM"), "th", clock, data_dir=data_dir)


@pytest.fixture
def service(sqlite_url: str, clock: Clock, tmp_path: Path) -> WelfareService:
    """Return the service on a fresh SQLite file."""
    return make_service(sqlite_url, clock, tmp_path / "data")


@pytest.fixture
def any_service(db_url: str, clock: Clock, tmp_path: Path) -> WelfareService:
    """Return the service on each database backend in turn."""
    return make_service(db_url, clock, tmp_path / "data")


@pytest.fixture
def chat(service: WelfareService) -> Chat:
    """Return a volunteer chatting with the service."""
    return Chat(service)


# the platforms' fakes on loopback; a test file that needs other limits defines its own
@pytest.fixture
def telegram_fake() -> Iterator[FakeTelegram]:
    """Serve a fake Bot API on loopback."""
    fake = FakeTelegram(poll_cap=0.3)
    with serving(fake.app()) as server:
        fake.base_url = f"{server.url}/bot"  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def line_fake() -> Iterator[FakeLine]:
    """Serve a fake Messaging API that validates every call against LINE's spec."""
    fake = FakeLine()
    with serving(line_app(fake)) as server:
        fake.base_url = server.url  # type: ignore[attr-defined]
        yield fake
    assert fake.violations == [], "the bot sent something LINE would reject"
