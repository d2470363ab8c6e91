"""/deletedata erases a volunteer everywhere their personal data is kept."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.service import WelfareService
from bot.domain.messages import Notice, Press, Reply
from storage import exports
from storage.models import InboundEvent, OutboxMessage, Proposal
from tests.conftest import make_service
from tests.data_support import delivery, delivery_row, kept_export, volunteer_id
from tests.helpers import Chat, Clock, th
from tests.transcripts import FIRST_PROPOSAL


@pytest.fixture
def service(db_url: str, clock: Clock, tmp_path: Path) -> WelfareService:
    """Return the service on SQLite, then on PostgreSQL (when TEST_DATABASE_URL is set)."""
    return make_service(db_url, clock, tmp_path / "data")


def test_erasure_reaches_proposals_deliveries_outbox_events_and_exports(
    service: WelfareService, chat: Chat
) -> None:
    """Proposals unlinked, deliveries without the account, nothing queued or kept for them."""
    chat.run(FIRST_PROPOSAL)
    now = service.clock()
    person = volunteer_id(service, chat.platform, chat.user_id)
    waiting = delivery(service, person, chat.user_id, "pending", now)
    sent = delivery(service, person, chat.user_id, "sent", now - timedelta(days=1))
    with_names = kept_export(service, masked=False, at=now)
    masked = kept_export(service, masked=True, at=now)
    with service.db.begin() as connection:
        told = Reply(th("notify.comment", comment="ทดสอบ"))
        service.queue(connection, Notice(chat.platform, chat.user_id, (told,)))
    # an event of theirs stored but not yet handled, and someone else's
    service.store_events(chat.platform, [("later", {"source": {"userId": chat.user_id}}),
                                         ("other", {"source": {"userId": "u2"}})])  # fmt: skip
    chat.send("/deletedata")
    assert chat.send(Press("delete:yes"))[-1].text == th("delete.done")

    with service.db.begin() as connection:
        owners = connection.execute(select(Proposal.volunteer_id)).scalars().all()
        queued = connection.execute(
            select(OutboxMessage.replies).where(OutboxMessage.recipient == chat.user_id)
        ).scalars().all()  # fmt: skip
        events = {e: p for e, p in connection.execute(select(InboundEvent.event_id,
                                                                InboundEvent.payload))}  # fmt: skip
        left = {row["token"] for row in exports.every(connection)}
    assert owners == [None], "the proposal is kept, linked to nobody"
    assert (delivery_row(service, waiting)["status"], delivery_row(service, waiting)["reason"]) \
        == ("skipped", "erased")  # fmt: skip
    assert delivery_row(service, waiting)["recipient"] == ""
    assert delivery_row(service, sent)["recipient"] == ""
    assert delivery_row(service, sent)["status"] == "sent"  # the broadcast's report still adds up
    assert [r[0]["text"] for r in queued] == [th("delete.done")], "only the goodbye is queued"
    assert events["later"] is None
    assert events["other"] == {"source": {"userId": "u2"}}
    assert left == {masked["token"]}
    assert not (service.data_dir / exports.relative_path(with_names["token"], "csv")).exists()
    assert (service.data_dir / exports.relative_path(masked["token"], "csv")).exists()
