"""Staff queries over proposals: filtered pages, one in full, counts and streamed exports."""

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, false, func, select
from sqlalchemy.engine import RowMapping

from bot.domain.calendar import BANGKOK
from bot.domain.normalize import search_form
from bot.domain.proposal_filter import ProposalFilter
from storage import photos, search, totals
from storage.models import Proposal, ProposalTotal, StatusChange, Volunteer
from storage.repositories import answers_from

P = Proposal.__table__.c
V = Volunteer.__table__.c
H = StatusChange.__table__.c
T = ProposalTotal.__table__.c
EXPORT_BATCH = 2000
REFERENCE = re.compile(r"^[A-Z]{2,4}-\d{4}-\d{1,6}$", re.IGNORECASE)
EXPORTED = (
    "reference", "submitted_at", "fiscal_year", "status", "target_group", "subgroup",
    "subgroup_other", "title", "problem", "people_affected", "people_max", "people_unit",
    "district", "location_text", "latitude", "longitude", "help_received", "solution",
    "expected_result", "resources", "budget", "responsible", "responsible_other", "urgency",
    "platform",
)  # fmt: skip


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
    if found.subgroups:
        where.append(P.subgroup.in_(list(found.subgroups)))
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
        where.append(_keyword(found.keyword.strip()))
    return where


def _keyword(word: str) -> ColumnElement[bool]:
    """Return the condition for a keyword without an index: a reference, or LIKE on texts."""
    if REFERENCE.match(word):
        return P.reference == word.upper()
    return P.search_text.icontains(search_form(word), autoescape=True)


def _matching(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None, *columns: Any
) -> tuple[Select[Any], ColumnElement[Any]]:
    """Select columns of matching proposals; return the query and the id to order by.

    With a keyword and SQLite's trigram index the index drives the query (joined, not
    IN (…)), so the newest matches stream out in id order and a page stops early.
    """
    word = search_form((found.keyword or "").strip())
    if not search.usable(word) or REFERENCE.match(word) or not search.has_fts(connection):
        return select(*columns).where(*conditions(found, scope)), P.id
    hits = search.fts_table()
    query = (
        select(*columns)
        .select_from(hits)
        .join(Proposal, P.id == hits.c.rowid)
        .where(search.match(word), *conditions(replace(found, keyword=None), scope))
    )
    return query, hits.c.rowid


def newest(
    connection: Connection,
    found: ProposalFilter,
    scope: Sequence[str] | None,
    before_id: int | None = None,
    limit: int = 10,
) -> list[RowMapping]:
    """Return a page of matching proposals, newest first, older than a proposal id."""
    query, order = _matching(
        connection, found, scope,
        P.id, P.reference, P.target_group, P.district, P.status, P.submitted_at,
        P.people_affected, P.people_max, P.people_unit, P.title,
        func.substr(P.problem, 1, 80).label("problem"),
    )  # fmt: skip
    if before_id is not None:
        query = query.where(order < before_id)
    return list(connection.execute(query.order_by(order.desc()).limit(limit)).mappings())


def count(
    connection: Connection,
    found: ProposalFilter,
    scope: Sequence[str] | None,
    up_to: int | None = None,
) -> int:
    """Count matching proposals (stopping at up_to, where a page only says "more than")."""
    matching, _order = _matching(connection, found, scope, P.id)
    if up_to is not None:
        matching = matching.limit(up_to)
    query = select(func.count()).select_from(matching.subquery())
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
    found["photo_files"] = photos.of_proposal(connection, row["id"])
    found["photos"] = [p["file_id"] for p in found["photo_files"]]
    found["answers"] = answers_from(found, found["photos"])
    return found


def table(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> list[RowMapping]:
    """Return proposals and people affected per target group and district."""
    if not (found.keyword or found.submitted_from or found.submitted_to or found.subgroups):
        return _table_from_totals(connection, found, scope)
    query, _order = _matching(
        connection, found, scope,
        P.target_group, P.district, func.count().label("proposals"),
        func.coalesce(func.sum(totals.PEOPLE), 0).label("people"),
    )  # fmt: skip
    return list(connection.execute(query.group_by(P.target_group, P.district)).mappings())


def _table_from_totals(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> list[RowMapping]:
    """Sum the running totals (see storage/totals.py) instead of counting proposals."""
    where: list[ColumnElement[bool]] = []
    if scope is not None:
        where.append(T.target_group.in_(list(scope)) if scope else false())
    for column, chosen in ((T.target_group, found.target_groups), (T.district, found.districts),
                           (T.status, found.statuses)):  # fmt: skip
        if chosen:
            where.append(column.in_(list(chosen)))
    if found.fiscal_year is not None:
        where.append(T.fiscal_year == found.fiscal_year)
    proposals = func.sum(T.proposals)
    query = (
        select(T.target_group, T.district, proposals.label("proposals"),
               func.sum(T.people).label("people"))
        .where(*where)
        .group_by(T.target_group, T.district)
        .having(proposals > 0)
    )  # fmt: skip
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


def export_query(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> Select[Any]:
    """Return the query behind exports: proposals, volunteers and the latest comment."""
    columns = [getattr(P, name) for name in EXPORTED]
    query, _order = _matching(
        connection, found, scope, *columns, *_volunteer_columns(),
        _latest(H.comment).label("last_comment"), _latest(H.agency).label("agency"),
    )  # fmt: skip
    return query.outerjoin(Volunteer, V.id == P.volunteer_id).order_by(P.id)


def stream(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> Iterator[RowMapping]:
    """Yield matching proposals oldest first, a batch at a time, never all in memory."""
    result = connection.execution_options(yield_per=EXPORT_BATCH).execute(
        export_query(connection, found, scope)
    )
    yield from result.mappings()


def of_volunteer(
    connection: Connection, volunteer_id: int, scope: Sequence[str] | None, limit: int = 20
) -> list[RowMapping]:
    """Return a volunteer's proposals an officer may see, newest first."""
    query = select(P.reference, P.target_group, P.status, P.submitted_at).where(
        P.volunteer_id == volunteer_id, *conditions(ProposalFilter(), scope)
    )
    return list(connection.execute(query.order_by(P.id.desc()).limit(limit)).mappings())


def per_status(
    connection: Connection, found: ProposalFilter, scope: Sequence[str] | None
) -> dict[str, int]:
    """Return how many proposals of a fiscal year's filter have each status (from the totals)."""
    where: list[ColumnElement[bool]] = []
    if scope is not None:
        where.append(T.target_group.in_(list(scope)) if scope else false())
    if found.fiscal_year is not None:
        where.append(T.fiscal_year == found.fiscal_year)
    query = select(T.status, func.sum(T.proposals)).where(*where).group_by(T.status)
    return {status: int(n) for status, n in connection.execute(query) if n}


def per_month(
    connection: Connection, months: Sequence[date], scope: Sequence[str] | None
) -> list[int]:
    """Count proposals submitted in each Bangkok calendar month starting on the given days.

    One range count per month on the submitted_at index: at a million proposals that is
    faster than grouping every row by a computed month, and needs no dialect's date functions.
    """
    counts = []
    for first in months:
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        where = [P.submitted_at >= _start_of(first), P.submitted_at < _start_of(following)]
        query = select(func.count()).select_from(Proposal)
        query = query.where(*where, *conditions(ProposalFilter(), scope))
        counts.append(int(connection.execute(query).scalar_one()))
    return counts


def awaiting_revision(connection: Connection, volunteer_id: int) -> str | None:
    """Return the reference of a volunteer's newest proposal sent back for revision."""
    query = (
        select(P.reference)
        .where(P.volunteer_id == volunteer_id, P.status == "needs_revision")
        .order_by(P.id.desc())
        .limit(1)
    )
    return connection.execute(query).scalar()
