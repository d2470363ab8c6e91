"""The shared event queue on PostgreSQL: stored events are the jobs, connections hold the locks.

Every lock here is a PostgreSQL advisory lock held by a database session, so it vanishes the
moment its process dies (the server sees the connection drop): a killed worker's volunteers
are free again, and its outbox rows are taken over, within one sweep, with no lease to lapse.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Table,
    bindparam,
    column,
    exists,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import aliased

from storage.models import InboundEvent, OutboxMessage

_events = cast(Table, InboundEvent.__table__)
_outbox = cast(Table, OutboxMessage.__table__)

# the first half of every advisory lock key of ours, so other users of the database are unaffected
WORKERS = 0x57424F54  # "WBOT": one lock per running worker, held for its whole life
TURNS = 0x57424F55  # one lock per volunteer whose event or reply is being handled
RUNS = 0x57424F56  # one lock per broadcast run being sent (storage/broadcasts.py)
JOBS = 0x57424F57  # one lock per periodic job being run (storage/jobs.py)
CHANNEL = "welfarebot_events"
# a row whose send failed waits this long before the sweep tries it again, doubling each time
# up to the longest wait: a platform that is down (or a spent LINE quota) costs a request per
# row every five minutes at most, as SQLite's courier lease does, not one every sweep (1 s)
FIRST_RETRY_SECONDS = 2.0
LONGEST_RETRY_SECONDS = 300.0

_earlier = aliased(_events)
_WAITING = (
    select(_events.c.id, _events.c.platform, _events.c.user_key)
    .where(_events.c.processed_at.is_(None), _events.c.platform.in_(bindparam("platforms")))
    .where(
        ~exists().where(
            _earlier.c.processed_at.is_(None),
            _earlier.c.platform == _events.c.platform,
            _earlier.c.user_key == _events.c.user_key,
            _earlier.c.id < _events.c.id,
        )
    )
    .order_by(_events.c.id)
    .limit(bindparam("limit"))
)
_STILL_WAITING = select(_events.c.payload, _events.c.received_at).where(
    _events.c.id == bindparam("id"), _events.c.processed_at.is_(None)
)
_TAKE_TURN = text("SELECT pg_try_advisory_lock(:ns, hashtext(:key))").bindparams(ns=TURNS)
_END_TURN = text("SELECT pg_advisory_unlock(:ns, hashtext(:key))").bindparams(ns=TURNS)
_HOLD_WORKER = text("SELECT pg_try_advisory_lock(:ns, :id)").bindparams(ns=WORKERS)
_LIVE_WORKERS = (
    text(
        "SELECT objid::bigint AS id FROM pg_locks WHERE locktype = 'advisory' AND granted"
        f" AND classid = {WORKERS} AND objsubid = 2"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    .columns(column("id", BigInteger))
    .scalar_subquery()
)
_DEPTH = select(func.count(), func.min(_events.c.received_at)).where(
    _events.c.processed_at.is_(None)
)


def notify(connection: Connection) -> None:
    """Wake the listening workers when this transaction commits."""
    connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def waiting(connection: Connection, platforms: Sequence[str], limit: int) -> list[Any]:
    """Return events that may be handled now: each volunteer's oldest waiting one."""
    return list(connection.execute(_WAITING, {"platforms": list(platforms), "limit": limit}))


def take_turn(connection: Connection, key: str) -> bool:
    """Take a volunteer's turn on this connection; False when another session holds it."""
    got = bool(connection.execute(_TAKE_TURN, {"key": key}).scalar_one())
    connection.commit()
    return got


def end_turn(connection: Connection, key: str) -> None:
    """Give a volunteer's turn back."""
    connection.execute(_END_TURN, {"key": key})
    connection.commit()


def still_waiting(connection: Connection, event_pk: int) -> tuple[dict[str, Any], datetime] | None:
    """Return an event's payload and arrival if nobody has handled it yet (under the turn)."""
    found = connection.execute(_STILL_WAITING, {"id": event_pk}).first()
    connection.commit()
    return (found.payload, found.received_at) if found is not None else None


def hold_worker(connection: Connection, worker_id: int) -> bool:
    """Mark this session as a live worker for as long as it lasts; False if the id is taken."""
    got = bool(connection.execute(_HOLD_WORKER, {"id": worker_id}).scalar_one())
    connection.commit()
    return got


_before = aliased(_outbox)


def _orphaned(platform: str, me: int, now: datetime, due_only: bool) -> Any:
    """Return the condition of a platform's rows that no live worker owns (and are due)."""
    c = _outbox.c
    condition = (c.platform == platform) & (
        c.owner.is_(None) | ((c.owner != me) & c.owner.not_in(_LIVE_WORKERS))
    )
    if due_only:
        # a row waiting for its retry holds back the same recipient's later rows with it
        waiting = exists().where(
            _before.c.platform == c.platform,
            _before.c.recipient == c.recipient,
            _before.c.id <= c.id,
            _before.c.next_attempt_at > now,
        )
        condition &= ~waiting
    return condition


def orphaned_recipients(
    connection: Connection, platform: str, me: int, now: datetime, limit: int = 200
) -> list[str]:
    """Return recipients of a platform with rows no live worker owns that are due, oldest first."""
    c = _outbox.c
    query = (
        select(c.recipient)
        .where(_orphaned(platform, me, now, due_only=True))
        .group_by(c.recipient)
        .order_by(func.min(c.id))
        .limit(limit)
    )
    return list(connection.execute(query).scalars())


def claim_orphans(
    connection: Connection,
    platform: str,
    me: int,
    now: datetime,
    recipient: str | None = None,
    due_only: bool = False,
) -> list[dict[str, Any]]:
    """Take over outbox rows of a platform (or one recipient) that no live worker owns.

    With due_only, only rows due for a try, and none queued behind a row of the same recipient
    that waits for its retry; the volunteer's own turn takes them all at once.
    """
    c = _outbox.c
    orphans = (
        select(c.id)
        .where(_orphaned(platform, me, now, due_only))
        .order_by(c.id)
        .limit(200)
        .with_for_update(skip_locked=True)
    )
    if recipient is not None:
        orphans = orphans.where(c.recipient == recipient)
    claimed = connection.execute(
        update(_outbox)
        .where(c.id.in_(orphans.scalar_subquery()))
        .values(owner=me, claimed_at=now)
        .returning(*_outbox.c)
    ).mappings()
    return sorted((dict(row) for row in claimed), key=lambda row: row["id"])


def release(connection: Connection, outbox_ids: Sequence[int]) -> None:
    """Give outbox rows back for any worker to take (their volunteer was busy elsewhere)."""
    if outbox_ids:
        c = _outbox.c
        connection.execute(update(_outbox).where(c.id.in_(list(outbox_ids))).values(owner=None))


def _retry_values(now: datetime) -> dict[str, Any]:
    """Return the changes that give a failed row back, to be tried again after its wait."""
    c = _outbox.c
    wait = func.least(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * func.power(2, c.attempts))
    return {
        "owner": None,
        "attempts": c.attempts + 1,
        "next_attempt_at": literal(now, DateTime(timezone=True))
        + func.make_interval(0, 0, 0, 0, 0, 0, wait),
    }


def retry_later(connection: Connection, outbox_ids: Sequence[int], now: datetime) -> None:
    """Give back rows whose send failed, for any worker to try again once their wait is over."""
    if outbox_ids:
        c = _outbox.c
        connection.execute(
            update(_outbox).where(c.id.in_(list(outbox_ids))).values(_retry_values(now))
        )


def release_unsent(
    connection: Connection, platform: str, recipient: str, me: int, now: datetime
) -> None:
    """Give back a recipient's rows this worker still owns (their send failed) for a retry."""
    c = _outbox.c
    connection.execute(
        update(_outbox)
        .where(c.platform == platform, c.recipient == recipient, c.owner == me)
        .values(_retry_values(now))
    )


def depth(connection: Connection) -> tuple[int, datetime | None]:
    """Return how many events wait and when the oldest of them arrived."""
    count, oldest = connection.execute(_DEPTH).one()
    return int(count), oldest
