"""The storage layer, run against SQLite and (when TEST_DATABASE_URL is set) PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from bot.app.service import WelfareService
from bot.domain.messages import Press
from storage import inbox
from storage.db import make_engine
from storage.models import Base, Proposal, Volunteer
from storage.search import is_search_object
from tests.helpers import Chat
from tests.transcripts import FIRST_PROPOSAL


def test_migrations_create_exactly_the_models(db_url: str) -> None:
    """Alembic's first migration and the SQLAlchemy models describe the same schema."""
    engine = make_engine(db_url)
    with engine.connect() as connection:
        skip_search = {"include_name": lambda name, kind, _p: not is_search_object(name)}
        context = MigrationContext.configure(connection, opts=skip_search)
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_reference_numbers_stay_unique_when_many_submit_at_once(
    any_service: WelfareService,
) -> None:
    """Twenty volunteers pressing submit at the same moment get twenty different numbers."""
    chats = [Chat(any_service, user_id=f"v{i}") for i in range(20)]
    for chat in chats:
        chat.run(FIRST_PROPOSAL[:-1])
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda chat: chat.send(Press("submit")), chats))
    with any_service.sessions() as session:
        references = session.scalars(select(Proposal.reference)).all()
    assert sorted(references) == [f"CM-2570-{n:05d}" for n in range(1, 21)]


def test_claiming_an_event_succeeds_once(any_service: WelfareService) -> None:
    """The second claim of the same platform event id fails; another platform's does not."""
    with any_service.db.begin() as connection:
        assert inbox.claim_event(connection, "telegram", "1")
        assert not inbox.claim_event(connection, "telegram", "1")
        assert inbox.claim_event(connection, "line", "1")


def test_stored_events_wait_until_processed(any_service: WelfareService) -> None:
    """Stored events are pending (repeats ignored) until claimed or finished."""
    any_service.store_events("telegram", [("1", {"update_id": 1}), ("2", {"update_id": 2})])
    any_service.store_events("telegram", [("2", {"update_id": 2})])
    assert [e for e, _ in any_service.pending_events("telegram")] == ["1", "2"]
    with any_service.db.begin() as connection:
        assert inbox.claim_event(connection, "telegram", "1")
    any_service.finish_event("telegram", "2")
    assert any_service.pending_events("telegram") == []


def test_replies_wait_in_the_outbox_until_delivered(any_service: WelfareService) -> None:
    """A handled event's replies are undelivered until confirmed, then gone."""
    delivery = any_service.handle("telegram", "9", "u-1", Press("consent:yes:th"))
    assert delivery is not None
    pending = any_service.undelivered("telegram")
    assert [d.outbox_id for d in pending] == [delivery.outbox_id]
    assert pending[0].replies == delivery.replies
    any_service.delivered([delivery.outbox_id])
    assert any_service.undelivered("telegram") == []


def test_erasing_keeps_proposals_and_frees_the_platform_id(any_service: WelfareService) -> None:
    """After erasure the same platform user can start over as a new volunteer."""
    chat = Chat(any_service, user_id="42", platform="telegram")
    chat.run(FIRST_PROPOSAL)
    chat.run(["/deletedata", Press("delete:yes"), "hi", Press("consent:yes:th")])
    with any_service.sessions() as session:
        people = session.scalars(select(Volunteer).order_by(Volunteer.id)).all()
        assert [p.platform_user_id for p in people] == [None, "42"]
        assert people[0].full_name is None
        # kept for the province, unlinked from anyone (as the consent text promises)
        assert session.scalars(select(Proposal.volunteer_id)).all() == [None]
