"""Running totals of proposals per fiscal year, group, district and status.

Every change to a proposal's year, group, district, status or people affected moves its
totals in the same transaction, so counts never drift from the proposals themselves.
"""

from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import Proposal, ProposalTotal

P = Proposal.__table__.c
T = ProposalTotal.__table__.c
KEY = ("fiscal_year", "target_group", "district", "status")


def _upsert(dialect: Any) -> Any:
    """Build, once per dialect, the statement that moves one total by a proposal."""
    insert_ = postgresql.insert if dialect is postgresql else sqlite.insert
    statement = insert_(ProposalTotal).values(
        **{key: bindparam(key) for key in KEY},
        proposals=bindparam("sign"),
        people=bindparam("people"),
    )
    return statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={
            "proposals": T.proposals + bindparam("sign"),
            "people": T.people + bindparam("people"),
        },
    )


# built once: a submission moves one total, a status change or revision two
_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}
_CURRENT = select(*(P[key] for key in KEY), P.people_affected, P.people_unit).where(
    P.id == bindparam("id")
)
# households are not people: a count of households stays out of the people totals
PEOPLE = case((P.people_unit == "households", 0), else_=P.people_affected)


def add(connection: Connection, row: dict[str, Any], sign: int = 1) -> None:
    """Count one proposal in (sign 1) or out of (sign -1) the totals."""
    params = {key: row[key] for key in KEY}
    people = 0 if row.get("people_unit") == "households" else int(row["people_affected"] or 0)
    params |= {"sign": sign, "people": sign * people}
    connection.execute(_UPSERT[connection.dialect.name], params)


def current(connection: Connection, proposal_id: int) -> dict[str, Any]:
    """Return the columns of a proposal that its totals follow."""
    return dict(connection.execute(_CURRENT, {"id": proposal_id}).mappings().one())


def rebuild(connection: Connection, people: Any = PEOPLE) -> None:
    """Recount every total from the proposals (after a bulk load, or in a migration).

    A migration older than the people_unit column passes the plain people_affected column.
    """
    connection.execute(delete(ProposalTotal))
    grouped = select(
        *(P[key] for key in KEY), func.count(), func.coalesce(func.sum(people), 0)
    ).group_by(*(P[key] for key in KEY))
    connection.execute(insert(ProposalTotal).from_select([*KEY, "proposals", "people"], grouped))
