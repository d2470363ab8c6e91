"""One pace for all the bot sends on Telegram, against a fake Bot API that enforces the limit."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.app.service import WelfareService
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.pacer import Kind, Pacer, TokenBucket
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import th
from tests.telegram_support import TOKEN, as_update, wait_sent
from tests.transcripts import FIRST_PROPOSAL

# hello, consent, name: three replies and one answered button each
SCRIPT = FIRST_PROPOSAL[:3]
LAST_QUESTION = th("q.phone")


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """A fake Bot API that answers 429 past 30 messages in any second, as Telegram does."""
    fake = FakeTelegram(poll_cap=0.3, rate_limit=30)
    with serving(fake.app()) as server:
        fake.base_url = f"{server.url}/bot"  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
async def channel(service: WelfareService, fake: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    """Run the Telegram channel at its default pace."""
    channel = TelegramChannel(service, TOKEN, base_url=fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    yield channel
    await channel.stop()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the log records that carry a traceback or are errors."""
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def asked_name(fake: FakeTelegram, person: Updates) -> bool:
    """Tell whether a volunteer was asked for their name."""
    return any(th("q.full_name") in t for t in fake.texts(person.user["id"]))


def in_order(texts: list[str], *fragments: str) -> bool:
    """Tell whether each fragment appears in a later message than the one before."""
    position = -1
    for fragment in fragments:
        later = [i for i, t in enumerate(texts) if i > position and fragment in t]
        if not later:
            return False
        position = later[0]
    return True


async def test_a_hundred_volunteers_at_once_all_finish_without_a_429(
    channel: TelegramChannel,
    fake: FakeTelegram,
    service: WelfareService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Replies past the limit queue and arrive, in order per chat, and Telegram never says 429."""
    caplog.set_level(logging.INFO)
    people = [Updates(50_000 + n) for n in range(100)]
    fake.push(*(as_update(person, event) for event in SCRIPT for person in people))

    def everyone_done(f: FakeTelegram) -> bool:
        return all(any(LAST_QUESTION in t for t in f.texts(p.user["id"])) for p in people)

    await asyncio.to_thread(fake.wait_for, everyone_done, 60)
    await channel.idle()
    assert fake.too_many == 0
    assert fake.answered_again == 0
    assert tracebacks(caplog) == []
    for person in people:
        texts = fake.texts(person.user["id"])
        assert len(texts) == 3
        assert in_order(texts, th("consent"), th("q.full_name"), LAST_QUESTION)
    assert len(fake.answered) == 100, "every button press was answered once"
    assert service.undelivered("telegram") == []


async def test_a_429_holds_every_send_for_its_retry_after_and_nothing_is_lost(
    service: WelfareService, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Paced above what the API allows, 429s come; each is waited out and sent again."""
    caplog.set_level(logging.INFO)
    fake.rate_limit = 8
    channel = TelegramChannel(
        service,
        TOKEN,
        base_url=fake.base_url,  # type: ignore[attr-defined]
        pacer=Pacer(TokenBucket(rate=40, burst=20)),
    )
    await channel.start()
    try:
        people = [Updates(60_000 + n) for n in range(15)]
        fake.push(*(as_update(person, event) for event in SCRIPT[:2] for person in people))
        await wait_sent(fake, lambda f: all(asked_name(f, p) for p in people))
        await channel.idle()
    finally:
        await channel.stop()
    assert fake.too_many > 0
    assert channel.limiter.retries_after == fake.too_many, "each 429 was retried, none dropped"
    assert tracebacks(caplog) == []
    for person in people:
        assert in_order(fake.texts(person.user["id"]), th("consent"), th("q.full_name"))


async def test_a_redelivered_or_replayed_press_does_not_answer_its_query_again(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """The same update twice answers its button once; one replayed after a restart not at all."""
    person = Updates(70_001)
    hello, consent = as_update(person, SCRIPT[0]), as_update(person, SCRIPT[1])
    stale = Updates(70_002)
    late = as_update(stale, SCRIPT[1])
    stored = [as_update(stale, SCRIPT[0]), late]
    service.store_events("telegram", [(str(u["update_id"]), u) for u in stored])
    channel = TelegramChannel(service, TOKEN, base_url=fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    try:
        fake.push(hello, consent, consent)
        await wait_sent(fake, lambda f: asked_name(f, person) and asked_name(f, stale))
        await channel.idle()
    finally:
        await channel.stop()
    answered = [c.params["callback_query_id"] for c in fake.calls
                if c.method == "answerCallbackQuery"]  # fmt: skip
    assert answered == [consent["callback_query"]["id"]]
    assert late["callback_query"]["id"] not in fake.answered
    assert fake.answered_again == 0


class GatedBucket:
    """A bucket that allows one send each time the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Semaphore(0)
        self.held: list[float] = []

    async def take(self) -> float:
        """Wait for the test to open the gate, then allow one send."""
        await self.gate.acquire()
        return 0.0

    async def hold(self, wait: float) -> None:
        """Note the hold."""
        self.held.append(wait)


async def test_replies_go_before_notices_before_broadcasts_each_in_arrival_order() -> None:
    """Broadcasts waiting first still go after a reply and a notice that came later."""
    bucket = GatedBucket()
    pacer = Pacer(bucket)
    order: list[str] = []

    async def send(kind: Kind, name: str) -> None:
        await pacer.acquire(kind)
        order.append(name)

    tasks = [asyncio.create_task(send("broadcast", f"b{n}")) for n in range(3)]
    await asyncio.sleep(0)  # let the broadcasts queue up first
    tasks += [asyncio.create_task(send("notice", "n0")), asyncio.create_task(send("reply", "r0"))]
    tasks.append(asyncio.create_task(send("reply", "r1")))
    await asyncio.sleep(0)
    assert pacer.waiting() == 6
    for _ in tasks:
        bucket.gate.release()
    await asyncio.gather(*tasks)
    assert order == ["r0", "r1", "n0", "b0", "b1", "b2"]
