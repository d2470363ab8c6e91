"""The Telegram channel: a python-telegram-bot Application fed from a durable inbox."""

import asyncio
import contextlib
import hmac
import logging
import warnings
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    LinkPreviewOptions,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.app.photos import PhotoGone
from bot.app.service import Delivery, WelfareService
from bot.app.settings import SettingsError
from bot.domain.calendar import utcnow
from bot.domain.i18n import LANGUAGES, text
from bot.domain.messages import Image, Input, Reply, Text
from bot.domain.roles import STAFF_COMMANDS, Officer
from handlers import metrics
from handlers.telegram.aiohttp_request import AiohttpRequest
from handlers.telegram.checks import TelegramUpdate
from handlers.telegram.convert import message_input, press_input
from handlers.telegram.pacer import Kind, PacedRateLimiter, Pacer, seconds
from handlers.telegram.processor import PerUserUpdateProcessor, user_key
from handlers.telegram.render import MAX_TOAST, markup, render_all
from handlers.webhook_json import BadBody, check, parse_json, refused

log = logging.getLogger(__name__)
# getUpdates and sendMessage go through do_api_request on purpose: the raw JSON is what is stored
# and the sent Message is never used, which saves PTB a parse and a serialisation per update
warnings.filterwarnings(
    "ignore", message=r"Please use 'Bot\.(getUpdates|sendMessage)'", category=PTBUserWarning
)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

PLATFORM = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
POLL_SECONDS = 30
# how long Telegram takes an answer to a button's query: undocumented, reported as 10-15 s
# (answers later get "400 query is too old"), so a press that waited longer is not answered
QUERY_LIFE = timedelta(seconds=10)
MENU_COMMANDS = ("start", "new", "status", "back", "skip", "cancel", "profile", "language",
                 "mydata", "reminders", "deletedata", "help")  # fmt: skip
# Telegram shows the menu without a language code to everyone whose app is in no other language
LANGUAGE_CODES = tuple(None if language == "th" else language for language in LANGUAGES)


def menu_commands(language: str, role: str | None = None) -> list[BotCommand]:
    """Return the command menu in a language: a volunteer's, then the commands of a staff role."""
    officer = Officer("", role) if role else None
    staff_commands = [c for c in STAFF_COMMANDS if officer and officer.may(c)]
    return [BotCommand(name, text(language, f"cmd.{name}"))
            for name in (*staff_commands, *MENU_COMMANDS)]  # fmt: skip


class TelegramChannel:
    """Receives Telegram updates (polling or webhook), stores them, and answers through the core."""

    platform = PLATFORM

    def __init__(
        self,
        service: WelfareService,
        token: str,
        base_url: str = "https://api.telegram.org/bot",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        concurrency: int = 256,
        pacer: Pacer | None = None,
        queued: bool = False,
        receive: bool = True,
        replace_webhook: bool = False,
        retry_delay: float = 1.0,
    ) -> None:
        if webhook_url and not webhook_secret:
            # without it anyone could post an update as an administrator's user id
            raise SettingsError(["TELEGRAM_WEBHOOK_SECRET is not set: webhook mode needs it."])
        self.service = service
        # queued: stored updates go to the shared queue (storage/queue.py), not handled here
        self.queued = queued
        # receive: take updates in (webhook or polling); a queue worker only handles and sends
        self.receive = receive
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        # polling deletes a webhook someone set only when told to
        self.replace_webhook = replace_webhook
        # the first wait before asking an unreachable Telegram again; it doubles up to a minute
        self.retry_delay = retry_delay
        self._claimed: set[int] = set()
        # the staff role each chat's command menu was set for (None: the volunteers' menu)
        self._roles: dict[str, str | None] = {}
        # updates whose buttons' queries are too old to answer: replayed from the database after
        # a restart, or taken off the shared queue after waiting longer than QUERY_LIFE
        self._stale: set[int] = set()
        # every call to the Bot API but getUpdates waits its turn here
        self.pacer = pacer or Pacer()
        self.limiter = PacedRateLimiter(self.pacer)
        # set whenever every update taken in so far has been handled
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self.app = (
            Application.builder()
            .token(token)
            .base_url(base_url)
            .base_file_url(base_url.replace("/bot", "/file/bot"))
            .updater(None)
            .concurrent_updates(PerUserUpdateProcessor(concurrency, self._after_update))
            .request(AiohttpRequest(connection_pool_size=64))
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
            .rate_limiter(self.limiter)
            .build()
        )
        private = filters.ChatType.PRIVATE
        self.app.add_handler(CallbackQueryHandler(self._on_press))
        self.app.add_handler(MessageHandler(private & ~filters.UpdateType.EDITED, self._on_message))
        self.app.add_handler(MessageHandler(filters.ChatType.GROUPS, self._on_group))
        self.app.add_error_handler(self._on_error)

    # life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start processing: resend unsent replies, replay stored updates, then poll or listen."""
        await self._connect()
        if self.receive and not self.webhook_url:
            await self._take_over_from_webhook()
        await self.app.start()
        if not self.queued:
            for delivery in self.service.undelivered(PLATFORM):
                await self.deliver(delivery)
            for _event_id, payload in self.service.pending_events(PLATFORM):
                self._stale.add(int(payload["update_id"]))
                await self.app.update_queue.put(Update.de_json(payload, self.app.bot))
        if not self.receive:
            return
        await self._register_commands()
        if self.webhook_url:
            secret = self.webhook_secret
            await self.app.bot.set_webhook(
                self.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            self._poller = asyncio.create_task(self._poll())

    async def _connect(self) -> None:
        """Ask Telegram who the bot is until it answers; a rejected token is a setting to fix."""
        delay = self.retry_delay
        while True:
            try:
                await self.app.initialize()
                return
            except InvalidToken:
                raise SettingsError(
                    ["TELEGRAM_BOT_TOKEN: Telegram rejected the token; copy it again from "
                     "@BotFather (/mybots → API Token), or empty it to run without Telegram."]
                ) from None  # fmt: skip
            except NetworkError as error:
                log.warning(
                    "Telegram is unreachable (%s); trying again in %.0f s",
                    type(error).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _take_over_from_webhook(self) -> None:
        """Refuse to poll while a webhook is set, unless told to replace it."""
        info = await self.app.bot.get_webhook_info()
        if not info.url:
            return
        if not self.replace_webhook:
            raise SettingsError(
                [f"Telegram sends this bot's updates to the webhook {info.url}, so polling would "
                 "get none; start with `welfarebot run --replace-webhook` to delete it, or set "
                 "TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET for webhook mode."]
            )  # fmt: skip
        log.warning("deleting the webhook %s to poll instead (--replace-webhook)", info.url)
        await self.app.bot.delete_webhook()

    async def stop(self) -> None:
        """Stop polling and finish the updates already taken in."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        self.service.flush_delivered()

    async def _register_commands(self) -> None:
        """Set the command menu per language, and for each staff member the role's commands."""
        await self._set_commands(None, None)
        for user_id, role in self.service.staff_roles(PLATFORM).items():
            await self._set_commands(user_id, role)

    async def _set_commands(self, user_id: str | None, role: str | None) -> None:
        """Set one menu: everyone's (no user), or one chat's with its role's staff commands."""
        scope = BotCommandScopeChat(int(user_id)) if user_id else None
        try:
            if user_id and role is None:
                for code in LANGUAGE_CODES:
                    await self.app.bot.delete_my_commands(scope, language_code=code)
            else:
                for language, code in zip(LANGUAGES, LANGUAGE_CODES, strict=True):
                    commands = menu_commands(language, role)
                    await self.app.bot.set_my_commands(commands, scope, language_code=code)
        except TelegramError as error:
            log.warning("could not register Telegram commands: %s", error)
        if user_id:
            self._roles[user_id] = role

    async def _rescope(self, user_id: str) -> None:
        """Give a chat its role's command menu when its role changed (joined, added, removed)."""
        role = self.service.staff_role(PLATFORM, user_id)
        if self._roles.get(user_id) != role:
            await self._set_commands(user_id, role)

    # receiving ----------------------------------------------------------------------------------

    async def _poll(self) -> None:
        """Long-poll getUpdates; store each batch before the next call acknowledges it."""
        offset: int | None = None
        delay = 1.0
        while not self._stopping.is_set():
            try:
                # the raw JSON is what gets stored, so it is not parsed and serialised again
                raw = await self.app.bot.do_api_request(
                    "getUpdates",
                    {"offset": offset, "timeout": POLL_SECONDS, "allowed_updates": ALLOWED_UPDATES},
                    read_timeout=POLL_SECONDS + 10,
                )
            except RetryAfter as error:
                await asyncio.sleep(seconds(error.retry_after))
                continue
            except TelegramError as error:
                log.warning(
                    "getUpdates failed (%s); retrying in %.0f s", type(error).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            if raw:
                await self.take(raw)
                offset = int(raw[-1]["update_id"]) + 1

    def _read(self, payload: object) -> Update:
        """Return the update a payload is; BadBody says why the bot cannot read it."""
        check(TelegramUpdate, payload)
        try:
            update = Update.de_json(payload, self.app.bot)  # type: ignore[arg-type]
        except (TypeError, KeyError, ValueError, AttributeError) as error:
            raise BadBody(f"not an update ({type(error).__name__})") from None
        if update is None:
            raise BadBody("not an update")
        return update

    async def take(self, payloads: list[dict]) -> None:
        """Store raw updates durably, then queue them for processing (unreadable ones refused)."""
        taken: list[tuple[dict, Update]] = []
        for payload in payloads:
            try:
                taken.append((payload, self._read(payload)))
            except BadBody as problem:
                log.info("refused a Telegram update: %s", problem)
        stored = [(str(payload["update_id"]), payload) for payload, _update in taken]
        if not stored:
            return
        if self.queued:
            self.service.store_events(PLATFORM, stored, self._key_of)
            metrics.RECEIVED.labels(PLATFORM).inc(len(stored))
            return
        self._quiet.clear()
        self.service.store_events(PLATFORM, stored)
        metrics.RECEIVED.labels(PLATFORM).inc(len(stored))
        for _payload, update in taken:
            await self.app.update_queue.put(update)

    async def webhook(self, request: Request) -> Response:
        """Receive one webhook update: check the secret, store it, acknowledge, then process."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self.webhook_secret is None or not hmac.compare_digest(
            given.encode(), self.webhook_secret.encode()
        ):
            return refused(PLATFORM, 403, "wrong secret token")
        try:
            payload = parse_json(await request.body())
            self._read(payload)
        except BadBody as problem:
            return refused(PLATFORM, 400, str(problem))
        await self.take([payload])
        return JSONResponse({"ok": True})

    def routes(self) -> list[Route]:
        """Return the web routes this channel serves."""
        return [Route("/telegram/webhook", self.webhook, methods=["POST"])]

    def _key_of(self, payload: dict) -> str | None:
        """Return whose update this is, for the shared queue's per-volunteer order."""
        key = user_key(Update.de_json(payload, self.app.bot))
        return str(key) if key else None

    # handling -----------------------------------------------------------------------------------

    async def process(self, payload: dict, received_at: datetime | None = None) -> None:
        """Handle one stored update now (a queue worker's turn); close it if nothing claimed it.

        A button's query that waited in the queue past QUERY_LIFE is no longer answered.
        """
        update = Update.de_json(payload, self.app.bot)
        if update is None:
            self.service.finish_event(PLATFORM, str(payload.get("update_id")))
            return
        stale = received_at is not None and utcnow() - received_at > QUERY_LIFE
        if stale:
            self._stale.add(update.update_id)
        try:
            await self.app.process_update(update)
        finally:
            self._stale.discard(update.update_id)
        if update.update_id in self._claimed:
            self._claimed.discard(update.update_id)
        else:
            self.service.finish_event(PLATFORM, str(update.update_id))

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer a private message."""
        if update.effective_message is None:
            return
        await self._handle(update, message_input(update.effective_message))

    async def _on_press(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer a button press (stopping the button's spinner first)."""
        query = update.callback_query
        if query is None:
            return
        if query.message is not None and query.message.chat.type != "private":
            await self._stop_spinner(update)
            return
        pressed = query.message.message_id if query.message is not None else None
        await self._handle(update, press_input(query), pressed)

    async def _stop_spinner(self, update: Update, toast: str = "") -> None:
        """Answer a button's query once, and only while Telegram still takes the answer.

        An update seen before (a redelivery) was answered then, and one replayed from the
        database after a restart is too old: answering either only earns a 400.
        """
        query = update.callback_query
        if query is None or update.update_id in self._stale:
            return
        try:
            await query.answer(toast[:MAX_TOAST] or None)
        except TelegramError as error:
            log.info("a button's query was not answered (%s)", type(error).__name__)

    async def _on_group(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Ask people in groups to talk one-to-one, storing nothing."""
        message = update.effective_message
        if message is None or update.effective_user is None:
            return
        language = update.effective_user.language_code
        language = language if language in LANGUAGES else self.service.default_language
        await message.reply_text(text(language, "err.group_chat"))

    async def _handle(self, update: Update, event: Input, pressed: int | None = None) -> None:
        """Answer one input; a toggle redraws the pressed message's buttons in place."""
        user = update.effective_user
        if user is None:
            return
        delivery = await self.service.answer(
            PLATFORM, str(user.id), str(update.update_id), event, language_hint=user.language_code
        )
        # claimed and committed; had handle failed, the after-hook closes the update instead
        self._claimed.add(update.update_id)
        if delivery is None:
            return  # seen before: answered then
        replies = delivery.replies
        toggle = replies[0] if len(replies) == 1 and replies[0].in_place else None
        await self._stop_spinner(update, toggle.toast if toggle else "")
        if pressed and toggle and await self._edit_buttons(delivery.recipient, pressed, toggle):
            self.service.delivered([delivery.outbox_id])
            return
        await self.deliver(delivery)
        if isinstance(event, Text) and event.text.startswith("/"):
            # staff join and are added by commands: only then can the menu need to change
            await self._rescope(str(user.id))

    async def _after_update(self, update: object) -> None:
        if isinstance(update, Update):
            self._stale.discard(update.update_id)
            if update.update_id in self._claimed:
                self._claimed.discard(update.update_id)
            else:
                self.service.finish_event(PLATFORM, str(update.update_id))
        # this update still holds its slot, so one in flight means it is the last
        last = self.app.update_processor.current_concurrent_updates <= 1
        if self.app.update_queue.empty() and last:
            self.service.flush_delivered()
            self._quiet.set()

    async def idle(self) -> None:
        """Wait until every update taken in so far has been handled."""
        await self._quiet.wait()

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure without personal data and apologise to the user."""
        log.error("update failed: %s", type(context.error).__name__, exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            with contextlib.suppress(TelegramError):
                await self.app.bot.send_message(
                    update.effective_chat.id, text(self.service.default_language, "err.internal")
                )

    # sending ------------------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery, kind: Kind = "reply") -> bool:
        """Send a delivery's replies in order, then confirm it; False when it is kept to retry.

        Sends wait their turn in the pacer (replies before notices before broadcasts); one
        that fails for the network stays in the outbox, for the sweep to send again. A blocked
        user or a refused message is not retried.
        """
        try:
            texts: list[Reply] = []
            for reply in delivery.replies:
                if reply.images:
                    await self._send_all(delivery.recipient, texts, kind)
                    texts = []
                    await self._send_photos(delivery.recipient, reply.images, kind)
                if reply.document is None:
                    texts.append(reply)
                    continue
                await self._send_all(delivery.recipient, texts, kind)
                texts = []
                await self._send_document(delivery.recipient, reply, kind)
            await self._send_all(delivery.recipient, texts, kind)
        except Forbidden:
            metrics.send_failed(PLATFORM, 403)
            log.info("a Telegram user has blocked the bot; dropping their replies")
            self.service.set_reachable(PLATFORM, delivery.recipient, False)
        except BadRequest as error:
            metrics.send_failed(PLATFORM, 400)
            log.warning("Telegram refused a reply: %s", error)
        except TelegramError as error:
            metrics.send_failed(PLATFORM, type(error).__name__)
            log.warning(
                "a Telegram %s failed (%s); the outbox keeps it", kind, type(error).__name__
            )
            return False
        self.service.delivered([delivery.outbox_id])
        return True

    async def _edit_buttons(self, chat_id: str, message_id: int, reply: Reply) -> bool:
        """Redraw a sent message's buttons; False when Telegram will not (too old, deleted)."""
        keyboard = markup(reply)
        if not isinstance(keyboard, InlineKeyboardMarkup):
            return False
        try:
            await self.app.bot.edit_message_reply_markup(
                chat_id, message_id, reply_markup=keyboard, rate_limit_args="reply"
            )
        except TelegramError as error:
            log.info("a keyboard was not edited in place (%s); sending it again", error)
            return False
        return True

    async def notify(self, delivery: Delivery) -> bool:
        """Send a message meant for someone other than the sender (after replies)."""
        return await self.deliver(delivery, "notice")

    async def _send_all(self, chat_id: str, replies: list[Reply], kind: Kind) -> None:
        for outgoing in render_all(replies):
            await self._send(chat_id, outgoing.text, outgoing.markup, kind)

    async def _send_document(self, chat_id: str, reply: Reply, kind: Kind) -> None:
        """Send an export as a file, its caption the reply's text."""
        assert reply.document is not None
        found = self.service.export_file(reply.document.token)
        if found is None:
            gone = text(self.service.default_language, "desk.export.gone")
            await self._send(chat_id, gone, None, kind)
            return
        filename, path = found
        # bytes, not an open file: the pacer may send the call again after a 429
        content = path.read_bytes()
        await self.app.bot.send_document(
            chat_id, content, filename=filename, caption=reply.text[:1024], rate_limit_args=kind
        )

    async def _send_photos(self, chat_id: str, images: tuple[Image, ...], kind: Kind) -> None:
        """Send stored photos: one alone, several as an album (up to Telegram's ten)."""
        keeper = self.service.photos
        kept = [keeper.read(i.sha256) for i in images] if keeper is not None else []
        contents = [k.content for k in kept if k is not None]
        if len(contents) == 1:
            await self.app.bot.send_photo(chat_id, contents[0], rate_limit_args=kind)
        elif contents:
            media = [InputMediaPhoto(c) for c in contents[:10]]
            await self.app.bot.send_media_group(chat_id, media, rate_limit_args=kind)

    async def download_photo(self, file_id: str) -> bytes:
        """Fetch the bytes of a photo a volunteer sent (getFile, then the file)."""
        try:
            found = await self.app.bot.get_file(file_id)
        except BadRequest as error:
            raise PhotoGone(f"Telegram refused getFile: {error.message[:100]}") from error
        return bytes(await found.download_as_bytearray())

    async def _send(self, chat_id: str, body: str, markup: object, kind: Kind) -> None:
        # no link previews: the links the bot sends (web desk sign-in, exports) are secrets that
        # Telegram's preview fetcher must not open
        message = {"chat_id": chat_id, "text": body, "reply_markup": markup,
                   "link_preview_options": NO_PREVIEW}  # fmt: skip
        # the sent Message is not needed, so PTB is spared from parsing it
        await self.app.bot.do_api_request("sendMessage", message, rate_limit_args=kind)
