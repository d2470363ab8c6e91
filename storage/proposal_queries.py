"""Staff queries over proposals: filtered pages, one in full, counts and streamed exports."""

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, false, func, or_, select
from sqlalchemy.engine import RowMapping

from bot.calendar import BANGKOK
from bot.proposal_filter import ProposalFilter
from storage.models import Proposal, ProposalPhoto, StatusChange, Volunteer

P = Proposal.__table__.c
V = Volunteer.__table__.c
H = StatusChange.__table__.c
EXPORT_BATCH = 2000


def _start_of(day: date) -> datetime:
    """Return the first moment of a Bangkok calendar day, in UTC as times are stored."""
    return datetime.combine(day, time.min, BANGKOK).astimezone(UTC)


def conditions(found: ProposalFilter, scope: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """Return the WHERE conditions for a filter within the groups an officer may see."""
    where: list[ColumnElement[bool]] = []
    if scope is not None:
        where.append(P.target_group.in_(list(scope)) if scope else false())
    if found.target_groups:
        where.append(P.target_group.in_(list(found.target_groups)))
    if found.districts:
        where.append(P.district.in_(list(found.districts)))
    if found.statuses:
        where.append(P.status.in_(list(found.statuses)))
    if found.fiscal_year is not None:
        where.append(P.fiscal_year == found.fiscal_year)
    if found.submitted_from is not None:
        where.append(P.submitted_at >= _start_of(found.submitted_from))
    if found.submitted_to is not None:
        where.append(P.submitted_at < _start_of(found.submitted_to + timedelta(days=1)))
    if found.keyword:
        word = found.keyword
        where.append(
            or_(
                P.reference == word.upper(),
                P.problem.icontains(word, autoescape=True),
                P.solution.icontains(word, autoescape=True),
                P.location_text.icontains(word, autoescape=True),
            )
        )
    return where


def newest(
    connection: Connection,
    found: ProposalFilter,
    scope: Sequence[str] | None,
    before_id: int | None = None,
    limit: int = 10,
) -> list[RowMapping]:
    """Return a page of matching proposals, newest first, older than a proposal id."""
    query = select(
        P.id, P.reference, P.target_group, P.district, P.status, P.submitted_at,
        P.people_affected, func.substr(P.problem, 1, 80).label("problem"),
    ).where(*conditions(found, scope))  # fmt: skip
    if before_id is not None:
        query = query.where(P.id < before_id)
    return list(connection.execute(query.order_by(P.id.desc()).limit(limit)).mappings())


def count(connection: Connection, found: ProposalFilter, scope: Sequence[str] | None) -> int:
    """Count matching proposals."""
    query = select(func.count()).select_from(Proposal).where(*conditions(found, scope))
    return int(connection.execute(query).scalar_one())


def by_reference(connection: Connection, reference: str) -> dict[str, Any] | None:
    """Return one proposal with its volunteer, photos and history, or None."""
    reach = [
        V.platform.label("volunteer_platform"),
        V.platform_user_id.label("volunteer_user_id"),
        V.language.label("volunteer_language"),
        V.unreachable_at.label("volunteer_unreachable_at"),
    ]
    query = (
        select(Proposal.__table__, *_volunteer_columns(), *reach)
        .outerjoin(Volunteer, V.id == P.volunteer_id)
        .where(P.reference == reference.strip().upper())
    )
    row = connection.execute(query).mappings().first()
    if row is None:
        return None
    found = dict(row)
    found["history"] = [
        dict(h)
        for h in connection.execute(
            select(StatusChange.__table__).where(H.proposal_id == row["id"]).order_by(H.id)
        ).mappings()
    ]
    photos = select(ProposalPhoto.file_id).where(ProposalPhoto.proposal_id == row["id"])
    found["photos"] = list(connection.execute(photos.order_by(ProposalPhoto.position)).scalars())
    return found


def table(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> list[RowMapping]:
    """Return proposals and people affected per target group and district."""
    query = (
        select(
            P.target_group,
            P.district,
            func.count().label("proposals"),
            func.coalesce(func.sum(P.people_affected), 0).label("people"),
        )
        .where(*conditions(found, scope))
        .group_by(P.target_group, P.district)
    )
    return list(connection.execute(query).mappings())


def _volunteer_columns() -> list[Any]:
    return [
        V.full_name, V.phone, V.network, V.network_other, V.organisation,
        V.district.label("volunteer_district"),
    ]  # fmt: skip


def _latest(column: Any) -> Any:
    """Return a subquery for a column of a proposal's latest status change."""
    return (
        select(column).where(H.proposal_id == P.id).order_by(H.id.desc()).limit(1).scalar_subquery()
    )


def export_query(found: ProposalFilter, scope: Sequence[str] | None) -> Select[Any]:
    """Return the query behind exports: proposals, volunteers and the latest comment."""
    return (
        select(
            Proposal.__table__,
            *_volunteer_columns(),
            _latest(H.comment).label("last_comment"),
            _latest(H.agency).label("agency"),
        )
        .outerjoin(Volunteer, V.id == P.volunteer_id)
        .where(*conditions(found, scope))
        .order_by(P.id)
    )


def stream(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> Iterator[RowMapping]:
    """Yield matching proposals oldest first, a batch at a time, never all in memory."""
    result = connection.execution_options(yield_per=EXPORT_BATCH).execute(
        export_query(found, scope)
    )
    yield from result.mappings()
