"""Proposal pages: the filtered list with counts, paging, bulk review and exports; one proposal."""

from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bot.conversation.views import format_value
from bot.desk import review
from bot.domain.calendar import fiscal_year, to_bangkok
from bot.domain.normalize import clean_text, national_phone
from bot.domain.proposal_filter import ProposalFilter, parse_date, year_of
from bot.domain.questionnaire import PROPOSAL, SUBGROUPS, TARGET_GROUPS
from bot.domain.roles import mask_name, mask_phone
from bot.domain.statuses import ASKS, SETTABLE, STATUSES
from bot.reports.exports import csv_chunks, write_xlsx
from handlers.desk_web import downloads
from handlers.desk_web.site import DeskWeb, Visit
from storage import proposal_queries as queries
from storage.db import reading
from storage.photos import STORED

PAGE = 50
# a list counts this far and then says "more than"; exact counts come from the running totals
COUNT_UP_TO = 10_000
# the most proposals one bulk change may move (the whole filtered set, when it is this small)
BULK_LIMIT = 1_000
# outcomes that come from the form, not the proposal: a bulk change stops at the first
UNWORKABLE = ("web.review.not_settable", "web.review.need_comment", "web.review.need_agency")
# what a page may be sent back with (anything else in the query string is ignored)
PROBLEMS = frozenset({*UNWORKABLE, "web.review.same", "web.review.raced",
                      "web.review.not_found", "web.bulk.none"})  # fmt: skip
FILTER_KEYS = ("group", "subgroup", "district", "status", "year", "from", "to", "q")


def filter_of(params: QueryParams, web: DeskWeb) -> ProposalFilter:
    """Read a filter from a query string; values that name nothing are left out."""
    subgroups = {code for codes in SUBGROUPS.values() for code in codes}
    districts = {d.code for d in web.service.province.districts}
    keyword = clean_text(params.get("q", ""))[:100]
    return ProposalFilter(
        target_groups=tuple(v for v in params.getlist("group") if v in TARGET_GROUPS),
        subgroups=tuple(v for v in params.getlist("subgroup") if v in subgroups),
        districts=tuple(v for v in params.getlist("district") if v in districts),
        statuses=tuple(v for v in params.getlist("status") if v in STATUSES),
        fiscal_year=year_of(params.get("year", "")),
        submitted_from=parse_date(params.get("from", "")),
        submitted_to=parse_date(params.get("to", "")),
        keyword=keyword or None,
    )


def filter_query(params: QueryParams, **changes: Any) -> str:
    """Return the filter part of a query string, with some values changed."""
    pairs = [(k, v) for k, v in params.multi_items() if k in FILTER_KEYS and v]
    pairs = [(k, v) for k, v in pairs if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v is not None]
    return urlencode(pairs)


def _problem(params: QueryParams) -> str | None:
    """Return the known problem a page was sent back with, or None."""
    problem = params.get("problem")
    return problem if problem in PROBLEMS else None


def _unread_dates(params: QueryParams, found: ProposalFilter) -> str | None:
    """Say when a typed date could not be read or the range runs backwards, rather than drop it."""
    typed = (params.get("from", "").strip(), params.get("to", "").strip())
    read = (found.submitted_from, found.submitted_to)
    if any(text and day is None for text, day in zip(typed, read, strict=True)):
        return "web.filter.bad_date"
    if read[0] and read[1] and read[0] > read[1]:
        return "web.filter.reversed"
    return None


def fiscal_years(web: DeskWeb) -> list[int]:
    """Return the fiscal years offered in filters: this one and the three before it."""
    current = fiscal_year(web.service.clock())
    return [current - back for back in range(4)]


def counted(visit: Visit, found: ProposalFilter) -> tuple[int, bool]:
    """Count a filter's proposals; tell whether the count stopped at the limit."""
    if not (found.keyword or found.submitted_from or found.submitted_to or found.subgroups):
        rows = queries.table(visit.connection, found, visit.officer.scope)
        return sum(int(r["proposals"]) for r in rows), False
    total = queries.count(visit.connection, found, visit.officer.scope, up_to=COUNT_UP_TO + 1)
    return min(total, COUNT_UP_TO), total > COUNT_UP_TO


class ProposalPages:
    """The list, one proposal, status changes and exports."""

    def __init__(self, web: DeskWeb) -> None:
        self.web = web

    def routes(self) -> list[BaseRoute]:
        """Return the proposal routes."""
        page = self.web.page
        return [
            Route("/desk", lambda _r: RedirectResponse("/desk/proposals", 303), methods=["GET"]),
            Route("/desk/proposals", page(self.listing, "proposals"), methods=["GET"]),
            Route(
                "/desk/proposals/bulk",
                page(self.bulk, "review", before=self._matching),
                methods=["POST"],
            ),
            Route("/desk/proposals/export.{kind}", page(self.export, "export"), methods=["GET"]),
            Route("/desk/proposals/{reference}", page(self.one, "show"), methods=["GET"]),
            Route(
                "/desk/proposals/{reference}/photos/{n:int}",
                page(self.photo, "show"),
                methods=["GET"],
            ),
            Route(
                "/desk/proposals/{reference}/status", page(self.status, "review"), methods=["POST"]
            ),
        ]

    def listing(self, visit: Visit) -> Response:
        """Show a page of proposals matching the filter in the query string, with the count."""
        params = visit.request.query_params
        found = filter_of(params, self.web)
        before = params.get("before", "")
        before_id = int(before) if before.isdigit() else None
        rows = queries.newest(visit.connection, found, visit.officer.scope, before_id, PAGE + 1)
        total, more_than = counted(visit, found)
        self.web.audit(visit, "list", {"filter": found.to_json(), "shown": min(len(rows), PAGE)})
        older = filter_query(params, before=rows[PAGE - 1]["id"]) if len(rows) > PAGE else None
        return self.web.show(
            visit, "proposals.html", rows=rows[:PAGE], total=total, more_than=more_than,
            found=found, filter=filter_query(params), older=older, first=before_id is not None,
            years=fiscal_years(self.web), groups=TARGET_GROUPS, subgroups=SUBGROUPS,
            statuses=STATUSES, settable=SETTABLE, params=params, bulk_limit=BULK_LIMIT,
            done=params.get("done", "").isdigit() and params["done"],
            problem=_unread_dates(params, found) or _problem(params),
            description=found.describe(visit.language, self.web.service.province),
        )  # fmt: skip

    def one(self, visit: Visit) -> Response:
        """Show one proposal in full, with its history, photos, status actions and related ones."""
        found = queries.by_reference(visit.connection, visit.request.path_params["reference"])
        if found is None or not visit.officer.sees(found["target_group"]):
            return self.web.not_found(visit)
        self.web.audit(visit, "show", {"reference": found["reference"]})
        name, phone = found["full_name"], national_phone(found["phone"])
        if visit.officer.masked:
            name, phone = mask_name(name), mask_phone(phone)
        others: list[Any] = []
        if found["volunteer_id"] is not None:
            others = [
                row
                for row in queries.of_volunteer(
                    visit.connection, found["volunteer_id"], visit.officer.scope
                )
                if row["reference"] != found["reference"]
            ]
        answers = [
            (question, found["answers"].get(question.key))
            for question in PROPOSAL.questions
            if question.applies(found["answers"]) and question.key != "photos"
        ]
        return self.web.show(
            visit, "proposal.html", p=found, name=name, phone=phone, others=others,
            answers=answers, settable=[s for s in SETTABLE if s != found["status"]],
            problem=_problem(visit.request.query_params),
            photos=[i for i, p in enumerate(found["photo_files"]) if p["status"] == STORED],
            changed=visit.request.query_params.get("changed") in STATUSES
            and visit.request.query_params["changed"],
            answer=lambda q, v: format_value(visit.language, q, v, self.web.service.province),
        )  # fmt: skip

    def photo(self, visit: Visit) -> Response:
        """Send one stored photo of a proposal this officer may see."""
        found = queries.by_reference(visit.connection, visit.request.path_params["reference"])
        number = visit.request.path_params["n"]
        keeper = self.web.service.photos
        if found is None or not visit.officer.sees(found["target_group"]) or keeper is None:
            return self.web.not_found(visit)
        files = found["photo_files"]
        if number >= len(files) or files[number]["status"] != STORED:
            return self.web.not_found(visit)
        # the row was read in this transaction, so only the file is left to read
        content = keeper.files.read(files[number]["sha256"])
        if content is None:
            return self.web.not_found(visit)
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(content, media_type=files[number]["content_type"], headers=headers)

    def _change(self, visit: Visit, reference: str, status: str, note: str) -> str | None:
        """Change one proposal's status as in chat; return why not (a catalogue key), or None."""
        asks = ASKS.get(status)
        changed = review.change_status(
            visit.connection, visit.officer, reference, status, visit.now,
            comment=note if asks == "comment" else None,
            agency=note if asks == "agency" else None, language=visit.language,
        )  # fmt: skip
        if changed.outcome is review.Outcome.MISSING:
            return f"web.review.need_{changed.missing}"
        if changed.outcome is not review.Outcome.DONE:
            return f"web.review.{changed.outcome}"
        self.web.notify(visit, list(changed.notices))
        return None

    def status(self, visit: Visit) -> Response:
        """Change one proposal's status from its page; its volunteer is told as in chat."""
        reference = visit.request.path_params["reference"]
        found = queries.by_reference(visit.connection, reference)
        if found is None or not visit.officer.sees(found["target_group"]):
            return self.web.not_found(visit)
        status, note = visit.value("status"), visit.value("note")
        problem = self._change(visit, reference, status, note)
        query = urlencode({"problem": problem} if problem else {"changed": status})
        return RedirectResponse(f"/desk/proposals/{found['reference']}?{query}", 303)

    def _matching(self, visit: Visit) -> list[str] | None:
        """Read which proposals "every one the filter matches" names (None: only those ticked).

        Read before the bulk change's write transaction, which checks each proposal again.
        """
        if visit.value("scope") != "all":
            return None
        found = filter_of(QueryParams(visit.value("filter")), self.web)
        rows = queries.newest(visit.connection, found, visit.officer.scope, None, BULK_LIMIT)
        return [row["reference"] for row in rows]

    def bulk(self, visit: Visit) -> Response:
        """Change the status of the ticked proposals, or of every one the filter matches."""
        status, note = visit.value("status"), visit.value("note")
        back = QueryParams(visit.value("filter"))
        references = [str(v) for v in visit.form.getlist("ref")] if visit.form else []
        if visit.read is not None:
            references = visit.read
        problem = None if references else "web.bulk.none"
        moved = 0
        for reference in references[:BULK_LIMIT]:
            why = self._change(visit, reference, status, note)
            moved += why is None
            if why in UNWORKABLE:  # the form itself is wrong: the first proposal tells
                problem = why
                break
        extra = {"problem": problem} if problem else {"done": str(moved)}
        return RedirectResponse(f"/desk/proposals?{filter_query(back, **extra)}", 303)

    def export(self, visit: Visit) -> Response:
        """Stream the filtered proposals as CSV, or send them as an XLSX workbook."""
        kind = visit.request.path_params["kind"]
        if kind not in ("csv", "xlsx"):
            return self.web.not_found(visit)
        found = filter_of(visit.request.query_params, self.web)
        self.web.audit(visit, "export", {"filter": found.to_json(), "format": kind, "web": True})
        stamp = to_bangkok(visit.now).strftime("%Y%m%d-%H%M")
        filename = f"proposals-{stamp}.{kind}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"',
                   "Cache-Control": "no-store"}  # fmt: skip
        scope, masked = visit.officer.scope, visit.officer.masked
        if kind == "csv":
            chunks = self._csv(found, scope, masked)
            return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=headers)
        province = self.web.service.province

        def build(out: IO[bytes]) -> None:
            with reading(self.web.service.db) as connection:
                write_xlsx(queries.stream(connection, found, scope), out, province, masked)

        return downloads.workbook(build, filename)

    def _csv(
        self, found: ProposalFilter, scope: tuple[str, ...] | None, masked: bool
    ) -> Iterator[bytes]:
        """Yield the CSV export in pieces as rows are read (the BOM first, for Excel)."""
        yield "\ufeff".encode()
        with reading(self.web.service.db) as connection:
            rows = queries.stream(connection, found, scope)
            for chunk in csv_chunks(rows, self.web.service.province, masked):
                yield chunk.encode()
