"""The shape of a Telegram update: the fields the bot reads, with the types it reads them as.

python-telegram-bot builds an Update from any dict without checking types, so a text that is
a number or a chat id that is a word would fail later, mid-handling; this is checked first.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Telegram documents its ids as fitting in 52 bits
Id = Annotated[int, Field(ge=-(2**52), le=2**52)]


class _Part(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _User(_Part):
    id: Annotated[int, Field(gt=0, le=2**52)]
    is_bot: bool
    first_name: str
    language_code: str | None = None


class _Chat(_Part):
    id: Id
    type: str


class _Entity(_Part):
    type: str
    offset: int
    length: int


class _PhotoSize(_Part):
    # kept in photos.file_id, a column of 256 characters
    file_id: Annotated[str, Field(min_length=1, max_length=256)]


class _Location(_Part):
    latitude: float
    longitude: float


class _Contact(_Part):
    phone_number: str


class _Message(_Part):
    message_id: int
    date: int
    chat: _Chat
    sender: _User | None = Field(default=None, alias="from")
    text: str | None = None
    entities: list[_Entity] | None = None
    photo: list[_PhotoSize] | None = None
    location: _Location | None = None
    contact: _Contact | None = None


class _Query(_Part):
    id: str
    sender: _User = Field(alias="from")
    data: str | None = None
    message: dict[str, Any] | None = None


class TelegramUpdate(_Part):
    """An update the bot can handle (or knowingly ignore)."""

    update_id: Annotated[int, Field(ge=0, le=2**52)]
    message: _Message | None = None
    edited_message: _Message | None = None
    callback_query: _Query | None = None
