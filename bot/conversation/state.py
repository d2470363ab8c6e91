"""A volunteer's conversation state and the engine's effects: plain values, stored as JSON."""

from dataclasses import dataclass, field
from typing import Any

from bot.domain.messages import Reply

REVIEW = "review"


@dataclass
class State:
    """Where a volunteer is: the form being filled, the current step, answers so far."""

    form: str | None = None
    step: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    # choices ticked so far on a multi-select question, or photos received so far
    pending: list[str] = field(default_factory=list)
    # a yes/no question laid over the form: "cancel", "restart", "delete" or "idea"
    confirm: str | None = None
    # once a form has reached its review card, answering a question returns there
    reviewed: bool = False
    # the reference of a proposal sent back for revision, when this draft revises it
    revising: str | None = None
    # text typed while idle, offered as the problem of a new proposal
    idea: str | None = None
    # an answer too long to store, kept until the volunteer sends a shorter one or cuts it
    kept: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the state as a JSON-ready dict."""
        return {
            "form": self.form,
            "step": self.step,
            "answers": self.answers,
            "history": self.history,
            "pending": self.pending,
            "confirm": self.confirm,
            "reviewed": self.reviewed,
            "revising": self.revising,
            "idea": self.idea,
            "kept": self.kept,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "State":
        """Build a state from its stored dict (an empty state for None)."""
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Who:
    """What the engine may know of the volunteer it talks to."""

    consented: bool
    language: str
    profile: dict[str, Any] = field(default_factory=dict)
    profile_complete: bool = False
    # consented to an older version of the PDPA notice: asked again, keeping what is stored
    consent_outdated: bool = False
    # writing again after a long silence: greeted and reminded where they were
    returning: bool = False


@dataclass(frozen=True)
class GiveConsent:
    """Record consent in a language, creating the volunteer."""

    language: str
    version: str


@dataclass(frozen=True)
class SaveProfile:
    """Store the volunteer's profile answers."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class SetLanguage:
    """Change the volunteer's language."""

    language: str


@dataclass(frozen=True)
class SubmitProposal:
    """Store a proposal from reviewed answers and tell its reference number."""

    answers: dict[str, Any]


@dataclass(frozen=True)
class OpenRevision:
    """Load a proposal sent back for revision into the review card (None: the newest one)."""

    reference: str | None


@dataclass(frozen=True)
class ResubmitProposal:
    """Store revised answers over a proposal, keeping its reference number."""

    reference: str
    answers: dict[str, Any]


@dataclass(frozen=True)
class ShowStatus:
    """Tell the volunteer their proposals and their status."""


@dataclass(frozen=True)
class ShowMyData:
    """Give the volunteer a copy of what is stored about them."""


@dataclass(frozen=True)
class ToggleReminders:
    """Turn the volunteer's reminders off, or on again."""


@dataclass(frozen=True)
class EraseMyData:
    """Erase the volunteer's personal data and withdraw consent."""


Effect = (
    GiveConsent
    | SaveProfile
    | SetLanguage
    | SubmitProposal
    | OpenRevision
    | ResubmitProposal
    | ShowStatus
    | ShowMyData
    | ToggleReminders
    | EraseMyData
)
Action = Reply | Effect


@dataclass(frozen=True)
class Turn:
    """The engine's answer to one input: the new state (None: keep none) and actions in order."""

    state: State | None
    actions: tuple[Action, ...]

    @property
    def replies(self) -> list[Reply]:
        """Return just the replies, in order."""
        return [a for a in self.actions if isinstance(a, Reply)]
