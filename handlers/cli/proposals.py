"""`welfarebot proposals …` and `welfarebot report`: staff queries, review and exports."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bot.app.service import WelfareService
from bot.app.settings import Settings
from bot.app.wiring import build_service
from bot.desk import review
from bot.desk.views import district_name
from bot.domain.calendar import format_date
from bot.domain.i18n import text
from bot.domain.messages import Image
from bot.domain.proposal_filter import (
    ProposalFilter,
    district_of,
    group_of,
    parse_date,
    parse_filter,
    status_of,
    year_of,
)
from bot.domain.province import load_province
from bot.reports.exports import write_csv, write_xlsx
from bot.reports.fiscal_report import write_report
from handlers.cli.arguments import output_file
from handlers.cli.staff import actor, terminal_officer
from storage import proposal_queries as queries
from storage import staff
from storage.db import reading
from storage.photo_files import EXTENSIONS

app = typer.Typer(help="Find, review and export proposals.", no_args_is_help=True)
out = Console()
LANGUAGE = "th"

GROUP = typer.Option([], "--group", "-g", help="Target group (code or Thai name); repeatable")
DISTRICT = typer.Option([], "--district", "-d", help="District (name or code); repeatable")
STATUS = typer.Option([], "--status", "-s", help="Status (code or Thai name); repeatable")
YEAR = typer.Option(None, "--fiscal-year", "-y", help="Fiscal year, e.g. 2570")
SINCE = typer.Option(None, "--from", help="Sent on or after (d/m/2569 or 2026-10-01)")
UNTIL = typer.Option(None, "--to", help="Sent on or before (d/m/2569 or 2026-12-31)")
KEYWORD = typer.Option(None, "--keyword", "-k", help="Words in the problem, solution or place")
WHERE = typer.Option(None, "--where", "-w", help="Filter words as typed in chat")
FORCE = typer.Option(False, "--force", help="Overwrite the file if it exists")


class Format(StrEnum):
    """How results are printed."""

    table = "table"
    json = "json"


FORMAT = typer.Option(Format.table, "--format", "-f", help="table or json")


def build_filter(options: tuple[Any, ...], province_code: str) -> ProposalFilter:
    """Turn command-line options into a filter, refusing what names nothing.

    The options are groups, districts, statuses, year, from, to, keyword and --where words.
    """
    groups, districts, statuses, year, since, until, keyword, where = options
    province = load_province(province_code)
    base = parse_filter(where, province) if where else ProposalFilter()

    def each(values: list[str], read: Any, what: str) -> tuple[str, ...]:
        found = []
        for value in values:
            code = read(value)
            if code is None:
                raise typer.BadParameter(f"no {what} is called {value!r}")
            found.append(code)
        return tuple(found)

    days = {}
    for name, value in (("submitted_from", since), ("submitted_to", until)):
        if value is not None:
            day = parse_date(value)
            if day is None:
                raise typer.BadParameter(f"{value!r} is not a date (d/m/2569 or 2026-10-01)")
            days[name] = day
    start, end = days.get("submitted_from"), days.get("submitted_to")
    if start is not None and end is not None and start > end:
        raise typer.BadParameter(f"{since!r} is after --to {until!r}", param_hint="--from")
    chosen_year = year_of(year) if year else base.fiscal_year
    if year and chosen_year is None:
        raise typer.BadParameter(f"{year!r} is not a fiscal year such as 2570")
    return ProposalFilter(
        target_groups=base.target_groups + each(groups, group_of, "target group"),
        districts=base.districts + each(districts, lambda v: district_of(v, province), "district"),
        statuses=base.statuses + each(statuses, status_of, "status"),
        fiscal_year=chosen_year,
        submitted_from=days.get("submitted_from", base.submitted_from),
        submitted_to=days.get("submitted_to", base.submitted_to),
        keyword=keyword or base.keyword,
    )


def _service_and_filter(*options: Any) -> tuple[WelfareService, ProposalFilter]:
    settings = Settings()
    service = build_service(settings)
    return service, build_filter(options, settings.province)


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str, indent=1))


@app.command("list")
def list_proposals(
    groups: list[str] = GROUP, districts: list[str] = DISTRICT, statuses: list[str] = STATUS,
    year: str | None = YEAR, since: str | None = SINCE, until: str | None = UNTIL,
    keyword: str | None = KEYWORD, where: str | None = WHERE, output: Format = FORMAT,
    limit: int = typer.Option(20, min=1, max=10_000, help="How many, newest first"),
) -> None:  # fmt: skip
    """List the newest matching proposals."""
    service, found = _service_and_filter(groups, districts, statuses, year, since, until,
                                         keyword, where)  # fmt: skip
    with reading(service.db) as connection:
        rows = queries.newest(connection, found, None, None, limit)
        total = queries.count(connection, found, None)
    with service.db.begin() as connection:
        staff.audit(connection, actor(), "list", {"filter": found.to_json(), "shown": len(rows)},
                    service.clock())  # fmt: skip
    if output == "json":
        _json({"total": total, "proposals": [dict(r) for r in rows]})
        return
    table = Table(title=text(LANGUAGE, "desk.list.header",
                             filter=found.describe(LANGUAGE, service.province),
                             total=f"{total:,}"))  # fmt: skip
    for column in ("col.reference", "col.submitted_at", "col.status", "label.target_group",
                   "label.district", "label.people_affected", "label.problem"):  # fmt: skip
        if column == "col.reference":
            # a reference is copied to open or review a proposal: never wrapped or cut
            widest = max((len(r["reference"]) for r in rows), default=0)
            table.add_column(text(LANGUAGE, column), no_wrap=True, min_width=widest)
            continue
        table.add_column(text(LANGUAGE, column))
    for r in rows:
        table.add_row(r["reference"], format_date(r["submitted_at"], LANGUAGE),
                      text(LANGUAGE, f"status.{r['status']}"),
                      text(LANGUAGE, f"opt.target_group.{r['target_group']}"),
                      district_name(service.province, r["district"], LANGUAGE),
                      f"{r['people_affected']:,}", r["problem"])  # fmt: skip
    out.print(table)


def clip(typed: str, limit: int = 40) -> str:
    """Return a typed value short enough to echo (rich takes minutes to wrap a megabyte)."""
    return typed if len(typed) <= limit else typed[: limit - 1] + "…"


PHOTOS = typer.Option(None, "--photos", help="Also write the proposal's photos to this folder")


@app.command("show")
def show(reference: str, output: Format = FORMAT, photos: Path | None = PHOTOS) -> None:
    """Show one proposal in full, with its history (and its photos to a folder)."""
    from bot.desk.views import proposal
    from bot.domain.roles import ADMIN, Officer

    service = build_service(Settings())
    with reading(service.db) as connection:
        found = queries.by_reference(connection, reference)
    if found is None:
        out.print(text(LANGUAGE, "desk.not_found", reference=clip(reference)))
        raise typer.Exit(1)
    with service.db.begin() as connection:
        staff.audit(connection, actor(), "show", {"reference": found["reference"]},
                    service.clock())  # fmt: skip
    if output == "json":
        hidden = ("volunteer_user_id", "volunteer_platform", "volunteer_unreachable_at")
        _json({k: v for k, v in found.items() if k not in hidden})
        return
    shown = proposal(LANGUAGE, service.province, found, Officer(actor(), ADMIN))
    out.print(shown.text, highlight=False)
    if photos is not None:
        _write_photos(service, found["reference"], shown.images, photos)


def _write_photos(
    service: WelfareService, reference: str, images: tuple[Image, ...], folder: Path
) -> None:
    """Write a proposal's kept photos to a folder as REF-1.jpg, REF-2.png, …; never overwrite."""
    keeper = service.photos
    assert keeper is not None
    folder.mkdir(parents=True, exist_ok=True)
    for number, image in enumerate(images, 1):
        kept = keeper.read(image.sha256)
        if kept is None:
            continue
        path = folder / f"{reference}-{number}{EXTENSIONS.get(kept.content_type, '')}"
        try:
            with path.open("xb") as written:  # never overwrite what is already there
                written.write(kept.content)
        except FileExistsError:
            out.print(text(LANGUAGE, "cli.photos.exists", path=path), highlight=False,
                      soft_wrap=True)  # fmt: skip
            raise typer.Exit(2) from None
        out.print(str(path), highlight=False, soft_wrap=True)
    if not images:
        out.print(text(LANGUAGE, "cli.photos.none", reference=reference), highlight=False)


@app.command("stats")
def stats(
    groups: list[str] = GROUP, districts: list[str] = DISTRICT, statuses: list[str] = STATUS,
    year: str | None = YEAR, since: str | None = SINCE, until: str | None = UNTIL,
    keyword: str | None = KEYWORD, where: str | None = WHERE, output: Format = FORMAT,
) -> None:  # fmt: skip
    """Count proposals and people affected by target group and district."""
    service, found = _service_and_filter(groups, districts, statuses, year, since, until,
                                         keyword, where)  # fmt: skip
    with reading(service.db) as connection:
        rows = [dict(r) for r in queries.table(connection, found, None)]
    if output == "json":
        _json(rows)
        return
    table = Table(text(LANGUAGE, "label.target_group"), text(LANGUAGE, "label.district"),
                  text(LANGUAGE, "report.total_proposals"), text(LANGUAGE, "report.total_people"),
                  title=found.describe(LANGUAGE, service.province))  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["target_group"], -r["proposals"])):
        table.add_row(text(LANGUAGE, f"opt.target_group.{r['target_group']}"),
                      district_name(service.province, r["district"], LANGUAGE),
                      f"{r['proposals']:,}", f"{r['people']:,}")  # fmt: skip
    table.add_row(text(LANGUAGE, "report.total"), "", f"{sum(r['proposals'] for r in rows):,}",
                  f"{sum(r['people'] for r in rows):,}", style="bold")  # fmt: skip
    out.print(table)


@app.command("export")
def export(
    output: Path = typer.Argument(..., help="File to write: .xlsx or .csv"),
    groups: list[str] = GROUP, districts: list[str] = DISTRICT, statuses: list[str] = STATUS,
    year: str | None = YEAR, since: str | None = SINCE, until: str | None = UNTIL,
    keyword: str | None = KEYWORD, where: str | None = WHERE,
    masked: bool = typer.Option(False, "--masked", help="Hide names and phone numbers"),
    force: bool = FORCE,
) -> None:  # fmt: skip
    """Export matching proposals for Excel (streamed: any number of rows)."""
    kind = output_file(output, ("csv", "xlsx"), force, "OUTPUT")
    service, found = _service_and_filter(groups, districts, statuses, year, since, until,
                                         keyword, where)  # fmt: skip
    with (
        Progress(console=Console(stderr=True), transient=True) as progress,
        reading(service.db) as connection,
    ):
        total = queries.count(connection, found, None)
        task = progress.add_task(str(output.name), total=total)

        def counted(rows: Any) -> Any:
            for number, row in enumerate(rows, start=1):
                if number % 1000 == 0:
                    progress.update(task, completed=number)
                yield row

        rows = counted(queries.stream(connection, found, None))
        if kind == "csv":
            with output.open("w", encoding="utf-8-sig", newline="") as file:
                written = write_csv(rows, file, service.province, masked)
        else:
            written = write_xlsx(rows, str(output), service.province, masked)
    with service.db.begin() as connection:
        staff.audit(connection, actor(), "export", {"filter": found.to_json(), "rows": written,
                    "format": kind, "file": str(output)}, service.clock())  # fmt: skip
    out.print(text(LANGUAGE, "desk.export.ready", count=f"{written:,}") + f" → {output}")


@app.command("review")
def set_status(
    reference: str,
    status: str = typer.Argument(..., help="in_review, accepted, forwarded, needs_revision, "
                                 "not_accepted (or the Thai name)"),
    comment: str | None = typer.Option(None, help="A comment the volunteer sees"),
    agency: str | None = typer.Option(None, help="The agency it is forwarded to"),
) -> None:  # fmt: skip
    """Change a proposal's status; the volunteer is told by the running bot."""
    code = status_of(status)
    if code not in review.SETTABLE:
        raise typer.BadParameter(f"{status!r} is not a status staff can set")
    service = build_service(Settings())
    with service.db.begin() as connection:
        changed = review.change_status(
            connection, terminal_officer(), reference, code, service.clock(),
            comment=comment, agency=agency, language=LANGUAGE,
        )  # fmt: skip
        for notice in changed.notices:
            service.queue(connection, notice)
    if changed.outcome is review.Outcome.MISSING:
        needed = "--agency" if changed.missing == "agency" else "--comment"
        raise typer.BadParameter(f"{text(LANGUAGE, f'status.{code}')} needs {needed}")
    key = "desk.review.done" if changed.outcome is review.Outcome.DONE else None
    shown = text(LANGUAGE, f"status.{code}")
    out.print(text(LANGUAGE, key or review.MESSAGE[changed.outcome],
                   reference=changed.reference, status=shown))  # fmt: skip
    if changed.outcome not in (review.Outcome.DONE, review.Outcome.SAME):
        raise typer.Exit(1)


def report(
    year: str = typer.Option(..., "--fiscal-year", "-y", help="Fiscal year, e.g. 2570"),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (.xlsx)"),
    force: bool = FORCE,
) -> None:
    """Write the fiscal-year provincial report: a summary with a chart, a sheet per group."""
    chosen = year_of(year)
    if chosen is None:
        raise typer.BadParameter(f"{year!r} is not a fiscal year such as 2570")
    settings = Settings()
    target = output or Path(f"report-{settings.province}-{chosen}.xlsx")
    output_file(target, ("xlsx",), force, "--output")
    service = build_service(settings)
    with reading(service.db) as connection:
        numbers = write_report(connection, str(target), chosen, service.province)
    with service.db.begin() as connection:
        staff.audit(connection, actor(), "report", {"fiscal_year": chosen, "file": str(target)},
                    service.clock())  # fmt: skip
    proposals = sum(n[0] for n in numbers.values())
    out.print(text(LANGUAGE, "desk.export.ready", count=f"{proposals:,}") + f" → {target}")
