"""Draws neutral replies as Telegram messages: text within limits, inline or reply keyboards."""

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.domain.messages import SHARE_LOCATION, SHARE_PHONE, SHARE_PHOTO, Button, Reply, fold_notes
from handlers.text_split import split_text

MAX_TEXT = 4096
# labels up to this many characters share a row of two
SHORT_LABEL = 18

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


@dataclass(frozen=True)
class Outgoing:
    """One Telegram sendMessage: its text and markup."""

    text: str
    markup: Markup | None


def _rows(buttons: list[Button]) -> list[list[Button]]:
    """Lay choices out two to a row when short, then commands together on the last row."""
    choices = [b for b in buttons if not b.data.startswith("cmd:")]
    commands = [b for b in buttons if b.data.startswith("cmd:")]
    width = 2 if all(len(b.label) <= SHORT_LABEL for b in choices) else 1
    rows = [choices[i : i + width] for i in range(0, len(choices), width)]
    if commands:
        rows.append(commands)
    return rows


def markup(reply: Reply) -> Markup:
    """Return the keyboard for a reply (photos need no button: the paperclip sends them)."""
    buttons = [b for b in reply.buttons if b.data != SHARE_PHOTO]
    shares = [b for b in buttons if b.data in (SHARE_PHONE, SHARE_LOCATION)]
    if shares:
        # Telegram only asks for a contact or location from a reply keyboard; other buttons
        # become typed words there, which the engine reads as the same commands
        keys = [
            [
                KeyboardButton(
                    b.label,
                    request_contact=b.data == SHARE_PHONE,
                    request_location=b.data == SHARE_LOCATION,
                )
                for b in shares
            ]
        ]
        others = [KeyboardButton(b.label) for b in buttons if b not in shares]
        if others:
            keys.append(others)
        return ReplyKeyboardMarkup(keys, resize_keyboard=True, one_time_keyboard=True)
    if not buttons:
        return ReplyKeyboardRemove()
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in _rows(buttons)
        ]
    )


def render(reply: Reply) -> list[Outgoing]:
    """Return the Telegram messages for one reply; the keyboard goes on the last piece."""
    pieces = split_text(reply.text, MAX_TEXT)
    last = markup(reply)
    return [Outgoing(p, last if i == len(pieces) - 1 else None) for i, p in enumerate(pieces)]


def render_all(replies: Sequence[Reply]) -> list[Outgoing]:
    """Return the messages for several replies, notes folded into the question after them."""
    return [outgoing for reply in fold_notes(replies, MAX_TEXT) for outgoing in render(reply)]
