"""The LINE channel: signed webhooks stored before the 200, answered with reply or push."""

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from datetime import datetime
from typing import Any

from linebot.v3 import WebhookParser
from linebot.v3.messaging import ApiException, AsyncMessagingApiBlob
from linebot.v3.webhooks import Event, UnfollowEvent, UserSource
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app.photos import PhotoGone
from bot.app.service import Delivery, WelfareService
from bot.domain.i18n import text
from bot.domain.messages import Image, Reply
from handlers import metrics
from handlers.line.checks import LineBody
from handlers.line.client import api_client
from handlers.line.convert import event_input
from handlers.line.render import Message, batches, render_all
from handlers.line.rich_menu import SETUP, RichMenus
from handlers.line.sender import LineSender, Outcome
from handlers.media_links import MediaLinks, media_route
from handlers.ordering import InOrder
from handlers.setup_lock import alone
from handlers.webhook_json import BadBody, check, parse_json, refused

log = logging.getLogger(__name__)

PLATFORM = "line"
RETRY_NAMESPACE = uuid.UUID("5b0f5c9e-3f6e-4c1a-9d8e-0c4b7a1e2d31")
QUOTA_SPENT = "LINE quota exhausted"
HANDLING = 8
# the image formats a LINE image message may show
LINE_IMAGES = ("image/jpeg", "image/png")


def user_key(payload: dict[str, Any]) -> str | None:
    """Return whose event this is: the user, group or room it came from."""
    source = payload.get("source")
    if not isinstance(source, dict):
        return None
    key = source.get("userId") or source.get("groupId") or source.get("roomId")
    return str(key) if key else None


class LineChannel:
    """Receives LINE webhooks, stores each event durably, and answers through the core."""

    platform = PLATFORM

    def __init__(
        self,
        service: WelfareService,
        channel_secret: str,
        access_token: str,
        base_url: str = "https://api.line.me",
        public_url: str | None = None,
        queued: bool = False,
        data_url: str = "https://api-data.line.me",
        rich_menus: RichMenus | None = None,
    ) -> None:
        self.service = service
        self.rich_menus = rich_menus
        self._menu_task: asyncio.Task[None] | None = None
        # queued: stored events go to the shared queue (storage/queue.py), not handled here
        self.queued = queued
        self.public_url = public_url.rstrip("/") if public_url else None
        self.links = MediaLinks(channel_secret)
        self.parser = WebhookParser(channel_secret)
        self.client = api_client(base_url, access_token)
        # content users send is served from a host of its own (api-data.line.me)
        self.data_client = api_client(data_url.rstrip("/"), access_token)
        self.sender = LineSender(self.client)
        self._order = InOrder()
        # a few events handled at once keep the loop free to answer webhooks (LINE waits 2 s)
        self._handling = asyncio.Semaphore(HANDLING)
        self._tasks: set[asyncio.Task[None]] = set()

    # life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resend replies that were never confirmed, then handle events stored but not done."""
        if self.rich_menus is not None:
            # in the background: a slow or unreachable LINE must not hold up the replies
            self._menu_task = asyncio.create_task(self._ensure_rich_menu(self.rich_menus))
        if self.queued:
            return
        for delivery in self.service.undelivered(PLATFORM):
            # a reply token is long expired after a restart, so these go by push
            pushed = dataclasses.replace(delivery, reply_token=None)
            try:
                await self.deliver(pushed)
            except Exception:
                log.exception("an unsent LINE reply failed again; it stays in the outbox")
        for _event_id, payload in self.service.pending_events(PLATFORM):
            self._schedule(payload)

    async def settled(self) -> None:
        """Wait until the work started in the background at start (the rich menu) is done."""
        if self._menu_task is not None:
            await asyncio.gather(self._menu_task, return_exceptions=True)

    async def _ensure_rich_menu(self, menus: RichMenus) -> None:
        """Put the menu of big buttons under every chat, unless it is there already."""
        try:
            # every web and worker process starts this: one at a time, the others find it done
            async with alone(self.service.db, SETUP):
                installed = await menus.ensure(self.service.default_language)
            if installed:
                log.info("set the LINE rich menu as every user's default")
        except Exception as error:  # the bot works without it: say so and carry on
            log.warning("could not set the LINE rich menu (%s)", error)

    async def stop(self) -> None:
        """Finish the events taken in, then close the API clients."""
        await self.idle()
        self.service.flush_delivered()
        await self.client.close()
        await self.data_client.close()
        if self._menu_task is not None:
            self._menu_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._menu_task
        if self.rich_menus is not None:
            await self.rich_menus.close()

    async def idle(self) -> None:
        """Wait until every event taken in so far has been handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def routes(self) -> list[Route]:
        """Return the web routes this channel serves (photos by signed link, for staff)."""
        routes = [Route("/line/webhook", self.webhook, methods=["POST"])]
        if self.service.photos is not None:
            routes.append(media_route(self.links, self.service.photos))
        return routes

    # receiving ----------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """Check the signature, store the events, answer 200, and handle them afterwards."""
        if not request.headers.get("content-type", "").startswith("application/json"):
            return refused(PLATFORM, 415, "expected application/json")
        signature = request.headers.get("x-line-signature")
        body = await request.body()
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            return refused(PLATFORM, 400, "not UTF-8")
        if not signature or not self.parser.signature_validator.validate(text_body, signature):
            return refused(PLATFORM, 400, "invalid signature")
        try:
            parsed = parse_json(body)
            check(LineBody, parsed)
        except BadBody as problem:
            return refused(PLATFORM, 400, str(problem))
        stored = [(e["webhookEventId"], e) for e in parsed["events"]]
        metrics.RECEIVED.labels(PLATFORM).inc(len(stored))
        if stored and self.queued:
            self.service.store_events(PLATFORM, stored, user_key)
        elif stored:
            self.service.store_events(PLATFORM, stored)
            for _event_id, payload in stored:
                self._schedule(payload)
        return JSONResponse({})

    def _schedule(self, payload: dict[str, Any]) -> None:
        task = asyncio.create_task(self._process(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, payload: dict[str, Any]) -> None:
        """Handle one stored event; a user's events run one at a time, in arrival order."""
        async with self._order.turn(user_key(payload) or ""), self._handling:
            await self.process(payload)

    async def process(self, payload: dict[str, Any], received_at: datetime | None = None) -> None:
        """Handle one stored event now, then send the replies; if it fails, close it and apologise.

        Only a failure before the replies were committed is apologised for: a send that fails
        later stays in the outbox to be sent again, its reply token unspent. When the event was
        stored does not matter here: LINE refuses a lapsed reply token, and the reply is pushed.
        """
        try:
            delivery = await self._handle(payload)
        except Exception:
            log.exception("a LINE event failed")
            await self._apologise(payload)
            return
        if delivery is not None:
            await self.deliver(delivery)

    async def _apologise(self, payload: dict[str, Any]) -> None:
        """Close a failed event (so it is not retried forever) and tell the volunteer to retry."""
        try:
            self.service.finish_event(PLATFORM, str(payload["webhookEventId"]))
            sorry = [{"type": "text", "text": text(self.service.default_language, "err.internal")}]
            token = payload.get("replyToken")
            source = payload.get("source")
            user_id = source.get("userId") if isinstance(source, dict) else None
            replied = token and await self.sender.reply(str(token), sorry) is not Outcome.TOKEN_GONE
            if not replied and user_id:
                await self.sender.push(str(user_id), sorry, str(uuid.uuid4()))
        except Exception:
            log.exception("could not tell a LINE user that their message failed")

    async def _handle(self, payload: dict[str, Any]) -> Delivery | None:
        """Take one event into effect; return the replies to send."""
        event_id = str(payload["webhookEventId"])
        try:
            event = Event.from_dict(payload)
        except (ValueError, TypeError, KeyError, AttributeError):
            # the SDK's parsers raise any of these on a malformed event: one it cannot read
            event = None
        source = getattr(event, "source", None)
        reply_token = getattr(event, "reply_token", None)
        if not isinstance(source, UserSource) or not source.user_id:
            # groups and rooms: one polite line, nothing stored about anyone
            self.service.finish_event(PLATFORM, event_id)
            if reply_token and payload.get("type") in ("message", "join", "postback"):
                line = text(self.service.default_language, "err.group_chat")
                await self.sender.reply(reply_token, [{"type": "text", "text": line}])
            return None
        user_id = source.user_id
        if isinstance(event, UnfollowEvent):
            self.service.set_reachable(PLATFORM, user_id, False)
            self.service.finish_event(PLATFORM, event_id)
            return None
        neutral = event_input(event)
        if neutral is None:
            self.service.finish_event(PLATFORM, event_id)
            return None
        if payload.get("type") == "follow":
            self.service.set_reachable(PLATFORM, user_id, True)
        return await self.service.answer(
            PLATFORM, user_id, event_id, neutral, reply_token=reply_token
        )

    # sending ------------------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> bool:
        """Reply with the token while LINE takes it, push the rest; confirm when all went.

        A delivery sent in part before (its reply went, a push failed) resumes after what
        went; one the quota holds back stays in the outbox, marked, without waiting here.
        Returns False when the delivery is kept to send later.
        """
        requests = batches(self._messages(delivery.replies))
        for index in range(delivery.sent_batches, len(requests)):
            outcome = await self._send_batch(delivery, index, requests[index])
            if outcome is Outcome.QUOTA:
                self.service.hold(delivery.outbox_id, QUOTA_SPENT)
                return False
            if outcome is Outcome.FAILED:
                return False
            if index + 1 < len(requests):
                self.service.progress(delivery.outbox_id, index + 1)
        self.service.delivered([delivery.outbox_id])
        return True

    async def _send_batch(self, delivery: Delivery, index: int, messages: list[Message]) -> Outcome:
        """Send one request: by reply when it is the first and the token still works."""
        if index == 0 and delivery.reply_token:
            outcome = await self.sender.reply(delivery.reply_token, messages)
            if outcome is Outcome.TOKEN_GONE and delivery.retaken:
                # a young token refused on a retaken row was used by the worker that died
                return Outcome.SENT
            if outcome is not Outcome.TOKEN_GONE:
                return outcome
        # the same retry key for the same batch, even after a restart: LINE sends it once
        key = uuid.uuid5(RETRY_NAMESPACE, f"{delivery.outbox_id}:{index}")
        return await self.sender.push(delivery.recipient, messages, str(key))

    async def notify(self, delivery: Delivery) -> bool:
        """Send a message meant for someone other than the sender (by push)."""
        return await self.deliver(delivery)

    def _messages(self, replies: tuple[Reply, ...]) -> list[Message]:
        """Return the LINE messages for replies, photos as image messages before their text."""
        messages: list[Message] = []
        texts: list[Reply] = []
        for reply in replies:
            if reply.images:
                messages += render_all(texts) + self._images(reply.images)
                texts = []
            texts.append(self._linked(reply))
        return messages + render_all(texts)

    def _images(self, images: tuple[Image, ...]) -> list[Message]:
        """Return image messages by signed link, or a note where LINE cannot show them."""
        public = self.public_url
        shown = [i for i in images if i.content_type in LINE_IMAGES] if public else []
        urls = [f"{public}/media/{self.links.token(i.sha256)}" for i in shown]
        messages: list[Message] = [
            {"type": "image", "originalContentUrl": u, "previewImageUrl": u} for u in urls
        ]
        if len(shown) < len(images):
            note = text(self.service.default_language, "desk.photos.no_link")
            messages.append({"type": "text", "text": note})
        return messages

    async def download_photo(self, message_id: str) -> bytes:
        """Fetch the content of an image a user sent, before LINE deletes it."""
        try:
            content = await AsyncMessagingApiBlob(self.data_client).get_message_content(message_id)
        except ApiException as error:
            if error.status in (400, 404, 410):
                raise PhotoGone(f"LINE answered {error.status}") from error
            raise
        return bytes(content)

    def _linked(self, reply: Reply) -> Reply:
        """Turn a file into a download link: LINE's Messaging API cannot send files."""
        if reply.document is None:
            return reply
        language = self.service.default_language
        if self.public_url is None:
            return Reply(f"{reply.text}\n{text(language, 'desk.export.no_link')}")
        url = f"{self.public_url}/exports/{reply.document.token}"
        return Reply(f"{reply.text}\n{text(language, 'desk.export.link', url=url)}")
