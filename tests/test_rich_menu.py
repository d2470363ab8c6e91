"""The LINE rich menu at start: one process at a time installs it, and a broken default is fixed."""

import asyncio
from pathlib import Path

from linebot.v3.messaging import RichMenuRequest

from bot.app.service import WelfareService
from handlers.line.channel import LineChannel
from handlers.line.rich_menu import NAME, RichMenus, draw, menu_request
from tests.conftest import Clock, make_service
from tests.fakes.line_api import FakeLine
from tests.line_support import SECRET, TOKEN

PROCESSES = 4  # deploy/compose.yaml: two web, two workers


async def start(services: list[WelfareService], url: str) -> None:
    """Start a LINE channel per service all at once, as processes do; wait for their menus."""
    channels = [
        LineChannel(s, SECRET, TOKEN, base_url=url, rich_menus=RichMenus(TOKEN, url, url))
        for s in services
    ]
    await asyncio.gather(*(channel.start() for channel in channels))
    await asyncio.gather(*(channel.settled() for channel in channels))
    for channel in channels:
        await channel.stop()


def one_default_menu(fake: FakeLine) -> str:
    """Return the one menu left, checking it is the default and has its image."""
    assert list(fake.rich_menus) == [fake.default_rich_menu]
    assert fake.default_rich_menu in fake.rich_menu_images
    return fake.default_rich_menu


async def test_processes_starting_at_once_leave_one_menu_as_the_default(
    pg_url: str, clock: Clock, tmp_path: Path, line_fake: FakeLine
) -> None:
    """Four processes on one PostgreSQL starting together install the menu once between them."""
    url = line_fake.base_url  # type: ignore[attr-defined]
    # an engine each, as each process has its own connections
    services = [make_service(pg_url, clock, tmp_path / str(n)) for n in range(PROCESSES)]
    await start(services, url)
    one_default_menu(line_fake)
    created = [path for path, _ in line_fake.requests if path == "/v2/bot/richmenu"]
    assert len(created) == 1, "the others waited, then found it done"


async def test_a_default_menu_deleted_from_under_it_is_installed_again(
    service: WelfareService, line_fake: FakeLine
) -> None:
    """A default naming a menu that no longer exists is repaired at the next start."""
    url = line_fake.base_url  # type: ignore[attr-defined]
    menus = RichMenus(TOKEN, url, url)
    gone = await menus.install()
    await menus.api.delete_rich_menu(gone)
    await menus.close()
    assert line_fake.default_rich_menu == gone
    await start([service], url)
    assert one_default_menu(line_fake) != gone


async def test_a_default_of_ours_in_another_language_is_replaced(
    service: WelfareService, line_fake: FakeLine
) -> None:
    """Ours, but not what this version shows in the bot's language: installed anew."""
    url = line_fake.base_url  # type: ignore[attr-defined]
    menus = RichMenus(TOKEN, url, url)
    english = await menus.install("en")
    await menus.close()
    await start([service], url)
    menu = line_fake.rich_menus[one_default_menu(line_fake)]
    assert menu["richMenuId"] != english
    assert menu["chatBarText"] == "เมนู"


async def test_a_default_set_in_the_line_console_is_kept(
    service: WelfareService, line_fake: FakeLine
) -> None:
    """A menu the account's owners made themselves stays the default, next to copies of ours."""
    url = line_fake.base_url  # type: ignore[attr-defined]
    menus = RichMenus(TOKEN, url, url)
    await menus.install()
    theirs = await menus.api.create_rich_menu(
        RichMenuRequest.from_dict({**menu_request(), "name": "office"})
    )
    await menus.blob.set_rich_menu_image(
        theirs.rich_menu_id, draw(), _headers={"Content-Type": "image/png"}
    )
    await menus.api.set_default_rich_menu(theirs.rich_menu_id)
    await menus.close()
    await start([service], url)
    assert line_fake.default_rich_menu == theirs.rich_menu_id
    assert len(line_fake.rich_menus) == 2
    assert NAME in [m["name"] for m in line_fake.rich_menus.values()]
