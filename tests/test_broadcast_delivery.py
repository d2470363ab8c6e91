"""Broadcasts through the real channels against fakes that enforce Telegram's and LINE's limits."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app.service import WelfareService
from bot.desk.broadcasts import report_text
from bot.domain.audience import Audience
from bot.domain.schedule import QuietHours
from handlers.broadcaster import RETRY_DELAYS, Broadcaster
from handlers.line.broadcast import LineBroadcastSender
from handlers.line.channel import LineChannel
from handlers.line.sender import ATTEMPTS
from handlers.telegram.broadcast import TelegramBroadcastSender
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.pacer import PacedRateLimiter, Pacer, TokenBucket
from storage import broadcasts
from tests.broadcast_support import add_volunteers, report, scheduled
from tests.fakes.line_api import FakeLine, Fault
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import Clock, en, th
from tests.line_support import SECRET, TOKEN
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN
from tests.test_broadcasts import bkk

TEXT = "ขอเชิญประชุมอาสาสมัคร วันศุกร์นี้"


@pytest.fixture
def telegram_fake() -> Iterator[FakeTelegram]:
    """A fake Bot API that answers 429 above 20 messages a second."""
    fake = FakeTelegram(poll_cap=0.3, rate_limit=20)
    with serving(fake.app()) as server:
        fake.base_url = f"{server.url}/bot"  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def line_fake() -> Iterator[FakeLine]:
    """A fake Messaging API: 500 recipients a multicast, a monthly quota, spec-checked."""
    fake = FakeLine(quota=10_000)
    with serving(line_app(fake)) as server:
        fake.base_url = server.url  # type: ignore[attr-defined]
        yield fake
    assert fake.violations == [], "the bot sent something LINE would reject"


class Senders:
    """Both channels and their broadcast senders; the Telegram one paced above the limit."""

    def __init__(self, telegram: TelegramBroadcastSender, line: LineBroadcastSender) -> None:
        self.telegram, self.line = telegram, line


@pytest.fixture
async def senders(
    service: WelfareService, telegram_fake: FakeTelegram, line_fake: FakeLine
) -> AsyncIterator[Senders]:
    """Run both channels; pace Telegram at 25/s so the fake's 20/s limit answers 429."""
    telegram = TelegramChannel(
        service,
        TELEGRAM_TOKEN,
        base_url=telegram_fake.base_url,  # type: ignore[attr-defined]
        pacer=Pacer(TokenBucket(25)),
    )
    line = LineChannel(service, SECRET, TOKEN, base_url=line_fake.base_url)  # type: ignore[attr-defined]
    await telegram.start()
    await line.start()
    yield Senders(
        TelegramBroadcastSender(service, telegram.app.bot, telegram.pacer),
        LineBroadcastSender(service, line.sender),
    )
    await line.stop()
    await telegram.stop()


def texts_per_chat(fake: FakeTelegram) -> Counter[str]:
    """Count the broadcast messages (those ending with the footer) each Telegram chat got."""
    footers = (th("broadcast.footer"), en("broadcast.footer"))
    return Counter(
        str(c.params["chat_id"]) for c in fake.calls
        if c.method == "sendMessage" and c.params["text"].endswith(footers)
    )  # fmt: skip


def line_counts(fake: FakeLine) -> Counter[str]:
    """Count the broadcast messages each LINE user received."""
    return Counter(s.to for s in fake.sent if s.kind == "multicast")


async def test_everyone_gets_it_once_within_both_platforms_limits(
    service: WelfareService, senders: Senders, telegram_fake: FakeTelegram, line_fake: FakeLine
) -> None:
    """429s honoured, multicasts of at most 500 with their own keys, blocked and unfollowed."""
    telegram_users = add_volunteers(service, "telegram", 40)
    english = add_volunteers(service, "telegram", 1, language="en")
    blocked = add_volunteers(service, "telegram", 1)
    line_users = add_volunteers(service, "line", 1100)
    unfollowed = add_volunteers(service, "line", 1, unreachable_at=service.clock())
    telegram_fake.blocked.add(int(blocked[0]))
    broadcast_id = scheduled(service, TEXT)
    broadcaster = Broadcaster(service, [senders.telegram, senders.line], QuietHours.parse(""))
    assert await broadcaster.tick()

    assert telegram_fake.too_many > 0, "the pace was above the limit, so Telegram said 429"
    assert isinstance(limiter := senders.telegram.bot.rate_limiter, PacedRateLimiter)
    assert limiter.retries_after == telegram_fake.too_many
    assert texts_per_chat(telegram_fake) == Counter(telegram_users + english)
    english_text = next(c.params["text"] for c in telegram_fake.calls
                        if c.params.get("chat_id") == english[0])  # fmt: skip
    assert "Volunteers' meeting" in english_text
    assert th("broadcast.footer") not in english_text
    assert line_counts(line_fake) == Counter(line_users)
    assert line_fake.multicasts == 3  # 500 + 500 + 100
    assert len(line_fake.retry_keys) == 3
    assert unfollowed[0] not in line_counts(line_fake)
    figures = report(service, broadcast_id)
    assert figures["counts"] == {
        "telegram": {"sent": 41, "failed": 1},
        "line": {"sent": 1100, "skipped": 1},
    }
    assert figures["reasons"] == {"blocked the bot": 1, "unreachable": 1}
    assert figures["finished_at"] is not None
    again = scheduled(service, TEXT + " อีกครั้ง")
    await broadcaster.tick()
    assert report(service, again)["reasons"] == {"unreachable": 2}, "the blocked user is skipped"


async def test_a_broadcast_beyond_the_line_quota_is_refused_before_anyone_gets_it(
    service: WelfareService, senders: Senders, telegram_fake: FakeTelegram, line_fake: FakeLine
) -> None:
    """The quota is checked first: no message on either platform, and the reason is kept."""
    add_volunteers(service, "telegram", 3)
    add_volunteers(service, "line", 30)
    line_fake.quota, line_fake.usage = 1000, 980
    admin = add_volunteers(service, "telegram", 1, reminders_opt_out=True)[0]
    broadcast_id = scheduled(service, TEXT, created_by=f"telegram:{admin}")
    broadcaster = Broadcaster(service, [senders.telegram, senders.line], QuietHours.parse(""))
    await broadcaster.tick()
    assert texts_per_chat(telegram_fake) == Counter()
    assert line_counts(line_fake) == Counter()
    with service.db.begin() as connection:
        from storage import broadcasts

        found = broadcasts.get(connection, broadcast_id)
    assert found is not None
    assert found["status"] == "refused"
    assert "30 recipients, 20 messages left" in found["refused"]
    told = [d for d in service.undelivered("telegram") if d.recipient == admin]
    assert told[0].replies[0].text == th("bc.refused", id=broadcast_id, reason=found["refused"])


async def test_the_quota_counts_what_another_workers_broadcast_has_still_to_send(
    service: WelfareService, senders: Senders, line_fake: FakeLine
) -> None:
    """Two broadcasts that each fit the quota but not together: the second is refused."""
    add_volunteers(service, "line", 30)
    line_fake.quota, line_fake.usage = 1000, 960
    scheduled(service, TEXT)
    now = service.clock()
    with service.db.begin() as connection:
        # another worker holds the first run, its 30 recipients written but not sent yet
        broadcasts.start_due(connection, now)
        run = broadcasts.claim_run(connection, "elsewhere:1", now, now + timedelta(minutes=5))
        assert run is not None
        broadcasts.materialize(connection, run, 2570, now)
    second = scheduled(service, TEXT + " อีกครั้ง")
    broadcaster = Broadcaster(service, [senders.line], QuietHours.parse(""))
    await broadcaster.tick()
    assert line_counts(line_fake) == Counter()
    with service.db.begin() as connection:
        found = broadcasts.get(connection, second)
    assert found is not None
    assert found["status"] == "refused"
    assert "30 recipients, 40 messages left" in found["refused"]
    assert "30 of them taken by broadcasts still sending" in found["refused"]


async def test_a_multicast_whose_answer_was_lost_is_resent_with_its_key_and_not_twice(
    service: WelfareService, senders: Senders, line_fake: FakeLine
) -> None:
    """LINE accepted it but the answer never came: the retry carries the same key; 409."""
    users = add_volunteers(service, "line", 10)
    scheduled(service, TEXT, Audience(platforms=("line",)))
    line_fake.hold_after_accept = lambda payload: "to" in payload
    broadcaster = Broadcaster(service, [senders.line], QuietHours.parse(""))
    sending = asyncio.create_task(broadcaster.tick())
    await asyncio.to_thread(line_fake.wait_for, lambda f: f.holding == 1)
    line_fake.release()
    await sending
    assert line_counts(line_fake) == Counter(users)
    assert line_fake.multicasts == 1
    assert [p for p, _ in line_fake.requests].count("/v2/bot/message/multicast") == 2
    assert report(service, 1)["counts"] == {"line": {"sent": 10}}


async def test_quiet_hours_pause_a_broadcast_which_resumes_in_the_morning(
    service: WelfareService, senders: Senders, telegram_fake: FakeTelegram, clock: Clock
) -> None:
    """At 21:00 sending stops with people still pending; at 07:00 they, and only they, get it."""
    users = add_volunteers(service, "telegram", 12)
    clock.now = datetime_bangkok(20, 59)
    broadcast_id = scheduled(service, TEXT)
    sent = 0

    def on_send(_call: object) -> None:
        nonlocal sent
        sent += 1
        if sent == 5:
            clock.now = datetime_bangkok(21, 0)

    telegram_fake.on_send = on_send
    broadcaster = Broadcaster(service, [senders.telegram])
    await broadcaster.tick()
    first = texts_per_chat(telegram_fake)
    assert 5 <= sum(first.values()) < 12
    assert report(service, broadcast_id)["counts"]["telegram"]["pending"] > 0
    assert await broadcaster.tick() is False, "still night"
    clock.now = datetime_bangkok(7, 0) + timedelta(days=1)
    assert clock.now.tzinfo == UTC
    await broadcaster.tick()
    assert texts_per_chat(telegram_fake) == Counter(users)


def datetime_bangkok(hour: int, minute: int) -> datetime:
    """Return 29 Nov 2026 at a Bangkok time, in UTC."""
    return bkk(2026, 11, 29, hour, minute).astimezone(UTC)


async def test_a_telegram_send_failing_for_now_backs_off_then_is_given_up_with_its_reason(
    service: WelfareService, senders: Senders, telegram_fake: FakeTelegram, clock: Clock
) -> None:
    """502s: tried again after each delay (not at once), failed after the last, reported why."""
    add_volunteers(service, "telegram", 2)
    broadcast_id = scheduled(service, TEXT, Audience(platforms=("telegram",)))
    telegram_fake.sends_unreachable = 1000  # every message answered 502 Bad Gateway

    def requests() -> int:
        return telegram_fake.asked["sendMessage"]

    broadcaster = Broadcaster(service, [senders.telegram], QuietHours.parse(""))
    assert await broadcaster.tick()
    assert requests() == 2
    figures = report(service, broadcast_id)
    assert figures["counts"] == {"telegram": {"pending": 2}}
    assert [r.endswith("; trying again") for r in figures["reasons"]] == [True]
    assert await broadcaster.tick() is False, "nothing is due before the back-off ends"
    assert requests() == 2, "not hammered"
    for attempt, delay in enumerate(RETRY_DELAYS, start=2):
        clock.now += delay - timedelta(seconds=1)
        assert await broadcaster.tick() is False
        clock.now += timedelta(seconds=1)
        assert await broadcaster.tick()
        assert requests() == 2 * attempt
    figures = report(service, broadcast_id)
    assert figures["counts"] == {"telegram": {"failed": 2}}
    [reason] = figures["reasons"]
    assert reason.startswith("Telegram: ")
    assert reason.endswith(f"; gave up after {len(RETRY_DELAYS) + 1} attempts")
    assert figures["finished_at"] is not None
    clock.now += timedelta(days=1)
    assert await broadcaster.tick() is False
    assert requests() == 2 * (len(RETRY_DELAYS) + 1)

    from typer.testing import CliRunner

    from handlers.cli.main import app
    from tests.test_exports import service_url

    env = {"DATABASE_URL": service_url(service)}
    shown = CliRunner().invoke(app, ["broadcast", "report", str(broadcast_id)], env=env)
    assert shown.exit_code == 0, shown.output
    assert th("bc.report.reason", reason=reason, count="2") in shown.output


async def test_a_line_multicast_failing_for_now_is_resent_later_with_its_key(
    service: WelfareService, senders: Senders, line_fake: FakeLine, clock: Clock
) -> None:
    """503s past the sender's own quick retries: the batch waits, then goes once, same key."""
    users = add_volunteers(service, "line", 3)
    broadcast_id = scheduled(service, TEXT, Audience(platforms=("line",)))
    senders.line.sender.first_delay = 0.01
    line_fake.faults = [Fault(503, path="/v2/bot/message/multicast")] * ATTEMPTS
    broadcaster = Broadcaster(service, [senders.line], QuietHours.parse(""))

    def multicast_requests() -> list[str]:
        return [p for p, _ in line_fake.requests if p == "/v2/bot/message/multicast"]

    assert await broadcaster.tick()
    assert len(multicast_requests()) == ATTEMPTS
    with service.db.begin() as connection:
        shown = report_text("en", broadcasts.get(connection, broadcast_id),
                            broadcasts.report(connection, broadcast_id))  # fmt: skip
    assert en("bc.report.platform", platform="line", sent=0, pending=3, failed=0,
              skipped=0) in shown  # fmt: skip
    assert await broadcaster.tick() is False
    assert len(multicast_requests()) == ATTEMPTS, "not hammered"
    clock.now += RETRY_DELAYS[0]
    assert await broadcaster.tick()
    assert line_counts(line_fake) == Counter(users)
    assert len(line_fake.retry_keys) == 1, "the same batch, with the same key"
    figures = report(service, broadcast_id)
    assert figures["counts"] == {"line": {"sent": 3}}
    assert figures["reasons"] == {}
    assert figures["finished_at"] is not None
