"""A real bot process killed with SIGKILL mid-conversation loses nothing it acknowledged."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage.models import Proposal
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import Call, FakeTelegram, Updates
from tests.helpers import th
from tests.telegram_support import TOKEN, as_update
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL

ROOT = Path(__file__).resolve().parent.parent
USER = 7001


class BotProcess:
    """`python -m bot run` as a child process, talking to the fake Telegram."""

    def __init__(self, workdir: Path, base_url: str) -> None:
        self.workdir = workdir
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
        env.update(
            DATABASE_URL=f"sqlite:///{workdir / 'bot.db'}",
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=base_url,
            PYTHONPATH=str(ROOT),
        )
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        """Start a fresh process."""
        self.runs += 1
        log = (self.workdir / f"run{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """Kill the process at once, as a power cut or OOM killer would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """Stop the process gently; return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        return self.proc.returncode


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeTelegram, BotProcess]]:
    """A fake Telegram on loopback and a bot process (stopped afterwards, whatever happens)."""
    fake = FakeTelegram(poll_cap=0.3)
    with serving(fake.app()) as server:
        bot = BotProcess(tmp_path, f"{server.url}/bot")
        try:
            yield fake, bot
        finally:
            fake.release()
            if bot.proc is not None and bot.proc.poll() is None:
                bot.proc.kill()
                bot.proc.wait()


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

    engine = create_engine(f"sqlite:///{bot.workdir / 'bot.db'}")
    with Session(engine) as session:
        proposals = session.scalars(select(Proposal)).all()
        assert len(proposals) == 1
        for name, value in EXPECTED_ANSWERS.items():
            assert getattr(proposals[0], name) == value
    assert not any(th("err.stale") in t for t in fake.texts(USER))
