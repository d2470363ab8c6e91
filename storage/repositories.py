"""Repository functions: each takes the session of the caller's transaction."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.calendar import utcnow
from storage.models import (
    Conversation,
    InboundEvent,
    OutboxMessage,
    Proposal,
    ProposalPhoto,
    ReferenceCounter,
    StatusChange,
    Volunteer,
)

PROFILE_FIELDS = ("full_name", "phone", "network", "network_other", "organisation", "district")


def _insert(session: Session, table: Any) -> Any:
    """Return the dialect's INSERT (with ON CONFLICT support) for a table."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# inbound events ---------------------------------------------------------------------------------


def store_events(session: Session, platform: str, events: Iterable[tuple[str, dict]]) -> None:
    """Store raw events that have not been seen yet (event id, payload), ignoring repeats."""
    rows = [
        {"platform": platform, "event_id": event_id, "payload": payload, "received_at": utcnow()}
        for event_id, payload in events
    ]
    if rows:
        stmt = _insert(session, InboundEvent).values(rows)
        session.execute(stmt.on_conflict_do_nothing(index_elements=["platform", "event_id"]))


def claim_event(session: Session, platform: str, event_id: str) -> bool:
    """Mark an event as taking effect now; False when it already has (a duplicate)."""
    now = utcnow()
    stmt = _insert(session, InboundEvent).values(
        platform=platform, event_id=event_id, payload=None, received_at=now, processed_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["platform", "event_id"],
        set_={"processed_at": now, "payload": None},
        where=InboundEvent.processed_at.is_(None),
    ).returning(InboundEvent.id)
    return session.execute(stmt).first() is not None


def finish_event(session: Session, platform: str, event_id: str) -> None:
    """Mark an event processed (for events no handler claimed) and drop its payload."""
    session.execute(
        update(InboundEvent)
        .where(
            InboundEvent.platform == platform,
            InboundEvent.event_id == event_id,
            InboundEvent.processed_at.is_(None),
        )
        .values(processed_at=utcnow(), payload=None)
    )


def pending_events(session: Session, platform: str) -> list[tuple[str, dict[str, Any]]]:
    """Return stored events not processed yet, oldest first."""
    rows = session.execute(
        select(InboundEvent.event_id, InboundEvent.payload)
        .where(InboundEvent.platform == platform, InboundEvent.processed_at.is_(None))
        .order_by(InboundEvent.id)
    )
    return [(event_id, payload) for event_id, payload in rows if payload is not None]


# outbox -----------------------------------------------------------------------------------------


def add_outbox(
    session: Session,
    platform: str,
    recipient: str,
    replies: list[dict[str, Any]],
    reply_token: str | None = None,
) -> int:
    """Queue replies for a recipient; return the outbox id."""
    message = OutboxMessage(
        platform=platform, recipient=recipient, replies=replies, reply_token=reply_token
    )
    session.add(message)
    session.flush()
    return message.id


def remove_outbox(session: Session, outbox_ids: Sequence[int]) -> None:
    """Forget delivered outbox messages."""
    session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids)))


def undelivered(session: Session, platform: str) -> list[OutboxMessage]:
    """Return outbox messages of a platform not confirmed delivered, oldest first."""
    query = select(OutboxMessage).where(OutboxMessage.platform == platform)
    return list(session.scalars(query.order_by(OutboxMessage.id)))


# volunteers and conversations -------------------------------------------------------------------


def find_volunteer(
    session: Session, platform: str, user_id: str, lock: bool = False
) -> Volunteer | None:
    """Return the volunteer with a platform user id, locking the row when asked."""
    query = select(Volunteer).where(
        Volunteer.platform == platform, Volunteer.platform_user_id == user_id
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def profile_of(volunteer: Volunteer) -> dict[str, Any]:
    """Return a volunteer's profile answers (only the ones given)."""
    values = {name: getattr(volunteer, name) for name in PROFILE_FIELDS}
    if volunteer.profile_completed_at is not None:
        return values
    return {k: v for k, v in values.items() if v is not None}


def load_state(session: Session, volunteer_id: int) -> dict[str, Any] | None:
    """Return a volunteer's stored conversation state."""
    conversation = session.get(Conversation, volunteer_id)
    return conversation.state if conversation else None


def save_state(session: Session, volunteer_id: int, state: dict[str, Any] | None) -> None:
    """Store (or with None, delete) a volunteer's conversation state."""
    conversation = session.get(Conversation, volunteer_id)
    if state is None:
        if conversation is not None:
            session.delete(conversation)
    elif conversation is None:
        session.add(Conversation(volunteer_id=volunteer_id, state=state))
    else:
        conversation.state = state


def erase_volunteer(session: Session, volunteer: Volunteer) -> None:
    """Erase a volunteer's personal fields and withdraw consent; proposals stay, unlinked."""
    now = utcnow()
    for name in PROFILE_FIELDS:
        setattr(volunteer, name, None)
    volunteer.platform_user_id = None
    volunteer.consent_withdrawn_at = now
    volunteer.erased_at = now
    volunteer.profile_completed_at = None
    save_state(session, volunteer.id, None)


# proposals --------------------------------------------------------------------------------------


def next_sequence(session: Session, province: str, fiscal_year: int) -> int:
    """Hand out the next reference sequence of a province and fiscal year, atomically."""
    stmt = _insert(session, ReferenceCounter).values(
        province=province, fiscal_year=fiscal_year, last=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["province", "fiscal_year"], set_={"last": ReferenceCounter.last + 1}
    ).returning(ReferenceCounter.last)
    return int(session.execute(stmt).scalar_one())


def add_proposal(
    session: Session,
    *,
    volunteer: Volunteer,
    province: str,
    fiscal_year: int,
    answers: dict[str, Any],
    submitted_at: datetime,
) -> Proposal:
    """Store a proposal from reviewed answers with a fresh reference number."""
    sequence = next_sequence(session, province, fiscal_year)
    place = answers.get("location")
    proposal = Proposal(
        reference=f"{province}-{fiscal_year}-{sequence:05d}",
        province=province,
        fiscal_year=fiscal_year,
        sequence=sequence,
        volunteer_id=volunteer.id,
        platform=volunteer.platform,
        target_group=answers["target_group"],
        subgroup=answers["subgroup"],
        subgroup_other=answers.get("subgroup_other"),
        problem=answers["problem"],
        people_affected=answers["people_affected"],
        district=answers["district"],
        location_text=place if isinstance(place, str) else None,
        latitude=place["latitude"] if isinstance(place, dict) else None,
        longitude=place["longitude"] if isinstance(place, dict) else None,
        help_received=answers["help_received"],
        solution=answers["solution"],
        responsible=list(answers["responsible"]),
        responsible_other=answers.get("responsible_other"),
        urgency=answers["urgency"],
        status="received",
        submitted_at=submitted_at,
        updated_at=submitted_at,
    )
    proposal.photos = [
        ProposalPhoto(position=i, platform=volunteer.platform, file_id=file_id)
        for i, file_id in enumerate(answers.get("photos") or [])
    ]
    proposal.history = [
        StatusChange(
            from_status=None, to_status="received", changed_by="volunteer", changed_at=submitted_at
        )
    ]
    session.add(proposal)
    session.flush()
    return proposal


def proposals_of(session: Session, volunteer_id: int) -> list[Proposal]:
    """Return a volunteer's proposals, newest first."""
    query = select(Proposal).where(Proposal.volunteer_id == volunteer_id)
    return list(session.scalars(query.order_by(Proposal.submitted_at.desc(), Proposal.id.desc())))


def count_proposals(session: Session, volunteer_id: int) -> int:
    """Count a volunteer's proposals."""
    query = select(func.count()).select_from(Proposal).where(Proposal.volunteer_id == volunteer_id)
    return int(session.scalar(query) or 0)
