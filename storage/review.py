"""The review workflow in storage: status changes with their history, and resubmissions."""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from storage import totals
from storage.models import Proposal, ProposalPhoto, StatusChange

P = Proposal.__table__.c


def change_status(
    connection: Connection,
    proposal_id: int,
    from_status: str,
    to_status: str,
    changed_by: str,
    now: datetime,
    comment: str | None = None,
    agency: str | None = None,
) -> bool:
    """Move a proposal on from a status it still has; tell whether it moved (no race lost)."""
    before = totals.current(connection, proposal_id)
    moved = connection.execute(
        update(Proposal)
        .where(P.id == proposal_id, P.status == from_status)
        .values(status=to_status, updated_at=now)
    ).rowcount
    if not moved:
        return False
    totals.add(connection, before, -1)
    totals.add(connection, {**before, "status": to_status})
    connection.execute(
        insert(StatusChange).values(
            proposal_id=proposal_id,
            from_status=from_status,
            to_status=to_status,
            comment=comment,
            agency=agency,
            changed_by=changed_by,
            changed_at=now,
        )
    )
    return True


def answers_of(connection: Connection, proposal_id: int) -> dict[str, Any]:
    """Return a stored proposal as the questionnaire answers it was made from."""
    row = connection.execute(select(Proposal.__table__).where(P.id == proposal_id)).mappings().one()
    photos = select(ProposalPhoto.file_id).where(ProposalPhoto.proposal_id == proposal_id)
    files = list(connection.execute(photos.order_by(ProposalPhoto.position)).scalars())
    place: Any = row["location_text"]
    if row["latitude"] is not None:
        place = {"latitude": row["latitude"], "longitude": row["longitude"]}
    answers = {
        "target_group": row["target_group"],
        "subgroup": row["subgroup"],
        "subgroup_other": row["subgroup_other"],
        "problem": row["problem"],
        "people_affected": row["people_affected"],
        "district": row["district"],
        "location": place,
        "photos": files or None,
        "help_received": row["help_received"],
        "solution": row["solution"],
        "responsible": list(row["responsible"]),
        "responsible_other": row["responsible_other"],
        "urgency": row["urgency"],
    }
    return {k: v for k, v in answers.items() if v is not None or k in ("location", "photos")}
