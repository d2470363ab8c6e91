"""Draws neutral replies as LINE messages: quick replies, Flex choice lists and the review card."""

import re
import unicodedata
from typing import Any

from bot.domain.messages import (
    SHARE_LOCATION,
    SHARE_PHONE,
    SHARE_PHOTO,
    Button,
    Card,
    Reply,
    fold_notes,
)
from handlers.text_split import split_text

MAX_TEXT = 5000
MAX_ALT_TEXT = 1500
MAX_QUICK_REPLIES = 13
QUICK_LABEL = 20
FLEX_LABEL = 40
BUTTONS_PER_BUBBLE = 9
# LINE shows at most 12 bubbles in a carousel; a longer list goes on in another carousel
MAX_BUBBLES = 12
# the question inside a Flex bubble; longer text goes before it as text messages
FLEX_TEXT = 2000
MAX_MESSAGES = 5

Message = dict[str, Any]
# symbols a label may start with, dropped when that is what it takes to fit a quick reply
DECORATION = "📝📋👤🔒❓✅✖✏️📍📷📱◀▶ "


def units(text: str) -> int:
    """Return a text's length as LINE counts it: in UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, limit: int) -> str:
    if units(text) <= limit:
        return text
    while units(text) > limit - 1:
        text = text[:-1]
    # a Thai vowel or tone mark left without its consonant would show as a dotted circle
    while text and unicodedata.category(text[-1]) == "Mn" and units(text) >= limit - 1:
        text = text[:-1]
    return text + "…"


def _fit(label: str, limit: int) -> str:
    """Return a label within a limit: without its note in brackets, or its leading symbol,
    if that is enough; else cut."""
    short = re.sub(r"\s*\([^)]*\)", "", label)
    for candidate in (label, short, label.lstrip(DECORATION), short.lstrip(DECORATION)):
        if units(candidate) <= limit:
            return candidate
    return _cut(short.lstrip(DECORATION), limit)


def _fits(label: str, limit: int) -> bool:
    return units(label.lstrip(DECORATION)) <= limit


def _postback(button: Button, limit: int) -> dict[str, Any]:
    # the full label is what the chat shows as the volunteer's own message
    return {
        "type": "postback",
        "label": _fit(button.label, limit),
        "data": button.data,
        "displayText": _cut(button.label, 300),
    }


def _quick_item(button: Button) -> dict[str, Any]:
    if button.data == SHARE_LOCATION:
        action: dict[str, Any] = {"type": "location", "label": _fit(button.label, QUICK_LABEL)}
    elif button.data == SHARE_PHOTO:
        action = {"type": "cameraRoll", "label": _fit(button.label, QUICK_LABEL)}
    else:
        action = _postback(button, QUICK_LABEL)
    return {"type": "action", "action": action}


def _quick_reply(buttons: list[Button]) -> dict[str, Any] | None:
    items = [_quick_item(b) for b in buttons[:MAX_QUICK_REPLIES]]
    return {"items": items} if items else None


def _text(body: str, quick: dict[str, Any] | None = None) -> Message:
    message: Message = {"type": "text", "text": body}
    if quick:
        message["quickReply"] = quick
    return message


def _button_box(buttons: list[Button], style: str = "secondary") -> list[dict[str, Any]]:
    return [
        {
            "type": "button",
            "style": style,
            "height": "sm",
            "margin": "sm",
            "action": _postback(b, FLEX_LABEL),
        }
        for b in buttons
    ]


def _choice_flexes(body: str, choices: list[Button]) -> list[dict[str, Any]]:
    """Bubbles (or carousels of bubbles to swipe) with one button per choice, every choice."""
    chunks = [
        choices[i : i + BUTTONS_PER_BUBBLE] for i in range(0, len(choices), BUTTONS_PER_BUBBLE)
    ]
    bubbles = []
    for index, chunk in enumerate(chunks or [[]]):
        contents: list[dict[str, Any]] = []
        if index == 0:
            contents.append({"type": "text", "text": body, "wrap": True})
        contents += _button_box(chunk)
        bubbles.append(
            {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": contents}}
        )
    if len(bubbles) == 1:
        return bubbles
    return [
        {"type": "carousel", "contents": bubbles[i : i + MAX_BUBBLES]}
        for i in range(0, len(bubbles), MAX_BUBBLES)
    ]


def _card_flex(card: Card, actions: list[Button]) -> dict[str, Any]:
    """The review card: one row per answer with its edit button, actions in the footer."""
    rows: list[dict[str, Any]] = []
    for row in card.rows:
        line: list[dict[str, Any]] = [
            {"type": "text", "text": row.label, "size": "xs", "color": "#888888", "wrap": True},
            {"type": "text", "text": row.value or " ", "size": "sm", "wrap": True},
        ]
        if row.edit is not None:
            line += [
                {
                    "type": "button",
                    "style": "link",
                    "height": "sm",
                    "action": _postback(row.edit, FLEX_LABEL),
                }
            ]
        rows.append({"type": "box", "layout": "vertical", "margin": "md", "contents": line})
    title = {"type": "text", "text": card.title, "weight": "bold", "wrap": True}
    hint = {"type": "text", "text": card.hint or " ", "size": "xs", "wrap": True, "margin": "md"}
    return {
        "type": "bubble",
        "size": "giga",
        "body": {"type": "box", "layout": "vertical", "contents": [title, *rows, hint]},
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": _button_box(actions[:1], "primary") + _button_box(actions[1:]),
        },
    }


def render(reply: Reply) -> list[Message]:
    """Return the LINE messages for one reply (LINE cannot share contacts, so that goes)."""
    buttons = [b for b in reply.buttons if b.data != SHARE_PHONE]
    # "done" of a multi-select stays in reach as a quick reply, not on a second page to swipe
    commands = [b for b in buttons if b.data.startswith(("cmd:", "share:", "d:"))]
    choices = [b for b in buttons if b not in commands]
    quick = _quick_reply(commands)
    if reply.card is not None:
        # the card shows everything the text says; the text is the notification's preview
        card: Message = {
            "type": "flex",
            "altText": _cut(reply.text, MAX_ALT_TEXT),
            "contents": _card_flex(reply.card, choices),
        }
        return [_with_quick(card, quick)]
    fits = len(buttons) <= MAX_QUICK_REPLIES and all(_fits(b.label, QUICK_LABEL) for b in buttons)
    if reply.in_place and len(buttons) <= MAX_QUICK_REPLIES:
        # LINE cannot edit a sent message, and quick replies vanish after a tap: a toggle is
        # answered with one short line of what is chosen so far and the same choices as quick
        # replies (cut to fit), not a second copy of the whole list (7 taps were 7 lists)
        toast = reply.toast or split_text(reply.text, MAX_TEXT)[-1]
        return [_text(toast, _quick_reply(choices + commands))]
    if fits:
        pieces = split_text(reply.text, MAX_TEXT)
        return [
            *(_text(p) for p in pieces[:-1]),
            _text(pieces[-1], _quick_reply(choices + commands)),
        ]
    # a long question goes first as text, its last part stays with the buttons
    pieces = split_text(reply.text, FLEX_TEXT)
    head = [_text(p) for p in pieces[:-1]]
    flexes = [
        {"type": "flex", "altText": _cut(reply.text, MAX_ALT_TEXT), "contents": contents}
        for contents in _choice_flexes(pieces[-1], choices)
    ]
    return [*head, *flexes[:-1], _with_quick(flexes[-1], quick)]


def _with_quick(message: Message, quick: dict[str, Any] | None) -> Message:
    if quick:
        message["quickReply"] = quick
    return message


def render_all(replies: list[Reply] | tuple[Reply, ...]) -> list[Message]:
    """Return the LINE messages for a turn's replies, notes folded into the next question.

    Notes are not folded into a review card: a card shows its own rows, not the text, and
    what was folded in would be lost.
    """
    messages: list[Message] = []
    notes: list[Reply] = []
    for reply in replies:
        if reply.card is None:
            notes.append(reply)
            continue
        messages += [m for r in fold_notes(notes, MAX_TEXT) for m in render(r)]
        messages += render(reply)
        notes = []
    return messages + [m for r in fold_notes(notes, MAX_TEXT) for m in render(r)]


def batches(messages: list[Message]) -> list[list[Message]]:
    """Split messages into requests of at most five, LINE's limit."""
    return [messages[i : i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]
