"""The `welfarebot` command line: run the bot, chat in the terminal, manage the database."""

import os
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from bot.app.settings import HOME_VARIABLE, Settings
from bot.app.wiring import database_errors
from handlers.cli.broadcast import app as broadcast_app
from handlers.cli.desk import app as desk_app
from handlers.cli.errors import Guarded
from handlers.cli.line import app as line_app
from handlers.cli.proposals import app as proposals_app
from handlers.cli.proposals import report
from handlers.cli.staff import app as staff_app

app = typer.Typer(
    cls=Guarded,
    help="welfarebot: social-welfare proposals from volunteers on LINE, Telegram or a terminal.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Manage the database: its schema and retention.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(proposals_app, name="proposals")
app.add_typer(broadcast_app, name="broadcast")
app.add_typer(desk_app, name="desk")
app.add_typer(line_app, name="line")
app.command("report")(report)
err = Console(stderr=True)


@app.callback()
def main(
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Where .env, the default SQLite database, exports and media live "
        f"(default: ${HOME_VARIABLE}, else the platform's user data directory).",
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an error instead of one line."
    ),
) -> None:
    """welfarebot: social-welfare proposals from volunteers on LINE, Telegram or a terminal."""
    if data_dir is not None:
        # every command reads its settings afresh, so the environment is where this belongs
        os.environ[HOME_VARIABLE] = str(data_dir.expanduser().absolute())


NO_CHANNELS = (
    "No chat platform is configured, so this is the terminal chat on {db}. "
    "To connect Telegram, create a bot with @BotFather and set TELEGRAM_BOT_TOKEN "
    "(in the environment or a .env file; see .env.example); for webhook mode also set "
    "TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET. To connect LINE, create a Messaging API "
    "channel, set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN, and point its webhook at "
    "https://<your host>/line/webhook. The staff web desk is at {desk}/desk (sign in with "
    "`welfarebot desk link terminal <user id>` once that user is staff, see ADMINS). "
    "Press Ctrl-D to leave."
)


def _logging(settings: Settings) -> None:
    from handlers.logs import configure

    configure(settings.log_format)


@app.command()
def run(
    replace_webhook: bool = typer.Option(
        False,
        "--replace-webhook",
        help="Delete a Telegram webhook set earlier, to long-poll instead (never done unasked).",
    ),
) -> None:
    """Start every channel whose credentials are configured (the terminal chat when none are)."""
    from bot.app.wiring import build_service

    settings = Settings()
    service = build_service(settings)
    if not settings.telegram_enabled and not settings.line_enabled:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        err.print(NO_CHANNELS.format(db=shown, desk=settings.web_url), highlight=False)
        from handlers.runner import web_in_background
        from handlers.terminal import run_terminal

        stop_web = web_in_background(settings, service)
        try:
            run_terminal(service, settings.terminal_user)
        finally:
            stop_web()
        return
    from handlers.runner import run_loop, serve

    _logging(settings)
    run_loop(serve(settings, service, replace_webhook=replace_webhook))


SQLITE_REFUSAL = (
    "welfarebot {role} needs PostgreSQL (DATABASE_URL=postgresql://...); "
    "on SQLite use `welfarebot run`, which does both in one process."
)


@app.command()
def web() -> None:
    """Store webhooks and serve the desk, /healthz and /metrics (PostgreSQL; any number of them)."""
    _serve_role("web")


@app.command()
def worker() -> None:
    """Handle stored events, send replies, broadcasts and reminders (PostgreSQL; any number)."""
    _serve_role("worker")


def _serve_role(role: str) -> None:
    from bot.app.wiring import build_service
    from handlers.runner import run_loop, serve

    settings = Settings()
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        err.print(SQLITE_REFUSAL.format(role=role), highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if role == "web" and settings.telegram_enabled and not settings.telegram_webhook_url:
        err.print(
            "welfarebot web needs TELEGRAM_WEBHOOK_URL: Telegram allows one poller, "
            "so several processes take updates by webhook.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    _logging(settings)
    run_loop(serve(settings, build_service(settings), role))


@app.command()
def chat() -> None:
    """Chat with the bot in this terminal, as a volunteer would (input may be piped in)."""
    from bot.app.wiring import build_service
    from handlers.terminal import run_terminal

    settings = Settings()
    run_terminal(build_service(settings), settings.terminal_user)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Revision to upgrade to.")) -> None:
    """Create or upgrade the database schema to the newest revision."""
    from storage.db import upgrade

    settings = Settings()
    with database_errors(settings.database_url):
        upgrade(settings.database_url, revision)
    err.print(f"Database is at revision {revision}.")


@db_app.command("prune")
def db_prune() -> None:
    """Remove personal data past its retention period now (the running bot does it hourly)."""
    from bot.app.wiring import build_service

    pruned = build_service(Settings()).prune()
    err.print(f"Pruned {pruned.summary()}; deleted {len(pruned.files)} export files.")
