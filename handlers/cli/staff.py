"""`welfarebot staff …`: add, remove, list and invite staff from the terminal."""

import getpass
import json

import typer
from rich.console import Console
from rich.table import Table

from bot.app.settings import Settings
from bot.app.wiring import build_service
from bot.desk import members
from bot.desk.staff_desk import parse_groups
from bot.domain import platforms
from bot.domain.i18n import text
from bot.domain.platforms import valid_user_id
from bot.domain.roles import ADMIN, FACILITATOR, ROLES, Officer
from storage import staff

app = typer.Typer(help="Manage staff: administrators, staff, facilitators and viewers.",
                  no_args_is_help=True)  # fmt: skip
out = Console()
LANGUAGE = "th"


def actor() -> str:
    """Return how the person at this terminal is named in the audit log."""
    return f"cli:{getpass.getuser()}"


def terminal_officer() -> Officer:
    """Return the person at this terminal as an administrator (who has the server has the data)."""
    return Officer(actor(), ADMIN)


def _check(
    platform: str,
    role: str | None = None,
    groups: tuple[str, ...] = (),
    user_id: str | None = None,
) -> None:
    if platform not in platforms.ALL:
        raise typer.BadParameter(f"platform must be one of {', '.join(platforms.ALL)}")
    if user_id is not None and not valid_user_id(platform, user_id):
        raise typer.BadParameter(
            f"{user_id!r} is not a {platform} user id (Telegram: a number; LINE: U and 32 hex "
            "digits, as the bot's /desk shows it)",
            param_hint="USER_ID",
        )
    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    if role == FACILITATOR and not groups:
        raise typer.BadParameter("a facilitator needs --groups, e.g. --groups elderly,working_age")


@app.command("add")
def add(
    platform: str = typer.Argument(..., help="telegram or line"),
    user_id: str = typer.Argument(..., help="The platform's user id (Telegram number, LINE U…)"),
    role: str = typer.Argument(..., help="admin, staff, facilitator or viewer"),
    groups: str = typer.Option("", help="Target groups of a facilitator, comma-separated"),
    name: str | None = typer.Option(None, help="A name to recognise them by"),
) -> None:
    """Add a staff member (or change their role)."""
    chosen = parse_groups([groups]) if groups else ()
    _check(platform, role, chosen, user_id)
    service = build_service(Settings())
    with service.db.begin() as connection:
        changed = members.put(connection, platform, user_id, role, chosen, actor(),
                              service.clock(), name)  # fmt: skip
    if changed is members.Change.LAST_ADMIN:
        out.print(text(LANGUAGE, "desk.staff.last_admin"))
        raise typer.Exit(1)
    out.print(text(LANGUAGE, "desk.staff.added", user=user_id, role=text(LANGUAGE, f"role.{role}")))


@app.command("remove")
def remove(platform: str, user_id: str) -> None:
    """Remove a staff member (never the last administrator)."""
    _check(platform)
    service = build_service(Settings())
    with service.db.begin() as connection:
        changed = members.remove(connection, platform, user_id, actor(), service.clock())
    if changed is not members.Change.DONE:
        out.print(text(LANGUAGE, f"desk.staff.{changed}", user=user_id))
        raise typer.Exit(1)
    out.print(text(LANGUAGE, "desk.staff.removed", user=user_id))


@app.command("list")
def list_staff(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """List staff members."""
    service = build_service(Settings())
    with service.db.begin() as connection:
        rows = staff.members(connection)
    if as_json:
        keys = ("platform", "platform_user_id", "role", "groups", "name")
        typer.echo(json.dumps([{k: r[k] for k in keys} for r in rows], ensure_ascii=False))
        return
    table = Table("platform", "user id", "role", "groups", "name")
    for r in rows:
        table.add_row(r["platform"], r["platform_user_id"], r["role"], ", ".join(r["groups"]),
                      r["name"] or "")  # fmt: skip
    out.print(table)


@app.command("invite")
def invite(
    role: str = typer.Argument(..., help="admin, staff, facilitator or viewer"),
    groups: str = typer.Option("", help="Target groups of a facilitator, comma-separated"),
) -> None:
    """Print a one-time code; whoever sends /join <code> to the bot becomes staff."""
    chosen = parse_groups([groups]) if groups else ()
    _check("telegram", role, chosen)
    service = build_service(Settings())
    with service.db.begin() as connection:
        code = staff.create_invite(connection, role, chosen, actor(), service.clock())
        staff.audit(connection, actor(), "invite", {"role": role}, service.clock())
    out.print(text(LANGUAGE, "desk.invite.code", code=code, role=text(LANGUAGE, f"role.{role}")))
