"""The Telegram channel: a real python-telegram-bot Application against a fake Bot API."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import func, select
from telegram import ReplyKeyboardMarkup, ReplyKeyboardRemove

from bot.app.service import WelfareService
from bot.domain.i18n import text
from bot.domain.messages import Contact, Press
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.render import render_all
from storage import staff
from storage.models import InboundEvent, Proposal, Volunteer
from tests.fakes.loopback import serving
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.helpers import Chat, th
from tests.telegram_support import (
    TOKEN,
    Screen,
    as_update,
    sent_text_containing,
    wait_sent,
    web_server,
)
from tests.transcripts import EXPECTED_ANSWERS, FIRST_PROPOSAL

SUBMITTED = "CM-2570-0000"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """Serve a fake Bot API on loopback."""
    fake = FakeTelegram(poll_cap=0.3)
    with serving(fake.app()) as server:
        fake.base_url = f"{server.url}/bot"  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
async def channel(service: WelfareService, fake: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    """Run the Telegram channel (long polling) against the fake."""
    channel = TelegramChannel(service, TOKEN, base_url=fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    yield channel
    await channel.stop()


def rows(service: WelfareService, model: type) -> int:
    """Count a table's rows."""
    with service.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


async def test_two_volunteers_complete_the_questionnaire_at_once(
    channel: TelegramChannel, fake: FakeTelegram, service: WelfareService
) -> None:
    """All updates arrive in one burst; each user's are handled in order, both get numbers."""
    alice, bob = Updates(1001), Updates(1002)
    burst = []
    for event in FIRST_PROPOSAL:
        burst += [as_update(alice, event), as_update(bob, event)]
    fake.push(*burst)
    await wait_sent(fake, sent_text_containing(SUBMITTED, 1001))
    await wait_sent(fake, sent_text_containing(SUBMITTED, 1002))
    with service.sessions() as session:
        proposals = session.scalars(select(Proposal).order_by(Proposal.reference)).all()
        assert [p.reference for p in proposals] == ["CM-2570-00001", "CM-2570-00002"]
        for proposal in proposals:
            for name, value in EXPECTED_ANSWERS.items():
                assert getattr(proposal, name) == value
            assert [photo.file_id for photo in proposal.photos] == ["photo-1"]
    assert not any(th("err.stale") in t for t in fake.texts()), "order was kept per user"
    await channel.idle()
    assert service.undelivered("telegram") == [], "every reply was confirmed sent"


async def test_choices_are_inline_buttons_and_the_phone_is_a_contact_button(
    channel: TelegramChannel, fake: FakeTelegram
) -> None:
    """Choices come as an inline keyboard; the phone question offers 'share my contact'."""
    user = Updates(2001)
    fake.push(*(as_update(user, e) for e in FIRST_PROPOSAL[:3]))
    await wait_sent(fake, sent_text_containing(th("q.phone")))
    consent = next(c for c in fake.sent() if th("consent") in c.params["text"])
    inline = consent.params["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in inline for b in row] == [
        "consent:yes:th",
        "consent:no:th",
        "lang:en",
    ]
    phone = fake.sent()[-1].params["reply_markup"]["keyboard"]
    assert phone[0][0]["request_contact"] is True
    fake.push(as_update(user, Contact("+66812345678")))
    await wait_sent(fake, sent_text_containing(th("q.network")))
    assert any(th("saved", value="081-234-5678") in t for t in fake.texts())


async def test_the_same_update_delivered_twice_changes_nothing(
    channel: TelegramChannel, fake: FakeTelegram, service: WelfareService
) -> None:
    """A repeated update_id is neither applied nor answered twice."""
    user = Updates(3001)
    hello, consent = as_update(user, FIRST_PROPOSAL[0]), as_update(user, Press("consent:yes:th"))
    fake.push(hello, consent, consent, hello)
    await wait_sent(fake, sent_text_containing(th("q.full_name")))
    fake.push(as_update(user, FIRST_PROPOSAL[2]))
    await wait_sent(fake, sent_text_containing(th("q.phone")))
    assert sum(th("q.full_name") in t for t in fake.texts()) == 1
    assert sum(th("consent") in t for t in fake.texts()) == 1
    assert rows(service, Volunteer) == 1


async def test_bad_input_gets_a_clear_reply_and_nothing_crashes(
    channel: TelegramChannel, fake: FakeTelegram
) -> None:
    """Stickers, voice, garbage button data, overlong text and unknown commands are answered."""
    user = Updates(4001)
    fake.push(*(as_update(user, e) for e in FIRST_PROPOSAL[:10]))
    await wait_sent(fake, sent_text_containing(th("q.people_affected")))
    before = len(fake.sent(4001))
    fake.push(
        user.sticker(),
        user.voice(),
        user.press("\x00" * 64),
        user.press("a:district:9999"),
        user.text("ก" * 4096),
        user.text("/doesnotexist"),
    )
    # each of the six gets one message: what went wrong, then the question again
    await wait_sent(fake, lambda f: len(f.sent(4001)) >= before + 6)
    replies = fake.texts(4001)[before:]
    assert all(th("q.people_affected") in t for t in replies)
    assert replies[0].startswith(th("err.sticker"))
    assert replies[1].startswith(th("err.voice"))
    assert replies[4].startswith(th("err.number"))
    assert replies[5].startswith(th("err.unknown"))
    assert not any(th("err.internal") in t for t in fake.texts())
    assert all(len(t) <= 4096 for t in fake.texts())


async def test_group_chats_are_asked_to_talk_one_to_one(
    channel: TelegramChannel, fake: FakeTelegram, service: WelfareService
) -> None:
    """A message in a group gets one polite line, and nothing is stored about anyone."""
    user = Updates(5001)
    group = user.text("/start")
    group["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "อพม. แม่ริม"}
    fake.push(group)
    await wait_sent(fake, lambda f: any(int(c.params["chat_id"]) == -100123 for c in f.sent()))
    assert fake.texts(-100123) == [th("err.group_chat")]
    assert rows(service, Volunteer) == 0


async def test_commands_are_registered_in_thai_and_english(
    channel: TelegramChannel, fake: FakeTelegram
) -> None:
    """Telegram's command menu lists the bot's commands in Thai (default) and English."""
    registered = {
        c.params.get("language_code"): c.params["commands"]
        for c in fake.calls
        if c.method == "setMyCommands"
    }
    assert set(registered) == {None, "en"}
    thai = {c["command"]: c["description"] for c in registered[None]}
    assert thai["status"] == text("th", "cmd.status")
    assert {c["command"] for c in registered["en"]} == set(thai)


async def test_the_webhook_checks_its_secret_and_stores_before_answering(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """Webhook mode: a wrong secret is 403, bad JSON 400, a good update 200 and then answered."""
    channel = TelegramChannel(
        service,
        TOKEN,
        base_url=fake.base_url,  # type: ignore[attr-defined]
        webhook_url="https://bot.example.org/telegram/webhook",
        webhook_secret="s3cret-token",
    )
    await channel.start()
    try:
        assert any(c.method == "setWebhook" for c in fake.calls)
        update = Updates(6001).text("สวัสดี")
        async with (
            web_server(channel.routes(), service.db) as base,
            httpx.AsyncClient(base_url=base) as http,
        ):
            assert (await http.get("/healthz")).status_code == 200
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
            assert (
                await http.post("/telegram/webhook", json=update, headers=wrong)
            ).status_code == 403
            assert rows(service, InboundEvent) == 0
            right = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
            bad = await http.post("/telegram/webhook", content=b"{not json", headers=right)
            assert bad.status_code == 400
            good = await http.post("/telegram/webhook", json=update, headers=right)
            assert good.status_code == 200
            await wait_sent(fake, sent_text_containing(th("consent"), 6001))
            again = await http.post("/telegram/webhook", json=update, headers=right)
            assert again.status_code == 200
    finally:
        await channel.stop()
    assert sum(th("consent") in t for t in fake.texts(6001)) == 1


async def test_a_failure_inside_the_bot_is_apologised_for_not_silent(
    channel: TelegramChannel,
    fake: FakeTelegram,
    service: WelfareService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If handling breaks (the database is down, say), the volunteer hears to try again."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(service, "handle", broken)
    fake.push(Updates(8001).text("สวัสดี"))
    await wait_sent(fake, sent_text_containing(th("err.internal"), 8001))
    await channel.idle()
    assert service.pending_events("telegram") == [], "a failed update is not retried forever"


async def test_a_whole_proposal_pressing_only_buttons_shown_with_edits_from_the_card(
    channel: TelegramChannel, fake: FakeTelegram, service: WelfareService
) -> None:
    """Only buttons drawn are pressed; the card edits two answers; toggles edit in place."""
    screen = Screen(fake, channel, Updates(9001))
    for step in FIRST_PROPOSAL[:-1]:
        if isinstance(step, Press) and step.data.startswith("t:"):
            sent, edits = len(fake.sent(9001)), len(calls(fake, "editMessageReplyMarkup"))
            await screen.press(step.data)
            assert len(fake.sent(9001)) == sent, "a toggle sends no new copy of the question"
            assert len(calls(fake, "editMessageReplyMarkup")) == edits + 1
            toast = calls(fake, "answerCallbackQuery")[-1].params["text"]
            assert toast.startswith(th("toggle.chosen", count=9, options="")[:9])
            assert "พมจ." in toast
        elif isinstance(step, Press):
            await screen.press(step.data)
        else:
            await screen.send(as_update(screen.user, step))
        if step == FIRST_PROPOSAL[3]:
            # the typed phone number is acknowledged on its own, taking the share keyboard away
            saved = fake.sent(9001)[-2].params
            assert saved["text"] == th("saved", value="081-234-5678")
            assert saved["reply_markup"] == {"remove_keyboard": True}
    _, buttons = screen.keyboard_message()
    assert {"e:people_affected", "e:responsible", "submit"} <= {b["callback_data"] for b in buttons}
    await screen.press("e:people_affected")
    await screen.send(screen.user.text("40"))
    assert th("review.title") in screen.last_text(), "an edit returns to the card"
    await screen.press("e:responsible")
    await screen.press("t:responsible:health")
    await screen.press("d:responsible")
    assert th("review.title") in screen.last_text()
    await screen.press("submit")
    assert "CM-2570-00001" in screen.last_text()
    with service.sessions() as session:
        proposal = session.scalars(select(Proposal)).one()
        assert proposal.people_affected == 40
        assert proposal.responsible == ["provincial_office", "local_admin", "health"]
    assert fake.refused == []
    questions = [t for t in fake.texts(9001) if t.startswith(th("q.responsible"))]
    assert len(questions) == 2, "asked once, and once more from the card: never once per tap"


def calls(fake: FakeTelegram, method: str) -> list:
    """Return the calls of one Bot API method."""
    return [c for c in fake.calls if c.method == method]


async def test_staff_get_their_role_s_commands_in_their_chat_only(
    service: WelfareService, fake: FakeTelegram
) -> None:
    """Known staff get a chat-scoped menu at start; one who joins or leaves gets theirs then."""
    with service.db.begin() as connection:
        staff.add(connection, "telegram", "7001", "admin", (), "test", service.clock())
    channel = TelegramChannel(service, TOKEN, base_url=fake.base_url)  # type: ignore[attr-defined]
    await channel.start()
    try:
        assert scoped_menu(fake, 7001) >= {"desk", "broadcast", "review", "new"}
        assert "desk" not in scoped_menu(fake, None), "volunteers see no staff commands"
        screen = Screen(fake, channel, Updates(7002))
        await screen.send(screen.user.text("/start"))
        assert scoped_menu(fake, 7002) == set()
        with service.db.begin() as connection:
            staff.add(connection, "telegram", "7002", "viewer", (), "test", service.clock())
        await screen.send(screen.user.text("/desk"))
        assert "review" not in scoped_menu(fake, 7002)
        assert {"desk", "proposals", "export"} <= scoped_menu(fake, 7002)
        with service.db.begin() as connection:
            staff.remove(connection, "telegram", "7002")
        await screen.send(screen.user.text("/start"))
        assert calls(fake, "deleteMyCommands")[-1].params["scope"]["chat_id"] == 7002
    finally:
        await channel.stop()


def scoped_menu(fake: FakeTelegram, chat_id: int | None) -> set[str]:
    """Return the commands last set for a chat (None: everyone's), in Thai."""
    menus = [
        c.params for c in calls(fake, "setMyCommands")
        if (c.params.get("scope") or {}).get("chat_id") == chat_id
        and not c.params.get("language_code")
    ]  # fmt: skip
    return {c["command"] for c in menus[-1]["commands"]} if menus else set()


def test_skipping_the_place_puts_away_the_share_location_keyboard(
    service: WelfareService,
) -> None:
    """/skip at the location question sends a note that removes Telegram's reply keyboard."""
    chat = Chat(service, "77", platform="telegram")
    asked = render_all(chat.run(FIRST_PROPOSAL[:12]))
    assert isinstance(asked[-1].markup, ReplyKeyboardMarkup)  # the share-location button
    skipped = render_all(chat.send("/skip"))
    assert skipped[0].text == th("skipped")
    assert isinstance(skipped[0].markup, ReplyKeyboardRemove)
    assert not any(isinstance(o.markup, ReplyKeyboardMarkup) for o in skipped)
