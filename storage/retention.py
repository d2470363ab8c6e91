"""Retention: personal data kept only as long as promised, pruned in short batches."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Select, String, Table, delete, func, or_, select, update
from sqlalchemy import cast as sql_cast

from bot.domain.retention import Retention
from storage import erasure, exports
from storage.broadcasts import DONE
from storage.models import (
    AuditEntry,
    BroadcastDelivery,
    Conversation,
    InboundEvent,
    Proposal,
    Volunteer,
)

_events = cast(Table, InboundEvent.__table__)
_deliveries = cast(Table, BroadcastDelivery.__table__)
_audit = cast(Table, AuditEntry.__table__)
# rows changed per transaction, so that each holds SQLite's write lock only briefly
BATCH = 2000


@dataclass
class Pruned:
    """What one pruning removed, and the files to delete now that it is committed."""

    events: int = 0
    exports: int = 0
    deliveries: int = 0
    audit_details: int = 0
    profiles: int = 0
    files: list[str] = field(default_factory=list)
    # hashes of photo files no photo row uses any more, after lapsed profiles were erased
    photos: set[str] = field(default_factory=set)

    def summary(self) -> str:
        """Return the counts as one log line (no personal data)."""
        return (f"{self.events} inbound events, {self.exports} exports, {self.deliveries} "
                f"delivery accounts, {self.audit_details} audit details, "
                f"{self.profiles} lapsed volunteers")  # fmt: skip


def _batches(
    engine: Engine, pick: Select[Any], apply: Callable[[Connection, list[int]], object]
) -> int:
    """Apply a change to the picked rows, BATCH at a time, one transaction each."""
    total = 0
    while True:
        with engine.begin() as connection:
            ids = list(connection.execute(pick.limit(BATCH)).scalars())
            if ids:
                apply(connection, ids)
        total += len(ids)
        if len(ids) < BATCH:
            return total


def prune(engine: Engine, keep: Retention, now: datetime, profile_years: int) -> Pruned:
    """Remove what is past its period; return what went (files are left to the caller).

    A volunteer is erased `profile_years` after their latest proposal and their last message,
    as the consent notice promises.
    """
    pruned = Pruned()
    _erase_lapsed(engine, now.replace(year=now.year - profile_years), now, pruned)
    before = now - timedelta(days=keep.inbound_days)
    pruned.events = _batches(
        engine,
        # processed ones (ids kept to drop repeats) and ones never processed alike
        select(_events.c.id).where(_events.c.received_at < before),
        lambda c, ids: c.execute(delete(_events).where(_events.c.id.in_(ids))),
    )
    before = now - timedelta(days=keep.delivery_days)
    d = _deliveries.c
    erased = select(Volunteer.id).where(Volunteer.erased_at.is_not(None))
    pruned.deliveries = _batches(
        engine,
        select(d.id).where(
            d.recipient != "",
            d.status.in_(DONE),
            or_(d.updated_at < before, d.volunteer_id.in_(erased)),
        ),
        lambda c, ids: c.execute(update(_deliveries).where(d.id.in_(ids)).values(recipient="")),
    )
    before = now - timedelta(days=keep.audit_detail_days)
    a = _audit.c
    pruned.audit_details = _batches(
        engine,
        # who did what and when stays; which filter or reference it was goes
        select(a.id).where(a.at < before, sql_cast(a.detail, String) != "{}"),
        lambda c, ids: c.execute(update(_audit).where(a.id.in_(ids)).values(detail={})),
    )
    with engine.begin() as connection:
        gone = exports.expired(connection, now)
        exports.forget(connection, [row["id"] for row in gone])
    pruned.exports = len(gone)
    pruned.files = [exports.relative_path(row["token"], row["kind"]) for row in gone]
    return pruned


def _erase_lapsed(engine: Engine, before: datetime, now: datetime, pruned: Pruned) -> None:
    """Erase every volunteer whose latest proposal and last message are older than `before`."""
    v = Volunteer.__table__.c
    latest = (
        select(func.max(Proposal.submitted_at))
        .where(Proposal.volunteer_id == v.id)
        .scalar_subquery()
    )
    # the conversation row is saved with every message the volunteer sends
    spoke = select(Conversation.updated_at).where(Conversation.volunteer_id == v.id)
    spoke_at = spoke.scalar_subquery()
    lapsed = select(v.id, v.platform, v.platform_user_id).where(
        v.erased_at.is_(None),
        # nobody who never consented has personal data kept; consent starts the period
        v.consent_given_at < before,
        or_(latest.is_(None), latest < before),
        or_(spoke_at.is_(None), spoke_at < before),
    )
    while True:
        # one transaction per volunteer: each holds the write lock only briefly
        with engine.begin() as connection:
            found = connection.execute(lapsed.limit(1)).first()
            if found is None:
                return
            left = erasure.erase(connection, found.id, found.platform,
                                 found.platform_user_id or "", now)  # fmt: skip
        pruned.profiles += 1
        pruned.files += left.files
        pruned.photos |= left.photos
