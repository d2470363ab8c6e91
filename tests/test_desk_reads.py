"""Desk reads never take the write lock: volunteers answer while officers read pages and counts."""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event
from starlette.testclient import TestClient

from bot.app.service import WelfareService
from bot.desk.lookups import Lookup, ReadAhead
from bot.domain.audience import Audience
from bot.domain.messages import Text
from bot.domain.proposal_filter import ProposalFilter
from handlers.desk_web.render import Pages
from handlers.telegram.channel import TelegramChannel
from storage import broadcasts
from storage import proposal_queries as queries
from tests.desk_web_support import ORIGIN, audit_actions, csrf_of, officer
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import Chat
from tests.staff_support import add_proposals, make_staff
from tests.telegram_support import TOKEN, wait_sent

WAIT = 15  # seconds: a bound for what happens at once, not a pace
# every signed-in page a GET serves, and the audit entry its view writes (None: none)
PAGES = [
    ("/desk/proposals", "list"),
    ("/desk/proposals?group=elderly&q=ผู้สูงอายุ&from=2026-01-01", "list"),
    ("/desk/proposals/{ref}", "show"),
    ("/desk/overview", "stats"),
    ("/desk/broadcasts", None),
    ("/desk/broadcasts/{broadcast}", None),
    ("/desk/staff", None),
    ("/desk/audit", None),
    ("/desk/no-such-page", None),
]


class Pause:
    """Holds a function the first time it is called, until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.resume = threading.Event()
        # whether the test let it go (not the timeout): only then was it held as long as needed
        self.let_go: list[bool] = []

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Return the function, held once at its first call."""

        def held(*args: Any, **kwargs: Any) -> Any:
            if not self.reached.is_set():
                self.reached.set()
                self.let_go.append(self.resume.wait(timeout=WAIT))
            return function(*args, **kwargs)

        return held


def no_waiting(engine: Engine) -> None:
    """Make a write that finds SQLite's write lock taken fail at once, not after 30 s."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _no_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 0")

    engine.dispose()


def in_background(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start work in a thread; its result (or exception) lands in the returned list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the test's assertions
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def desk(service: WelfareService) -> tuple[TestClient, dict[str, Any]]:
    """Store proposals and a broadcast; return an administrator's browser and page values."""
    references = add_proposals(service, [{}, {"target_group": "children_youth",
                                              "subgroup": "orphan"}])  # fmt: skip
    with service.db.begin() as connection:
        broadcast = broadcasts.create(connection, "terminal:admin", "ข่าว", None, Audience(),
                                      service.clock(), None, service.clock())  # fmt: skip
    return officer(service, "admin"), {"ref": references[0], "broadcast": broadcast}


@pytest.mark.parametrize(("path", "audited"), PAGES)
def test_a_volunteer_answers_while_a_desk_page_reads(
    any_service: WelfareService, monkeypatch: pytest.MonkeyPatch, path: str, audited: str | None
) -> None:
    """With a page held mid-read (all read, not yet drawn), a volunteer's answer commits."""
    browser, values = desk(any_service)
    no_waiting(any_service.db)
    pause = Pause()
    monkeypatch.setattr(Pages, "html", pause.wrap(Pages.html))
    fetch, fetched = in_background(lambda: browser.get(path.format(**values)))
    try:
        assert pause.reached.wait(WAIT), "the page never got to drawing"
        # on SQLite this fails at once ("database is locked") if the page holds the write lock
        assert Chat(any_service, user_id="volunteer").send("/start"), "no answer"
    finally:
        pause.resume.set()
        fetch.join(WAIT)
    assert pause.let_go == [True]
    response = fetched[0]
    assert response.status_code == (404 if "no-such" in path else 200), response
    if audited is not None:
        assert audit_actions(any_service)[-1] == audited


@pytest.mark.parametrize(("path", "audited"), PAGES)
def test_a_desk_page_reads_while_another_connection_holds_the_write_lock(
    service: WelfareService, monkeypatch: pytest.MonkeyPatch, path: str, audited: str | None
) -> None:
    """Each page reads and draws under another's write lock; only its audit waits for it."""
    browser, values = desk(service)
    drawn = threading.Event()
    draw = Pages.html

    def drawing(*args: Any, **kwargs: Any) -> Any:
        drawn.set()
        return draw(*args, **kwargs)

    monkeypatch.setattr(Pages, "html", drawing)
    writer = sqlite3.connect(service.db.url.database or "", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    fetch, fetched = in_background(lambda: browser.get(path.format(**values)))
    try:
        assert drawn.wait(WAIT), "the page waited for the write lock before reading"
        if not audited:  # nothing to write: served under the lock
            fetch.join(WAIT)
            assert not fetch.is_alive()
    finally:
        writer.execute("COMMIT")
        writer.close()
        fetch.join(WAIT)
    assert fetched[0].status_code == (404 if "no-such" in path else 200), fetched[0]
    if audited is not None:
        assert audit_actions(service)[-1] == audited


def test_a_bulk_change_reads_its_proposals_before_it_writes(
    any_service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing "every proposal the filter matches" finds them without the write lock."""
    add_proposals(any_service, [{}, {}, {"target_group": "children_youth", "subgroup": "orphan"}])
    browser = officer(any_service, "admin")
    csrf = csrf_of(browser.get("/desk/proposals").text)
    no_waiting(any_service.db)
    pause = Pause()
    monkeypatch.setattr(queries, "newest", pause.wrap(queries.newest))
    form = {"csrf": csrf, "scope": "all", "filter": "group=elderly", "status": "in_review"}
    post, posted = in_background(lambda: browser.post("/desk/proposals/bulk", data=form,
                                                      headers=ORIGIN))  # fmt: skip
    try:
        assert pause.reached.wait(WAIT)
        assert Chat(any_service, user_id="volunteer").send("/start"), "no answer"
    finally:
        pause.resume.set()
        post.join(WAIT)
    assert pause.let_go == [True]
    assert posted[0].status_code == 303
    assert "done=2" in posted[0].headers["location"]


def test_stats_count_before_the_officers_transaction(
    service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the terminal too, /stats with a keyword counts on a reading connection."""
    add_proposals(service, [{}, {"district": "5007"}])
    boss = make_staff(service, "boss", "admin")
    expected = boss.send("/stats ผู้สูงอายุ")[0].text
    no_waiting(service.db)
    pause = Pause()
    monkeypatch.setattr(queries, "table", pause.wrap(queries.table))
    ask, answer = in_background(lambda: boss.send("/stats ผู้สูงอายุ"))
    try:
        assert pause.reached.wait(WAIT)
        assert Chat(service, user_id="volunteer").send("/start"), "no answer"
    finally:
        pause.resume.set()
        ask.join(WAIT)
    assert pause.let_go == [True]
    assert answer[0][0].text == expected


def test_the_desk_takes_a_read_made_ahead_only_when_it_is_the_same_read(
    service: WelfareService,
) -> None:
    """A read made for another scope (the role changed meanwhile) is read again inside."""
    add_proposals(service, [{}, {"district": "5007"}])
    make_staff(service, "boss", "staff")
    counted = Chat(service, user_id="boss").send("/stats")[0].text

    def stats(ahead: ReadAhead) -> str:
        delivery = service.handle("terminal", "boss", None, Text("/stats"), ahead=ahead)
        assert delivery is not None
        return delivery.replies[0].text

    elsewhere = Lookup("stats", ProposalFilter(), ("children_youth",))
    assert stats(ReadAhead({elsewhere: []})) == counted
    assert stats(ReadAhead({Lookup("stats", ProposalFilter(), None): []})) != counted


@pytest.fixture
async def telegram(any_service: WelfareService, telegram_fake: FakeTelegram) -> AsyncIterator[None]:
    """Run the real Telegram channel on the fake Bot API."""
    channel = TelegramChannel(any_service, TOKEN, base_url=telegram_fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    yield
    await channel.stop()


async def test_volunteers_answer_while_an_officer_counts_on_telegram(
    any_service: WelfareService,
    telegram_fake: FakeTelegram,
    telegram: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While /stats with a keyword counts, the loop and the database answer a volunteer; the
    officer's answers then come as they would have, in the order asked."""
    add_proposals(any_service, [{}, {"district": "5007"}, {"problem": "น้ำท่วมบ้าน"}])
    make_staff(any_service, "77", "staff", platform="telegram")
    twin = make_staff(any_service, "78", "staff", platform="telegram")
    expected = [twin.send("/stats ผู้สูงอายุ")[0].text, twin.send("/proposals ผู้สูงอายุ")[0].text]
    no_waiting(any_service.db)
    pause = Pause()
    monkeypatch.setattr(queries, "table", pause.wrap(queries.table))
    boss = Updates(77)
    telegram_fake.push(boss.text("/stats ผู้สูงอายุ"), boss.text("/proposals ผู้สูงอายุ"))
    try:
        assert await _waited(pause.reached)
        telegram_fake.push(Updates(88).text("/start"))
        await wait_sent(telegram_fake, lambda fake: bool(fake.texts(88)))
    finally:
        pause.resume.set()
    await wait_sent(telegram_fake, lambda fake: len(fake.texts(77)) >= 2)
    assert pause.let_go == [True], "the volunteer was answered only after the count"
    assert telegram_fake.texts(77) == expected


async def _waited(flag: threading.Event) -> bool:
    """Wait for a thread's signal without blocking the event loop."""
    return await asyncio.to_thread(flag.wait, WAIT)
