"""A real bot process killed with SIGKILL mid-broadcast resumes and reaches everyone once."""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.service import WelfareService
from bot.domain.province import load_province
from handlers.telegram.broadcast import IN_FLIGHT
from storage.db import make_engine, upgrade
from tests.bot_process import BotProcess, free_port
from tests.broadcast_support import add_volunteers, report, scheduled
from tests.fakes.line_api import FakeLine
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import Call, FakeTelegram
from tests.helpers import th
from tests.line_support import SECRET
from tests.line_support import TOKEN as LINE_TOKEN
from tests.telegram_support import TOKEN

FOOTER = th("broadcast.footer")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeTelegram, FakeLine, BotProcess]]:
    """Both fakes on loopback and a bot process running both channels."""
    telegram, line = FakeTelegram(poll_cap=0.3), FakeLine()
    with serving(telegram.app()) as tg_server, serving(line_app(line)) as line_server:
        settings = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": f"{tg_server.url}/bot",
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_API_BASE_URL": line_server.url,
            "LINE_DATA_API_BASE_URL": line_server.url,
            "WEB_PORT": str(free_port()),
            "QUIET_HOURS": "",
            "BROADCAST_LEASE_SECONDS": "2",
        }
        bot = BotProcess(tmp_path, settings, ready="web server listening")
        try:
            yield telegram, line, bot
        finally:
            telegram.release()
            line.release()
            bot.cleanup()


def broadcast_calls(fake: FakeTelegram) -> Counter[str]:
    """Count broadcast messages accepted per Telegram chat."""
    return Counter(str(c.params["chat_id"]) for c in fake.calls
                   if c.method == "sendMessage" and c.params["text"].endswith(FOOTER))  # fmt: skip


def test_kill_9_mid_broadcast_sends_to_exactly_those_still_pending(
    world: tuple[FakeTelegram, FakeLine, BotProcess],
) -> None:
    """Killed with Telegram sends held and a LINE multicast accepted but unanswered."""
    telegram, line, bot = world
    url = bot.database_url
    upgrade(url)
    service = WelfareService(make_engine(url), load_province("CM"))
    telegram_users = add_volunteers(service, "telegram", 50)
    line_users = add_volunteers(service, "line", 1200)
    broadcast_id = scheduled(service)

    def hold_after_ten(call: Call) -> bool:
        return (
            call.params["text"].endswith(FOOTER) and sum(broadcast_calls(telegram).values()) >= 10
        )

    telegram.hold = hold_after_ten
    multicasts = 0

    def hold_second(payload: dict) -> bool:
        nonlocal multicasts
        if "to" not in payload:
            return False  # not a multicast: the rich menu set at start, say
        multicasts += 1
        return multicasts == 2

    line.hold_after_accept = hold_second
    bot.start()
    # every send slot held means every send that was answered has been recorded
    telegram.wait_for(lambda f: f.holding == IN_FLIGHT)
    line.wait_for(lambda f: f.holding == 1)
    bot.kill()
    assert sum(broadcast_calls(telegram).values()) == 10
    assert len({s.to for s in line.sent if s.kind == "multicast"}) == 1000
    telegram.release()
    line.release()

    bot.start()
    telegram.wait_for(lambda f: len(broadcast_calls(f)) == 50)
    line.wait_for(lambda f: len({s.to for s in f.sent if s.kind == "multicast"}) == 1200)
    line.wait_for(lambda f: sum(p == "/v2/bot/message/multicast" for p, _ in f.requests) >= 4)
    assert bot.stop() == 0
    assert broadcast_calls(telegram) == Counter(telegram_users), "none twice, none missed"
    assert Counter(s.to for s in line.sent if s.kind == "multicast") == Counter(line_users)
    assert line.multicasts == 3, "the resent batch was answered 409, not delivered again"
    assert report(service, broadcast_id)["counts"] == {
        "telegram": {"sent": 50},
        "line": {"sent": 1200},
    }
