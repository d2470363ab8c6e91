"""Sending on LINE against a spec-checking fake that fails as LINE does: 400s, 429s, quota."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app.service import Delivery, WelfareService
from bot.domain.messages import Button, Notice, Reply, reply_to_json
from bot.domain.schedule import QuietHours
from handlers.broadcaster import Broadcaster
from handlers.courier import Courier
from handlers.line.broadcast import LineBroadcastSender
from handlers.line.channel import QUOTA_SPENT, LineChannel
from handlers.line.render import MAX_MESSAGES, render_all
from handlers.line.sender import ATTEMPTS
from handlers.telegram.channel import TelegramChannel
from storage import inbox
from storage.models import OutboxMessage
from tests.broadcast_support import add_volunteers, report, scheduled
from tests.fakes.line_api import MONTHLY_LIMIT, FakeLine, Fault, _request_schema, limits, subtypes
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import Clock
from tests.line_support import SECRET, TOKEN
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN
from tests.telegram_support import wait_sent

PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"
USER = "U" + "b" * 32


@pytest.fixture
def line_fake() -> Iterator[FakeLine]:
    """Serve a fake Messaging API that validates every call against LINE's spec."""
    fake = FakeLine()
    with serving(line_app(fake)) as server:
        fake.base_url = server.url  # type: ignore[attr-defined]
        yield fake
    fake.release()
    assert fake.violations == [], "the bot sent something LINE would reject"


@dataclasses.dataclass
class Both:
    """Both channels and the courier, as `welfarebot run` wires them."""

    telegram: TelegramChannel
    line: LineChannel
    courier: Courier


@pytest.fixture
async def both(
    service: WelfareService, telegram_fake: FakeTelegram, line_fake: FakeLine
) -> AsyncIterator[Both]:
    """Run both channels and a courier that sweeps only when a test asks."""
    telegram = TelegramChannel(service, TELEGRAM_TOKEN, base_url=telegram_fake.base_url)  # type: ignore[attr-defined]
    line = LineChannel(service, SECRET, TOKEN, base_url=line_fake.base_url)  # type: ignore[attr-defined]
    line.sender.first_delay = 0.01  # retries come fast in tests; the order of things is the same
    await telegram.start()
    await line.start()
    courier = Courier(service, {"line": line.notify, "telegram": telegram.notify})
    courier.start(sweep_every=3600)
    yield Both(telegram, line, courier)
    await courier.stop()
    await line.stop()
    await telegram.stop()


def queue(service: WelfareService, platform: str, recipient: str, *texts: str) -> Delivery:
    """Queue a notice as the desk or the CLI does; return its delivery."""
    with service.db.begin() as connection:
        return service.queue(connection, Notice(platform, recipient, tuple(map(Reply, texts))))


def held(service: WelfareService) -> list[str | None]:
    """Return why each LINE outbox row waits, oldest first."""
    with service.db.begin() as connection:
        reasons = select(OutboxMessage.held_reason).where(OutboxMessage.platform == "line")
        return list(connection.scalars(reasons.order_by(OutboxMessage.id)))


async def test_a_spent_quota_holds_line_notices_at_once_and_telegram_goes_on(
    both: Both, service: WelfareService, line_fake: FakeLine, telegram_fake: FakeTelegram
) -> None:
    """Past the quota LINE notices are kept and marked, not slept on; Telegram's are sent."""
    line_fake.quota = 0
    both.courier.dispatch(queue(service, "line", USER, "สถานะข้อเสนอเปลี่ยนแล้วค่ะ"))
    both.courier.dispatch(queue(service, "telegram", "555", "สถานะข้อเสนอเปลี่ยนแล้วค่ะ"))
    await both.courier.idle()
    both.courier.dispatch(queue(service, "line", "U" + "c" * 32, "สถานะข้อเสนอเปลี่ยนแล้วค่ะ"))
    await both.courier.idle()
    assert telegram_fake.texts(555) == ["สถานะข้อเสนอเปลี่ยนแล้วค่ะ"]
    assert [path for path, _ in line_fake.requests] == [PUSH], "the second was not even tried"
    assert held(service) == [QUOTA_SPENT, QUOTA_SPENT]
    assert len(service.undelivered("line")) == 2, "kept for when the quota is back"


async def test_a_slow_line_holds_back_no_telegram_notice(
    both: Both, service: WelfareService, line_fake: FakeLine, telegram_fake: FakeTelegram,
    clock: Clock,
) -> None:  # fmt: skip
    """The sweep sends each platform's messages on their own: LINE hanging delays no one else."""
    queue(service, "line", USER, "แจ้งเตือน 1")
    queue(service, "line", "U" + "c" * 32, "แจ้งเตือน 2")
    queue(service, "telegram", "555", "แจ้งเตือน 3")
    clock.now += timedelta(minutes=1)
    line_fake.hold = lambda payload: payload.get("to") == USER
    sweep = asyncio.create_task(both.courier.sweep())
    await wait_sent(telegram_fake, lambda f: f.texts(555) == ["แจ้งเตือน 3"])
    await asyncio.to_thread(line_fake.wait_for, lambda f: len(f.texts_to("U" + "c" * 32)) == 1)
    # the held push travels on its own task: it may reach the fake after the other one
    await asyncio.to_thread(line_fake.wait_for, lambda f: f.holding == 1)
    assert not sweep.done()
    line_fake.release()
    assert await sweep == 3
    assert line_fake.texts_to(USER) == ["แจ้งเตือน 1"]


async def test_a_delivery_whose_reply_went_resumes_after_it(
    both: Both, service: WelfareService, line_fake: FakeLine
) -> None:
    """The first batch went by reply, the push of the second failed: resent, only the second."""
    replies = [Reply(f"{n} " + "ข้อความยาว " * 400) for n in range(7)]  # too long to fold
    assert len(render_all(replies)) == 7 > MAX_MESSAGES
    token = line_fake.issue_token(USER)
    with service.db.begin() as connection:
        payload = [reply_to_json(r) for r in replies]
        outbox_id = inbox.add_outbox(connection, "line", USER, payload, token)
    line_fake.faults = [Fault(500, path=PUSH) for _ in range(ATTEMPTS)]
    await both.line.deliver(Delivery(outbox_id, "line", USER, tuple(replies), token))
    [left] = service.undelivered("line")
    assert left.sent_batches == 1
    await both.line.deliver(dataclasses.replace(left, reply_token=None))  # as after a restart
    got = [text.split()[0] for text in line_fake.texts_to(USER)]
    assert got == [str(n) for n in range(7)], "each message once, in order"
    assert [s.kind for s in line_fake.sent] == ["reply", "push"]
    service.flush_delivered()
    assert service.undelivered("line") == []


async def test_a_spent_quota_mid_broadcast_is_recorded_not_slept_on(
    both: Both, service: WelfareService, line_fake: FakeLine
) -> None:
    """LINE says the quota is spent at the first multicast: every recipient is recorded so."""
    users = add_volunteers(service, "line", 1100)
    broadcast_id = scheduled(service, "ขอเชิญประชุม")
    line_fake.faults = [Fault(429, MONTHLY_LIMIT, path=MULTICAST)]
    sender = LineBroadcastSender(service, both.line.sender)
    assert await Broadcaster(service, [sender], QuietHours.parse("")).tick()
    figures = report(service, broadcast_id)
    assert figures["counts"] == {"line": {"failed": len(users)}}
    assert figures["reasons"] == {QUOTA_SPENT: len(users)}
    assert sum(path == MULTICAST for path, _ in line_fake.requests) == 1


def test_long_lists_and_long_questions_lose_nothing() -> None:
    """Every choice of a 150-item list and every character of a long question arrive, valid."""
    question = "\n".join(f"บรรทัดที่ {n} ของคำถามที่ยาวมาก" for n in range(400))
    choices = tuple(Button(f"ตัวเลือกที่มีชื่อยาวมากลำดับ {n}", f"a:item:{n}") for n in range(150))
    messages = render_all([Reply(question, choices)])
    shown = "\n".join(m["text"] for m in messages if m["type"] == "text")
    bodies = [
        c["text"]
        for m in messages if m["type"] == "flex"
        for bubble in (m["contents"].get("contents") or [m["contents"]])
        for c in bubble["body"]["contents"] if c["type"] == "text"
    ]  # fmt: skip
    assert (shown + "\n" + "\n".join(bodies)).split("\n") == question.split("\n")
    data = [
        c["action"]["data"]
        for m in messages if m["type"] == "flex"
        for bubble in (m["contents"].get("contents") or [m["contents"]])
        for c in bubble["body"]["contents"] if c["type"] == "button"
    ]  # fmt: skip
    assert data == [b.data for b in choices]
    schema = _request_schema(PUSH)
    assert schema is not None
    for start in range(0, len(messages), MAX_MESSAGES):
        body = {"to": USER, "messages": messages[start : start + MAX_MESSAGES]}
        assert subtypes(body, schema) == []
        assert limits(body) == []
