"""`welfarebot broadcast …`: compose, preview, send, follow and cancel reminders."""

import json
import time
import unicodedata
from datetime import datetime

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from bot.app.service import WelfareService
from bot.app.settings import Settings
from bot.app.wiring import build_service
from bot.desk.broadcasts import report_text
from bot.domain import platforms
from bot.domain.audience import Audience, parse_audience
from bot.domain.calendar import as_utc, fiscal_year
from bot.domain.i18n import text
from bot.domain.schedule import EVERY, parse_when
from handlers.broadcaster import TICK_SECONDS
from handlers.cli.staff import actor
from storage import broadcasts, staff

app = typer.Typer(help="Remind volunteers: compose, preview, send, follow and cancel.",
                  no_args_is_help=True)  # fmt: skip
out = Console()
LANGUAGE = "th"
# a running bot starts a due broadcast within a tick (TICK_SECONDS) and holds it while sending:
# this long with neither, with something to send, means no bot is running to send it
NO_SENDER_AFTER = max(15.0, 3 * TICK_SECONDS)


def _preview(service: WelfareService, settings: Settings, broadcast_id: int) -> dict[str, int]:
    with service.db.begin() as connection:
        found = broadcasts.get(connection, broadcast_id)
        if found is None:
            out.print(f"no broadcast #{broadcast_id}")
            raise typer.Exit(1)
        audience = Audience.from_json(found["audience"])
        counts = broadcasts.preview(connection, audience, fiscal_year(service.clock()))
    when = service.desk.broadcasts.when(found["next_at"], found["every"])
    out.print(text(LANGUAGE, "bc.preview", id=broadcast_id,
                   audience=audience.describe(LANGUAGE, service.province),
                   telegram=f"{counts.get('telegram', 0):,}", line=f"{counts.get('line', 0):,}",
                   unreachable=f"{counts['unreachable']:,}", when=when, text=found["text_th"]),
              highlight=False)  # fmt: skip
    return counts


def _blank(message: str) -> bool:
    """Tell whether a message shows nothing: only spaces, controls or zero-width characters."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in message)


@app.command("create")
def create(
    message: str = typer.Option(..., "--text", help="The message in Thai"),
    message_en: str | None = typer.Option(None, "--text-en", help="The message in English"),
    to: str = typer.Option("", "--to", help="Audience words, e.g. 'line ผู้สูงอายุ แม่ริม ร่างค้าง'"),
    at: str | None = typer.Option(None, "--at", help="When, e.g. '1/12/2569 09:00' (default now)"),
    every: str | None = typer.Option(None, "--every", help="daily, weekly or monthly"),
) -> None:
    """Write a broadcast as a draft and show who would get it (nothing is sent yet)."""
    if _blank(message):
        raise typer.BadParameter("the message is empty", param_hint="--text")
    if message_en is not None and _blank(message_en):
        raise typer.BadParameter("the message is empty", param_hint="--text-en")
    settings = Settings()
    service = build_service(settings)
    audience, unknown = parse_audience(to, service.province)
    if unknown:
        raise typer.BadParameter(f"unknown audience words: {' '.join(unknown)}", param_hint="--to")
    if every is not None and every not in EVERY:
        raise typer.BadParameter(f"must be one of {', '.join(EVERY)}", param_hint="--every")
    moment: datetime | None = None
    if at:
        when = parse_when(at)
        if when is None or when[0] is None:
            raise typer.BadParameter(
                "use a date and time such as 1/12/2569 09:00", param_hint="--at"
            )
        moment = when[0]
    now = service.clock()
    if moment is not None and moment < now:
        raise typer.BadParameter(f"{at!r} is in the past", param_hint="--at")
    with service.db.begin() as connection:
        broadcast_id = broadcasts.create(connection, actor(), message, message_en, audience,
                                         moment or now, every, now)  # fmt: skip
    _preview(service, settings, broadcast_id)
    out.print(f"\nwelfarebot broadcast send {broadcast_id}")


@app.command("preview")
def preview(broadcast_id: int) -> None:
    """Show a broadcast and how many it would reach on each platform."""
    settings = Settings()
    _preview(build_service(settings), settings, broadcast_id)


def line_quota_left(settings: Settings) -> int | None:
    """Ask LINE how many messages are left this month (None: no limit, or LINE not set up)."""
    if not settings.line_enabled or settings.line_channel_access_token is None:
        return None
    from handlers.line.quota import quota_left

    token = settings.line_channel_access_token.get_secret_value()
    return quota_left(settings.line_api_base_url, token)


@app.command("send")
def send(
    broadcast_id: int,
    wait: bool = typer.Option(
        False,
        "--wait",
        help="Follow the sending with a progress bar (ending, saying so, if no bot sends it)",
    ),
) -> None:
    """Schedule a draft broadcast; the running bot sends it (at its time, outside quiet hours)."""
    settings = Settings()
    service = build_service(settings)
    counts = _preview(service, settings, broadcast_id)
    left = line_quota_left(settings)
    if left is not None and counts.get("line", 0) > left:
        out.print(
            text(
                LANGUAGE,
                "bc.report.refused",
                reason=(
                    f"LINE quota: {counts['line']:,} recipients, {left:,} messages left this month"
                ),
            )
        )
        raise typer.Exit(1)  # fmt: skip
    with service.db.begin() as connection:
        if not broadcasts.schedule(connection, broadcast_id):
            out.print(f"#{broadcast_id} is not a draft")
            raise typer.Exit(1)
        staff.audit(connection, actor(), "broadcast", {"id": broadcast_id}, service.clock())
    out.print(text(LANGUAGE, "bc.scheduled", id=broadcast_id))
    with service.db.begin() as connection:
        found = broadcasts.get(connection, broadcast_id)
    assert found is not None
    due = found["next_at"]
    soon = due is None or as_utc(due) <= service.clock()
    when = service.desk.broadcasts.when(None if soon else due, found["every"])
    out.print(text(LANGUAGE, "bc.cli.goes", when=when, id=broadcast_id), highlight=False)
    if wait:
        follow(service, broadcast_id)


def follow(service: WelfareService, broadcast_id: int, poll: float = 0.5) -> None:
    """Show a progress bar of a broadcast's deliveries until its run has finished."""
    quiet = service.desk.broadcasts.quiet
    stalled_since: float | None = None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=out) as progress:
        bars = {p: progress.add_task(p, total=None) for p in platforms.MESSAGING}
        while True:
            now = service.clock()
            with service.db.begin() as connection:
                found = broadcasts.get(connection, broadcast_id)
                figures = broadcasts.report(connection, broadcast_id)
                held = broadcasts.being_sent(connection, broadcast_id, now)
                # recipients all waiting out a failed send's back-off are nobody's to send yet
                sendable = broadcasts.work_due(connection, broadcast_id, now)
            for platform, bar in bars.items():
                counts = figures["counts"].get(platform, {})
                done = sum(counts.get(s, 0) for s in broadcasts.DONE)
                total = done + counts.get("pending", 0) + counts.get("sending", 0)
                progress.update(bar, completed=done, total=total or None)
            finished = figures["runs"] and figures["finished_at"] is not None
            if (
                found is None
                or found["status"] in ("cancelled", "refused")
                or (finished and found["status"] != "sending")
            ):
                break
            due = found["next_at"] is not None and as_utc(found["next_at"]) <= now
            sending = found["status"] == "sending" and sendable
            waiting = (due or sending) and not quiet.quiet(now) and not held
            stalled_since = (stalled_since or time.monotonic()) if waiting else None
            if stalled_since is not None and time.monotonic() - stalled_since > NO_SENDER_AFTER:
                progress.stop()
                line = text(LANGUAGE, "bc.cli.no_sender", id=broadcast_id,
                            seconds=f"{NO_SENDER_AFTER:.0f}")  # fmt: skip
                out.print(line, highlight=False)
                raise typer.Exit(1)
            time.sleep(poll)
    report(broadcast_id, as_json=False)


@app.command("list")
def listing() -> None:
    """List recent broadcasts."""
    settings = Settings()
    service = build_service(settings)
    desk = service.desk.broadcasts
    with service.db.begin() as connection:
        rows = broadcasts.listing(connection, 50)
    table = Table("#", "status", "when", "to", "text")
    for r in rows:
        table.add_row(str(r["id"]), text(LANGUAGE, f"bc.status.{r['status']}"),
                      desk.when(r["next_at"] or r["created_at"], r["every"]),
                      Audience.from_json(r["audience"]).describe(LANGUAGE, service.province),
                      r["text_th"][:60])  # fmt: skip
    out.print(table)


@app.command("cancel")
def cancel(broadcast_id: int) -> None:
    """Cancel a broadcast: no further runs, and nobody not yet sent to gets it."""
    service = build_service(Settings())
    with service.db.begin() as connection:
        if not broadcasts.cancel(connection, broadcast_id, service.clock()):
            out.print(f"#{broadcast_id} cannot be cancelled")
            raise typer.Exit(1)
    out.print(text(LANGUAGE, "bc.cancelled", id=broadcast_id))


@app.command("report")
def report(
    broadcast_id: int, as_json: bool = typer.Option(False, "--json", help="Print JSON")
) -> None:
    """Show a broadcast's deliveries: sent, pending, failed and skipped, with reasons."""
    service = build_service(Settings())
    with service.db.begin() as connection:
        found = broadcasts.get(connection, broadcast_id)
        if found is None:
            out.print(f"no broadcast #{broadcast_id}")
            raise typer.Exit(1)
        figures = broadcasts.report(connection, broadcast_id)
    if as_json:
        typer.echo(json.dumps({"id": broadcast_id, "status": found["status"], **figures},
                              default=str, ensure_ascii=False))  # fmt: skip
        return
    out.print(report_text(LANGUAGE, found, figures), highlight=False)
