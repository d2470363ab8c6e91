"""Building blocks for LINE tests: signed webhook bodies shaped like LINE's own samples."""

import base64
import copy
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path
from typing import Any

from bot.domain.messages import Contact, Input, Location, Photo, Press, Text
from tests.fakes.line_api import FakeLine

SECRET = "line-channel-secret-for-tests"
TOKEN = "line-access-token-for-tests"
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "line" / "sample-webhook-events.json"
_TEMPLATE = json.loads(SAMPLES.read_text("utf-8"))["events"][0]
_ids = itertools.count(1)


def sign(body: bytes, secret: str = SECRET) -> str:
    """Return the X-Line-Signature LINE would send with a body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def body(*events: dict[str, Any]) -> bytes:
    """Return a webhook body carrying events."""
    return json.dumps({"destination": "Ubot", "events": list(events)}).encode()


class LineUser:
    """Makes the webhook events one LINE user causes, each with a fresh reply token."""

    def __init__(self, fake: FakeLine, user_id: str = "U" + "a" * 32) -> None:
        self.fake = fake
        self.user_id = user_id

    def _event(self, kind: str, **extra: Any) -> dict[str, Any]:
        event = copy.deepcopy(_TEMPLATE)
        event.pop("message", None)
        event.update(
            type=kind,
            timestamp=int(time.time() * 1000),
            source={"type": "user", "userId": self.user_id},
            webhookEventId=f"01HTEST{next(_ids):019d}",
            replyToken=self.fake.issue_token(self.user_id),
            **extra,
        )
        return event

    def text(self, text: str) -> dict[str, Any]:
        """A text message."""
        return self._event("message", message={"id": str(next(_ids)), "type": "text",
                                               "text": text, "quoteToken": "q"})  # fmt: skip

    def postback(self, data: str) -> dict[str, Any]:
        """A postback from a button the bot drew."""
        return self._event("postback", postback={"data": data})

    def image(self, content_id: str) -> dict[str, Any]:
        """A photo sent from the phone."""
        message = {"id": content_id, "type": "image", "quoteToken": "q",
                   "contentProvider": {"type": "line"}}  # fmt: skip
        return self._event("message", message=message)

    def location(self, latitude: float, longitude: float) -> dict[str, Any]:
        """A shared location."""
        message = {"id": str(next(_ids)), "type": "location", "latitude": latitude,
                   "longitude": longitude, "address": "เชียงใหม่"}  # fmt: skip
        return self._event("message", message=message)

    def sticker(self) -> dict[str, Any]:
        """A sticker."""
        message = {"id": str(next(_ids)), "type": "sticker", "packageId": "1", "stickerId": "2",
                   "stickerResourceType": "STATIC", "quoteToken": "q"}  # fmt: skip
        return self._event("message", message=message)

    def follow(self) -> dict[str, Any]:
        """Adding the bot as a friend (or unblocking it)."""
        return self._event("follow", follow={"isUnblocked": False})

    def unfollow(self) -> dict[str, Any]:
        """Blocking the bot (unfollow events carry no reply token)."""
        event = self._event("unfollow")
        event.pop("replyToken")
        return event

    def redelivered(self, event: dict[str, Any]) -> dict[str, Any]:
        """The same event sent again by LINE, with a new reply token."""
        again = copy.deepcopy(event)
        again["deliveryContext"] = {"isRedelivery": True}
        again["replyToken"] = self.fake.issue_token(self.user_id)
        return again

    def as_event(self, step: Input) -> dict[str, Any]:
        """Return the event a neutral input comes as on LINE."""
        if isinstance(step, Text):
            return self.text(step.text)
        if isinstance(step, Press):
            return self.postback(step.data)
        if isinstance(step, Photo):
            return self.image(step.file_id)
        if isinstance(step, Location):
            return self.location(step.latitude, step.longitude)
        if isinstance(step, Contact):
            return self.text(step.phone)
        raise TypeError(step)
