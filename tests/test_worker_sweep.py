"""A queue worker's sweep on PostgreSQL: platforms apart, volunteers side by side, failures wait."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.service import WelfareService
from bot.domain.messages import Notice, Reply, reply_to_json
from handlers.courier import Courier
from handlers.line.channel import LineChannel
from handlers.telegram.channel import TelegramChannel
from handlers.worker import Worker
from storage import inbox
from storage.models import OutboxMessage
from tests.conftest import make_service
from tests.fakes.line_api import FakeLine
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import Clock
from tests.line_support import SECRET, TOKEN
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN

SLOW, FAST = "U" + "5" * 32, "U" + "f" * 32


@pytest.fixture
def service(pg_url: str, clock: Clock, tmp_path: Path) -> WelfareService:
    """Return the service on PostgreSQL, where workers share the queue."""
    return make_service(pg_url, clock, tmp_path / "data")


@pytest.fixture
async def channels(
    service: WelfareService, telegram_fake: FakeTelegram, line_fake: FakeLine
) -> AsyncIterator[dict[str, TelegramChannel | LineChannel]]:
    """Run both channels as a `welfarebot worker` does: sending only, updates from the queue."""
    base = telegram_fake.base_url  # type: ignore[attr-defined]
    telegram = TelegramChannel(service, TELEGRAM_TOKEN, base_url=base, queued=True, receive=False)
    line = LineChannel(service, SECRET, TOKEN, base_url=line_fake.base_url, queued=True)  # type: ignore[attr-defined]
    await telegram.start()
    await line.start()
    # LINE first: a sweep going platform by platform would reach Telegram only after it
    yield {"line": line, "telegram": telegram}
    line_fake.release()
    await line.stop()
    await telegram.stop()


@pytest.fixture
def released(line_fake: FakeLine) -> Iterator[FakeLine]:
    """Make sure held LINE requests end, whatever the test's outcome."""
    yield line_fake
    line_fake.release()


def orphan(service: WelfareService, platform: str, recipient: str, words: str) -> int:
    """Queue a message no worker owns, as a dead worker or the CLI leaves one; return its id."""
    with service.db.begin() as connection:
        replies = [reply_to_json(Reply(words))]
        return inbox.add_outbox(connection, platform, recipient, replies, now=service.clock())


def row(service: WelfareService, outbox_id: int) -> OutboxMessage | None:
    """Return an outbox row as stored (None once it was sent)."""
    with service.sessions() as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.id == outbox_id)).first()


async def test_a_slow_line_holds_back_neither_telegram_nor_other_line_volunteers(
    service: WelfareService,
    channels: dict[str, TelegramChannel | LineChannel],
    telegram_fake: FakeTelegram,
    released: FakeLine,
) -> None:
    """While one LINE push hangs, another LINE volunteer and a later Telegram row go out."""
    line_fake = released
    line_fake.hold = lambda payload: payload.get("to") == SLOW
    orphan(service, "line", SLOW, "ช้า")
    orphan(service, "line", FAST, "เร็ว")
    worker = Worker(service, channels, sweep_seconds=0.2)
    await worker.start()
    try:
        await asyncio.to_thread(line_fake.wait_for, lambda f: f.holding == 1)
        await asyncio.to_thread(line_fake.wait_for, lambda f: f.texts_to(FAST) == ["เร็ว"], 10)
        orphan(service, "telegram", "555", "ทันที")  # queued while LINE still hangs
        await asyncio.to_thread(telegram_fake.wait_for, lambda f: f.texts(555) == ["ทันที"], 10)
        assert line_fake.texts_to(SLOW) == [], "the slow push still hangs meanwhile"
        line_fake.release()  # the held push fails; its retry goes through
        await asyncio.to_thread(line_fake.wait_for, lambda f: f.texts_to(SLOW) == ["ช้า"], 10)
    finally:
        await worker.stop(grace=1)


async def test_a_failing_row_waits_longer_before_each_try_and_holds_back_only_its_volunteer(
    service: WelfareService,
    channels: dict[str, TelegramChannel | LineChannel],
    telegram_fake: FakeTelegram,
    clock: Clock,
) -> None:
    """2 s, then 4 s, … up to 5 minutes between tries, not one every sweep; then it goes once."""
    worker = Worker(service, channels, poll_seconds=3600, sweep_seconds=3600)
    await worker.start()

    async def tries_while_down() -> int:
        """Sweep while Telegram answers 502 Bad Gateway; return how many sends were tried."""
        telegram_fake.unreachable = 1_000
        await worker.sweep()
        tried, telegram_fake.unreachable = 1_000 - telegram_fake.unreachable, 0
        return tried

    def waits(outbox_id: int) -> tuple[int, timedelta]:
        """Return a row's failed tries and how long from now its next try is."""
        stored = row(service, outbox_id)
        assert stored is not None
        assert stored.next_attempt_at is not None
        return stored.attempts, stored.next_attempt_at - clock.now

    try:
        start = clock.now
        failing = orphan(service, "telegram", "555", "แรก")
        assert await tries_while_down() == 1
        assert await tries_while_down() == 0, "not tried again at the next sweep"
        assert waits(failing) == (1, timedelta(seconds=2))
        behind = orphan(service, "telegram", "555", "ที่สอง")
        orphan(service, "telegram", "556", "คนอื่น")
        assert await worker.sweep() == 1, "another volunteer's row does not wait"
        assert telegram_fake.texts(556) == ["คนอื่น"]
        clock.now = start + timedelta(seconds=1)
        assert await tries_while_down() == 0, "not tried again before its wait is over"
        assert telegram_fake.texts(555) == [], "nor is the row behind it sent before it"
        assert row(service, behind) is not None

        clock.now = start + timedelta(seconds=2)
        assert await tries_while_down() == 1
        assert waits(failing) == (2, timedelta(seconds=4))
        clock.now = start + timedelta(seconds=5)
        assert await tries_while_down() == 0
        with service.db.begin() as connection:  # as after a long outage
            table = OutboxMessage.__table__
            connection.execute(table.update().where(table.c.id == failing).values(attempts=12))
        clock.now = start + timedelta(seconds=6)
        assert await tries_while_down() == 1
        assert waits(failing) == (13, timedelta(minutes=5)), "the longest wait"

        clock.now += timedelta(minutes=5)
        assert await worker.sweep() == 2
        assert telegram_fake.texts(555) == ["แรก", "ที่สอง"], "once each, in order"
        assert row(service, failing) is None
        assert row(service, behind) is None
    finally:
        await worker.stop(grace=1)


async def test_a_notice_that_failed_is_handed_to_the_sweep(
    service: WelfareService,
    channels: dict[str, TelegramChannel | LineChannel],
    telegram_fake: FakeTelegram,
    clock: Clock,
) -> None:
    """A notice the worker's own courier failed to send is not left owned by a live worker."""
    worker = Worker(service, channels, poll_seconds=3600, sweep_seconds=3600)
    await worker.start()
    courier = Courier(service, {platform: c.notify for platform, c in channels.items()})
    courier.start(sweep_every=None)  # as `welfarebot worker` runs it: the worker sweeps
    try:
        with service.db.begin() as connection:  # as a status change queues the volunteer's notice
            notice = service.queue(connection, Notice("telegram", "557", (Reply("แจ้งผล"),)))
        telegram_fake.unreachable = 1
        courier.dispatch(notice)
        await courier.idle()
        assert telegram_fake.texts(557) == []
        assert await worker.sweep() == 0, "it waits a little first"
        clock.now += timedelta(seconds=2)
        assert await worker.sweep() == 1
        assert telegram_fake.texts(557) == ["แจ้งผล"]
    finally:
        await courier.stop()
        await worker.stop(grace=1)
