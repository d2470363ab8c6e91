"""`welfarebot desk link …`: a one-time web desk sign-in link, printed in the terminal."""

import typer
from rich.console import Console

from bot.app.settings import Settings
from bot.app.wiring import build_service
from bot.domain import platforms
from handlers.cli.staff import actor
from storage import desk_logins, staff

app = typer.Typer(help="The staff web desk.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("link")
def link(
    platform: str = typer.Argument(..., help="telegram, line or terminal"),
    user_id: str = typer.Argument(..., help="The staff member's platform user id"),
) -> None:
    """Print a one-time link that signs a staff member in to the web desk (10 minutes)."""
    if platform not in platforms.ALL:
        raise typer.BadParameter(f"platform must be one of {', '.join(platforms.ALL)}")
    settings = Settings()
    service = build_service(settings)
    now = service.clock()
    with service.db.begin() as connection:
        if staff.find(connection, platform, user_id) is None:
            err.print(f"{platform}:{user_id} is not staff; add them with `welfarebot staff add`.")
            raise typer.Exit(1)
        token = desk_logins.create_link(connection, platform, user_id, now)
        staff.audit(connection, actor(), "web_link", {"member": staff.actor_of(platform, user_id)},
                    now)  # fmt: skip
    out.print(f"{settings.web_url}/desk/login/{token}", highlight=False, soft_wrap=True)
    err.print(f"Open it within {desk_logins.LOGIN_MINUTES} minutes; it works once.")
