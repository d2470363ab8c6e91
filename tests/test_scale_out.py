"""Web and worker processes on PostgreSQL share one queue: a killed worker's volunteer goes on."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage.models import OutboxMessage, Proposal
from tests.bot_process import ROOT, role_process
from tests.fakes.line_api import FakeLine, app
from tests.fakes.loopback import serving
from tests.helpers import th
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL


@pytest.mark.parametrize("role", ["web", "worker"])
def test_roles_refuse_sqlite_in_one_line(tmp_path: Path, role: str) -> None:
    """`welfarebot web` and `worker` need PostgreSQL and say so in one line."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'bot.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "bot", role], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PostgreSQL" in lines[0]
    assert "welfarebot run" in lines[0]


def post(port: str, *events: dict) -> int:
    """Post signed LINE events to a web process; return the status code."""
    raw = body(*events)
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(raw)}
    url = f"http://127.0.0.1:{port}/line/webhook"
    return httpx.post(url, content=raw, headers=headers, timeout=10).status_code


@pytest.fixture
def line_world(tmp_path: Path, pg_url: str) -> Iterator[tuple[FakeLine, dict[str, str]]]:
    """A fake LINE and the settings every process of the bot shares."""
    fake = FakeLine()
    with serving(app(fake)) as server:
        settings = {
            "DATABASE_URL": pg_url,
            "LINE_CHANNEL_SECRET": SECRET,
            "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
            "LINE_API_BASE_URL": server.url,
            "LINE_DATA_API_BASE_URL": server.url,
            "DRAIN_SECONDS": "2",
        }
        try:
            yield fake, settings
        finally:
            fake.release()


def test_a_killed_workers_volunteer_is_taken_over(
    tmp_path: Path, line_world: tuple[FakeLine, dict[str, str]]
) -> None:
    """A worker killed while replying: another sends that reply once and goes on, in order."""
    fake, settings = line_world
    web = role_process(tmp_path, settings, "web")
    first, second = (
        role_process(tmp_path, settings, "worker"),
        role_process(tmp_path, settings, "worker"),
    )
    processes = [web, first, second]
    try:
        web.start()
        first.start()
        port = web.env["WEB_PORT"]
        user = LineUser(fake)
        events = [user.as_event(step) for step in FIRST_PROPOSAL]
        for event in events[:9]:
            assert post(port, event) == 200
        fake.wait_for(lambda f: any(th("q.problem") in t for t in f.texts_to(user.user_id)))

        fake.hold = lambda payload: any(
            th("q.people_affected") in m.get("text", "") for m in payload.get("messages", [])
        )
        assert post(port, events[9]) == 200
        assert post(port, events[10]) == 200  # stored, waiting behind the held reply
        fake.wait_for(lambda f: f.holding == 1)
        first.kill()
        fake.release()

        second.start()
        # the reply the dead worker held is sent by the other one, then the next event handled
        fake.wait_for(
            lambda f: any(th("q.proposal.district") in t for t in f.texts_to(user.user_id)),
            timeout=10,
        )
        texts = fake.texts_to(user.user_id)
        assert sum(th("q.people_affected") in t for t in texts) == 1
        for event in events[11:]:
            assert post(port, event) == 200
        fake.wait_for(lambda f: any("CM-2570-00001" in t for t in f.texts_to(user.user_id)))
        received = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert f'welfarebot_events_received_total{{platform="line"}} {len(events)}.0' in received
        handled = httpx.get(f"http://127.0.0.1:{second.env['WEB_PORT']}/metrics", timeout=10).text
        assert 'welfarebot_events_handled_total{platform="line"}' in handled
        assert "welfarebot_queue_depth 0.0" in handled
        # SIGTERM while a reply hangs: the worker waits DRAIN_SECONDS for it, then exits
        fake.hold = lambda payload: True
        assert post(port, user.text("/status")) == 200
        fake.wait_for(lambda f: f.holding == 2)
        asked = time.monotonic()
        assert second.stop() == 0
        assert 1.5 < time.monotonic() - asked < 12
        assert web.stop() == 0
    finally:
        for bot in processes:
            bot.cleanup()

    engine = create_engine(settings["DATABASE_URL"])
    with Session(engine) as session:
        proposals = session.scalars(select(Proposal)).all()
        assert len(proposals) == 1
        for name, value in EXPECTED_ANSWERS.items():
            assert getattr(proposals[0], name) == value
        # only the reply the drain cut short waits, for the next worker to send
        assert len(session.scalars(select(OutboxMessage)).all()) == 1
    engine.dispose()
