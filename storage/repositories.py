"""ORM repository functions for volunteers and proposals; each takes the caller's session."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.domain.counts import Count, stored_count
from bot.domain.normalize import search_form
from storage import totals
from storage.models import (
    Proposal,
    ProposalPhoto,
    ReferenceCounter,
    StatusChange,
    Volunteer,
)

PROFILE_FIELDS = ("full_name", "phone", "network", "network_other", "organisation", "district")


def _insert(session: Session, table: Any) -> Any:
    """Return the dialect's INSERT (with ON CONFLICT support) for a table."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# volunteers and conversations -------------------------------------------------------------------


def as_row(volunteer: Volunteer) -> dict[str, Any]:
    """Return a volunteer's columns as a dict, like a row read by the hot path."""
    return {column.key: getattr(volunteer, column.key) for column in Volunteer.__table__.columns}


def profile_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a volunteer's profile answers (only the ones given until it is complete)."""
    values = {name: row[name] for name in PROFILE_FIELDS}
    if row["profile_completed_at"] is not None:
        return values
    return {k: v for k, v in values.items() if v is not None}


def set_reachable(
    session: Session, platform: str, user_id: str, unreachable_since: datetime | None
) -> None:
    """Mark a volunteer unreachable since a moment, or reachable again with None."""
    session.execute(
        update(Volunteer)
        .where(Volunteer.platform == platform, Volunteer.platform_user_id == user_id)
        .values(unreachable_at=unreachable_since)
    )


# proposals --------------------------------------------------------------------------------------


def next_sequence(session: Session, province: str, fiscal_year: int) -> int:
    """Hand out the next reference sequence of a province and fiscal year, atomically."""
    stmt = _insert(session, ReferenceCounter).values(
        province=province, fiscal_year=fiscal_year, last=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["province", "fiscal_year"], set_={"last": ReferenceCounter.last + 1}
    ).returning(ReferenceCounter.last)
    return int(session.execute(stmt).scalar_one())


def proposal_fields(answers: dict[str, Any]) -> dict[str, Any]:
    """Return the proposal columns that hold a questionnaire's answers."""
    place = answers.get("location")
    count = Count.from_json(answers["people_affected"])
    return {
        "target_group": answers["target_group"],
        "subgroup": answers["subgroup"],
        "subgroup_other": answers.get("subgroup_other"),
        "title": answers.get("title"),
        "problem": answers["problem"],
        "people_affected": count.low or 0,
        "people_max": count.high,
        "people_unit": count.unit,
        "expected_result": answers.get("expected_result"),
        "resources": answers.get("resources"),
        "budget": answers.get("budget"),
        "district": answers["district"],
        "location_text": place if isinstance(place, str) else None,
        "latitude": place["latitude"] if isinstance(place, dict) else None,
        "longitude": place["longitude"] if isinstance(place, dict) else None,
        "help_received": answers["help_received"],
        "solution": answers["solution"],
        "responsible": list(answers["responsible"]),
        "responsible_other": answers.get("responsible_other"),
        "urgency": answers["urgency"],
        "search_text": search_form(
            answers.get("title"),
            answers["problem"],
            answers["solution"],
            place if isinstance(place, str) else None,
        ),
    }


def answers_from(row: Mapping[str, Any], photos: list[str]) -> dict[str, Any]:
    """Return a stored proposal as the questionnaire answers it was made from."""
    place: Any = row["location_text"]
    if row["latitude"] is not None:
        place = {"latitude": row["latitude"], "longitude": row["longitude"]}
    keys = ("target_group", "subgroup", "subgroup_other", "title", "problem", "district",
            "help_received", "solution", "expected_result", "responsible", "responsible_other",
            "urgency")  # fmt: skip
    answers = {key: row[key] for key in keys if row[key] is not None}
    answers["people_affected"] = stored_count(row)
    answers["location"] = place
    answers["resources"] = row["resources"]
    answers["budget"] = row["budget"]
    answers["photos"] = list(photos) or None
    return answers


def revise_proposal(
    session: Session, volunteer: Volunteer, reference: str, answers: dict[str, Any], now: datetime
) -> Proposal | None:
    """Replace the answers of a proposal sent back for revision; it is received again."""
    proposal = session.scalars(
        select(Proposal).where(
            Proposal.reference == reference,
            Proposal.volunteer_id == volunteer.id,
            Proposal.status == "needs_revision",
        )
    ).first()
    if proposal is None:
        return None
    connection = session.connection()
    totals.add(connection, totals.current(connection, proposal.id), -1)
    for name, value in proposal_fields(answers).items():
        setattr(proposal, name, value)
    proposal.photos = [
        ProposalPhoto(position=i, platform=volunteer.platform, file_id=file_id)
        for i, file_id in enumerate(answers.get("photos") or [])
    ]
    proposal.history.append(
        StatusChange(
            from_status=proposal.status,
            to_status="received",
            comment=None,
            changed_by="volunteer",
            changed_at=now,
        )
    )
    proposal.status = "received"
    proposal.updated_at = now
    session.flush()
    totals.add(connection, totals.current(connection, proposal.id))
    return proposal


def add_proposal(
    session: Session,
    *,
    volunteer: Volunteer,
    province: str,
    fiscal_year: int,
    answers: dict[str, Any],
    submitted_at: datetime,
) -> Proposal:
    """Store a proposal from reviewed answers with a fresh reference number."""
    sequence = next_sequence(session, province, fiscal_year)
    proposal = Proposal(
        reference=f"{province}-{fiscal_year}-{sequence:05d}",
        province=province,
        fiscal_year=fiscal_year,
        sequence=sequence,
        volunteer_id=volunteer.id,
        platform=volunteer.platform,
        status="received",
        submitted_at=submitted_at,
        updated_at=submitted_at,
        **proposal_fields(answers),
    )
    proposal.photos = [
        ProposalPhoto(position=i, platform=volunteer.platform, file_id=file_id)
        for i, file_id in enumerate(answers.get("photos") or [])
    ]
    proposal.history = [
        StatusChange(
            from_status=None, to_status="received", changed_by="volunteer", changed_at=submitted_at
        )
    ]
    session.add(proposal)
    session.flush()
    totals.add(session.connection(), totals.current(session.connection(), proposal.id))
    return proposal


def proposals_of(session: Session, volunteer_id: int) -> list[Proposal]:
    """Return a volunteer's proposals, newest first."""
    query = select(Proposal).where(Proposal.volunteer_id == volunteer_id)
    return list(session.scalars(query.order_by(Proposal.submitted_at.desc(), Proposal.id.desc())))


def count_proposals(session: Session, volunteer_id: int) -> int:
    """Count a volunteer's proposals."""
    query = select(func.count()).select_from(Proposal).where(Proposal.volunteer_id == volunteer_id)
    return int(session.scalar(query) or 0)
