"""Platform-neutral inputs from volunteers and the replies the engine sends back."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Text:
    """A typed message (commands included)."""

    text: str


@dataclass(frozen=True)
class Press:
    """A button press, carrying the data the bot put on the button."""

    data: str


@dataclass(frozen=True)
class Contact:
    """A shared phone contact."""

    phone: str


@dataclass(frozen=True)
class Photo:
    """A photo, by the platform's id for its file or content."""

    file_id: str


@dataclass(frozen=True)
class Location:
    """A shared map location."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class Unsupported:
    """Anything the bot cannot read: stickers, voice, files, empty messages."""

    kind: str


Input = Text | Press | Contact | Photo | Location | Unsupported


@dataclass(frozen=True)
class Button:
    """One button: what it shows and the data it sends back (at most 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True)
class CardRow:
    """One answer on a review card, with the button that edits it."""

    label: str
    value: str
    edit: Button | None = None


@dataclass(frozen=True)
class Card:
    """A summary card: a title, one row per answer, and actions under it."""

    title: str
    rows: tuple[CardRow, ...]
    hint: str = ""


@dataclass(frozen=True)
class Document:
    """A file the bot sends (an export), kept in the database under a token."""

    filename: str
    token: str


@dataclass(frozen=True)
class Image:
    """A stored photo the bot sends, by the SHA-256 of its content."""

    sha256: str
    content_type: str


@dataclass(frozen=True)
class Reply:
    """One outgoing message: text, optional buttons, an optional card or file, photos before it."""

    text: str
    buttons: tuple[Button, ...] = ()
    card: Card | None = None
    # the question wants several presses before moving on, so keep the buttons visible
    multi: bool = False
    document: Document | None = None
    # this reply redraws the question just pressed (a toggle): a platform that can edit a sent
    # message changes that message's buttons and shows `toast` instead of sending a new one
    in_place: bool = False
    toast: str = ""
    # an acknowledgement after a phone or location answer: the share keyboard can go now
    closes_keyboard: bool = False
    images: tuple[Image, ...] = ()


MAX_BUTTON_DATA = 64
# buttons that ask the platform for the volunteer's phone number or location, where it can
SHARE_PHONE = "share:phone"
SHARE_LOCATION = "share:location"
SHARE_PHOTO = "share:photo"


def fold_notes(replies: Sequence[Reply], limit: int) -> list[Reply]:
    """Fold plain-text replies into the reply after them, within a channel's text limit.

    A note such as "saved" or "please type a number" then arrives in the same bubble as the
    question after it: fewer notifications on the volunteer's phone, fewer API calls.
    """
    folded: list[Reply] = []
    waiting: list[str] = []
    for reply in replies:
        if is_note(reply):
            waiting.append(reply.text)
            continue
        joined = "\n\n".join([*waiting, reply.text])
        if waiting and len(joined) <= limit and not reply.in_place:
            reply = replace(reply, text=joined)
        else:
            folded += [Reply(text) for text in waiting]
        waiting = []
        folded.append(reply)
    joined = "\n\n".join(waiting)
    if waiting:
        folded += [Reply(joined)] if len(joined) <= limit else [Reply(text) for text in waiting]
    return folded


def is_note(reply: Reply) -> bool:
    """Tell whether a reply is plain text that may share a bubble with the next one."""
    return not (reply.buttons or reply.card or reply.document or reply.in_place or reply.images)


def _button(button: Button) -> dict[str, str]:
    return {"label": button.label, "data": button.data}


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """Return a reply as a JSON-ready dict (for the outbox)."""
    data: dict[str, Any] = {"text": reply.text, "buttons": [_button(b) for b in reply.buttons]}
    for flag in ("multi", "in_place", "closes_keyboard"):
        if getattr(reply, flag):
            data[flag] = True
    if reply.toast:
        data["toast"] = reply.toast
    if reply.card is not None:
        rows = [
            {"label": r.label, "value": r.value, "edit": _button(r.edit) if r.edit else None}
            for r in reply.card.rows
        ]
        data["card"] = {"title": reply.card.title, "rows": rows, "hint": reply.card.hint}
    if reply.document is not None:
        data["document"] = {"filename": reply.document.filename, "token": reply.document.token}
    if reply.images:
        data["images"] = [[i.sha256, i.content_type] for i in reply.images]
    return data


def reply_from_json(data: dict[str, Any]) -> Reply:
    """Rebuild a reply from its JSON dict."""
    card = data.get("card")
    return Reply(
        text=data["text"],
        buttons=tuple(Button(**b) for b in data.get("buttons", ())),
        card=Card(
            title=card["title"],
            rows=tuple(
                CardRow(r["label"], r["value"], Button(**r["edit"]) if r.get("edit") else None)
                for r in card["rows"]
            ),
            hint=card.get("hint", ""),
        )
        if card
        else None,
        multi=data.get("multi", False),
        document=Document(**data["document"]) if data.get("document") else None,
        in_place=data.get("in_place", False),
        toast=data.get("toast", ""),
        closes_keyboard=data.get("closes_keyboard", False),
        images=tuple(Image(sha256, kind) for sha256, kind in data.get("images", ())),
    )


@dataclass(frozen=True)
class Notice:
    """Replies for someone other than the sender (a volunteer told of a status change)."""

    platform: str
    recipient: str
    replies: tuple[Reply, ...]
