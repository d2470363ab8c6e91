"""Draws neutral replies as LINE messages: quick replies, Flex choice lists and the review card."""

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
MAX_MESSAGES = 5

Message = dict[str, Any]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _postback(button: Button, limit: int) -> dict[str, Any]:
    # the full label is what the chat shows as the volunteer's own message
    return {
        "type": "postback",
        "label": _cut(button.label, limit),
        "data": button.data,
        "displayText": _cut(button.label, 300),
    }


def _quick_item(button: Button) -> dict[str, Any]:
    if button.data == SHARE_LOCATION:
        action: dict[str, Any] = {"type": "location", "label": _cut(button.label, QUICK_LABEL)}
    elif button.data == SHARE_PHOTO:
        action = {"type": "cameraRoll", "label": _cut(button.label, QUICK_LABEL)}
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


def _choice_flex(body: str, choices: list[Button]) -> dict[str, Any]:
    """A bubble (or a carousel of bubbles to swipe) with one button per choice."""
    chunks = [
        choices[i : i + BUTTONS_PER_BUBBLE] for i in range(0, len(choices), BUTTONS_PER_BUBBLE)
    ]
    bubbles = []
    for index, chunk in enumerate(chunks):
        contents: list[dict[str, Any]] = []
        if index == 0:
            contents.append({"type": "text", "text": _cut(body, 2000), "wrap": True})
        contents += _button_box(chunk)
        bubbles.append(
            {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": contents}}
        )
    if len(bubbles) == 1:
        return bubbles[0]
    return {"type": "carousel", "contents": bubbles}


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
    commands = [b for b in buttons if b.data.startswith(("cmd:", "share:"))]
    choices = [b for b in buttons if b not in commands]
    pieces = split_text(reply.text, MAX_TEXT)
    head = [_text(p) for p in pieces[:-1]]
    if reply.card is not None:
        alt = _cut(reply.text, MAX_ALT_TEXT)
        flex: Message = {
            "type": "flex",
            "altText": alt,
            "contents": _card_flex(reply.card, choices),
        }
        quick = _quick_reply(commands)
        if quick:
            flex["quickReply"] = quick
        return [flex]
    fits = len(buttons) <= MAX_QUICK_REPLIES and all(len(b.label) <= QUICK_LABEL for b in choices)
    if fits:
        return [*head, _text(pieces[-1], _quick_reply(choices + commands))]
    flex = {
        "type": "flex",
        "altText": _cut(reply.text, MAX_ALT_TEXT),
        "contents": _choice_flex(reply.text, choices),
    }
    quick = _quick_reply(commands)
    if quick:
        flex["quickReply"] = quick
    return [flex]


def render_all(replies: list[Reply] | tuple[Reply, ...]) -> list[Message]:
    """Return the LINE messages for a turn's replies, notes folded into the next question."""
    return [message for reply in fold_notes(replies, MAX_TEXT) for message in render(reply)]


def batches(messages: list[Message]) -> list[list[Message]]:
    """Split messages into requests of at most five, LINE's limit."""
    return [messages[i : i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]
