"""`welfarebot line`: set up the LINE Official Account (its rich menu of big buttons)."""

import asyncio

import typer
from rich.console import Console

from bot.app.settings import Settings
from bot.domain.i18n import text

app = typer.Typer(help="Set up the LINE Official Account.", no_args_is_help=True)
err = Console(stderr=True)
LANGUAGE = "th"


@app.command("rich-menu")
def rich_menu() -> None:
    """Draw the menu of big buttons, upload it and make it every user's default."""
    from handlers.line.rich_menu import SETUP
    from handlers.runner import rich_menus
    from handlers.setup_lock import alone
    from storage.db import make_engine

    settings = Settings()
    if not settings.line_enabled:
        err.print(text(LANGUAGE, "cli.line.needs_settings"), highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    # the bot's processes may be starting: on PostgreSQL wait for any of them installing it
    db = None if settings.database_url.startswith("sqlite") else make_engine(settings.database_url)

    async def install() -> str:
        # the LINE SDK's clients belong to the event loop they are made in
        menus = rich_menus(settings)
        try:
            async with alone(db, SETUP):
                return await menus.install(settings.bot_language)
        finally:
            await menus.close()

    menu_id = asyncio.run(install())
    typer.echo(text(LANGUAGE, "cli.line.rich_menu", menu_id=menu_id))
