"""A fake LINE Messaging API on loopback that checks every request against LINE's OpenAPI spec.

Beyond the spec it enforces the limits LINE documents in prose (text length, labels, quick
replies, one use per reply token) and can answer with faults (429, 500) on demand.
"""

import asyncio
import io
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SPEC = Path(__file__).resolve().parent.parent / "fixtures" / "line" / "messaging-api.yml"
_spec_cache: dict[str, Any] = {}
MULTICAST_LIMIT = 500


def _spec() -> dict[str, Any]:
    if not _spec_cache:
        _spec_cache.update(yaml.safe_load(SPEC.read_text("utf-8")))
    return _spec_cache


# what LINE answers with each fault status, as its documentation shows
FAULT_MESSAGES = {
    400: "The request body has 1 error(s)",
    429: "The API rate limit has been exceeded. Try again later.",
    500: "Internal server error",
}
MONTHLY_LIMIT = "You have reached your monthly limit."
INVALID_TOKEN = "Invalid reply token"


@dataclass
class Fault:
    """One answer to force: a status, LINE's message for it, on one path (None: any)."""

    status: int
    message: str | None = None
    path: str | None = None

    def body(self) -> dict[str, Any]:
        """Return the JSON body LINE answers with."""
        message = self.message or FAULT_MESSAGES.get(self.status, f"fault {self.status}")
        return {"message": message}


@dataclass
class Sent:
    """One accepted reply or push: to whom, and the messages."""

    kind: str
    to: str
    messages: list[dict[str, Any]]


@dataclass
class FakeLine:
    """The fake's state; tests drive it from their own thread or loop."""

    validate: bool = True
    sent: list[Sent] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # statuses (or Faults) to answer the next sending calls with, before accepting again
    faults: list[int | Fault] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    retry_keys: set[str] = field(default_factory=set)
    # a request for which this returns True is held until release(), then fails with 500
    hold: Callable[[dict[str, Any]], bool] | None = None
    holding: int = 0
    # a multicast for which this returns True is accepted, then its answer held until release()
    hold_after_accept: Callable[[dict[str, Any]], bool] | None = None
    # the monthly message quota (None: unlimited) and what has been used of it
    quota: int | None = None
    usage: int = 0
    multicasts: int = 0
    # what GET /v2/bot/message/{id}/content serves per message id (a missing id answers 404)
    contents: dict[str, bytes] = field(default_factory=dict)
    # statuses to answer the next content downloads with, before serving again
    content_faults: list[int] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    # while set, content downloads wait (to show that nothing else waits for them)
    content_gate: threading.Event | None = None
    # rich menus by id, their uploaded images, and the one every user sees
    rich_menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    rich_menu_images: dict[str, bytes] = field(default_factory=dict)
    default_rich_menu: str | None = None
    _released: threading.Event = field(default_factory=threading.Event)
    _openapi: OpenAPI | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _changed: threading.Condition = field(init=False)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    # driven by tests ----------------------------------------------------------------------------

    def issue_token(self, user_id: str) -> str:
        """Return a fresh reply token for an event from a user."""
        token = f"rt{next(self._counter):08d}"
        with self._lock:
            self.tokens[token] = user_id
        return token

    def release(self) -> None:
        """Fail held requests and hold no more."""
        self.hold = None
        self.hold_after_accept = None
        self._released.set()

    def messages_to(self, user_id: str) -> list[dict[str, Any]]:
        """Return every message delivered to a user, in order."""
        with self._lock:
            return [m for s in self.sent if s.to == user_id for m in s.messages]

    def texts_to(self, user_id: str) -> list[str]:
        """Return the texts (or Flex alt texts) delivered to a user."""
        return [m.get("text") or m.get("altText", "") for m in self.messages_to(user_id)]

    def wait_for(self, predicate: Callable[["FakeLine"], bool], timeout: float = 20) -> None:
        """Block until a predicate holds (woken by every request), or fail."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the fake LINE never saw what the test waited for")
                self._changed.wait(remaining)

    # served to the bot --------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer one Messaging API call."""
        body = await request.body()
        request.state.body = body
        problems = self._check(request, body) if self.validate else []
        if request.method == "GET" and request.url.path.endswith("/content"):
            return await self._content(request, problems)
        is_json = request.headers.get("content-type", "").startswith("application/json")
        payload = json.loads(body) if body and is_json else {}
        if self.hold is not None and self.hold(payload):
            with self._changed:
                self.holding += 1
                self._changed.notify_all()
            await asyncio.to_thread(self._released.wait)
            return JSONResponse({"message": "held"}, status_code=500)
        with self._changed:
            self.requests.append((request.url.path, payload))
            self.violations += problems
            self._changed.notify_all()
            if problems:
                return JSONResponse({"message": "; ".join(problems)}, status_code=400)
            fault = self._fault(request.url.path)
            if fault is not None:
                return JSONResponse(fault.body(), status_code=fault.status)
            answer = self._accept(request, payload)
        if self.hold_after_accept is not None and self.hold_after_accept(payload):
            with self._changed:
                self.holding += 1
                self._changed.notify_all()
            await asyncio.to_thread(self._released.wait)
            return JSONResponse({"message": "held"}, status_code=500)
        return answer

    async def _content(self, request: Request, problems: list[str]) -> Response:
        """Serve what a user sent, as api-data.line.me does, or a fault or 404."""
        message_id = request.url.path.split("/")[-2]
        if self.content_gate is not None:
            await asyncio.to_thread(self.content_gate.wait)
        with self._changed:
            self.violations += problems
            self.downloads.append(message_id)
            self._changed.notify_all()
            if problems:
                return JSONResponse({"message": "; ".join(problems)}, status_code=400)
            if self.content_faults:
                status = self.content_faults.pop(0)
                return JSONResponse({"message": f"fault {status}"}, status_code=status)
            content = self.contents.get(message_id)
        if content is None:
            return JSONResponse({"message": "Not found"}, status_code=404)
        return Response(content, media_type="application/octet-stream")

    def _fault(self, path: str) -> Fault | None:
        """Take the first fault meant for a path, if any."""
        for index, fault in enumerate(self.faults):
            fault = fault if isinstance(fault, Fault) else Fault(fault)
            if fault.path in (None, path):
                del self.faults[index]
                return fault
        return None

    def expire(self, token: str) -> None:
        """Let a reply token lapse, as LINE's do a while after the event."""
        with self._lock:
            self.tokens.pop(token, None)

    def _accept(self, request: Request, payload: dict[str, Any]) -> JSONResponse:
        path = request.url.path
        if path == "/v2/bot/message/reply":
            user = self.tokens.pop(payload["replyToken"], None)
            if user is None:
                return JSONResponse({"message": INVALID_TOKEN}, status_code=400)
            self.sent.append(Sent("reply", user, payload["messages"]))
            return JSONResponse(self._sent_messages(payload))
        if path == "/v2/bot/message/push":
            key = request.headers.get("x-line-retry-key")
            if key is not None and key in self.retry_keys:
                return JSONResponse({"message": "already accepted"}, status_code=409)
            if self.quota is not None and self.usage + 1 > self.quota:
                return JSONResponse({"message": MONTHLY_LIMIT}, 429)
            if key is not None:
                self.retry_keys.add(key)
            self.usage += 1
            self.sent.append(Sent("push", payload["to"], payload["messages"]))
            return JSONResponse(self._sent_messages(payload))
        if path == "/v2/bot/message/multicast":
            return self._multicast(request, payload)
        if "richmenu" in path:
            return self._rich_menu(request, payload)
        if path == "/v2/bot/message/quota":
            limited = {"type": "limited", "value": self.quota}
            return JSONResponse(limited if self.quota is not None else {"type": "none"})
        if path == "/v2/bot/message/quota/consumption":
            return JSONResponse({"totalUsage": self.usage})
        return JSONResponse({"message": "Not found"}, status_code=404)

    def _multicast(self, request: Request, payload: dict[str, Any]) -> JSONResponse:
        """Accept a multicast once per retry key, within 500 recipients and the quota."""
        to = payload["to"]
        if len(to) > MULTICAST_LIMIT:
            return JSONResponse({"message": "The property, 'to', size over"}, status_code=400)
        key = request.headers.get("x-line-retry-key")
        if key is not None and key in self.retry_keys:
            return JSONResponse({"message": "already accepted"}, status_code=409)
        if self.quota is not None and self.usage + len(to) > self.quota:
            return JSONResponse({"message": MONTHLY_LIMIT}, 429)
        if key is not None:
            self.retry_keys.add(key)
        self.usage += len(to)
        self.multicasts += 1
        self.sent += [Sent("multicast", user, payload["messages"]) for user in to]
        return JSONResponse({})

    def _rich_menu(self, request: Request, payload: dict[str, Any]) -> JSONResponse:
        """Create, illustrate, list, delete and set rich menus as LINE does."""
        path, method = request.url.path, request.method
        parts = path.split("/")
        if path == "/v2/bot/richmenu" and method == "POST":
            problems = rich_menu_limits(payload)
            if problems:
                self.violations += problems
                return JSONResponse({"message": "; ".join(problems)}, status_code=400)
            menu_id = f"richmenu-{next(self._counter):032d}"
            self.rich_menus[menu_id] = {"richMenuId": menu_id, **payload}
            return JSONResponse({"richMenuId": menu_id})
        if path == "/v2/bot/richmenu/list":
            return JSONResponse({"richmenus": list(self.rich_menus.values())})
        if path == "/v2/bot/user/all/richmenu" and method == "GET":
            if self.default_rich_menu is None:
                return JSONResponse({"message": "no default richmenu"}, status_code=404)
            return JSONResponse({"richMenuId": self.default_rich_menu})
        menu_id = parts[-1] if parts[-1] != "content" else parts[-2]
        if menu_id not in self.rich_menus:
            return JSONResponse({"message": "richmenu not found"}, status_code=404)
        if path.endswith("/content"):
            problems = rich_menu_image(request.state.body, self.rich_menus[menu_id]["size"],
                                       request.headers.get("content-type", ""))  # fmt: skip
            if problems:
                self.violations += problems
                return JSONResponse({"message": "; ".join(problems)}, status_code=400)
            self.rich_menu_images[menu_id] = request.state.body
            return JSONResponse({})
        if path == f"/v2/bot/richmenu/{menu_id}" and method == "GET":
            return JSONResponse(self.rich_menus[menu_id])
        if path.startswith("/v2/bot/user/all/richmenu/"):
            if menu_id not in self.rich_menu_images:
                problem = "must upload richmenu image before applying it to user"
                self.violations.append(problem)
                return JSONResponse({"message": problem}, status_code=400)
            self.default_rich_menu = menu_id
            return JSONResponse({})
        if method == "DELETE":
            # LINE leaves a deleted menu as the default: GET of the default still names it
            self.rich_menus.pop(menu_id)
            self.rich_menu_images.pop(menu_id, None)
            return JSONResponse({})
        return JSONResponse({"message": "Not found"}, status_code=404)

    def _sent_messages(self, payload: dict[str, Any]) -> dict[str, Any]:
        ids = [str(next(self._counter)) for _ in payload["messages"]]
        return {"sentMessages": [{"id": i, "quoteToken": f"q{i}"} for i in ids]}

    def _check(self, request: Request, body: bytes) -> list[str]:
        """Return what the real LINE would reject in a request."""
        if self._openapi is None:
            here = [{"url": str(request.base_url).rstrip("/")}]
            spec = dict(_spec())
            spec["servers"] = here
            # this fake serves every host, api-data.line.me's paths included
            spec["paths"] = {
                path: {
                    method: {**op, "servers": here}
                    if isinstance(op, dict) and "servers" in op
                    else op
                    for method, op in item.items()
                }
                for path, item in _spec()["paths"].items()
            }
            self._openapi = OpenAPI.from_dict(spec)
        problems = []
        try:
            self._openapi.validate_request(StarletteOpenAPIRequest(request, body=body))
        except Exception as error:  # openapi-core raises a family of errors; any is a rejection
            problems.append(f"{request.url.path}: {error}")
        is_json = request.headers.get("content-type", "").startswith("application/json")
        if body and is_json and not problems:
            payload = json.loads(body)
            schema = _request_schema(request.url.path)
            if schema is not None:
                problems += [f"{request.url.path}: {p}" for p in subtypes(payload, schema)]
            problems += limits(payload)
        return problems


def _request_schema(path: str) -> dict[str, Any] | None:
    operation = _spec()["paths"].get(path, {}).get("post", {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    return content.get("schema")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = _spec()["components"]["schemas"][name]
    return schema


def subtypes(value: Any, schema: dict[str, Any], path: str = "$", follow: bool = True) -> list[str]:
    """Validate a value the way LINE does: each polymorphic object against its own type.

    openapi-core checks a message only against the base Message schema, because JSON Schema
    ignores OpenAPI discriminators; this walks them (Message, Action, FlexComponent, ...).
    """
    schema = _resolve(schema)
    discriminator = schema.get("discriminator")
    if follow and discriminator and isinstance(value, dict):
        kind = value.get(discriminator["propertyName"])
        target = discriminator.get("mapping", {}).get(kind)
        if target is None:
            return [f"{path}: unknown {discriminator['propertyName']} {kind!r}"]
        return subtypes(value, {"$ref": target}, path, follow=False)
    problems: list[str] = []
    for part in schema.get("allOf", []):
        # the base schema of allOf carries the discriminator that led here: do not loop
        problems += subtypes(value, part, path, follow=False)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [*problems, f"{path}: expected an object"]
        problems += [f"{path}: missing {name}" for name in schema.get("required", [])
                     if name not in value]  # fmt: skip
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                problems += subtypes(value[name], sub, f"{path}.{name}")
    elif kind == "array":
        if not isinstance(value, list):
            return [*problems, f"{path}: expected an array"]
        if len(value) > schema.get("maxItems", len(value)):
            problems.append(f"{path}: more than {schema['maxItems']} items")
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{path}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            problems += subtypes(item, schema.get("items", {}), f"{path}[{index}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [*problems, f"{path}: expected a string"]
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
        if len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{path}: longer than {schema['maxLength']}")
    elif kind in ("integer", "number") and not isinstance(value, int | float):
        problems.append(f"{path}: expected a number")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: expected a boolean")
    return problems


def limits(payload: dict[str, Any]) -> list[str]:
    """Return the documented LINE limits a request body breaks."""
    problems = []
    messages = payload.get("messages", [])
    if len(messages) > 5:
        problems.append("more than 5 messages")
    for message in messages:
        if message.get("type") == "text" and len(message.get("text", "")) > 5000:
            problems.append("text longer than 5000 characters")
        if len(message.get("altText", "")) > 1500:
            problems.append("altText longer than 1500 characters")
        items = message.get("quickReply", {}).get("items", [])
        if len(items) > 13:
            problems.append("more than 13 quick reply items")
        for item in items:
            problems += _action(item["action"], 20)
        for action in _flex_actions(message.get("contents")):
            problems += _action(action, 40)
        contents = message.get("contents") or {}
        if contents.get("type") == "carousel" and len(contents.get("contents", [])) > 12:
            problems.append("more than 12 bubbles in a carousel")
    return problems


def _action(action: dict[str, Any], label_limit: int) -> list[str]:
    problems = []
    # LINE counts characters in UTF-16 code units: an emoji takes two
    if len(action.get("label", "").encode("utf-16-le")) // 2 > label_limit:
        problems.append(f"action label over {label_limit}: {action.get('label')!r}")
    if len(action.get("data", "")) > 300:
        problems.append("postback data over 300")
    if len(action.get("displayText", "")) > 300:
        problems.append("displayText over 300")
    return problems


def _flex_actions(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["action"]] if isinstance(node.get("action"), dict) else []
        for value in node.values():
            if isinstance(value, dict | list):
                found += _flex_actions(value)
        return found
    if isinstance(node, list):
        return [a for item in node for a in _flex_actions(item)]
    return []


# what LINE documents for rich menus beyond the OpenAPI schema
RICH_MENU_WIDTH = (800, 2500)
RICH_MENU_MIN_HEIGHT = 250
RICH_MENU_MIN_RATIO = 1.45
RICH_MENU_AREAS = 20
RICH_MENU_IMAGE_BYTES = 1024 * 1024


def rich_menu_limits(menu: dict[str, Any]) -> list[str]:
    """Return the documented rich menu limits a rich menu object breaks."""
    problems = []
    width, height = menu["size"]["width"], menu["size"]["height"]
    if not RICH_MENU_WIDTH[0] <= width <= RICH_MENU_WIDTH[1] or height < RICH_MENU_MIN_HEIGHT:
        problems.append(f"rich menu size {width}x{height} out of range")
    if width / height < RICH_MENU_MIN_RATIO:
        problems.append("rich menu aspect ratio below 1.45")
    if not 1 <= len(menu.get("areas", [])) <= RICH_MENU_AREAS:
        problems.append("rich menu needs 1 to 20 areas")
    for area in menu.get("areas", []):
        box = area["bounds"]
        if box["x"] + box["width"] > width or box["y"] + box["height"] > height:
            problems.append(f"rich menu area {box} outside the menu")
        problems += _action(area["action"], 20)
    return problems


def rich_menu_image(body: bytes, size: dict[str, int], content_type: str) -> list[str]:
    """Return what LINE would reject in a rich menu image: type, weight and dimensions."""
    from PIL import Image

    if content_type not in ("image/png", "image/jpeg"):
        return [f"rich menu image content type {content_type!r}"]
    if len(body) > RICH_MENU_IMAGE_BYTES:
        return [f"rich menu image of {len(body)} bytes, over 1 MB"]
    with Image.open(io.BytesIO(body)) as image:
        expected = image.format == ("PNG" if content_type == "image/png" else "JPEG")
        problems = [] if expected else [f"a {image.format} image sent as {content_type}"]
        if image.size != (size["width"], size["height"]):
            problems.append(f"rich menu image {image.size} does not match the menu {size}")
    return problems


def app(fake: FakeLine) -> Starlette:
    """Return the ASGI app serving a fake."""
    methods = ["GET", "POST", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", fake.handle, methods=methods)])
