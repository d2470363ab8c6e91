"""The LINE rich menu: six big tiles always under the chat, drawn here in a Thai font.

Older volunteers rely on these on Thai government LINE accounts: nothing to type or remember.
Each tile sends a postback the conversation engine already understands as a command.
"""

import asyncio
import functools
import io
import logging
from collections.abc import Callable
from typing import Any

import fontpkg_sarabun
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    RichMenuRequest,
)
from PIL import Image, ImageDraw, ImageFont

from bot.domain.i18n import text

log = logging.getLogger(__name__)

NAME = "welfarebot"
# the set-up lock's name (handlers/setup_lock.py): one process at a time installs the menu
SETUP = "line rich menu"
WIDTH, HEIGHT = 2500, 1686
COLUMNS, ROWS = 3, 2
# the command each tile sends, left to right, top to bottom
TILES = ("new", "status", "profile", "mydata", "help", "language")
FONTS = fontpkg_sarabun.ROOT / "files"
INK = "#1f2a44"
COLOURS = ("#1e6fd9", "#0f9d76", "#f29f05", "#7a4fd6", "#d9482b", "#2b8aa3")

Draw = ImageDraw.ImageDraw
Box = tuple[int, int, int, int]


def menu_request(language: str = "th") -> dict[str, Any]:
    """Return the rich menu object: one postback area per tile, shown open by default."""
    width, height = WIDTH // COLUMNS, HEIGHT // ROWS
    areas = []
    for index, command in enumerate(TILES):
        x, y = (index % COLUMNS) * width, (index // COLUMNS) * height
        label = text(language, f"richmenu.{command}")
        areas.append(
            {
                "bounds": {"x": x, "y": y, "width": width, "height": height},
                "action": {"type": "postback", "data": f"cmd:{command}", "displayText": label},
            }
        )
    return {
        "size": {"width": WIDTH, "height": HEIGHT},
        "selected": True,
        "name": NAME,
        "chatBarText": text(language, "richmenu.bar"),
        "areas": areas,
    }


def _font(weight: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / f"Sarabun-{weight}.ttf"), size)


def _fitted(pen: Draw, words: str, room: int) -> ImageFont.FreeTypeFont:
    """Return the largest bold font, up to a size readable at arm's length, that fits a tile."""
    size = 132
    while size > 60 and pen.textlength(words, _font("Bold", size)) > room:
        size -= 6
    return _font("Bold", size)


@functools.cache
def draw(language: str = "th") -> bytes:
    """Return the menu image as PNG: a coloured icon, the Thai name and the English one."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "#eef2f7")
    pen = ImageDraw.Draw(image)
    width, height = WIDTH // COLUMNS, HEIGHT // ROWS
    subtitle = _font("Medium", 64)
    other = "en" if language == "th" else "th"
    for index, command in enumerate(TILES):
        x, y = (index % COLUMNS) * width, (index // COLUMNS) * height
        colour = COLOURS[index]
        pen.rounded_rectangle((x + 24, y + 24, x + width - 24, y + height - 24), 56, "white")
        middle = x + width // 2
        pen.ellipse((middle - 150, y + 90, middle + 150, y + 390), colour)
        ICONS[command](pen, (middle - 150, y + 90, middle + 150, y + 390))
        name = text(language, f"richmenu.{command}")
        pen.text((middle, y + 560), name, INK, _fitted(pen, name, width - 140), anchor="mm")
        pen.text((middle, y + 700), text(other, f"richmenu.{command}"), "#5b6478", subtitle,
                 anchor="mm")  # fmt: skip
    out = io.BytesIO()
    # 64 colours keep the edges smooth in 82 KB (true colour: 139 KB; LINE takes up to 1 MB)
    image.quantize(64).save(out, "PNG")
    return out.getvalue()


# icons: white line drawings inside a coloured disc ---------------------------------------------


def _plus(pen: Draw, box: Box) -> None:
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    pen.rounded_rectangle((cx - 22, cy - 95, cx + 22, cy + 95), 14, "white")
    pen.rounded_rectangle((cx - 95, cy - 22, cx + 95, cy + 22), 14, "white")


def _list(pen: Draw, box: Box) -> None:
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    pen.rounded_rectangle((cx - 85, cy - 110, cx + 85, cy + 110), 18, outline="white", width=16)
    for row in (-50, 0, 50):
        pen.ellipse((cx - 55, cy + row - 11, cx - 33, cy + row + 11), "white")
        pen.line((cx - 15, cy + row, cx + 55, cy + row), "white", 14)


def _pencil(pen: Draw, box: Box) -> None:
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    pen.polygon([(cx + 60, cy - 100), (cx + 100, cy - 60), (cx - 40, cy + 80),
                 (cx - 80, cy + 40)], "white")  # fmt: skip
    pen.polygon([(cx - 80, cy + 40), (cx - 40, cy + 80), (cx - 100, cy + 100)], "white")


def _lock(pen: Draw, box: Box) -> None:
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    pen.arc((cx - 60, cy - 110, cx + 60, cy + 10), 180, 360, "white", 22)
    pen.line((cx - 50, cy - 50, cx - 50, cy - 5), "white", 22)
    pen.line((cx + 50, cy - 50, cx + 50, cy - 5), "white", 22)
    pen.rounded_rectangle((cx - 90, cy - 10, cx + 90, cy + 100), 20, "white")


def _glyphs(word: str, size: int) -> Callable[[Draw, Box], None]:
    def icon(pen: Draw, box: Box) -> None:
        centre = ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)
        pen.text(centre, word, "white", _font("Bold", size), anchor="mm")

    return icon


ICONS: dict[str, Callable[[Draw, Box], None]] = {
    "new": _plus,
    "status": _list,
    "profile": _pencil,
    "mydata": _lock,
    "help": _glyphs("?", 230),
    "language": _glyphs("ก A", 130),
}


# the Messaging API ------------------------------------------------------------------------------


class RichMenus:
    """Creates the rich menu, uploads its image and makes it every user's default."""

    def __init__(self, access_token: str, base_url: str, data_url: str) -> None:
        self.api_client = AsyncApiClient(Configuration(host=base_url, access_token=access_token))
        # images go to LINE's data host, a client of its own
        self.blob_client = AsyncApiClient(Configuration(host=data_url, access_token=access_token))
        self.api = AsyncMessagingApi(self.api_client)
        self.blob = AsyncMessagingApiBlob(self.blob_client)

    async def close(self) -> None:
        """Close both HTTP clients."""
        await self.api_client.close()
        await self.blob_client.close()

    async def install(self, language: str = "th") -> str:
        """Create the menu with its image, make it the default, and remove older copies."""
        request = RichMenuRequest.from_dict(menu_request(language))
        created = await self.api.create_rich_menu(request)
        menu_id = created.rich_menu_id
        # drawing takes about a second of CPU: off the loop that answers volunteers
        image = await asyncio.to_thread(draw, language)
        await self.blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": "image/png"})
        await self.api.set_default_rich_menu(menu_id)
        await self._remove_others(menu_id)
        return menu_id

    async def _remove_others(self, menu_id: str) -> None:
        """Delete our menus other than this one (older versions, or a start that was cut short)."""
        listed = await self.api.get_rich_menu_list()
        for old in listed.richmenus:
            if old.name == NAME and old.rich_menu_id != menu_id:
                await self.api.delete_rich_menu(old.rich_menu_id)

    async def ensure(self, language: str = "th") -> str | None:
        """Install the menu unless the default is this one, as it is now, or one not ours.

        A default set in the LINE console (another name) is kept. Ours is replaced when it is
        gone (deleted while still the default) or shows something else (another language, an
        older version's tiles). Run by one process at a time (handlers/setup_lock.py).
        """
        try:
            default = await self.api.get_default_rich_menu_id()
            menu = await self.api.get_rich_menu(default.rich_menu_id)
        except ApiException as error:
            if error.status != 404:
                raise
            return await self.install(language)
        if menu.name != NAME:
            return None
        if look(menu.to_dict()) != look(menu_request(language)):
            return await self.install(language)
        await self._remove_others(menu.rich_menu_id)
        return None


def look(menu: dict[str, Any]) -> Any:
    """Return what a menu shows and what its tiles send, without what LINE adds (its id)."""
    keys = ("type", "data", "displayText")
    actions = [
        (area["bounds"], {key: area["action"].get(key) for key in keys})
        for area in menu.get("areas", [])
    ]
    return menu.get("size"), menu.get("chatBarText"), actions
