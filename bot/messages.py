"""Platform-neutral inputs from volunteers and the replies the engine sends back."""

from dataclasses import dataclass


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
class Reply:
    """One outgoing message: text, optional buttons, an optional card, optional requests."""

    text: str
    buttons: tuple[Button, ...] = ()
    card: Card | None = None
    ask_phone: bool = False
    ask_location: bool = False
    # the question wants several presses before moving on, so keep the buttons visible
    multi: bool = False


MAX_BUTTON_DATA = 64
