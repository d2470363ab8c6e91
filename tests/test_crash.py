"""A real bot process killed with SIGKILL mid-conversation loses nothing it acknowledged."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage.models import Proposal
from tests.bot_process import BotProcess
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import Call, FakeTelegram, Updates
from tests.helpers import th
from tests.telegram_support import TOKEN, as_update
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL

USER = 7001


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeTelegram, BotProcess]]:
    """A fake Telegram on loopback and a bot process (stopped afterwards, whatever happens)."""
    fake = FakeTelegram(poll_cap=0.3)
    with serving(fake.app()) as server:
        settings = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": f"{server.url}/bot"}
        bot = BotProcess(tmp_path, settings)
        try:
            yield fake, bot
        finally:
            fake.release()
            bot.cleanup()


def replying(fragment: str) -> Callable[[Call], bool]:
    """Return a hold rule: hold the reply whose text contains a fragment."""
    return lambda call: fragment in call.params.get("text", "")


def test_kill_9_mid_conversation_loses_nothing(world: tuple[FakeTelegram, BotProcess]) -> None:
    """Killed while replying, with a later update acknowledged but unprocessed: all survive."""
    fake, bot = world
    user = Updates(USER)
    updates = [as_update(user, event) for event in FIRST_PROPOSAL]
    bot.start()
    fake.push(*updates[:9])
    fake.wait_for(lambda f: any(th("q.problem") in t for t in f.texts(USER)))

    # the reply to the problem is held; the next answer sits behind it (one user, in order)
    fake.hold = replying(th("q.people_affected"))
    fake.push(updates[9], updates[10])
    last_id = updates[10]["update_id"]
    fake.wait_for(lambda f: f.holding == 1 and f.acknowledged > last_id)
    bot.kill()
    fake.release()

    bot.start()
    # the held reply is sent again from the outbox, and the acknowledged update is processed
    fake.wait_for(lambda f: any(th("q.proposal.district") in t for t in f.texts(USER)))
    assert any(th("q.people_affected") in t for t in fake.texts(USER))

    fake.push(*updates[11:-1])
    fake.wait_for(lambda f: any(th("review.title") in t for t in f.texts(USER)))
    fake.hold = replying("CM-2570-")
    fake.push(updates[-1])
    fake.wait_for(lambda f: f.holding == 2)
    bot.kill()
    fake.release()

    bot.start()
    fake.wait_for(lambda f: any("CM-2570-00001" in t for t in f.texts(USER)))
    assert bot.stop() == 0

    engine = create_engine(bot.database_url)
    with Session(engine) as session:
        proposals = session.scalars(select(Proposal)).all()
        assert len(proposals) == 1
        for name, value in EXPECTED_ANSWERS.items():
            assert getattr(proposals[0], name) == value
    assert not any(th("err.stale") in t for t in fake.texts(USER))
