"""Draws neutral replies as Telegram messages: text within limits, inline or reply keyboards."""

import unicodedata
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
MAX_TOAST = 200
# how many character cells a row of inline buttons shows on a phone before it cuts labels short
ROW_WIDTH = 36
MAX_PER_ROW = 3

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


@dataclass(frozen=True)
class Outgoing:
    """One Telegram sendMessage: its text and markup."""

    text: str
    markup: Markup | None


def width(label: str) -> int:
    """Return how many character cells a label takes: Thai vowel and tone marks take none."""
    return sum(
        0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else 2 if ord(c) > 0x2000 and
        unicodedata.east_asian_width(c) == "W" else 1
        for c in label
    )  # fmt: skip


def _columns(buttons: list[Button]) -> list[list[Button]]:
    """Lay buttons out in equal columns as wide as the widest allows; a long one has a row."""
    short = [b for b in buttons if width(b.label) <= ROW_WIDTH // 2]
    widest = max((width(b.label) for b in short), default=1)
    per_row = max(1, min(MAX_PER_ROW, ROW_WIDTH // widest))
    rows: list[list[Button]] = []
    row: list[Button] = []
    for button in buttons:
        if button not in short:
            rows += [row, [button]] if row else [[button]]
            row = []
            continue
        row.append(button)
        if len(row) == per_row:
            rows.append(row)
            row = []
    return [*rows, row] if row else rows


def _rows(reply: Reply, buttons: list[Button]) -> list[list[Button]]:
    """Lay out choices, then a card's edit buttons, then commands and actions at the bottom."""
    commands = [b for b in buttons if b.data.startswith(("cmd:", "d:"))]
    choices = [b for b in buttons if b not in commands]
    if reply.card is not None:
        # a card's own actions (submit, save) sit with the commands, under the edit buttons
        edits = [row.edit for row in reply.card.rows if row.edit]
        return _columns(edits) + _columns(choices + commands)
    # "done" of a multi-select gets a row of its own, so it is not taken for one more option
    finish = [[b] for b in commands if b.data.startswith("d:")]
    return _columns(choices) + finish + _columns([b for b in commands if b.data.startswith("cmd:")])


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
    if not buttons and reply.card is None:
        return ReplyKeyboardRemove()
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
            for row in _rows(reply, buttons)
        ]
    )


def render(reply: Reply) -> list[Outgoing]:
    """Return the Telegram messages for one reply; the keyboard goes on the last piece."""
    pieces = split_text(reply.text, MAX_TEXT)
    last = markup(reply)
    return [Outgoing(p, last if i == len(pieces) - 1 else None) for i, p in enumerate(pieces)]


def render_all(replies: Sequence[Reply]) -> list[Outgoing]:
    """Return the messages for several replies, notes folded into the question after them.

    A note that closes the share keyboard is not folded into a question with inline buttons:
    a message carries one keyboard, and only a message of its own can take the old one away.
    """
    groups: list[list[Reply]] = [[]]
    for reply in replies:
        groups[-1].append(reply)
        if reply.closes_keyboard:
            groups.append([])
    return [
        outgoing
        for group in groups
        for reply in fold_notes(group, MAX_TEXT)
        for outgoing in render(reply)
    ]
