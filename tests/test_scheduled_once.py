"""Two worker processes on PostgreSQL: each scheduled occurrence is sent, or run, exactly once.

Each occurrence is made due by setting its time a second in the past while both workers look
for work, as the clock reaching it would.
"""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.app.service import WelfareService
from bot.domain.audience import Audience
from bot.domain.province import load_province
from handlers.pruner import JOB
from storage.db import make_engine
from tests.bot_process import BotProcess, role_process
from tests.broadcast_support import add_volunteers, scheduled, wait_until
from tests.fakes.line_api import FakeLine
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.line_support import SECRET, TOKEN

OCCURRENCES = 3
BROADCAST = "ส่งรายงานประจำวันก่อนเที่ยงค่ะ"
# a worker looks every few seconds (broadcasts 2 s, the pruning 5 s); the rest is a loaded machine
WITHIN = 30.0


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[tuple[FakeLine, list[BotProcess], Engine]]:
    """A fake LINE, two worker processes on one database (not started), and that database."""
    fake = FakeLine()
    engine = make_engine(pg_url)
    with serving(line_app(fake)) as server:
        settings = {
            "DATABASE_URL": pg_url,
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE_URL": server.url,
            "LINE_DATA_API_BASE_URL": server.url,
            "QUIET_HOURS": "",
            "DRAIN_SECONDS": "2",
        }
        workers = [role_process(tmp_path, settings, "worker") for _ in range(2)]
        try:
            yield fake, workers, engine
        finally:
            fake.release()
            for worker in workers:
                worker.cleanup()
            engine.dispose()
    assert fake.violations == []


def _value(engine: Engine, query: str, **params: object) -> object:
    with engine.connect() as connection:
        return connection.execute(text(query), params).scalar()


def _pruned_lines(workers: list[BotProcess]) -> int:
    """Count the prunings the workers logged."""
    return sum("pruned " in line and "inbound events" in line for w in workers for line in w.output)


def test_each_pruning_runs_once_with_two_workers(
    world: tuple[FakeLine, list[BotProcess], Engine],
) -> None:
    """The retention job: once at start (never run before), then once per occurrence."""
    _fake, workers, engine = world
    for worker in workers:
        worker.start()
    runs = "SELECT runs FROM scheduled_jobs WHERE name = :name"
    wait_until(lambda: _value(engine, runs, name=JOB) == 1, WITHIN, "the first pruning")
    for occurrence in range(2, OCCURRENCES + 2):
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE scheduled_jobs SET next_at = now() - interval '1 second'")
            )
        wait_until(
            lambda n=occurrence: _value(engine, runs, name=JOB) == n,
            WITHIN,
            f"pruning {occurrence}",
        )
    for worker in workers:
        assert worker.stop() == 0
    assert _value(engine, runs, name=JOB) == OCCURRENCES + 1
    assert _pruned_lines(workers) == OCCURRENCES + 1, "each pruning ran in one worker only"


def test_each_occurrence_of_a_daily_broadcast_goes_once_with_two_workers(
    world: tuple[FakeLine, list[BotProcess], Engine],
) -> None:
    """A daily reminder made due three times: everyone gets it three times, never more."""
    fake, workers, engine = world
    service = WelfareService(engine, load_province("CM"))
    users = add_volunteers(service, "line", 40)
    now = service.clock()
    # not due until the test says so
    broadcast_id = scheduled(service, BROADCAST, Audience(platforms=("line",)), every="daily",
                             at=now.replace(year=now.year + 1))  # fmt: skip
    for worker in workers:
        worker.start()

    def received(fake: FakeLine) -> Counter[str]:
        return Counter(s.to for s in fake.sent if s.kind == "multicast")

    for occurrence in range(1, OCCURRENCES + 1):
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE broadcasts SET next_at = now() - interval '1 second' WHERE id = :id"),
                {"id": broadcast_id},
            )
        fake.wait_for(
            lambda f, n=occurrence: received(f) == Counter({u: n for u in users}), timeout=WITHIN
        )
        # moved on to the next day by the worker that started this occurrence's run
        wait_until(
            lambda: _value(engine, "SELECT next_at > now() FROM broadcasts") is True,
            WITHIN,
            "the next occurrence's scheduling",
        )
    finished = "SELECT count(*) FROM broadcast_runs WHERE finished_at IS NOT NULL"
    wait_until(lambda: _value(engine, finished) == OCCURRENCES, WITHIN, "every run's end")
    for worker in workers:
        assert worker.stop() == 0
    assert received(fake) == Counter({u: OCCURRENCES for u in users}), "never twice"
    assert _value(engine, "SELECT count(DISTINCT due_at) FROM broadcast_runs") == OCCURRENCES
    assert _value(engine, "SELECT count(*) FROM broadcast_deliveries") == OCCURRENCES * len(users)
    assert _value(engine, "SELECT count(*) FROM broadcast_deliveries WHERE status = 'sent'") == (
        OCCURRENCES * len(users)
    )
