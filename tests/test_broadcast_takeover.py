"""Two workers on PostgreSQL: the one sending a broadcast is SIGKILLed, the other finishes it."""

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app.service import WelfareService
from bot.domain.province import load_province
from handlers.broadcaster import LEASE
from handlers.telegram.broadcast import IN_FLIGHT
from storage.db import make_engine
from tests.bot_process import BotProcess, role_process
from tests.broadcast_support import add_volunteers, report, scheduled, wait_until
from tests.fakes.line_api import FakeLine
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import th
from tests.line_support import SECRET
from tests.line_support import TOKEN as LINE_TOKEN
from tests.telegram_support import TOKEN

FOOTER = th("broadcast.footer")
# the other worker takes the run over on its next tick and sends what is left: well within
# half the lease that used to have to lapse first
BOUND = LEASE.total_seconds() / 2


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[tuple[FakeTelegram, FakeLine, list[BotProcess]]]:
    """Both fakes on loopback and two worker processes sharing one PostgreSQL database."""
    telegram, line = FakeTelegram(poll_cap=0.3), FakeLine()
    with serving(telegram.app()) as tg_server, serving(line_app(line)) as line_server:
        settings = {
            "DATABASE_URL": pg_url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": f"{tg_server.url}/bot",
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": "takeover-secret",
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_API_BASE_URL": line_server.url,
            "LINE_DATA_API_BASE_URL": line_server.url,
            "QUIET_HOURS": "",
            "DRAIN_SECONDS": "2",
        }
        workers = [role_process(tmp_path, settings, "worker") for _ in range(2)]
        try:
            yield telegram, line, workers
        finally:
            telegram.release()
            line.release()
            for worker in workers:
                worker.cleanup()
    assert line.violations == []


def broadcast_calls(fake: FakeTelegram) -> Counter[str]:
    """Count broadcast messages delivered per Telegram chat."""
    return Counter(str(c.params["chat_id"]) for c in fake.calls
                   if c.method == "sendMessage" and c.params["text"].endswith(FOOTER))  # fmt: skip


def line_recipients(fake: FakeLine) -> Counter[str]:
    """Count broadcast messages delivered per LINE user."""
    return Counter(s.to for s in fake.sent if s.kind == "multicast")


def test_a_killed_workers_broadcast_is_finished_by_the_other_within_seconds(
    world: tuple[FakeTelegram, FakeLine, list[BotProcess]],
) -> None:
    """SIGKILL with Telegram messages delivered but unanswered and a LINE multicast likewise."""
    telegram, line, workers = world
    engine = make_engine(workers[0].database_url)
    service = WelfareService(engine, load_province("CM"))
    telegram_users = add_volunteers(service, "telegram", 60)
    line_users = add_volunteers(service, "line", 1200)
    for worker in workers:
        worker.start()

    # after ten, Telegram takes each message and never answers: the worker dies not knowing
    telegram.hold_after_accept = lambda call: (
        call.params["text"].endswith(FOOTER) and sum(broadcast_calls(telegram).values()) > 10
    )
    multicasts = 0

    def hold_second(payload: dict) -> bool:
        nonlocal multicasts
        if "to" not in payload:
            return False  # not a multicast: the rich menu set at start, say
        multicasts += 1
        return multicasts == 2

    line.hold_after_accept = hold_second
    broadcast_id = scheduled(service)
    telegram.wait_for(lambda f: f.holding >= 1)
    with engine.connect() as connection:
        holder = connection.execute(text("SELECT claimed_by FROM broadcast_runs")).scalar_one()
    first, second = sorted(workers, key=lambda w: not holder.endswith(f":{w.proc.pid}"))
    assert holder.endswith(f":{first.proc.pid}")
    # held answers time out in the bot after 5 s: what follows must be quick
    telegram.wait_for(lambda f: f.holding == IN_FLIGHT)
    line.wait_for(lambda f: f.holding == 1)
    with engine.connect() as connection:
        query = "SELECT count(*) FROM broadcast_deliveries WHERE status = 'sending'"
        in_flight = connection.execute(text(f"{query} AND platform = 'telegram'")).scalar_one()
    # every message Telegram took and did not answer is recorded as in flight, with at most the
    # next few marked just before their requests
    assert IN_FLIGHT <= in_flight <= 2 * IN_FLIGHT
    assert sum(broadcast_calls(telegram).values()) == 10 + IN_FLIGHT
    first.kill()
    killed = time.monotonic()
    telegram.release()
    line.release()

    telegram.wait_for(lambda f: set(broadcast_calls(f)) == set(telegram_users), timeout=BOUND)
    line.wait_for(lambda f: set(line_recipients(f)) == set(line_users), timeout=BOUND)

    def finished() -> bool:
        return report(service, broadcast_id)["finished_at"] is not None

    wait_until(finished, BOUND - (time.monotonic() - killed), "the run's end")
    took = time.monotonic() - killed
    assert second.stop() == 0

    assert line_recipients(line) == Counter(line_users), "LINE: everyone exactly once"
    assert line.multicasts == 3, "the batch in flight was resent with its key and answered 409"
    delivered = broadcast_calls(telegram)
    assert set(delivered) == set(telegram_users)
    duplicates = sum(delivered.values()) - len(telegram_users)
    print(f"\ntakeover: the broadcast finished {took:.1f} s after the kill; Telegram duplicates"
          f" {duplicates} of {in_flight} in flight")  # fmt: skip
    assert duplicates <= in_flight, "Telegram: only the messages in flight at the kill, twice"
    assert max(delivered.values()) <= 2
    assert report(service, broadcast_id)["counts"] == {
        "telegram": {"sent": 60},
        "line": {"sent": 1200},
    }
    engine.dispose()
