"""Every button the engine offers reaches every platform, within each platform's limits.

Each conversation the bot can have (consent, profile, proposal, review and edit, revision,
status, staff views) is run through the real service; every turn's replies then go through the
Telegram, LINE and terminal renderers, and what each would show is read back from its output.
"""

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.app.service import WelfareService
from bot.conversation import views
from bot.conversation.engine import command_of
from bot.domain.messages import (
    SHARE_LOCATION,
    SHARE_PHONE,
    SHARE_PHOTO,
    Press,
    Reply,
    Text,
    fold_notes,
)
from handlers import terminal
from handlers.line import render as line
from handlers.telegram import render as telegram
from tests.fakes.line_api import limits, subtypes
from tests.fakes.telegram_api import Call, bad_request
from tests.helpers import Chat
from tests.staff_support import make_staff
from tests.transcripts import FIRST_PROPOSAL, NEXT_PROPOSAL

Turn = tuple[Reply, ...]
Step = Press | str | Callable[[Chat], Press]


def press_each(chat: Chat, prefix: str, then: list[Step]) -> None:
    """Press every button of the last reply (or its card) starting with a prefix, then steps."""
    last = chat.replies[-1]
    edits = [row.edit for row in last.card.rows if row.edit] if last.card else []
    for button in [*last.buttons, *edits]:
        if button.data.startswith(prefix):
            chat.send(Press(button.data))
            run(chat, then)


def pressing(prefix: str) -> Callable[[Chat], Press]:
    """Return a step pressing the last reply's first button whose data starts with a prefix."""

    def choose(chat: Chat) -> Press:
        return next(Press(b.data) for b in chat.replies[-1].buttons if b.data.startswith(prefix))

    return choose


def run(chat: Chat, steps: list[Step]) -> None:
    """Send steps; a callable step picks its press from what was just shown."""
    for step in steps:
        chat.send(step(chat) if callable(step) else step)


def conversations(service: WelfareService) -> list[Turn]:
    """Have every kind of conversation and return each turn's replies as they were committed."""
    Chat(service, "declines").run([Text("สวัสดี"), Press("lang:en"), Press("consent:no:en")])
    for user, consent in (("vol", "consent:yes:th"), ("vol-en", "consent:yes:en")):
        chat = Chat(service, user)
        run(chat, [FIRST_PROPOSAL[0], Press(consent), *FIRST_PROPOSAL[2:-1]])
        press_each(chat, "e:", [Press("cmd:back")])
        run(chat, [Press("submit"), "/status", "/mydata", "/help", "/reminders", "/language"])
        run(chat, [Press("lang:th" if user == "vol" else "lang:en"), "/profile"])
        press_each(chat, "e:", [Press("cmd:back")])
        run(chat, [Press("e:phone"), "0812345678", Press("save"), "/new", "/cancel"])
        run(chat, [Press("cancel:no"), "/deletedata", Press("delete:no"), "/cancel"])
        run(chat, [Press("cancel:yes"), *NEXT_PROPOSAL, "/new", "สวัสดี", Press("x:stale")])
    officer = make_staff(service, "officer", "admin")
    reference = "CM-2570-00001"
    run(officer, ["/proposals ผู้สูงอายุ", f"/show {reference}", "/stats", "/desk"])
    run(officer, [pressing("s:list"), pressing("s:show:"), "/export csv", "/export xlsx"])
    run(officer, [Press(f"s:st:{reference}:needs_revision"), "กรุณาระบุจำนวนให้ชัดเจน"])
    run(officer, ["/broadcast", "ประชุมวันศุกร์", pressing("s:bc:skip"), pressing("s:bc:every")])
    run(officer, [pressing("s:bc:now"), pressing("s:bc:cancel"), "/broadcasts", "/staff list"])
    run(officer, ["/invite viewer", Press(f"s:st:{reference}:accepted")])
    volunteer = Chat(service, "vol")
    run(volunteer, [Press(f"revise:{reference}")])
    press_each(volunteer, "e:", [Press("cmd:back")])
    run(volunteer, [Press("submit")])
    turns = [d.replies for d in service.undelivered("terminal")]
    return [*turns, *((views.draft_reminder(language),) for language in ("th", "en"))]


# what each platform would show --------------------------------------------------------------


def telegram_offers(turn: Turn) -> tuple[set[str], list[str]]:
    """Return the button data a Telegram user could send after a turn, and broken limits."""
    offered: set[str] = set()
    problems: list[str] = []
    for outgoing in telegram.render_all([r for r in turn if r.document is None]):
        keyboard = outgoing.markup.to_dict() if outgoing.markup is not None else {}
        call = Call("sendMessage", {"chat_id": 1, "text": outgoing.text, "reply_markup": keyboard})
        problems += [p for p in [bad_request(call, {})] if p]
        for row in keyboard.get("inline_keyboard", []):
            offered |= {button["callback_data"] for button in row}
        for row in keyboard.get("keyboard", []):
            for button in row:
                if button.get("request_contact"):
                    offered.add(SHARE_PHONE)
                elif button.get("request_location"):
                    offered.add(SHARE_LOCATION)
                else:
                    # a reply keyboard button sends its label as typed text
                    offered.add(f"cmd:{command_of(Text(button['text']))}")
    return offered, problems


def line_offers(turn: Turn) -> tuple[set[str], list[str]]:
    """Return the postback data a LINE user could send after a turn, and broken limits."""
    # the channel turns a file into a link, which is plain text
    linked = [Reply(r.text) if r.document else r for r in turn]
    messages = line.render_all(linked)
    problems = limits({"messages": messages})
    if len(messages) > line.MAX_MESSAGES:
        problems.append(f"{len(messages)} messages: more than one reply token carries")
    push = {"to": "U" + "0" * 32, "messages": messages[: line.MAX_MESSAGES]}
    problems += subtypes(push, {"$ref": "#/components/schemas/PushMessageRequest"})
    actions = [a for m in messages for a in _line_actions(m)]
    kinds = {"location": SHARE_LOCATION, "cameraRoll": SHARE_PHOTO}
    offered = {a["data"] if a["type"] == "postback" else kinds.get(a["type"], "") for a in actions}
    return offered, problems


def _line_actions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("action"), dict):
            yield node["action"]
        for value in node.values():
            yield from _line_actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _line_actions(item)


def terminal_offers(turn: Turn) -> tuple[set[str], list[str]]:
    """Return what a terminal user could pick by number or type as a command after a turn."""
    out = io.StringIO()
    chat = terminal.TerminalChat(None, "u", io.StringIO(), out)  # type: ignore[arg-type]
    chat.show(list(turn))
    offered: set[str] = set()
    problems: list[str] = []
    for line_ in out.getvalue().splitlines():
        number, _, label = line_.strip().partition(") ")
        if line_.startswith("  ") and number.isdigit():
            # only the last list's numbers can be typed: an earlier list is out of reach
            picked = chat.numbered[int(number) - 1] if int(number) <= len(chat.numbered) else None
            if picked is not None and picked.label == label:
                offered.add(picked.data)
        for hint in line_.split("[")[1:]:
            offered.add(f"cmd:{command_of(Text(hint.split()[0]))}")
    return offered, problems


PLATFORMS = {
    "telegram": (telegram_offers, {SHARE_PHOTO}),  # photos come by the paperclip
    "line": (line_offers, {SHARE_PHONE}),  # LINE cannot share a contact; the number is typed
    "terminal": (terminal_offers, {SHARE_PHONE, SHARE_LOCATION, SHARE_PHOTO}),
}


def problems_of(platform: str, turns: list[Turn]) -> list[str]:
    """Return every button a platform leaves out of a turn and every limit it breaks."""
    offers, unsupported = PLATFORMS[platform]
    problems = []
    for turn in turns:
        wanted = {b.data for r in turn for b in r.buttons}
        wanted |= {row.edit.data for r in turn if r.card for row in r.card.rows if row.edit}
        offered, broken = offers(turn)
        problems += broken
        missing = wanted - unsupported - offered
        if missing:
            problems.append(f"{platform} leaves out {sorted(missing)} of {turn[-1].text[:60]!r}")
    return problems


@pytest.fixture(scope="module")
def turns(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Any) -> list[Turn]:
    """Every turn of every conversation, had once for all platforms."""
    import shutil

    from tests.conftest import make_service
    from tests.helpers import Clock

    path = tmp_path_factory.mktemp("affordances") / "db.sqlite"
    shutil.copy(sqlite_template, path)
    return conversations(make_service(f"sqlite:///{path}", Clock()))


def test_the_conversations_cover_every_kind_of_widget(turns: list[Turn]) -> None:
    """The transcripts reach cards, toggles, share buttons, files, staff and revision buttons."""
    data = {b.data for turn in turns for r in turn for b in r.buttons}
    assert any(r.card and r.card.rows[0].edit for turn in turns for r in turn)
    assert any(r.in_place for turn in turns for r in turn)
    assert any(r.document for turn in turns for r in turn)
    assert {SHARE_PHONE, SHARE_LOCATION, SHARE_PHOTO, "save", "submit"} <= data
    prefixes = ("revise:", "s:st:", "s:bc:", "lang:", "delete:", "cancel:", "consent:")
    assert all(any(d.startswith(p) for d in data) for p in prefixes)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_button_reaches_the_platform_within_its_limits(
    turns: list[Turn], platform: str
) -> None:
    """No button, card edit or choice is lost on the way, and nothing breaks a limit."""
    assert problems_of(platform, turns) == []


def test_a_note_folded_before_a_file_keeps_the_file(turns: list[Turn]) -> None:
    """Folding notes into the next reply never drops that reply's file."""
    for turn in [*turns, (Reply("note"), Reply("export", document=views_document()))]:
        files = [r.document for r in turn if r.document]
        assert [r.document for r in fold_notes(turn, 4096) if r.document] == files


def views_document() -> Any:
    """Return a file reply's document."""
    from bot.domain.messages import Document

    return Document("proposals.csv", "token")


SABOTAGE = {
    # each renderer loses one button: the last row, the last quick reply, the last choice
    "telegram": ("handlers.telegram.render._rows", lambda real: lambda *a: real(*a)[:-1]),
    "line": ("handlers.line.render._quick_reply", lambda real: lambda b: real(b[:-1])),
    "terminal": (
        "handlers.terminal.choices_of",
        lambda real: lambda r: (real(r)[0][:-1], real(r)[1]),
    ),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_check_fails_when_a_renderer_drops_a_button(
    turns: list[Turn], platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above is not vacuous: a renderer that drops one button is caught."""
    target, breaking = SABOTAGE[platform]
    module, _, name = target.rpartition(".")
    real = getattr(__import__(module, fromlist=[name]), name)
    monkeypatch.setattr(target, breaking(real))
    assert any("leaves out" in p for p in problems_of(platform, turns))


def test_a_label_over_twenty_utf16_units_is_fitted_not_refused() -> None:
    """'👤 แก้ไขข้อมูลผู้เสนอ' is 21 UTF-16 units: LINE gets it without the symbol."""
    reply = views.menu("th")
    quick = line.render(reply)[-1]["quickReply"]["items"]
    labels = [item["action"]["label"] for item in quick]
    assert "แก้ไขข้อมูลผู้เสนอ" in labels
    assert all(line.units(label) <= line.QUICK_LABEL for label in labels)
