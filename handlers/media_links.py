"""Signed, expiring web addresses for stored photos: LINE can only show an image by https URL."""

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.app.photos import PhotoKeeper

# LINE's servers fetch an image when the officer opens the chat; a day covers that
LINK_SECONDS = 24 * 3600


class MediaLinks:
    """Makes and checks /media/<token> addresses; a token names one photo until it expires."""

    def __init__(
        self,
        secret: str,
        seconds: int = LINK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # a key of its own, derived so a link never reveals or reuses the channel secret
        self.key = hmac.new(secret.encode(), b"welfarebot photo links", hashlib.sha256).digest()
        self.seconds = seconds
        self.clock = clock

    def _mac(self, message: str) -> str:
        mac = hmac.new(self.key, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def token(self, sha256: str) -> str:
        """Return a token that names a photo until it expires."""
        message = f"{sha256}.{int(self.clock()) + self.seconds}"
        return f"{message}.{self._mac(message)}"

    def check(self, token: str) -> str | None:
        """Return the photo hash a token names, or None when forged, altered or expired."""
        message, _, mac = token.rpartition(".")
        sha256, _, expires = message.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(message).encode()):
            return None
        if not expires.isdigit() or int(expires) < self.clock():
            return None
        return sha256


def media_route(links: MediaLinks, keeper: PhotoKeeper) -> Route:
    """Return the route that serves a photo by a signed token, while it is still kept."""

    async def photo(request: Request) -> Response:
        sha256 = links.check(request.path_params["token"])
        kept = keeper.read(sha256) if sha256 else None
        if kept is None:
            return PlainTextResponse("not found", status_code=404)
        headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
        return Response(kept.content, media_type=kept.content_type, headers=headers)

    return Route("/media/{token}", photo, methods=["GET"])
