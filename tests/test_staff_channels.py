"""The staff desk on the real channels: files on Telegram, links on LINE, notices across both."""

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import openpyxl
import pytest

from bot.app.service import WelfareService
from bot.domain.messages import Notice, Reply
from handlers.courier import Courier
from handlers.exporter import Exporter
from handlers.line.channel import LineChannel
from handlers.telegram.channel import TelegramChannel
from handlers.web import export_route
from storage import staff
from tests.fakes.line_api import FakeLine
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import Clock, th
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.staff_support import add_proposals, make_staff
from tests.telegram_support import TOKEN as TELEGRAM_TOKEN
from tests.telegram_support import wait_sent, web_server
from tests.transcripts import FIRST_PROPOSAL

PUBLIC = "https://welfare.example.org"


class Both:
    """Telegram and LINE channels in one process, as `welfarebot run` wires them."""

    def __init__(
        self,
        telegram: TelegramChannel,
        line: LineChannel,
        courier: Courier,
        exporter: Exporter,
        http: httpx.AsyncClient,
    ) -> None:
        self.telegram, self.line, self.courier, self.http = telegram, line, courier, http
        self.exporter = exporter

    async def post_line(self, event: dict) -> None:
        """Post one signed LINE webhook and wait until it is handled and notices are sent."""
        raw = body(event)
        headers = {"Content-Type": "application/json", "X-Line-Signature": sign(raw)}
        assert (await self.http.post("/line/webhook", content=raw, headers=headers)).is_success
        await self.line.idle()
        await self.exporter.idle()
        await self.courier.idle()


@pytest.fixture
async def both(
    service: WelfareService, telegram_fake: FakeTelegram, line_fake: FakeLine
) -> AsyncIterator[Both]:
    """Run both channels, the courier and the web app (webhooks and export links)."""
    telegram = TelegramChannel(service, TELEGRAM_TOKEN, base_url=telegram_fake.base_url)  # type: ignore[attr-defined]
    line = LineChannel(service, SECRET, TOKEN, base_url=line_fake.base_url, public_url=PUBLIC)  # type: ignore[attr-defined]
    await telegram.start()
    await line.start()
    courier = Courier(service, {"telegram": telegram.notify, "line": line.notify})
    courier.start(sweep_every=3600)
    exporter = Exporter(service)  # a worker process, as `welfarebot run` builds exports
    exporter.start()
    routes = [*line.routes(), export_route(service)]
    async with web_server(routes, service.db) as base, httpx.AsyncClient(base_url=base) as http:
        yield Both(telegram, line, courier, exporter, http)
    await exporter.stop()
    await courier.stop()
    await line.stop()
    await telegram.stop()


async def test_telegram_staff_get_the_export_as_a_file(
    both: Both, telegram_fake: FakeTelegram, service: WelfareService
) -> None:
    """/export sends an XLSX document that Excel (here openpyxl) opens."""
    add_proposals(service, [{}, {"district": "5007"}])
    make_staff(service, "77", "staff", platform="telegram")
    telegram_fake.push(Updates(77).text("/export xlsx แม่ริม"))
    await wait_sent(telegram_fake, lambda f: any(c.method == "sendDocument" for c in f.calls))
    call = next(c for c in telegram_fake.calls if c.method == "sendDocument")
    filename, content = call.params["document"]
    assert filename.endswith(".xlsx")
    assert call.params["caption"] == th("desk.export.ready", count="1")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    assert sheet.max_row == 2
    assert sheet.cell(2, 11).value == "แม่ริม"


async def test_a_telegram_officer_reaches_a_line_volunteer_who_revises(
    both: Both, telegram_fake: FakeTelegram, line_fake: FakeLine, service: WelfareService
) -> None:
    """Needs revision on Telegram → a LINE push with a revise button → the Flex review card."""
    volunteer = LineUser(line_fake)
    await both.post_line(volunteer.follow())
    for step in FIRST_PROPOSAL[1:]:
        await both.post_line(volunteer.as_event(step))
    make_staff(service, "77", "staff", platform="telegram")
    officer = Updates(77)
    telegram_fake.push(officer.press("s:st:CM-2570-00001:needs_revision"))
    await wait_sent(telegram_fake, lambda f: any(
        th("desk.ask.comment", reference="CM-2570-00001") in t for t in f.texts(77)))  # fmt: skip
    telegram_fake.push(officer.text("โปรดเพิ่มชื่อหมู่บ้าน"))
    await asyncio.to_thread(
        line_fake.wait_for,
        lambda f: any("โปรดเพิ่มชื่อหมู่บ้าน" in t for t in f.texts_to(volunteer.user_id)),
    )
    notice = line_fake.messages_to(volunteer.user_id)[-1]
    assert th("result.needs_revision") in notice["text"]
    actions = [item["action"] for item in notice["quickReply"]["items"]]
    assert [a["data"] for a in actions] == ["revise:CM-2570-00001"]
    await both.post_line(volunteer.postback("revise:CM-2570-00001"))
    card = line_fake.messages_to(volunteer.user_id)[-1]
    assert card["type"] == "flex"
    await both.post_line(volunteer.postback("submit"))
    assert any(th("revise.done", reference="CM-2570-00001") in t
               for t in line_fake.texts_to(volunteer.user_id))  # fmt: skip


async def test_a_line_download_link_works_only_once_its_officer_confirms_in_chat(
    both: Both, line_fake: FakeLine, service: WelfareService, clock: Clock
) -> None:
    """The link asks; the officer allows in chat (a stranger's request is refused); audited."""
    add_proposals(service, [{}])
    officer = LineUser(line_fake, "U" + "b" * 32)
    make_staff(service, officer.user_id, "viewer", platform="line")
    await both.post_line(officer.text("/export csv"))
    url = line_fake.texts_to(officer.user_id)[-1].split(": ")[-1].strip()
    assert url.startswith(f"{PUBLIC}/exports/")
    path = url.removeprefix(PUBLIC)
    shown = await both.http.get(path)  # what a link preview sees: a page, no file, no request
    assert shown.status_code == 200
    assert th("export.page.ask") in shown.text
    assert (await both.http.get(f"{path}/file")).status_code == 403

    asked = await both.http.post(path)
    await both.courier.idle()
    code = re.search(r"\b(\d{4})\b", asked.text)
    assert code is not None
    question = line_fake.messages_to(officer.user_id)[-1]
    assert code.group(1) in question["text"]
    allow, deny = (item["action"]["data"] for item in question["quickReply"]["items"])
    waiting = await both.http.get(f"{path}/file")
    assert (waiting.status_code, th("export.page.waiting") in waiting.text) == (403, True)

    async with httpx.AsyncClient(base_url=both.http.base_url) as stranger:
        await stranger.post(path)
        await both.courier.idle()
        theirs = line_fake.messages_to(officer.user_id)[-1]["quickReply"]["items"][1]
        await both.post_line(officer.postback(theirs["action"]["data"]))
        assert line_fake.texts_to(officer.user_id)[-1] == th("desk.export.denied")
        assert (await stranger.get(f"{path}/file")).status_code == 403

    await both.post_line(officer.postback(allow))
    assert line_fake.texts_to(officer.user_id)[-1] == th("desk.export.allowed")
    response = await both.http.get(f"{path}/file")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.decode("utf-8-sig").count("\n") == 2
    assert "สมหญิง" not in response.content.decode("utf-8-sig")  # a viewer's export is masked
    assert (await both.http.get(f"{path}/file")).status_code == 410, "one download per request"
    await both.post_line(officer.postback(deny))  # too late: already used
    with service.db.begin() as connection:
        downloads = [e for e in staff.audit_entries(connection) if e["action"] == "download"]
    assert [(e["actor"], e["detail"]["rows"]) for e in downloads] == [
        (f"line:{officer.user_id}", 1)
    ]

    clock.now += timedelta(hours=25)
    gone = await both.http.get(path)
    assert gone.status_code == 404
    assert th("desk.export.gone") in gone.text


async def export_link(both: Both, line_fake: FakeLine, officer: LineUser) -> str:
    """Ask for a CSV export in LINE as an officer; return the link's path on the web app."""
    await both.post_line(officer.text("/export csv"))
    url = line_fake.texts_to(officer.user_id)[-1].split(": ")[-1].strip()
    assert url.startswith(f"{PUBLIC}/exports/")
    return url.removeprefix(PUBLIC)


async def ask_download(
    both: Both, line_fake: FakeLine, officer: LineUser, path: str, browser: httpx.AsyncClient
) -> tuple[str, str]:
    """Ask for the file in a browser; return the allow and deny data the officer is shown."""
    asked = await browser.post(path)
    assert asked.status_code == 200, asked.text
    await both.courier.idle()
    question = line_fake.messages_to(officer.user_id)[-1]
    allow, deny = (item["action"]["data"] for item in question["quickReply"]["items"])
    return allow, deny


def downloads_audited(service: WelfareService) -> list[tuple[str, int]]:
    """Return who each audited download was for and which download of the link it was."""
    with service.db.begin() as connection:
        entries = staff.audit_entries(connection)
    return [(e["actor"], e["detail"]["download"]) for e in entries if e["action"] == "download"]


def leaks_nothing(response: httpx.Response) -> bool:
    """Tell whether a refused download carries neither the file nor its name."""
    return (
        "content-disposition" not in response.headers
        and "สมหญิง" not in response.text
        and "เลขที่อ้างอิง" not in response.text
        and ".csv" not in response.text
    )


async def test_a_link_downloads_three_times_at_most_each_audited(
    both: Both, line_fake: FakeLine, service: WelfareService
) -> None:
    """Three allowed downloads, each audited; a fourth is refused in Thai with nothing in it."""
    add_proposals(service, [{}])
    officer = LineUser(line_fake, "U" + "c" * 32)
    make_staff(service, officer.user_id, "staff", platform="line")
    path = await export_link(both, line_fake, officer)
    async with contextlib.AsyncExitStack() as stack:
        browsers = [await stack.enter_async_context(httpx.AsyncClient(base_url=both.http.base_url))
                    for _ in range(4)]  # fmt: skip
        # all four allowed before any download: the downloads, not the requests, are counted
        for browser in browsers:
            allow, _deny = await ask_download(both, line_fake, officer, path, browser)
            await both.post_line(officer.postback(allow))
            assert line_fake.texts_to(officer.user_id)[-1] == th("desk.export.allowed")
        for number, browser in enumerate(browsers[:3], start=1):
            got = await browser.get(f"{path}/file")
            assert got.status_code == 200
            assert "สมหญิง" in got.content.decode("utf-8-sig")
            assert len(downloads_audited(service)) == number, "each download is audited at once"
        fourth = await browsers[3].get(f"{path}/file")
        assert (fourth.status_code, th("export.page.used_up") in fourth.text) == (410, True)
        assert leaks_nothing(fourth)
    asked_before = len(line_fake.messages_to(officer.user_id))
    for again in (await both.http.get(path), await both.http.post(path)):
        assert (again.status_code, th("export.page.used_up") in again.text) == (410, True)
        assert leaks_nothing(again)
    await both.courier.idle()
    assert len(line_fake.messages_to(officer.user_id)) == asked_before, "nobody is asked again"
    assert downloads_audited(service) == [(f"line:{officer.user_id}", n) for n in (1, 2, 3)]


async def test_another_officers_answer_neither_allows_nor_refuses_a_download(
    both: Both, line_fake: FakeLine, telegram_fake: FakeTelegram, service: WelfareService
) -> None:
    """Only the officer who asked for the export can answer for its link, on any platform."""
    add_proposals(service, [{}])
    officer = LineUser(line_fake, "U" + "d" * 32)
    other = LineUser(line_fake, "U" + "e" * 32)
    make_staff(service, officer.user_id, "staff", platform="line")
    make_staff(service, other.user_id, "admin", platform="line")
    make_staff(service, "78", "admin", platform="telegram")
    path = await export_link(both, line_fake, officer)
    allow, deny = await ask_download(both, line_fake, officer, path, both.http)

    await both.post_line(other.postback(allow))
    assert line_fake.texts_to(other.user_id)[-1] != th("desk.export.allowed")
    await both.post_line(other.postback(deny))
    assert line_fake.texts_to(other.user_id)[-1] != th("desk.export.denied")
    telegram_fake.push(Updates(78).press(allow), Updates(78).press(deny))
    await wait_sent(telegram_fake, lambda f: len(f.texts(78)) == 2)
    assert th("desk.export.allowed") not in telegram_fake.texts(78)
    waiting = await both.http.get(f"{path}/file")
    assert (waiting.status_code, th("export.page.waiting") in waiting.text) == (403, True)
    assert leaks_nothing(waiting)
    assert downloads_audited(service) == []

    await both.post_line(officer.postback(allow))
    assert line_fake.texts_to(officer.user_id)[-1] == th("desk.export.allowed")
    assert (await both.http.get(f"{path}/file")).status_code == 200
    assert downloads_audited(service) == [(f"line:{officer.user_id}", 1)]


async def test_the_sweep_sends_notices_queued_by_another_process(
    both: Both, telegram_fake: FakeTelegram, service: WelfareService, clock: Clock
) -> None:
    """A notice queued from the CLI is sent by the running bot's sweep, once."""
    told = Reply(th("notify.comment", comment="ทดสอบ"))
    notice = Notice("telegram", "555", (told,))
    with service.db.begin() as connection:
        service.queue(connection, notice)  # as `welfarebot proposals review` does
    assert await both.courier.sweep() == 0, "too fresh: its own process may still be sending it"
    clock.now += timedelta(minutes=1)
    assert await both.courier.sweep() == 1
    assert await both.courier.sweep() == 0
    assert telegram_fake.texts(555) == [told.text]


async def test_telegram_staff_get_a_web_desk_link_without_a_preview(
    both: Both, telegram_fake: FakeTelegram, service: WelfareService
) -> None:
    """/desk answers with a one-time sign-in link that Telegram must not fetch for a preview."""
    make_staff(service, "77", "staff", platform="telegram")
    telegram_fake.push(Updates(77).text("/desk"))
    await wait_sent(telegram_fake, lambda f: any("/desk/login/" in t for t in f.texts(77)))
    call = next(c for c in telegram_fake.sent(77) if "/desk/login/" in c.params["text"])
    assert call.params["link_preview_options"] == {"is_disabled": True}
