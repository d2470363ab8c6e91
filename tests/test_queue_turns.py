"""A volunteer's turn on the shared queue: what it reads as it starts, what it leaves behind."""

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, select, text

from bot.domain.calendar import utcnow
from storage import inbox, queue
from storage.db import make_engine
from storage.models import Base, OutboxMessage

KEY = "line:U1"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    """Return an engine on the test PostgreSQL database, emptied."""
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine
    engine.dispose()


def add_row(engine: Engine, recipient: str, owner: int | None) -> int:
    """Queue one reply for a recipient, owned by a worker id (or nobody)."""
    with engine.begin() as connection:
        return inbox.add_outbox(connection, "line", recipient, [{"text": "hi"}], owner=owner)


def owners(engine: Engine) -> dict[int, int | None]:
    """Return every outbox row's owner, by id."""
    with engine.connect() as connection:
        rows = connection.execute(select(OutboxMessage.id, OutboxMessage.owner))
        return {row.id: row.owner for row in rows}


def test_a_turn_sees_its_event_only_while_it_waits(engine: Engine) -> None:
    """The event's payload while nobody handled it; nothing once it is processed."""
    with engine.connect() as connection:
        inbox.store_events(connection, "line", [("e1", {"n": 1})], lambda _p: "U1")
        [(event_pk, platform, user_key)] = queue.waiting(connection, ["line"], 10)
        assert (platform, user_key) == ("line", "U1")
        event, orphaned, elsewhere = queue.look(connection, event_pk, "line", "U1", me=7)
        assert event is not None
        assert event[0] == {"n": 1}
        assert (orphaned, elsewhere) == (False, False)
        with connection.begin():
            assert inbox.claim_event(connection, "line", "e1")
        assert queue.look(connection, event_pk, "line", "U1", me=7) == (None, False, False)


def test_a_turn_sees_rows_no_live_worker_owns(engine: Engine) -> None:
    """Rows of nobody or of a dead worker are orphans; another live worker's are its own."""
    with engine.connect() as me, engine.connect() as other:
        assert queue.hold_worker(me, 7)
        assert queue.hold_worker(other, 8)
        add_row(engine, "U1", owner=7)
        assert queue.look(me, 0, "line", "U1", me=7) == (None, False, False)
        add_row(engine, "U1", owner=8)
        assert queue.look(me, 0, "line", "U1", me=7) == (None, False, True)
        add_row(engine, "U1", owner=9)  # a worker id nobody holds: its worker died
        assert queue.look(me, 0, "line", "U1", me=7) == (None, True, True)
        add_row(engine, "U2", owner=None)
        assert queue.look(me, 0, "line", "U2", me=7) == (None, True, False)
        other.execute(text("SELECT pg_advisory_unlock_all()"))  # as worker 8's death does
        assert queue.look(me, 0, "line", "U1", me=7) == (None, True, False)


def test_ending_a_turn_settles_the_rows_and_frees_the_volunteer(engine: Engine) -> None:
    """Delivered rows go, unsent ones are given back to retry later, and another takes the turn."""
    sent, failed = add_row(engine, "U1", owner=7), add_row(engine, "U1", owner=7)
    elsewhere = add_row(engine, "U2", owner=7)
    with engine.connect() as mine, engine.connect() as theirs:
        assert queue.take_turn(mine, KEY)
        assert not queue.take_turn(theirs, KEY)
        queue.finish_turn(mine, KEY, [sent], "line", "U1", me=7, now=utcnow())
        assert owners(engine) == {failed: None, elsewhere: 7}
        with engine.connect() as connection:
            retry = connection.execute(
                select(OutboxMessage.attempts, OutboxMessage.next_attempt_at).where(
                    OutboxMessage.id == failed
                )
            ).one()
        assert retry.attempts == 1
        assert retry.next_attempt_at is not None
        assert queue.take_turn(theirs, KEY)
        queue.end_turn(theirs, KEY)


def test_storing_wakes_the_workers_only_for_new_events(engine: Engine, postgres_url: str) -> None:
    """A webhook stored wakes the listening workers; one carrying only repeats does not."""
    listener = psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True)
    listener.execute(f"LISTEN {queue.CHANNEL}")
    with engine.connect() as connection:
        inbox.store_events(connection, "line", [("e1", {"n": 1})], lambda _p: "U1")
        inbox.store_events(connection, "line", [("e1", {"n": 1})], lambda _p: "U1")
        inbox.store_events(connection, "line", [("e1", {}), ("e2", {})], lambda _p: "U1")
    listener.execute(f"NOTIFY {queue.CHANNEL}, 'end'")
    # notifications arrive in commit order, so the marker comes after every wake-up
    wakes = []
    for notice in listener.notifies(timeout=10):
        if notice.payload == "end":
            break
        wakes.append(notice)
    listener.close()
    assert len(wakes) == 2
    with engine.connect() as connection:
        assert [pk for pk, _p, _u in queue.waiting(connection, ["line"], 10)] == [1]


def test_waiting_gives_each_volunteers_oldest_event_and_every_keyless_one(engine: Engine) -> None:
    """Heads in arrival order: one per volunteer, each event without a volunteer, one platform."""
    with engine.connect() as connection:
        events = [("a1", "U1"), ("b1", "U2"), ("a2", "U1"), ("x1", None), ("x2", None)]
        events.append(("b2", "U2"))
        for event_id, user in events:
            inbox.store_events(connection, "line", [(event_id, {"u": user})], lambda p: p["u"])
        inbox.store_events(connection, "telegram", [("t1", {})], lambda _p: "7")
        heads = queue.waiting(connection, ["line"], 10)
        assert [(pk, user) for pk, _platform, user in heads] == [
            (1, "U1"), (2, "U2"), (4, None), (5, None)
        ]  # fmt: skip
        assert [pk for pk, _p, _u in queue.waiting(connection, ["line"], 2)] == [1, 2]
        with connection.begin():
            assert inbox.claim_event(connection, "line", "a1")
        assert [pk for pk, _p, _u in queue.waiting(connection, ["line"], 10)] == [2, 3, 4, 5]


def test_waiting_leaves_out_heads_whose_turn_is_held(engine: Engine) -> None:
    """A volunteer another session is on is not offered: taking their turn could only fail."""
    with engine.connect() as connection, engine.connect() as other:
        for event_id, user in [("a1", "U1"), ("b1", "U2")]:
            inbox.store_events(connection, "line", [(event_id, {})], lambda _p, u=user: u)
        assert queue.take_turn(other, KEY)
        assert [user for _pk, _p, user in queue.waiting(connection, ["line"], 10)] == ["U2"]
        queue.end_turn(other, KEY)
        assert [user for _pk, _p, user in queue.waiting(connection, ["line"], 10)] == ["U1", "U2"]


def test_each_worker_is_woken_for_and_takes_its_own_share_first(
    engine: Engine, postgres_url: str
) -> None:
    """The NOTIFY names each stored volunteer's turn; a worker's share comes first in waiting."""
    listener = psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True)
    listener.execute(f"LISTEN {queue.CHANNEL}")
    users = [f"U{n}" for n in range(1, 9)]
    with engine.connect() as connection:
        payloads = []
        for user in users:
            inbox.store_events(connection, "line", [(user, {})], lambda _p, u=user: u)
            payloads.append(next(listener.notifies(timeout=10)).payload)
        listener.close()
        workers = (11, 22)
        for me in workers:
            mine = [
                u for u, p in zip(users, payloads, strict=True) if queue.share_of(p, workers, me)
            ]
            assert 0 < len(mine) < len(users)  # eight volunteers split between two workers
            share = queue.rank_of(workers, me)
            heads = [user for _pk, _p, user in queue.waiting(connection, ["line"], 10, share)]
            assert heads == mine + [u for u in users if u not in mine]
        assert all(queue.share_of(p, (11,), 11) for p in payloads)  # alone: every volunteer


def test_a_webhook_of_a_thousand_volunteers_is_stored_and_wakes_every_worker(
    engine: Engine, postgres_url: str
) -> None:
    """Too many volunteers to name within a NOTIFY's 8,000 bytes: it names none, all look."""
    listener = psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True)
    listener.execute(f"LISTEN {queue.CHANNEL}")
    events = [(f"e{n}", {"u": f"U{n:032x}"}) for n in range(1000)]
    with engine.connect() as connection:
        inbox.store_events(connection, "line", events, lambda p: p["u"])
        payload = next(listener.notifies(timeout=10)).payload
        listener.close()
        assert len(queue.waiting(connection, ["line"], 2000)) == 1000
    assert payload == ""
    assert all(queue.share_of(payload, (11, 22), me) for me in (11, 22))
