"""Status changes of proposals: the one rule the chat desk, the command line and the web use."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from bot.desk import views
from bot.domain.messages import Notice
from bot.domain.province import load_province
from bot.domain.roles import Officer
from bot.domain.statuses import ASKS, REQUIRED, SETTABLE
from storage import proposal_queries as queries
from storage import review, staff

LONGEST_NOTE = 1000


class Outcome(StrEnum):
    """How a requested status change ended."""

    DONE = "done"
    SAME = "same"  # the proposal already has that status
    RACED = "raced"  # someone else moved it first
    NOT_FOUND = "not_found"  # no such proposal, or not one this officer may review
    NOT_SETTABLE = "not_settable"
    MISSING = "missing"  # the status needs a comment or an agency that was not given


# the catalogue key that tells an officer each outcome but DONE
MESSAGE = {
    Outcome.SAME: "desk.review.same",
    Outcome.RACED: "desk.review.raced",
    Outcome.NOT_FOUND: "desk.not_found",
    Outcome.NOT_SETTABLE: "desk.review.usage",
    Outcome.MISSING: "desk.ask.empty",
}


@dataclass(frozen=True)
class Review:
    """The result of a status change, with the notices to queue for the volunteer."""

    outcome: Outcome
    reference: str
    status: str
    missing: str | None = None
    notices: tuple[Notice, ...] = ()


def change_status(
    connection: Connection,
    officer: Officer,
    reference: str,
    status: str,
    now: datetime,
    *,
    comment: str | None = None,
    agency: str | None = None,
    language: str = "th",
) -> Review:
    """Move a proposal to a status if this officer may, audit it, and return the volunteer's notice.

    The role is checked on every call, so a step finished after a demotion is refused.
    """
    found = queries.by_reference(connection, reference) if reference else None
    if found is None or not officer.may("review") or not officer.sees(found["target_group"]):
        return Review(Outcome.NOT_FOUND, reference, status)
    reference = found["reference"]
    if status not in SETTABLE:
        return Review(Outcome.NOT_SETTABLE, reference, status)
    if found["status"] == status:
        return Review(Outcome.SAME, reference, status)
    comment = _note(comment)
    agency = _note(agency) if status == "forwarded" else None
    needed = ASKS.get(status)
    if status in REQUIRED and not (agency if needed == "agency" else comment):
        return Review(Outcome.MISSING, reference, status, missing=needed)
    moved = review.change_status(
        connection, found["id"], found["status"], status, officer.actor, now, comment, agency
    )
    if not moved:
        return Review(Outcome.RACED, reference, status)
    staff.audit(connection, officer.actor, "review", {"reference": reference, "to": status}, now)
    return Review(
        Outcome.DONE, reference, status, notices=notices(found, status, comment, agency, language)
    )


def notices(
    found: dict[str, Any], status: str, comment: str | None, agency: str | None, language: str
) -> tuple[Notice, ...]:
    """Return the message telling the proposal's volunteer, if they can still be told."""
    user = found.get("volunteer_user_id")
    if not user or found.get("volunteer_unreachable_at") is not None:
        return ()
    told_in = found.get("volunteer_language") or language
    province = load_province(found["province"])
    reply = views.notice(told_in, found, status, comment, agency, province)
    return (Notice(found["volunteer_platform"], user, (reply,)),)


def _note(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:LONGEST_NOTE] or None
