"""The shared event queue on PostgreSQL: stored events are the jobs, connections hold the locks.

Every lock here is a PostgreSQL advisory lock held by a database session, so it vanishes the
moment its process dies (the server sees the connection drop): a killed worker's volunteers
are free again, and its outbox rows are taken over, within one sweep, with no lease to lapse.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Table,
    column,
    exists,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import aliased

from storage.db import run_alone
from storage.models import InboundEvent, OutboxMessage

_events = cast(Table, InboundEvent.__table__)
_outbox = cast(Table, OutboxMessage.__table__)

# the first half of every advisory lock key of ours, so other users of the database are unaffected
WORKERS = 0x57424F54  # "WBOT": one lock per running worker, held for its whole life
TURNS = 0x57424F55  # one lock per volunteer whose event or reply is being handled
RUNS = 0x57424F56  # one lock per broadcast run being sent (storage/broadcasts.py)
JOBS = 0x57424F57  # one lock per periodic job being run (storage/jobs.py)
SETUP = 0x57424F58  # one lock per set-up done at start, one process at a time (storage/setup.py)
CHANNEL = "welfarebot_events"
# a row whose send failed waits this long before the sweep tries it again, doubling each time
# up to the longest wait: a platform that is down (or a spent LINE quota) costs a request per
# row every five minutes at most, as SQLite's courier lease does, not one every sweep (1 s)
FIRST_RETRY_SECONDS = 2.0
LONGEST_RETRY_SECONDS = 300.0

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

# the statements of a turn, several per event, each committed on its own (storage.db.run_alone)
_LIVE_SQL: LiteralString = (
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid = %(workers)s::oid AND objsubid = 2"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
# each volunteer's head by one sort of the waiting rows (an event without a volunteer is its own
# head): the plan cannot turn quadratic. The NOT EXISTS form it replaces was planned as a nested
# anti-join probing every waiting row per candidate; 4,000 events of 41 volunteers waiting took
# 2,871 ms when the statistics were taken while nothing waited (44.6 ms analysed) against
# 11.8 ms (10.6 ms) this way. Heads whose turn a session holds are left out: taking that turn
# could only fail (two workers each took the other's heads in hand for their own and lost
# take_turn on them, docs/benchmarks.md)
_WAITING_SQL: LiteralString = (
    "SELECT id, platform, user_key FROM ("
    " SELECT DISTINCT ON (platform, coalesce(user_key, 'event-' || id)) id, platform, user_key,"
    "  hashtext(platform || ':' || coalesce(user_key, 'event-' || id)) AS turn"
    " FROM inbound_events WHERE processed_at IS NULL AND platform = ANY(%(platforms)s)"
    " ORDER BY platform, coalesce(user_key, 'event-' || id), id"
    ") heads WHERE turn::oid NOT IN ("
    "  SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    "  AND classid = %(turns)s::oid AND objsubid = 2"
    "  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    " ORDER BY mod(mod(turn, %(workers)s) + %(workers)s, %(workers)s) <> %(rank)s, id"
    " LIMIT %(limit)s"
)
_TAKE_TURN_SQL: LiteralString = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"
_END_TURN_SQL: LiteralString = "SELECT pg_advisory_unlock(%s, hashtext(%s))"
# read under the turn, so after whoever had it committed: the event if still waiting (and when
# it came), whether the volunteer has outbox rows no live worker owns (to send first), and
# whether another live worker owns some (its courier is sending them, or it died a moment ago
# and the server has not yet ended all its sessions)
_LOOK_SQL: LiteralString = (
    "SELECT e.payload, e.received_at, o.orphaned, o.elsewhere FROM (SELECT"
    "  coalesce(bool_or(orphan), false) AS orphaned,"
    "  coalesce(bool_or(NOT orphan AND owner <> %(me)s), false) AS elsewhere"
    "  FROM (SELECT owner, owner IS NULL OR (owner <> %(me)s AND owner NOT IN (" + _LIVE_SQL + "))"
    "   AS orphan FROM outbox WHERE platform = %(platform)s AND recipient = %(recipient)s) r) o"
    " LEFT JOIN inbound_events e ON e.id = %(event)s AND e.processed_at IS NULL"
)
# one statement, so a kill cannot part the rows from the turn: delivered rows go, rows whose
# send failed are given back to be retried after their wait (as retry_later does), and the
# volunteer's turn is given back. The turn is held on to until the commit (a transaction-level
# hold on the same key), so the next holder sees the rows as settled here
_FINISH_SQL: LiteralString = (
    "WITH sent AS (DELETE FROM outbox WHERE id = ANY(%(done)s::bigint[])),"
    " unsent AS (UPDATE outbox SET owner = NULL, attempts = attempts + 1,"
    "  next_attempt_at = %(now)s + make_interval(secs => least(%(longest)s,"
    "   %(first)s * power(2, attempts)))"
    "  WHERE platform = %(platform)s AND recipient = %(recipient)s AND owner = %(me)s"
    "  AND id <> ALL(%(done)s::bigint[]))"
    " SELECT pg_advisory_unlock(%(ns)s, hashtext(%(key)s))"
    " FROM (SELECT pg_advisory_xact_lock(%(ns)s, hashtext(%(key)s)) OFFSET 0) held"
)


def waiting(
    connection: Connection, platforms: Sequence[str], limit: int, share: tuple[int, int] = (0, 1)
) -> list[tuple[Any, ...]]:
    """Return (id, platform, user key) of each volunteer's oldest waiting event nobody is on.

    Oldest first, those of this worker's share (rank, workers: see share_of) before the rest,
    so that two workers looking at once do not both reach for the same heads first.
    """
    rank, workers = share
    params = {"platforms": list(platforms), "limit": limit, "turns": TURNS, "rank": rank,
              "workers": workers}  # fmt: skip
    return run_alone(connection, _WAITING_SQL, params)


def rank_of(workers: Sequence[int], me: int) -> tuple[int, int]:
    """Return a worker's share of the volunteers: its rank among the live workers, and how many."""
    if me not in workers:
        return 0, 1
    return workers.index(me), len(workers)


def live_workers(connection: Connection) -> tuple[int, ...]:
    """Return the ids of the workers alive now, smallest first."""
    return tuple(
        sorted(int(row[0]) for row in run_alone(connection, _LIVE_SQL, {"workers": WORKERS}))
    )


def share_of(payload: str, workers: Sequence[int], me: int) -> bool:
    """Tell whether a NOTIFY names a volunteer of this worker's share (or names none).

    The payload holds the stored events' turn keys by their hashtext; each live worker answers
    at once for the keys whose hash falls to it (hash modulo the workers, by rank of id).
    """
    rank, count = rank_of(workers, me)
    if count < 2 or not payload:
        return True
    try:
        return any(int(key) % count == rank for key in payload.split(","))
    except ValueError:
        return True  # not ours to read: look, as before


def take_turn(connection: Connection, key: str) -> bool:
    """Take a volunteer's turn on this connection; False when another session holds it."""
    return bool(run_alone(connection, _TAKE_TURN_SQL, (TURNS, key))[0][0])


def end_turn(connection: Connection, key: str) -> None:
    """Give a volunteer's turn back."""
    run_alone(connection, _END_TURN_SQL, (TURNS, key))


def look(
    connection: Connection, event_pk: int, platform: str, recipient: str | None, me: int
) -> tuple[tuple[dict[str, Any], datetime] | None, bool, bool]:
    """Return the event (payload, arrival) while it waits, if orphans wait, if others own rows.

    Orphans are the recipient's rows no live worker owns. Read under the recipient's turn.
    """
    params = {"event": event_pk, "platform": platform, "recipient": recipient, "me": me,
              "workers": WORKERS}  # fmt: skip
    payload, received_at, orphaned, elsewhere = run_alone(connection, _LOOK_SQL, params)[0]
    event = (payload, received_at) if payload is not None else None
    return event, bool(orphaned), bool(elsewhere)


def finish_turn(
    connection: Connection,
    key: str,
    done: Sequence[int],
    platform: str,
    recipient: str | None,
    me: int,
    now: datetime,
) -> None:
    """Delete delivered outbox rows, give back the recipient's unsent ones, and end the turn."""
    params = {"done": list(done), "platform": platform, "recipient": recipient, "me": me,
              "now": now, "first": FIRST_RETRY_SECONDS, "longest": LONGEST_RETRY_SECONDS,
              "ns": TURNS, "key": key}  # fmt: skip
    run_alone(connection, _FINISH_SQL, params)


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


def depth(connection: Connection) -> tuple[int, datetime | None]:
    """Return how many events wait and when the oldest of them arrived."""
    count, oldest = connection.execute(_DEPTH).one()
    return int(count), oldest
