"""Button presses on PostgreSQL (web stores, worker handles): each query answered once, or never."""

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bot.app.service import WelfareService
from handlers.telegram.channel import QUERY_LIFE, TelegramChannel
from handlers.worker import Worker
from storage.models import InboundEvent
from tests.conftest import make_service
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import Clock, th
from tests.telegram_support import TOKEN, as_update, wait_sent, web_server
from tests.transcripts import FIRST_PROPOSAL

SECRET = "webhook-secret-for-tests"
HELLO, CONSENT, NAME = FIRST_PROPOSAL[:3]


@pytest.fixture
def service(pg_url: str, clock: Clock, tmp_path: Path) -> WelfareService:
    """Return the service on PostgreSQL, where web and worker share the queue."""
    return make_service(pg_url, clock, tmp_path / "data")


@pytest.fixture
async def webhook(
    service: WelfareService, telegram_fake: FakeTelegram
) -> AsyncIterator[httpx.AsyncClient]:
    """Serve Telegram's webhook as `welfarebot web` does: updates are stored, not handled."""
    web = TelegramChannel(
        service,
        TOKEN,
        base_url=telegram_fake.base_url,  # type: ignore[attr-defined]
        webhook_url="https://welfare.example.org/telegram/webhook",
        webhook_secret=SECRET,
        queued=True,
    )
    await web.start()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with (
        web_server(web.routes(), service.db) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as http,
    ):
        yield http
    await web.stop()


@pytest.fixture
async def worker_channel(
    service: WelfareService, telegram_fake: FakeTelegram
) -> AsyncIterator[TelegramChannel]:
    """Return the Telegram channel of `welfarebot worker`: it handles and sends only."""
    channel = TelegramChannel(
        service,
        TOKEN,
        base_url=telegram_fake.base_url,  # type: ignore[attr-defined]
        queued=True,
        receive=False,
    )
    await channel.start()
    yield channel
    await channel.stop()


async def post(http: httpx.AsyncClient, update: dict) -> None:
    """Deliver one update to the webhook as Telegram does."""
    assert (await http.post("/telegram/webhook", json=update)).status_code == 200


def asked_name(person: Updates) -> Callable[[FakeTelegram], bool]:
    """Return a predicate: the volunteer was asked for their name."""
    return lambda fake: any(th("q.full_name") in t for t in fake.texts(person.user["id"]))


async def test_a_press_answers_its_query_once_and_a_stale_one_never(
    service: WelfareService,
    webhook: httpx.AsyncClient,
    worker_channel: TelegramChannel,
    telegram_fake: FakeTelegram,
) -> None:
    """Redelivered presses are not answered again; one that waited past QUERY_LIFE not at all."""
    late, fresh = Updates(81_001), Updates(81_002)
    late_consent = as_update(late, CONSENT)
    # pressed while no worker ran (all of them down, or restarting), and left waiting
    await post(webhook, as_update(late, HELLO))
    await post(webhook, late_consent)
    with service.db.begin() as connection:
        connection.execute(
            update(InboundEvent).values(
                received_at=InboundEvent.received_at - QUERY_LIFE - timedelta(seconds=1)
            )
        )
    fresh_consent = as_update(fresh, CONSENT)
    await post(webhook, as_update(fresh, HELLO))
    await post(webhook, fresh_consent)
    await post(webhook, fresh_consent)  # Telegram sends it again: our 200 was lost on the way

    worker = Worker(service, {"telegram": worker_channel})
    await worker.start()
    try:
        await wait_sent(telegram_fake, lambda f: asked_name(late)(f) and asked_name(fresh)(f))
        await post(webhook, fresh_consent)  # redelivered again, after it was handled
        await post(webhook, as_update(fresh, NAME))
        phone = th("q.phone")
        await wait_sent(telegram_fake, lambda f: any(phone in t for t in f.texts(81_002)))
    finally:
        await worker.stop(grace=5)
    answered = [c.params["callback_query_id"] for c in telegram_fake.calls
                if c.method == "answerCallbackQuery"]  # fmt: skip
    assert answered == [fresh_consent["callback_query"]["id"]]
    assert telegram_fake.answered_again == 0
    assert sum(th("q.full_name") in t for t in telegram_fake.texts(81_002)) == 1
