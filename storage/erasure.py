"""Erasing a volunteer (/deletedata): each place their personal data is kept is one step.

A step changes the database and notes the files to delete once the erasure is committed.
To erase something new, write a step and add it to STEPS.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select, update

from storage import exports, photos
from storage.models import (
    BroadcastDelivery,
    Conversation,
    InboundEvent,
    OutboxMessage,
    Proposal,
    Volunteer,
)
from storage.repositories import PROFILE_FIELDS

_volunteers = cast(Table, Volunteer.__table__)
_delivery_rows = cast(Table, BroadcastDelivery.__table__)
_events = cast(Table, InboundEvent.__table__)
_outbox_rows = cast(Table, OutboxMessage.__table__)


@dataclass(frozen=True)
class Subject:
    """Whose data is erased: their volunteer row and platform account, and when."""

    volunteer_id: int
    platform: str
    user_id: str
    now: datetime


@dataclass
class Leftovers:
    """Files an erasure leaves to delete once it is committed."""

    # relative to the data directory
    files: list[str] = field(default_factory=list)
    # hashes of photo files no photo row uses any more
    photos: set[str] = field(default_factory=set)


Step = Callable[[Connection, Subject, Leftovers], None]


def _profile(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Blank the personal fields and the platform account; consent is withdrawn."""
    blank: dict[str, Any] = dict.fromkeys(PROFILE_FIELDS)
    connection.execute(
        update(_volunteers)
        .where(_volunteers.c.id == who.volunteer_id)
        .values(
            **blank,
            platform_user_id=None,
            consent_withdrawn_at=who.now,
            erased_at=who.now,
            profile_completed_at=None,
        )
    )


def _conversation(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Drop the conversation state (a draft may hold text they typed)."""
    connection.execute(delete(Conversation).where(Conversation.volunteer_id == who.volunteer_id))


def _photos(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Delete their photos (before the proposals are unlinked, which finds them)."""
    left.photos |= photos.erase_of(connection, who.volunteer_id)


def _proposals(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Unlink their proposals: kept for the province, no longer anyone's."""
    connection.execute(
        update(Proposal).where(Proposal.volunteer_id == who.volunteer_id).values(volunteer_id=None)
    )


def _deliveries(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Cancel broadcasts still to reach them and forget their account on every delivery row."""
    rows = _delivery_rows
    mine = rows.c.volunteer_id == who.volunteer_id
    connection.execute(
        update(rows).where(mine, rows.c.status == "pending")
        .values(status="skipped", reason="erased", updated_at=who.now)
    )  # fmt: skip
    # a row being sent right now keeps its account until its batch is settled; the next
    # pruning blanks it then (storage/retention.py)
    connection.execute(update(rows).where(mine, rows.c.status != "sending").values(recipient=""))


def _outbox(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Drop messages to them not sent yet (they may repeat their data)."""
    rows = _outbox_rows
    connection.execute(
        delete(rows).where(rows.c.platform == who.platform, rows.c.recipient == who.user_id)
    )


def _mentions(value: Any, user_id: str) -> bool:
    """Tell whether a raw platform event names a user anywhere (Telegram ids are numbers)."""
    if isinstance(value, dict):
        return any(_mentions(v, user_id) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, user_id) for v in value)
    return value is not None and not isinstance(value, bool) and str(value) == user_id


def _inbound_events(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Drop the raw payloads of their events still waiting: they will not be answered."""
    waiting = connection.execute(
        select(_events.c.id, _events.c.payload).where(
            _events.c.platform == who.platform, _events.c.processed_at.is_(None)
        )
    )
    theirs = [row.id for row in waiting if _mentions(row.payload, who.user_id)]
    if theirs:
        connection.execute(
            update(_events).where(_events.c.id.in_(theirs))
            .values(payload=None, processed_at=who.now)
        )  # fmt: skip


def _exports(connection: Connection, who: Subject, left: Leftovers) -> None:
    """Delete kept chat exports with names and phones (any of them may list this person)."""
    kept = [row for row in exports.every(connection) if not row["request"].get("masked")]
    exports.forget(connection, [row["id"] for row in kept])
    left.files += [exports.relative_path(row["token"], row["kind"]) for row in kept]


# in this order
STEPS: tuple[Step, ...] = (
    _profile,
    _conversation,
    _photos,
    _proposals,
    _deliveries,
    _outbox,
    _inbound_events,
    _exports,
)


def erase(connection: Connection, volunteer_id: int, platform: str, user_id: str,
          now: datetime) -> Leftovers:  # fmt: skip
    """Erase a volunteer everywhere; return the files to delete once this commits."""
    who = Subject(volunteer_id, platform, user_id, now)
    left = Leftovers()
    for step in STEPS:
        step(connection, who, left)
    return left
