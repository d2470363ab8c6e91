"""The per-event hot path in SQLAlchemy Core: event log, conversation state and outbox.

Statements are built once and executed on a Connection; each inbound event runs four of them, so
avoiding the ORM's per-statement cost here roughly triples throughput (see docs/benchmarks.md).
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString, cast

from psycopg.rows import dict_row
from psycopg.types.json import Json
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain.calendar import utcnow
from storage import queue
from storage.db import run_alone, run_within
from storage.models import Conversation, InboundEvent, OutboxMessage, Volunteer

_events = cast(Table, InboundEvent.__table__)
_outbox = cast(Table, OutboxMessage.__table__)
_conversations = cast(Table, Conversation.__table__)
_volunteers = cast(Table, Volunteer.__table__)

_CLAIM_STORED = (
    update(_events)
    .where(
        _events.c.platform == bindparam("p"),
        _events.c.event_id == bindparam("e"),
        _events.c.processed_at.is_(None),
    )
    .values(processed_at=bindparam("now"), payload=None)
)
_PENDING = (
    select(_events.c.event_id, _events.c.payload)
    .where(_events.c.platform == bindparam("p"), _events.c.processed_at.is_(None))
    .order_by(_events.c.id)
)
_LOAD = (
    select(_volunteers, _conversations.c.state, _conversations.c.updated_at.label("state_at"))
    .outerjoin(_conversations, _conversations.c.volunteer_id == _volunteers.c.id)
    .where(
        _volunteers.c.platform == bindparam("p"), _volunteers.c.platform_user_id == bindparam("u")
    )
)
_LOAD_FOR_UPDATE = _LOAD.with_for_update(of=_volunteers)
_UPDATE_STATE = (
    update(_conversations)
    .where(_conversations.c.volunteer_id == bindparam("v"))
    .values(state=bindparam("state"), updated_at=bindparam("now"))
)
_REACHABLE = (
    update(_volunteers).where(_volunteers.c.id == bindparam("v")).values(unreachable_at=None)
)
_INSERT_STATE = insert(_conversations).values(
    volunteer_id=bindparam("v"), state=bindparam("state"), updated_at=bindparam("now")
)
_DELETE_STATE = delete(_conversations).where(_conversations.c.volunteer_id == bindparam("v"))
_ADD_OUTBOX = insert(_outbox).returning(_outbox.c.id)
_REMOVE_OUTBOX = delete(_outbox).where(_outbox.c.id.in_(bindparam("ids", expanding=True)))
_UNDELIVERED = select(_outbox).order_by(_outbox.c.id).where(_outbox.c.platform == bindparam("p"))


_IGNORING_REPEATS = {
    name: dialect.insert(_events).on_conflict_do_nothing(index_elements=["platform", "event_id"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_CLAIM_NEW = {
    name: statement.returning(_events.c.id) for name, statement in _IGNORING_REPEATS.items()
}


# on PostgreSQL one statement, committed at once: new events stored and the workers woken
# (only when something new came), told whose turns they are (hashtext of each turn key, as
# storage.queue.share_of reads them). Four round trips became one for each webhook. The arrays go
# in binary (%b): psycopg quotes a text-format array element by element with a regular
# expression, and JSON payloads are full of quotes (0.29 -> 0.2 ms of CPU a webhook)
# a NOTIFY's payload must stay under 8,000 bytes: past this many volunteers in one webhook (11
# characters and a comma each) it names none, and every worker looks (a webhook of 1,000 LINE
# users' events failed to store with "payload string too long")
_NAMED_TURNS = 500
_STORE_AND_WAKE: LiteralString = (
    "WITH stored AS (INSERT INTO inbound_events (platform, event_id, user_key, payload,"
    "  received_at) SELECT %(platform)s, e.event_id, e.user_key, e.payload, %(now)s"
    "  FROM unnest(%(ids)b::text[], %(keys)b::text[], %(payloads)b::json[])"
    "   AS e(event_id, user_key, payload)"
    "  ON CONFLICT (platform, event_id) DO NOTHING"
    "  RETURNING hashtext(platform || ':' || coalesce(user_key, 'event-' || id)) AS turn)"
    f" SELECT pg_notify('{queue.CHANNEL}', CASE WHEN count(DISTINCT turn) <= {_NAMED_TURNS}"
    "  THEN string_agg(DISTINCT turn::text, ',') ELSE '' END) FROM stored HAVING count(*) > 0"
)


# the same statements on PostgreSQL, run on the driver inside the event's transaction (every
# event runs them: storage.db.run_within); SQLite keeps the SQLAlchemy Core ones above
_CLAIM_STORED_SQL: LiteralString = (
    "UPDATE inbound_events SET processed_at = %(now)s, payload = NULL"
    " WHERE platform = %(p)s AND event_id = %(e)s AND processed_at IS NULL"
)
_LOAD_FOR_UPDATE_SQL: LiteralString = (
    "SELECT v.*, c.state, c.updated_at AS state_at FROM volunteers v"
    " LEFT JOIN conversations c ON c.volunteer_id = v.id"
    " WHERE v.platform = %(p)s AND v.platform_user_id = %(u)s FOR UPDATE OF v"
)
# under the volunteer's row lock (load), so the insert-or-update cannot race
_SAVE_STATE_SQL: LiteralString = (
    "INSERT INTO conversations (volunteer_id, state, updated_at) VALUES (%(v)s, %(state)s, %(now)s)"
    " ON CONFLICT (volunteer_id) DO UPDATE SET state = excluded.state,"
    " updated_at = excluded.updated_at"
)
_ADD_OUTBOX_SQL: LiteralString = (
    "INSERT INTO outbox (platform, recipient, replies, reply_token, created_at, owner,"
    " sent_batches, attempts) VALUES (%(platform)s, %(recipient)s, %(replies)s,"
    " %(reply_token)s, %(created_at)s, %(owner)s, 0, 0) RETURNING id"
)
# the two at the end of a volunteer's event, in one round trip
_SAVE_STATE_AND_ADD_OUTBOX_SQL: LiteralString = (
    "WITH saved AS (" + _SAVE_STATE_SQL + ") " + _ADD_OUTBOX_SQL
)


def store_events(
    connection: Connection,
    platform: str,
    events: Iterable[tuple[str, dict[str, Any]]],
    key_of: Callable[[dict[str, Any]], str | None] | None = None,
) -> None:
    """Store raw events not seen before (event id, payload) with whose they are; ignore repeats.

    Commits on its own: the connection must not be in a transaction.
    """
    now = utcnow()
    rows = [
        {
            "platform": platform,
            "event_id": event_id,
            "payload": payload,
            "received_at": now,
            "user_key": key_of(payload) if key_of else None,
        }
        for event_id, payload in events
    ]
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        params = {
            "platform": platform,
            "now": now,
            "ids": [row["event_id"] for row in rows],
            "keys": [row["user_key"] for row in rows],
            "payloads": [json.dumps(row["payload"]) for row in rows],
        }
        run_alone(connection, _STORE_AND_WAKE, params)
        return
    with connection.begin():
        connection.execute(_IGNORING_REPEATS[connection.dialect.name], rows)


def claim_event(connection: Connection, platform: str, event_id: str) -> bool:
    """Mark an event as taking effect now; False when it already has (a duplicate)."""
    now = utcnow()
    params = {"p": platform, "e": event_id, "now": now}
    if connection.dialect.name == "postgresql":
        if run_within(connection, _CLAIM_STORED_SQL, params).rowcount:
            return True
    elif connection.execute(_CLAIM_STORED, params).rowcount:
        return True
    row = {"platform": platform, "event_id": event_id, "received_at": now, "processed_at": now}
    return connection.execute(_CLAIM_NEW[connection.dialect.name], row).first() is not None


def finish_event(connection: Connection, platform: str, event_id: str) -> None:
    """Mark an event processed when no handler claimed it, dropping its payload."""
    connection.execute(_CLAIM_STORED, {"p": platform, "e": event_id, "now": utcnow()})


def pending_events(connection: Connection, platform: str) -> list[tuple[str, dict[str, Any]]]:
    """Return stored events not processed yet, oldest first."""
    rows = connection.execute(_PENDING, {"p": platform})
    return [(event_id, payload) for event_id, payload in rows if payload is not None]


@dataclass(frozen=True)
class Loaded:
    """A volunteer's row and conversation state, as read at the start of an event."""

    volunteer: dict[str, Any] | None
    state: dict[str, Any] | None
    # when the state last changed: a long silence means the volunteer is coming back
    state_at: datetime | None = None


def load(connection: Connection, platform: str, user_id: str) -> Loaded:
    """Read (and on PostgreSQL lock) a volunteer with their conversation state."""
    params = {"p": platform, "u": user_id}
    row: Any
    if connection.dialect.name == "postgresql":
        row = run_within(connection, _LOAD_FOR_UPDATE_SQL, params, dict_row).fetchone()
    else:
        row = connection.execute(_LOAD, params).mappings().first()
    if row is None:
        return Loaded(None, None)
    volunteer = {k: v for k, v in row.items() if k not in ("state", "state_at")}
    return Loaded(volunteer, row["state"], row["state_at"])


@dataclass(frozen=True)
class SavedState:
    """A volunteer's conversation state to store (None deletes it) as their event ends."""

    volunteer_id: int
    state: dict[str, Any] | None
    # whether they had a state when the event began
    existed: bool
    now: datetime


def save_state(
    connection: Connection,
    volunteer_id: int,
    state: dict[str, Any] | None,
    existed: bool,
    now: datetime | None = None,
) -> None:
    """Store, replace or (with None) delete a volunteer's conversation state."""
    params = {"v": volunteer_id, "state": state, "now": now or utcnow()}
    if state is None:
        connection.execute(_DELETE_STATE, params)
    elif connection.dialect.name == "postgresql":
        run_within(connection, _SAVE_STATE_SQL, {**params, "state": Json(state)})
    elif existed and connection.execute(_UPDATE_STATE, params).rowcount:
        return
    else:
        connection.execute(_INSERT_STATE, params)


def add_outbox(
    connection: Connection,
    platform: str,
    recipient: str,
    replies: list[dict[str, Any]],
    reply_token: str | None = None,
    now: datetime | None = None,
    owner: int | None = None,
    state: SavedState | None = None,
) -> int:
    """Queue replies for a recipient (sent by owner, a worker id); return the outbox id.

    With `state`, the sender's conversation state is saved too, in the same statement when
    PostgreSQL can.
    """
    row = {
        "platform": platform,
        "recipient": recipient,
        "replies": replies,
        "reply_token": reply_token,
        "created_at": now or utcnow(),
        "owner": owner,
    }
    postgresql = connection.dialect.name == "postgresql"
    if state is not None and postgresql and state.state is not None:
        params = {**row, "replies": Json(replies), "v": state.volunteer_id,
                  "state": Json(state.state), "now": state.now}  # fmt: skip
        return int(run_within(connection, _SAVE_STATE_AND_ADD_OUTBOX_SQL, params).fetchall()[0][0])
    if state is not None:
        save_state(connection, state.volunteer_id, state.state, state.existed, state.now)
    if postgresql:
        added = run_within(connection, _ADD_OUTBOX_SQL, {**row, "replies": Json(replies)})
        return int(added.fetchall()[0][0])
    return int(connection.execute(_ADD_OUTBOX, row).scalar_one())


def remove_outbox(connection: Connection, outbox_ids: Sequence[int]) -> None:
    """Forget delivered outbox messages."""
    connection.execute(_REMOVE_OUTBOX, {"ids": list(outbox_ids)})


def outbox_progress(connection: Connection, outbox_id: int, sent_batches: int) -> None:
    """Note how many requests of a delivery went out, so a resend starts after them."""
    connection.execute(
        update(_outbox).where(_outbox.c.id == outbox_id).values(sent_batches=sent_batches)
    )


def hold_outbox(connection: Connection, outbox_id: int, reason: str) -> None:
    """Note why a delivery waits (it stays in the outbox for the sweep)."""
    connection.execute(
        update(_outbox).where(_outbox.c.id == outbox_id).values(held_reason=reason[:200])
    )


def undelivered(connection: Connection, platform: str) -> list[dict[str, Any]]:
    """Return outbox messages of a platform not confirmed delivered, oldest first."""
    return [dict(row) for row in connection.execute(_UNDELIVERED, {"p": platform}).mappings()]


def claim_stale(
    connection: Connection,
    platform: str,
    now: datetime,
    created_before: datetime,
    lease_before: datetime,
) -> list[dict[str, Any]]:
    """Claim outbox messages nobody is sending: old, and unclaimed or with a lapsed claim.

    Notices queued by another process (the CLI, a worker without this channel) and replies of
    a crashed worker land here; the claim keeps two workers from sending the same row.
    """
    c = _outbox.c
    candidates = connection.execute(
        select(_outbox)
        .where(c.platform == platform, c.created_at < created_before)
        .where((c.claimed_at.is_(None)) | (c.claimed_at < lease_before))
        .order_by(c.id)
        .limit(500)
    ).mappings()
    claimed = []
    for row in list(candidates):
        won = connection.execute(
            update(_outbox)
            .where(c.id == row["id"])
            .where((c.claimed_at.is_(None)) | (c.claimed_at < lease_before))
            .values(claimed_at=now)
        ).rowcount
        if won:
            claimed.append(dict(row))
    return claimed


def reachable_again(connection: Connection, volunteer_id: int) -> None:
    """Note that a volunteer marked unreachable has written to the bot again."""
    connection.execute(_REACHABLE, {"v": volunteer_id})
