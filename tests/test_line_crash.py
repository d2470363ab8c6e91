"""A real bot process killed with SIGKILL after LINE got its 200 handles the event on restart."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage.models import Proposal
from tests.fakes.line_api import FakeLine, app
from tests.fakes.loopback import serving
from tests.helpers import th
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LineBot:
    """`python -m bot run` with only LINE configured, as a child process."""

    def __init__(self, workdir: Path, api_url: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "LINE_"))}
        env.update(
            DATABASE_URL=f"sqlite:///{workdir / 'bot.db'}",
            LINE_CHANNEL_SECRET=SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
            LINE_API_BASE_URL=api_url,
            WEB_PORT=str(self.port),
            PYTHONPATH=str(ROOT),
        )
        self.env = env
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the process and wait for its web server to listen."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        seen = []
        for line in self.proc.stdout:
            seen.append(line)
            if "web server listening" in line:
                return
        print("".join(seen))
        raise RuntimeError(f"the bot exited before listening (exit {self.proc.wait()})")

    def post(self, *events: dict) -> int:
        """Post signed events; return the status code."""
        raw = body(*events)
        headers = {"Content-Type": "application/json", "X-Line-Signature": sign(raw)}
        url = f"http://127.0.0.1:{self.port}/line/webhook"
        return httpx.post(url, content=raw, headers=headers, timeout=10).status_code

    def kill(self) -> None:
        """Kill at once."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """Stop gently; return the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeLine, LineBot]]:
    """A fake LINE and the bot process, cleaned up whatever happens."""
    fake = FakeLine()
    with serving(app(fake)) as server:
        bot = LineBot(tmp_path, server.url)
        try:
            yield fake, bot
        finally:
            fake.release()
            if bot.proc is not None and bot.proc.poll() is None:
                bot.proc.kill()
                bot.proc.wait()


def test_kill_9_after_the_200_loses_no_event(world: tuple[FakeLine, LineBot]) -> None:
    """An event acknowledged with 200 but not yet handled is handled after a restart."""
    fake, bot = world
    user = LineUser(fake)
    events = [user.as_event(step) for step in FIRST_PROPOSAL]
    bot.start()
    for event in events[:9]:
        assert bot.post(event) == 200
    fake.wait_for(lambda f: any(th("q.problem") in t for t in f.texts_to(user.user_id)))

    fake.hold = lambda payload: any(
        th("q.people_affected") in m.get("text", "") for m in payload.get("messages", [])
    )
    assert bot.post(events[9]) == 200
    assert bot.post(events[10]) == 200  # stored, waiting behind the held reply
    fake.wait_for(lambda f: f.holding == 1)
    bot.kill()
    fake.release()

    bot.start()
    fake.wait_for(lambda f: any(th("q.proposal.district") in t for t in f.texts_to(user.user_id)))
    assert any(th("q.people_affected") in t for t in fake.texts_to(user.user_id))
    for event in events[11:]:
        assert bot.post(event) == 200
    fake.wait_for(lambda f: any("CM-2570-00001" in t for t in f.texts_to(user.user_id)))
    assert bot.stop() == 0
    assert fake.violations == []

    with Session(create_engine(f"sqlite:///{bot.workdir / 'bot.db'}")) as session:
        proposals = session.scalars(select(Proposal)).all()
        assert len(proposals) == 1
        for name, value in EXPECTED_ANSWERS.items():
            assert getattr(proposals[0], name) == value
