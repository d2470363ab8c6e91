"""Test helpers: a controllable clock and a chat that talks to the real service."""

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.app.service import WelfareService
from bot.domain.i18n import text
from bot.domain.messages import Input, Reply, Text
from bot.domain.province import load_province


@dataclass
class Clock:
    """A clock tests move by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 29, 3, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        """Return the current test time."""
        return self.now


_event_ids = itertools.count(1)


@dataclass
class Chat:
    """One volunteer talking to the real service on one platform."""

    service: WelfareService
    user_id: str = "u1"
    platform: str = "terminal"
    language_hint: str | None = None
    replies: list[Reply] = field(default_factory=list)

    def send(self, event: Input | str) -> list[Reply]:
        """Send one input (a str is typed text) and return the replies."""
        if isinstance(event, str):
            event = Text(event)
        delivery = self.service.handle(
            self.platform, self.user_id, f"e{next(_event_ids)}", event, self.language_hint
        )
        self.replies = list(delivery.replies) if delivery else []
        return self.replies

    def run(self, events: list[Input]) -> list[Reply]:
        """Send inputs in order; return the replies to the last one."""
        for event in events:
            self.send(event)
        return self.replies

    @property
    def last(self) -> str:
        """Return the text of the last reply."""
        return self.replies[-1].text if self.replies else ""

    @property
    def said(self) -> str:
        """Return every reply's text to the last input, joined."""
        return "\n".join(r.text for r in self.replies)

    @property
    def buttons(self) -> list[str]:
        """Return the button data of the last reply."""
        return [b.data for b in self.replies[-1].buttons] if self.replies else []


def _province_values(language: str) -> dict[str, object]:
    """Return what texts may name of the province and its office, as the bot fills them."""
    province = load_province("CM")
    return {**province.office.values(language), "province": province.name(language)}


def th(key: str, **values: object) -> str:
    """Return a Thai catalogue text (the province and its office filled in)."""
    return text("th", key, **(_province_values("th") | values))


def en(key: str, **values: object) -> str:
    """Return an English catalogue text (the province and its office filled in)."""
    return text("en", key, **(_province_values("en") | values))
