"""How the Telegram channel starts: webhook secrets, webhooks left alone, bad tokens, outages."""

import logging
from collections.abc import Iterator

import pytest

from bot.app.service import WelfareService
from bot.app.settings import SettingsError
from handlers.telegram.channel import TelegramChannel
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram_support import TOKEN

PRODUCTION = "https://bot.example.org/telegram/webhook"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """Serve a fake Bot API on loopback."""
    fake = FakeTelegram(poll_cap=0.3)
    with serving(fake.app()) as server:
        fake.base_url = f"{server.url}/bot"  # type: ignore[attr-defined]
        yield fake


def channel(service: WelfareService, fake: FakeTelegram, **options: object) -> TelegramChannel:
    """Return a Telegram channel on the fake."""
    return TelegramChannel(service, TOKEN, base_url=fake.base_url, **options)  # type: ignore[arg-type,attr-defined]


def test_webhook_mode_without_a_secret_refuses_to_start(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """An open webhook would let anyone post updates as an administrator: it never starts."""
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        channel(service, fake, webhook_url=PRODUCTION)
    assert fake.webhook_url == ""


async def test_polling_leaves_a_webhook_alone_unless_asked(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """A production webhook survives a polling start, which refuses; --replace-webhook deletes."""
    fake.webhook_url = PRODUCTION
    polling = channel(service, fake)
    with pytest.raises(SettingsError, match="--replace-webhook"):
        await polling.start()
    await polling.stop()
    assert fake.webhook_url == PRODUCTION
    assert not any(c.method == "deleteWebhook" for c in fake.calls)
    replacing = channel(service, fake, replace_webhook=True)
    await replacing.start()
    try:
        assert fake.webhook_url == ""
    finally:
        await replacing.stop()


async def test_polling_without_a_webhook_deletes_nothing(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """With no webhook set, a polling start makes no deleteWebhook call at all."""
    polling = channel(service, fake)
    await polling.start()
    await polling.stop()
    assert not any(c.method == "deleteWebhook" for c in fake.calls)


async def test_a_token_telegram_rejects_is_one_line_about_the_token(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """401 from Telegram is a setting to fix, named with where to get a good one."""
    fake.rejected_tokens.add(TOKEN)
    rejected = channel(service, fake)
    with pytest.raises(SettingsError, match="TELEGRAM_BOT_TOKEN: Telegram rejected the token"):
        await rejected.start()
    await rejected.stop()


async def test_an_unreachable_telegram_is_retried_until_it_answers(
    service: WelfareService, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """Three failed calls are waited out with warnings, not a crash or a traceback."""
    fake.unreachable = 3
    patient = channel(service, fake, retry_delay=0.01)
    with caplog.at_level(logging.WARNING):
        await patient.start()
    try:
        assert fake.unreachable == 0
        warned = [r for r in caplog.records if "Telegram is unreachable" in r.getMessage()]
        assert len(warned) == 3
        assert not any(r.exc_info for r in caplog.records)
    finally:
        await patient.stop()
