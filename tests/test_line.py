"""The LINE channel: the real web app, signed webhooks in, a spec-checking fake LINE out."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.app.service import WelfareService
from bot.domain.messages import Press
from handlers.line.channel import LineChannel
from handlers.line.rich_menu import TILES, RichMenus
from storage.models import InboundEvent, Proposal, Volunteer
from tests.fakes.line_api import FakeLine, Fault, app
from tests.fakes.loopback import serving
from tests.helpers import th
from tests.line_support import SECRET, TOKEN, LineUser, body, sign
from tests.telegram_support import web_server
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL


@pytest.fixture
def fake() -> Iterator[FakeLine]:
    """Serve a fake Messaging API that validates every call."""
    fake = FakeLine()
    with serving(app(fake)) as server:
        fake.base_url = server.url  # type: ignore[attr-defined]
        yield fake
    assert fake.violations == [], "the bot sent something LINE would reject"


PUSH = "/v2/bot/message/push"
REPLY = "/v2/bot/message/reply"


class Bot:
    """The LINE channel behind the real web app, and a client that posts signed webhooks."""

    def __init__(self, channel: LineChannel, http: httpx.AsyncClient) -> None:
        self.channel = channel
        self.http = http

    async def post(self, *events: dict, signature: str | None = None) -> httpx.Response:
        """Post events as LINE does and wait until they are handled."""
        raw = body(*events)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        headers["X-Line-Signature"] = signature if signature is not None else sign(raw)
        response = await self.http.post("/line/webhook", content=raw, headers=headers)
        await self.channel.idle()
        return response


@pytest.fixture
async def bot(service: WelfareService, fake: FakeLine) -> AsyncIterator[Bot]:
    """Run the LINE channel in the real web app on loopback."""
    url = fake.base_url  # type: ignore[attr-defined]
    channel = LineChannel(
        service, SECRET, TOKEN, base_url=url, rich_menus=RichMenus(TOKEN, url, url)
    )
    await channel.start()
    # the rich menu is set in the background: done, and forgotten, before a test counts
    # requests or sets faults
    await channel.settled()
    fake.requests.clear()
    async with (
        web_server(channel.routes(), service.db) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        yield Bot(channel, http)
    await channel.stop()


def rows(service: WelfareService, model: type) -> int:
    """Count a table's rows."""
    with service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


async def run(bot: Bot, user: LineUser, steps: list) -> None:
    """Send each step as its own webhook, as a volunteer's phone would."""
    for step in steps:
        response = await bot.post(user.as_event(step))
        assert response.status_code == 200


async def test_a_whole_questionnaire_from_follow_to_reference_number(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """Follow greets with consent; the whole questionnaire ends with a reference number."""
    user = LineUser(fake)
    await bot.post(user.follow())
    assert th("consent") in fake.texts_to(user.user_id)[-1]
    await run(bot, user, FIRST_PROPOSAL[1:])
    assert any("CM-2570-00001" in t for t in fake.texts_to(user.user_id))
    with service.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
        for name, value in EXPECTED_ANSWERS.items():
            assert getattr(proposal, name) == value
        assert proposal.platform == "line"
        assert [p.file_id for p in proposal.photos] == ["photo-1"]
    kinds = {s.kind for s in fake.sent}
    assert kinds == {"reply"}, "every answer went out with its reply token"
    assert service.undelivered("line") == [], "every reply was confirmed sent"


async def test_widgets_are_quick_replies_flex_lists_and_a_flex_review_card(
    bot: Bot, fake: FakeLine
) -> None:
    """Few short choices are quick replies; 25 districts swipe in a carousel; the card is Flex."""
    user = LineUser(fake)
    await run(bot, user, FIRST_PROPOSAL[:2])
    consent_or_name = fake.messages_to(user.user_id)
    assert consent_or_name[0]["quickReply"]["items"][0]["action"]["data"] == "consent:yes:th"
    await run(bot, user, FIRST_PROPOSAL[2:6])
    districts = fake.messages_to(user.user_id)[-1]
    assert districts["type"] == "flex"
    assert districts["contents"]["type"] == "carousel"
    buttons = [
        c["action"]["data"]
        for bubble in districts["contents"]["contents"]
        for c in bubble["body"]["contents"]
        if c["type"] == "button"
    ]
    assert len(buttons) == 25
    await run(bot, user, FIRST_PROPOSAL[6:-1])
    card = fake.messages_to(user.user_id)[-1]
    assert card["type"] == "flex"
    assert th("review.title") in card["altText"]
    footer = [b["action"]["data"] for b in card["contents"]["footer"]["contents"]]
    assert footer == ["submit"]


async def test_the_same_transcript_on_telegram_and_line_stores_equal_proposals(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """The questionnaire is written once: both platforms store the same answers."""
    from tests.helpers import Chat

    Chat(service, user_id="tg-1", platform="telegram").run(FIRST_PROPOSAL)
    await run(bot, LineUser(fake), FIRST_PROPOSAL)
    skip = {"id", "reference", "sequence", "platform", "volunteer_id", "submitted_at",
            "updated_at"}  # fmt: skip
    with service.sessions() as session:
        telegram, line = session.scalars(select(Proposal).order_by(Proposal.id)).all()
        columns = [c.key for c in Proposal.__table__.columns if c.key not in skip]
        assert {c: getattr(telegram, c) for c in columns} == {c: getattr(line, c) for c in columns}


async def test_bad_signatures_and_bodies_are_refused_and_store_nothing(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """Missing or wrong signatures are 400, bad JSON 400, wrong type 415; nothing is stored."""
    user = LineUser(fake)
    event = user.text("สวัสดี")
    assert (await bot.post(event, signature="")).status_code == 400
    assert (await bot.post(event, signature=sign(body(event), "other-secret"))).status_code == 400
    garbage = b"{not json"
    response = await bot.http.post(
        "/line/webhook",
        content=garbage,
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(garbage)},
    )
    assert response.status_code == 400
    form = await bot.http.post("/line/webhook", content=b"a=b", headers={"X-Line-Signature": "x"})
    assert form.status_code == 415
    assert rows(service, InboundEvent) == 0
    assert fake.sent == []
    verification = await bot.post()
    assert verification.status_code == 200


async def test_replays_and_redeliveries_take_effect_once(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """The same webhookEventId, replayed or redelivered by LINE, is answered and applied once."""
    user = LineUser(fake)
    follow = user.follow()
    await bot.post(follow)
    consent = user.postback("consent:yes:th")
    await bot.post(consent)
    await bot.post(consent)
    await bot.post(user.redelivered(consent))
    texts = fake.texts_to(user.user_id)
    assert sum(th("q.full_name") in t for t in texts) == 1
    assert rows(service, Volunteer) == 1


async def test_an_expired_reply_token_falls_back_to_push(bot: Bot, fake: FakeLine) -> None:
    """When LINE refuses the reply token the same messages go by push."""
    user = LineUser(fake)
    event = user.follow()
    fake.expire(event["replyToken"])  # expired before the bot answered
    await bot.post(event)
    assert [s.kind for s in fake.sent] == ["push"]
    assert th("consent") in fake.texts_to(user.user_id)[0]


async def test_a_reply_refused_as_malformed_is_not_sent_again_as_a_paid_push(
    bot: Bot, fake: FakeLine
) -> None:
    """Only an expired or used token means push; LINE rejecting the message itself does not."""
    user = LineUser(fake)
    fake.faults = [Fault(400, path=REPLY)]
    await bot.post(user.follow())
    assert [path for path, _ in fake.requests] == [REPLY]
    assert fake.sent == []
    assert bot.channel.service.undelivered("line") == [], "not retried forever either"


async def test_a_rate_limited_reply_is_retried_as_a_reply(bot: Bot, fake: FakeLine) -> None:
    """LINE's rate limit (not the quota) on a reply: the reply is tried again, free of charge."""
    bot.channel.sender.first_delay = 0.01
    user = LineUser(fake)
    fake.faults = [Fault(429, path=REPLY), Fault(500, path=REPLY)]
    await bot.post(user.follow())
    assert [path for path, _ in fake.requests] == [REPLY, REPLY, REPLY]
    assert [s.kind for s in fake.sent] == ["reply"]


async def test_429_and_500_are_retried_with_the_same_retry_key(bot: Bot, fake: FakeLine) -> None:
    """A push that meets 429 then 500 is retried with one retry key and arrives once."""
    user = LineUser(fake)
    event = user.follow()
    fake.expire(event["replyToken"])
    fake.faults = [Fault(429, path=PUSH), Fault(500, path=PUSH)]  # the push fails twice
    bot.channel.sender.first_delay = 0.01
    await bot.post(event)
    pushes = [r for r in fake.requests if r[0] == "/v2/bot/message/push"]
    assert len(pushes) == 3
    assert len(fake.sent) == 1
    assert len(fake.retry_keys) == 1
    assert bot.channel.service.undelivered("line") == []


async def test_overlong_text_and_unknown_postbacks_get_clear_answers(
    bot: Bot, fake: FakeLine
) -> None:
    """5,001 characters and postback data the bot never made are answered, never crash."""
    user = LineUser(fake)
    await run(bot, user, FIRST_PROPOSAL[:9])
    await bot.post(user.text("ก" * 5001))
    assert th("err.too_long", length="5,001", maximum="4,000") in fake.texts_to(user.user_id)[-1]
    await bot.post(user.postback("made-up|data"))
    await bot.post(user.sticker())
    last = fake.texts_to(user.user_id)
    assert last[-2].startswith(th("err.stale"))
    assert last[-1].startswith(th("err.sticker"))
    assert all(th("q.problem") in t for t in last[-3:])


async def test_blocking_marks_unreachable_and_refollowing_resumes(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """Unfollow marks the volunteer unreachable; following again continues the same question."""
    user = LineUser(fake)
    await run(bot, user, FIRST_PROPOSAL[:10])
    await bot.post(user.unfollow())
    with service.sessions() as session:
        assert session.scalars(select(Volunteer.unreachable_at)).one() is not None
    await bot.post(user.follow())
    assert th("q.people_affected") in fake.texts_to(user.user_id)[-1]
    with service.sessions() as session:
        assert session.scalars(select(Volunteer.unreachable_at)).one() is None


async def test_groups_get_one_polite_line_and_nothing_is_stored(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """A message in a group is answered with one line asking to talk one-to-one."""
    user = LineUser(fake)
    event = user.text("สวัสดี")
    event["source"] = {"type": "group", "groupId": "Cgroup", "userId": user.user_id}
    await bot.post(event)
    assert fake.texts_to(user.user_id) == [th("err.group_chat")]
    assert rows(service, Volunteer) == 0


async def test_a_location_message_answers_where(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """A shared location is kept as coordinates; photos by their content id."""
    user = LineUser(fake)
    await run(bot, user, FIRST_PROPOSAL[:12])
    await bot.post(user.location(18.79, 98.98))
    await run(bot, user, [*FIRST_PROPOSAL[13:23], Press("d:photos"), Press("submit")])
    with service.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
        assert (proposal.latitude, proposal.longitude) == (18.79, 98.98)


async def test_a_failure_inside_the_bot_is_apologised_for_not_silent(
    bot: Bot, fake: FakeLine, service: WelfareService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If handling breaks (the database is down, say), the volunteer hears to try again."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database unavailable")

    user = LineUser(fake)
    monkeypatch.setattr(service, "handle", broken)
    await bot.post(user.follow())
    assert fake.texts_to(user.user_id) == [th("err.internal")]
    assert service.pending_events("line") == [], "a failed event is not retried forever"


def shown_actions(fake: FakeLine, user: LineUser) -> list[str]:
    """Return the postback data a user can press now: on the last batch the bot sent them."""
    last = [s for s in fake.sent if s.to == user.user_id][-1]
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            action = node.get("action")
            if isinstance(action, dict) and action.get("type") == "postback":
                found.append(action["data"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(last.messages)
    return found


async def test_a_whole_proposal_pressing_only_postbacks_shown_with_edits_from_the_card(
    bot: Bot, fake: FakeLine, service: WelfareService
) -> None:
    """Only buttons drawn are pressed; the card edits two answers; a toggle is one short line."""
    user = LineUser(fake)

    async def press(data: str) -> None:
        assert data in shown_actions(fake, user), f"{data} is not shown"
        await bot.post(user.postback(data))

    await bot.post(user.follow())
    for step in FIRST_PROPOSAL[1:-1]:
        if not isinstance(step, Press):
            await bot.post(user.as_event(step))
            continue
        await press(step.data)
        if step.data.startswith("t:"):
            toggled = fake.messages_to(user.user_id)[-1]
            assert toggled["type"] == "text"
            assert toggled["text"].startswith(th("toggle.chosen", count=9, options="")[:9])
    await press("e:people_affected")
    await bot.post(user.text("40"))
    assert th("review.title") in fake.texts_to(user.user_id)[-1]
    await press("e:responsible")
    await press("t:responsible:health")
    await press("d:responsible")
    await press("submit")
    assert "CM-2570-00001" in fake.texts_to(user.user_id)[-1]
    with service.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
        assert proposal.people_affected == 40
        assert proposal.responsible == ["provincial_office", "local_admin", "health"]
    asked = [t for t in fake.texts_to(user.user_id) if t.startswith(th("q.responsible"))]
    assert len(asked) == 2, "asked once, and once more from the card: never once per tap"


async def test_the_rich_menu_is_set_at_start_and_each_tile_is_a_command(
    bot: Bot, fake: FakeLine
) -> None:
    """Start creates the menu, uploads its image and makes it the default; tiles are commands."""
    assert fake.violations == []
    assert fake.default_rich_menu in fake.rich_menu_images
    menu = fake.rich_menus[fake.default_rich_menu]
    assert [a["action"]["data"] for a in menu["areas"]] == [f"cmd:{t}" for t in TILES]
    user = LineUser(fake)
    await run(bot, user, FIRST_PROPOSAL[:7])
    for area in menu["areas"]:
        await bot.post(user.postback(area["action"]["data"]))
        assert not fake.texts_to(user.user_id)[-1].startswith(th("err.stale"))
        assert th("err.unknown") not in fake.texts_to(user.user_id)[-1]
    assert th("language.prompt") in fake.texts_to(user.user_id)[-1]


async def test_a_default_rich_menu_already_set_is_kept(
    service: WelfareService, fake: FakeLine
) -> None:
    """A menu set before (by the command line or in the LINE console) is not replaced."""
    url = fake.base_url  # type: ignore[attr-defined]
    menus = RichMenus(TOKEN, url, url)
    first = await menus.install()
    channel = LineChannel(service, SECRET, TOKEN, base_url=url, rich_menus=menus)
    await channel.start()
    await channel.settled()
    await channel.stop()
    assert fake.default_rich_menu == first
    assert list(fake.rich_menus) == [first]
    again = RichMenus(TOKEN, url, url)
    second = await again.install()
    await again.close()
    assert fake.default_rich_menu == second
    assert list(fake.rich_menus) == [second], "installing again removes the older copy"


def test_the_command_line_sets_the_rich_menu(fake: FakeLine, tmp_path: Path) -> None:
    """`welfarebot line rich-menu` uploads the drawn menu, makes it the default, says so in Thai."""
    from typer.testing import CliRunner

    from handlers.cli.main import app as cli

    env = {"WELFAREBOT_HOME": str(tmp_path), "LINE_CHANNEL_SECRET": SECRET,
           "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_BASE_URL": fake.base_url,  # type: ignore[attr-defined]
           "LINE_DATA_API_BASE_URL": fake.base_url}  # type: ignore[attr-defined]  # fmt: skip
    result = CliRunner().invoke(cli, ["line", "rich-menu"], env=env)
    assert result.exit_code == 0, result.output
    assert fake.default_rich_menu is not None
    assert result.output.strip() == th("cli.line.rich_menu", menu_id=fake.default_rich_menu)
    image = fake.rich_menu_images[fake.default_rich_menu]
    assert image.startswith(b"\x89PNG")
    missing = CliRunner().invoke(cli, ["line", "rich-menu"], env={"WELFAREBOT_HOME": str(tmp_path)})
    assert missing.exit_code == 2
    # on one line however narrow the terminal: rich wrapped the Thai ending onto a line of its own
    assert missing.output.strip() == th("cli.line.needs_settings")


async def test_a_client_gone_mid_body_costs_one_line_and_the_server_goes_on(
    service: WelfareService, fake: FakeLine, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook whose sender closes the connection halfway is logged in one line, no traceback."""
    url = fake.base_url  # type: ignore[attr-defined]
    channel = LineChannel(service, SECRET, TOKEN, base_url=url)
    await channel.start()
    caplog.set_level(logging.INFO)
    raw = body(LineUser(fake).text("สวัสดี"))
    async with web_server(channel.routes(), service.db) as base:
        # uvicorn logs its errors on loggers of its own that do not reach the root
        logging.getLogger("uvicorn").addHandler(caplog.handler)
        try:
            host, port = base.removeprefix("http://").split(":")
            _reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                b"POST /line/webhook HTTP/1.1\r\nHost: bot\r\n"
                b"Content-Type: application/json\r\n"
                + f"X-Line-Signature: {sign(raw)}\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
                + raw[: len(raw) // 2]
            )
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/healthz")).status_code == 200
        finally:
            logging.getLogger("uvicorn").removeHandler(caplog.handler)
    # leaving web_server waited for every request, the one cut short too
    await channel.stop()
    logged = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "httpx"]
    assert [r.getMessage() for r in logged] == [
        "a client closed its connection before its request was read (/line/webhook)"
    ]
    assert not any(r.exc_info for r in caplog.records)
    assert rows(service, InboundEvent) == 0
