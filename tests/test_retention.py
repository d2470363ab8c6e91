"""Retention: what is past its period goes, by the running bot's job and by `db prune`."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from bot.app.service import WelfareService
from bot.domain.calendar import utcnow
from handlers.cli.main import app
from handlers.pruner import Pruner
from storage import exports, staff
from storage.models import AuditEntry, InboundEvent, Proposal, Volunteer
from storage.retention import Pruned
from tests.broadcast_support import add_volunteers
from tests.conftest import make_service
from tests.data_support import delivery, delivery_row, kept_export, volunteer_id
from tests.helpers import Chat, Clock
from tests.transcripts import FIRST_PROPOSAL

DAY = timedelta(days=1)


@pytest.fixture
def service(db_url: str, clock: Clock, tmp_path: Path) -> WelfareService:
    """Return the service on SQLite, then on PostgreSQL (when TEST_DATABASE_URL is set)."""
    return make_service(db_url, clock, tmp_path / "data")


def _event_ids(service: WelfareService) -> set[str]:
    with service.db.begin() as connection:
        return set(connection.execute(select(InboundEvent.event_id)).scalars())


def _old_and_new(service: WelfareService, chat: Chat) -> dict[str, object]:
    """Store, for each kind of kept data, one row past its period and one within it."""
    now = service.clock()
    chat.run(FIRST_PROPOSAL[:3])
    person = volunteer_id(service, chat.platform, chat.user_id)
    with service.db.begin() as connection:
        connection.execute(insert(InboundEvent), [
            {"platform": "telegram", "event_id": "old", "payload": None,
             "received_at": now - 31 * DAY, "processed_at": now - 31 * DAY},
            {"platform": "telegram", "event_id": "stuck", "payload": {"update_id": 1},
             "received_at": now - 31 * DAY, "processed_at": None},
            {"platform": "telegram", "event_id": "recent", "payload": None,
             "received_at": now - 29 * DAY, "processed_at": now - 29 * DAY},
        ])  # fmt: skip
        staff.audit(connection, "line:s", "show", {"reference": "CM-2569-00001"}, now - 366 * DAY)
        staff.audit(connection, "line:s", "show", {"reference": "CM-2570-00001"}, now - 364 * DAY)
    return {
        "old_delivery": delivery(service, person, chat.user_id, "sent", now - 91 * DAY),
        "new_delivery": delivery(service, person, chat.user_id, "sent", now - 89 * DAY),
        "old_export": kept_export(service, masked=False, at=now - 25 * timedelta(hours=1)),
        "new_export": kept_export(service, masked=False, at=now - 23 * timedelta(hours=1)),
    }


def _pruned_as_promised(service: WelfareService, made: dict[str, object]) -> None:
    """Check that each old row went and each new one stayed."""
    assert {"old", "stuck"}.isdisjoint(_event_ids(service))
    assert "recent" in _event_ids(service)
    assert delivery_row(service, made["old_delivery"])["recipient"] == ""  # type: ignore[arg-type]
    assert delivery_row(service, made["new_delivery"])["recipient"] != ""  # type: ignore[arg-type]
    old, new = made["old_export"], made["new_export"]
    with service.db.begin() as connection:
        kept = exports.tokens(connection)
        details = connection.execute(select(AuditEntry.detail).order_by(AuditEntry.id))
        assert [d for (d,) in details] == [{}, {"reference": "CM-2570-00001"}]
    assert kept == {new["token"]}  # type: ignore[index]
    assert not _file(service, old).exists()
    assert _file(service, new).exists()


def _file(service: WelfareService, row: object) -> Path:
    return service.data_dir / exports.relative_path(row["token"], row["kind"])  # type: ignore[index]


async def test_the_running_bot_prunes_on_start_and_then_hourly(
    service: WelfareService, chat: Chat
) -> None:
    """Inbound events, deliveries' accounts, audit details and export files past their time."""
    made = _old_and_new(service, chat)
    orphan = service.data_dir / "exports" / "gone.csv"
    orphan.write_text("a file whose export row was erased while it was built")
    pruner = Pruner(service)
    pruner.start()
    await pruner.ran.wait()
    await pruner.stop()
    _pruned_as_promised(service, made)
    assert not orphan.exists()


def test_each_hours_pruning_runs_once_however_many_workers_look(
    service: WelfareService, clock: Clock
) -> None:
    """Two workers' pruners share one schedule: the first to look prunes, the other waits."""
    first, second = Pruner(service), Pruner(service)
    assert first.prune_if_due() is not None
    assert second.prune_if_due() is None
    assert first.prune_if_due() is None
    clock.now += timedelta(minutes=59)
    assert second.prune_if_due() is None
    clock.now += timedelta(minutes=1)
    assert second.prune_if_due() is not None
    assert first.prune_if_due() is None


def test_a_pruning_under_way_is_not_started_again_by_another_worker(
    service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: while one worker prunes (holding the job's lock), another's look passes."""
    if service.db.dialect.name != "postgresql":
        pytest.skip("SQLite has one process, so one pruner")
    entered, finish = threading.Event(), threading.Event()
    real = service.prune
    calls = []

    def slow_prune() -> Pruned:
        calls.append(1)
        entered.set()
        assert finish.wait(10)
        return real()

    monkeypatch.setattr(service, "prune", slow_prune)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(Pruner(service).prune_if_due)
        assert entered.wait(10)
        assert Pruner(service).prune_if_due() is None
        finish.set()
        assert running.result(timeout=30) is not None
    assert len(calls) == 1


def test_db_prune_prunes_now(
    service: WelfareService, chat: Chat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`welfarebot db prune` does the same at once and says what went."""
    clock.now = utcnow()  # the command's clock is the real one
    made = _old_and_new(service, chat)
    monkeypatch.setenv("DATABASE_URL", service.db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("WELFAREBOT_HOME", str(service.data_dir))
    result = CliRunner().invoke(app, ["db", "prune"])
    assert result.exit_code == 0, result.output
    assert "2 inbound events" in result.output
    _pruned_as_promised(service, made)


def test_a_volunteer_is_erased_the_promised_years_after_their_last_proposal(
    service: WelfareService, clock: Clock
) -> None:
    """Five years (the province's period) after the latest proposal, the profile is erased."""
    years = service.province.office.retention_years
    start = clock.now
    old, recent = Chat(service, "old"), Chat(service, "recent")
    old.run(FIRST_PROPOSAL)
    clock.now = start.replace(year=start.year + years - 1)
    recent.run(FIRST_PROPOSAL)
    clock.now = start.replace(year=start.year + years) + DAY
    pruned = service.prune()
    assert pruned.profiles == 1
    with service.db.begin() as connection:
        rows = connection.execute(
            select(Volunteer.platform_user_id, Volunteer.full_name, Volunteer.erased_at)
        ).all()
        owners = connection.execute(select(Proposal.volunteer_id)).scalars().all()
    assert [(user, name) for user, name, erased in rows if erased is None] == [
        ("recent", "สมศรี ใจดี")
    ]
    assert [name for _user, name, erased in rows if erased is not None] == [None]
    recent_id = volunteer_id(service, "terminal", "recent")
    assert sorted(owners, key=lambda owner: owner is None) == [recent_id, None]
    assert service.prune().profiles == 0


def test_a_volunteer_who_consented_lately_is_kept_though_they_never_wrote(
    service: WelfareService,
) -> None:
    """No proposal and no conversation yet is not lapsed: the period starts with consent."""
    add_volunteers(service, "line", 3)
    assert service.prune().profiles == 0
