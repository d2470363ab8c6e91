"""A fake Telegram Bot API on loopback: hands out queued updates and records what the bot sends."""

import asyncio
import collections
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# the calls Telegram's rate limit counts: everything that sends or changes a message
COUNTED = {"sendMessage", "sendDocument", "sendPhoto", "sendMediaGroup", "editMessageText",
           "editMessageReplyMarkup", "answerCallbackQuery"}  # fmt: skip
JSON_FIELDS = {"reply_markup", "allowed_updates", "commands", "entities", "media",
               "link_preview_options", "scope"}  # fmt: skip
BOT_USER = {
    "id": 4242,
    "is_bot": True,
    "first_name": "WelfareBot",
    "username": "welfare_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class Call:
    """One Bot API call the bot made."""

    method: str
    params: dict[str, Any]
    # the id the fake gave a sent message (sendMessage, sendDocument)
    message_id: int | None = None


@dataclass
class FakeTelegram:
    """The fake's state; the Starlette app serves it and tests drive it from their thread."""

    # getUpdates waits at most this long for an update before answering with none
    poll_cap: float = 1.0
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: int = 0
    on_send: Callable[[Call], None] | None = None
    # a sendMessage for which this returns True is held until `release()` (to crash mid-send)
    hold: Callable[[Call], bool] | None = None
    # a sendMessage for which this returns True is delivered, then its answer held until
    # `release()` (to crash after Telegram took a message but before the bot heard so)
    hold_after_accept: Callable[[Call], bool] | None = None
    holding: int = 0
    # messages (sends, edits, answers to button presses) accepted in any one second across
    # chats before answering 429, as Telegram does (None: no limit)
    rate_limit: float | None = None
    too_many: int = 0
    # answers to a button's query after the first: Telegram refuses them with 400
    answered_again: int = 0
    answered: set[str] = field(default_factory=set)
    # chats whose user has blocked the bot (sendMessage answers 403)
    blocked: set[int] = field(default_factory=set)
    # what getFile and the file download serve per file id (an unknown id answers 400)
    files: dict[str, bytes] = field(default_factory=dict)
    # statuses to answer the next file downloads with, before serving again
    file_faults: list[int] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    # while set, file downloads wait (to show that nothing else waits for them)
    file_gate: threading.Event | None = None
    # the webhook set with setWebhook ("" for none); getUpdates answers 409 while one is set
    webhook_url: str = ""
    # tokens answered 401 Unauthorized, as Telegram answers a revoked or mistyped token
    rejected_tokens: set[str] = field(default_factory=set)
    # this many next calls are answered 502 Bad Gateway, as when Telegram cannot be reached
    unreachable: int = 0
    # this many next sendMessage calls are answered 502 (polling and the rest unaffected)
    sends_unreachable: int = 0
    # every call asked for, by method, whatever it was answered
    asked: collections.Counter[str] = field(default_factory=collections.Counter)
    _recent: collections.deque = field(default_factory=collections.deque)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _changed: threading.Condition = field(init=False)
    _arrived: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _released: threading.Event = field(default_factory=threading.Event)
    _message_ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    # what each sent message shows now, by (chat id, message id): its text and reply_markup
    shown: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # the ids of the messages sent to each chat, oldest first (a chat's look needs no scan)
    _by_chat: collections.defaultdict[int, list[int]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    # Bot API calls refused as Telegram would (bad request), with the reason
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    # driven by tests ----------------------------------------------------------------------------

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for the bot's next getUpdates."""
        with self._lock:
            self.updates.extend(updates)
        if self._loop is not None and self._arrived is not None:
            self._loop.call_soon_threadsafe(self._arrived.set)

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """Return the sendMessage calls so far (to one chat when given)."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == "sendMessage"
                and (chat_id is None or int(c.params["chat_id"]) == chat_id)
            ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """Return the texts sent so far."""
        return [c.params["text"] for c in self.sent(chat_id)]

    def shown_in(self, chat_id: int) -> list[tuple[int, dict[str, Any]]]:
        """Return what each message sent to a chat shows now, oldest first."""
        with self._lock:
            return [(m, self.shown[(chat_id, m)]) for m in self._by_chat[chat_id]]

    def wait_for(self, predicate: Callable[["FakeTelegram"], bool], timeout: float = 20) -> None:
        """Block until a predicate over the fake holds (woken by every change), or fail."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate(self):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the fake Telegram never saw what the test waited for")
                self._changed.wait(remaining)

    def wait_sent(self, count: int, chat_id: int | None = None, timeout: float = 20) -> None:
        """Block until at least `count` messages were sent (to a chat)."""
        self.wait_for(lambda fake: len(fake.sent(chat_id)) >= count, timeout)

    def release(self) -> None:
        """Fail held sendMessage calls and hold no more."""
        self.hold = None
        self.hold_after_accept = None
        self._released.set()

    # served to the bot --------------------------------------------------------------------------

    async def handle(self, request: Request) -> JSONResponse:
        """Answer one Bot API call."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._arrived = asyncio.Event()
        method = request.path_params["method"]
        params = await self._params(request)
        self.asked[method] += 1
        if request.path_params["token"] in self.rejected_tokens:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"},
                                status_code=401)  # fmt: skip
        if self.unreachable > 0 or (method == "sendMessage" and self.sends_unreachable > 0):
            if self.unreachable > 0:
                self.unreachable -= 1
            else:
                self.sends_unreachable -= 1
            return JSONResponse({"ok": False, "error_code": 502, "description": "Bad Gateway"},
                                status_code=502)  # fmt: skip
        if method == "getUpdates" and self.webhook_url:
            body = {"ok": False, "error_code": 409, "description": "Conflict: can't use "
                    "getUpdates method while webhook is active"}  # fmt: skip
            return JSONResponse(body, status_code=409)
        if method == "getUpdates":
            return JSONResponse({"ok": True, "result": await self._get_updates(params)})
        call = Call(method, params)
        refusal = self._refusal(call) if method in COUNTED else None
        problem = bad_request(call, self.shown)
        if problem is not None:
            with self._changed:
                self.refused.append(problem)
                self._changed.notify_all()
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {problem}"}
            return JSONResponse(body, status_code=400)
        if refusal is not None:
            return refusal
        if method == "answerCallbackQuery":
            with self._lock:
                again = params["callback_query_id"] in self.answered
                self.answered.add(params["callback_query_id"])
                self.answered_again += again
            if again:
                body = {"ok": False, "error_code": 400, "description": "Bad Request: query is "
                        "too old and response timeout expired or query ID is invalid"}  # fmt: skip
                return JSONResponse(body, status_code=400)
        if method == "sendMessage" and self.hold is not None and self.hold(call):
            with self._changed:
                self.holding += 1
                self._changed.notify_all()
            await asyncio.to_thread(self._released.wait)
            return JSONResponse({"ok": False, "error_code": 500, "description": "held"}, 500)
        with self._changed:
            result = self._result(call)
            self.calls.append(call)
            self._changed.notify_all()
        if self.on_send is not None:
            self.on_send(call)
        accepted = self.hold_after_accept
        if method == "sendMessage" and accepted is not None and accepted(call):
            with self._changed:
                self.holding += 1
                self._changed.notify_all()
            await asyncio.to_thread(self._released.wait)
            return JSONResponse({"ok": False, "error_code": 500, "description": "held"}, 500)
        if result is None and method == "getFile":
            body = {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
            return JSONResponse(body, status_code=400)
        if result is None:
            body = {"ok": False, "error_code": 404, "description": "Not Found"}
            return JSONResponse(body, status_code=404)
        return JSONResponse({"ok": True, "result": result})

    def _refusal(self, call: Call) -> JSONResponse | None:
        """Answer 403 for a blocked chat, or 429 above the rate limit, as Telegram does."""
        if int(call.params.get("chat_id", 0)) in self.blocked:
            body = {"ok": False, "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user"}  # fmt: skip
            return JSONResponse(body, status_code=403)
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                self.too_many += 1
                body = {"ok": False, "error_code": 429, "parameters": {"retry_after": 1},
                        "description": "Too Many Requests: retry after 1"}  # fmt: skip
                return JSONResponse(body, status_code=429)
            self._recent.append(now)
        return None

    async def _params(self, request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "")
        if kind.startswith("application/json"):
            return dict(await request.json())
        if kind.startswith("multipart/form-data"):
            async with request.form() as form:
                return {
                    key: (value.filename, await value.read())
                    if hasattr(value, "filename")
                    else (json.loads(value) if key in JSON_FIELDS else value)
                    for key, value in form.multi_items()
                }
        # python-telegram-bot posts url-encoded forms (multipart only for uploads)
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        params: dict[str, Any] = {}
        for key, value in form:
            params[key] = json.loads(value) if key in JSON_FIELDS else value
        return params

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), self.poll_cap)
        with self._changed:
            # an offset tells Telegram every update below it has arrived: it forgets them
            if offset > self.acknowledged:
                self.acknowledged = offset
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            self._changed.notify_all()
        assert self._arrived is not None
        if not self._ready(offset) and timeout > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        with self._lock:
            return [u for u in self.updates if u["update_id"] >= offset][:100]

    def _ready(self, offset: int) -> bool:
        with self._lock:
            return any(u["update_id"] >= offset for u in self.updates)

    async def download(self, request: Request) -> Response:
        """Serve a file's bytes by the path getFile gave, as api.telegram.org/file does."""
        file_id = request.path_params["path"].rsplit("/", 1)[-1]
        if self.file_gate is not None:
            await asyncio.to_thread(self.file_gate.wait)
        with self._changed:
            self.downloads.append(file_id)
            self._changed.notify_all()
            if self.file_faults:
                status = self.file_faults.pop(0)
                return Response(b"fault", status_code=status)
            content = self.files.get(file_id)
        if content is None:
            return Response(b"Not Found", status_code=404)
        return Response(content, media_type="application/octet-stream")

    def photos_sent(self, chat_id: int | None = None) -> list[bytes]:
        """Return the photo files sent so far (by sendPhoto or in albums), in order."""
        with self._lock:
            calls = [c for c in self.calls if c.method in ("sendPhoto", "sendMediaGroup")
                     and (chat_id is None or int(c.params["chat_id"]) == chat_id)]  # fmt: skip
        sent = []
        for call in calls:
            if call.method == "sendPhoto":
                sent.append(call.params["photo"][1])
            else:
                for item in call.params["media"]:
                    sent.append(call.params[item["media"].removeprefix("attach://")][1])
        return sent

    def _message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "V"},
            **content,
        }

    def _result(self, call: Call) -> Any:
        if call.method == "getMe":
            return BOT_USER
        if call.method == "getFile":
            file_id = call.params["file_id"]
            if file_id not in self.files:
                return None
            return {"file_id": file_id, "file_unique_id": f"{file_id}-u",
                    "file_size": len(self.files[file_id]),
                    "file_path": f"photos/{file_id}"}  # fmt: skip
        if call.method == "sendPhoto":
            size = {"file_id": "sent", "file_unique_id": "s", "width": 1, "height": 1}
            return self._message(int(call.params["chat_id"]), photo=[size])
        if call.method == "sendMediaGroup":
            size = {"file_id": "sent", "file_unique_id": "s", "width": 1, "height": 1}
            chat_id = int(call.params["chat_id"])
            return [self._message(chat_id, photo=[size]) for _ in call.params["media"]]
        if call.method in ("setWebhook", "deleteWebhook"):
            self.webhook_url = call.params.get("url", "") if call.method == "setWebhook" else ""
            return True
        if call.method == "getWebhookInfo":
            return {"url": self.webhook_url, "has_custom_certificate": False,
                    "pending_update_count": 0}  # fmt: skip
        if call.method == "sendDocument":
            call.message_id = next(self._message_ids)
            filename, content = call.params["document"]
            document = {
                "file_id": f"doc-{len(content)}",
                "file_unique_id": "u",
                "file_name": filename,
            }
            return {
                "message_id": call.message_id,
                "date": int(time.time()),
                "chat": {"id": int(call.params["chat_id"]), "type": "private", "first_name": "V"},
                "document": document,
            }
        if call.method in {"sendMessage", "editMessageText", "editMessageReplyMarkup"}:
            chat_id = int(call.params["chat_id"])
            if call.method == "sendMessage":
                call.message_id = next(self._message_ids)
                self.shown[(chat_id, call.message_id)] = {
                    "text": call.params["text"],
                    "reply_markup": call.params.get("reply_markup"),
                }
                self._by_chat[chat_id].append(call.message_id)
            else:
                call.message_id = int(call.params["message_id"])
                self.shown[(chat_id, call.message_id)].update(
                    {k: v for k, v in call.params.items() if k in ("text", "reply_markup")}
                )
            return {
                "message_id": call.message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Volunteer"},
                "from": BOT_USER,
                "text": call.params.get("text", ""),
            }
        if call.method in {
            "answerCallbackQuery",
            "setMyCommands",
            "deleteMyCommands",
            "deleteWebhook",
            "setWebhook",
            "close",
        }:
            return True
        return None

    def app(self) -> Starlette:
        """Return the ASGI app serving this fake."""
        return Starlette(
            routes=[
                Route("/bot{token}/{method}", self.handle, methods=["POST"]),
                Route("/file/bot{token}/{path:path}", self.download, methods=["GET"]),
            ]
        )


MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_TOAST = 200
MAX_ROW = 8
MAX_BUTTONS = 100


def bad_request(call: Call, shown: dict[tuple[int, int], dict[str, Any]]) -> str | None:
    """Return why Telegram would refuse a call with 400 Bad Request, or None."""
    params = call.params
    if call.method == "sendMessage" and not 1 <= len(str(params.get("text", ""))) <= MAX_TEXT:
        return "message text is empty or too long"
    if call.method == "answerCallbackQuery" and len(params.get("text") or "") > MAX_TOAST:
        return "callback answer text is too long"
    if call.method == "editMessageReplyMarkup":
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in shown:
            return "message to edit not found"
        if shown[key]["reply_markup"] == params.get("reply_markup"):
            return "message is not modified"
    keyboard = (params.get("reply_markup") or {}).get("inline_keyboard")
    if keyboard is not None:
        buttons = [b for row in keyboard for b in row]
        if len(buttons) > MAX_BUTTONS or any(len(row) > MAX_ROW for row in keyboard):
            return "too many inline keyboard buttons"
        for button in buttons:
            if not 1 <= len(button.get("callback_data", "").encode()) <= MAX_CALLBACK_DATA:
                return "BUTTON_DATA_INVALID"
    return None


class Updates:
    """Builds Telegram update dicts for one user, numbering them like Telegram does."""

    _ids = itertools.count(1)

    def __init__(self, user_id: int, language: str = "th", first_name: str = "สมศรี") -> None:
        self.user = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language,
        }
        self.chat = {"id": user_id, "type": "private", "first_name": first_name}

    def _message(self, **content: Any) -> dict[str, Any]:
        update_id = next(self._ids)
        message = {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": self.chat,
            "from": self.user,
            **content,
        }
        return {"update_id": update_id, "message": message}

    def text(self, body: str) -> dict[str, Any]:
        """A typed message (a /command included)."""
        entities = []
        if body.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(body.split()[0])}]
        return self._message(text=body, entities=entities) if entities else self._message(text=body)

    def press(self, data: str, message_id: int = 1) -> dict[str, Any]:
        """A press of an inline button carrying `data`, under a message the bot sent."""
        update_id = next(self._ids)
        query = {
            "id": str(update_id),
            "from": self.user,
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self.chat,
                "text": "…",
            },
        }
        return {"update_id": update_id, "callback_query": query}

    def contact(self, phone: str) -> dict[str, Any]:
        """A shared contact."""
        contact = {"phone_number": phone, "first_name": "x", "user_id": self.user["id"]}
        return self._message(contact=contact)

    def photo(self, file_id: str) -> dict[str, Any]:
        """A photo, in two sizes as Telegram sends them."""
        sizes = [
            {"file_id": f"{file_id}-s", "file_unique_id": f"{file_id}-us", "width": 90,
             "height": 90},
            {"file_id": file_id, "file_unique_id": f"{file_id}-u", "width": 800, "height": 800},
        ]  # fmt: skip
        return self._message(photo=sizes)

    def location(self, latitude: float, longitude: float) -> dict[str, Any]:
        """A shared location."""
        return self._message(location={"latitude": latitude, "longitude": longitude})

    def sticker(self) -> dict[str, Any]:
        """A sticker, which the bot cannot read."""
        sticker = {
            "file_id": "stk",
            "file_unique_id": "stku",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
        }
        return self._message(sticker=sticker)

    def voice(self) -> dict[str, Any]:
        """A voice note."""
        return self._message(voice={"file_id": "v", "file_unique_id": "vu", "duration": 3})
