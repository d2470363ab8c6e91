"""A real bot process killed with SIGKILL after LINE got its 200 handles the event on restart."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage.models import Proposal
from tests.bot_process import BotProcess, free_port
from tests.fakes.line_api import FakeLine, app
from tests.fakes.loopback import serving
from tests.helpers import th
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL


def post(bot: BotProcess, *events: dict) -> int:
    """Post signed events to the bot's webhook; return the status code."""
    raw = body(*events)
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(raw)}
    url = f"http://127.0.0.1:{bot.env['WEB_PORT']}/line/webhook"
    return httpx.post(url, content=raw, headers=headers, timeout=10).status_code


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeLine, BotProcess]]:
    """A fake LINE and the bot process, cleaned up whatever happens."""
    fake = FakeLine()
    with serving(app(fake)) as server:
        settings = {
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE_URL": server.url,
            "LINE_DATA_API_BASE_URL": server.url,
            "WEB_PORT": str(free_port()),
        }
        bot = BotProcess(tmp_path, settings, ready="web server listening")
        try:
            yield fake, bot
        finally:
            fake.release()
            bot.cleanup()


def test_kill_9_after_the_200_loses_no_event(world: tuple[FakeLine, BotProcess]) -> None:
    """An event acknowledged with 200 but not yet handled is handled after a restart."""
    fake, bot = world
    user = LineUser(fake)
    events = [user.as_event(step) for step in FIRST_PROPOSAL]
    bot.start()
    for event in events[:9]:
        assert post(bot, event) == 200
    fake.wait_for(lambda f: any(th("q.problem") in t for t in f.texts_to(user.user_id)))

    fake.hold = lambda payload: any(
        th("q.people_affected") in m.get("text", "") for m in payload.get("messages", [])
    )
    assert post(bot, events[9]) == 200
    assert post(bot, events[10]) == 200  # stored, waiting behind the held reply
    fake.wait_for(lambda f: f.holding == 1)
    bot.kill()
    fake.release()

    bot.start()
    fake.wait_for(lambda f: any(th("q.proposal.district") in t for t in f.texts_to(user.user_id)))
    assert any(th("q.people_affected") in t for t in fake.texts_to(user.user_id))
    for event in events[11:]:
        assert post(bot, event) == 200
    fake.wait_for(lambda f: any("CM-2570-00001" in t for t in f.texts_to(user.user_id)))
    assert bot.stop() == 0
    assert fake.violations == []

    with Session(create_engine(bot.database_url)) as session:
        proposals = session.scalars(select(Proposal)).all()
        assert len(proposals) == 1
        for name, value in EXPECTED_ANSWERS.items():
            assert getattr(proposals[0], name) == value
