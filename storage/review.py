"""The review workflow in storage: status changes with their history, and resubmissions."""

from datetime import datetime

from sqlalchemy import Connection, insert, update

from storage import totals
from storage.models import Proposal, StatusChange

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
