"""The web desk's frame: sessions from cookies, CSRF and Origin checks, roles, sign-in pages."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app.service import Delivery, WelfareService
from bot.desk.views import web_login_notice
from bot.domain.i18n import LANGUAGES
from bot.domain.messages import Notice
from bot.domain.roles import Officer
from handlers.desk_web.render import Pages, when
from storage import desk_logins, staff
from storage.db import reading

SESSION_COOKIE = "__Host-welfaredesk"
CODE_COOKIE = "__Host-welfaredesk-code"
LANGUAGE_COOKIE = "desk_lang"


@dataclass
class Visit:
    """One signed-in request: the officer, their session, language and open transaction."""

    request: Request
    connection: Connection
    row: RowMapping
    officer: Officer
    language: str
    now: datetime
    form: FormData | None = None
    # a write transaction; otherwise a read-only snapshot whose writes wait in `audits`
    writing: bool = False
    # notices queued in this transaction, handed to the couriers after the commit
    queued: list[Delivery] = field(default_factory=list)
    # what a reading visit saw, written to the audit log once its read has ended
    audits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # what a POST's `before` read on a reading connection ahead of its write transaction
    read: Any = None

    def value(self, name: str) -> str:
        """Return a form field as text ('' when absent)."""
        found = self.form.get(name) if self.form is not None else None
        return found.strip() if isinstance(found, str) else ""


Handler = Callable[[Visit], Response]
Reader = Callable[[Visit], Any]


class DeskWeb:
    """Serves the web desk from the service: every page checks its officer, role and token."""

    def __init__(self, service: WelfareService, web_url: str, secure: bool = True) -> None:
        self.service = service
        self.web_url = web_url.rstrip("/")
        self.secure = secure
        self.pages = Pages(service.province)

    # the frame --------------------------------------------------------------------------------

    def language(self, request: Request) -> str:
        """Return the language this browser chose (Thai unless English was picked)."""
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        return chosen if chosen in LANGUAGES else self.service.default_language

    def same_origin(self, request: Request) -> bool:
        """Tell whether a POST came from a page of this desk (Origin, else Referer)."""
        sent = request.headers.get("origin") or request.headers.get("referer")
        if not sent:
            return False
        origin = urlsplit(sent)
        return origin.netloc in (request.headers.get("host"), urlsplit(self.web_url).netloc)

    def page(
        self,
        handler: Handler,
        need: str | None = None,
        *,
        only_reads: bool = False,
        before: Reader | None = None,
    ) -> Callable[..., Any]:
        """Wrap a handler: sign-in, role, CSRF and Origin checks, its transaction, then notices.

        A GET, or a POST that `only_reads`, runs on a read-only snapshot, which on SQLite never
        takes the write lock: volunteers' answers commit while a page reads a million rows. What
        it must write (the session's last use, the audit of what was shown) is written after,
        in one short write transaction, before the page leaves. Any other POST runs in a write
        transaction; what it reads at length (`before`) is read first, on a reading connection,
        and handed to it as `visit.read`.
        """

        async def endpoint(request: Request) -> Response:
            form = await request.form() if request.method == "POST" else None
            reads = form is None or only_reads
            return await run_in_threadpool(self._visit, request, form, handler, need, reads,
                                           before)  # fmt: skip

        return endpoint

    def _visit(
        self,
        request: Request,
        form: FormData | None,
        handler: Handler,
        need: str | None,
        reads: bool,
        before: Reader | None,
    ) -> Response:
        language = self.language(request)
        if form is not None and not self.same_origin(request):
            return self.forbidden(language)
        now = self.service.clock()
        if reads:
            with reading(self.service.db) as connection:
                visit = self._check(request, connection, language, now, form, need)
                if isinstance(visit, Response):
                    return visit
                response = handler(visit)
            self._write_after(visit)
            return response
        read = None
        if before is not None:
            with reading(self.service.db) as connection:
                visit = self._check(request, connection, language, now, form, need)
                if isinstance(visit, Response):
                    return visit
                read = before(visit)
        with self.service.db.begin() as connection:
            visit = self._check(request, connection, language, now, form, need, writing=True)
            if isinstance(visit, Response):
                return visit
            if desk_logins.touch_due(visit.row, now):
                desk_logins.touch(connection, visit.row["session_id"], now)
            visit.read = read
            response = handler(visit)
        for delivery in visit.queued:
            if self.service.on_outbox is not None:
                self.service.on_outbox(delivery)
        return response

    def _check(
        self,
        request: Request,
        connection: Connection,
        language: str,
        now: datetime,
        form: FormData | None,
        need: str | None,
        writing: bool = False,
    ) -> Visit | Response:
        """Return the signed-in visit, or the answer to one that may not go on."""
        token = request.cookies.get(SESSION_COOKIE)
        row = desk_logins.session(connection, token, now) if token else None
        if row is None:
            target = quote(request.url.path)
            return RedirectResponse(f"/desk/login?next={target}", status_code=303)
        visit = Visit(request, connection, row, staff.officer_of(row), language, now, form,
                      writing)  # fmt: skip
        if need is not None and not visit.officer.may(need):
            return self.not_found(visit)
        sent = form.get("csrf") if form is not None else None
        if form is not None and not (
            isinstance(sent, str) and secrets.compare_digest(sent, row["csrf"])
        ):
            return self.forbidden(language)
        return visit

    def _write_after(self, visit: Visit) -> None:
        """Write what a reading visit left: its session's last use (when due) and its audits."""
        due = desk_logins.touch_due(visit.row, visit.now)
        if not (due or visit.audits):
            return
        with self.service.db.begin() as connection:
            if due:
                desk_logins.touch(connection, visit.row["session_id"], visit.now)
            for action, detail in visit.audits:
                staff.audit(connection, visit.officer.actor, action, detail, visit.now)

    def show(self, visit: Visit, template: str, status_code: int = 200, **context: Any) -> Response:
        """Render a page for a signed-in officer."""
        return self.pages.html(
            template, visit.language, status_code, officer=visit.officer, csrf=visit.row["csrf"],
            me=visit.row, path=visit.request.url.path, query=visit.request.url.query, **context,
        )  # fmt: skip

    def not_found(self, visit: Visit) -> Response:
        """Answer 404, the same for a page that does not exist and one this role may not see."""
        return self.show(visit, "missing.html", 404)

    def forbidden(self, language: str) -> Response:
        """Answer a POST without a valid token or from another site."""
        return self.pages.html("forbidden.html", language, 403)

    def notify(self, visit: Visit, notices: list[Notice]) -> None:
        """Queue messages to others in this transaction; they are sent after the commit."""
        assert visit.writing, "notices are queued only in a write transaction"
        visit.queued += [self.service.queue(visit.connection, notice) for notice in notices]

    def audit(self, visit: Visit, action: str, detail: dict[str, Any]) -> None:
        """Write what this officer saw or did to the audit log (after the read, when reading)."""
        if visit.writing:
            staff.audit(visit.connection, visit.officer.actor, action, detail, visit.now)
        else:
            visit.audits.append((action, detail))

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        """Set a cookie scripts cannot read and other sites do not send with POSTs."""
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure,
                            httponly=True, samesite="lax")  # fmt: skip

    # sign-in ----------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Return the sign-in, sign-out and language routes."""
        return [
            Route("/desk/login", self.login_page, methods=["GET"]),
            Route("/desk/login", self.login_link, methods=["POST"]),
            Route("/desk/login/code", self.login_code, methods=["POST"]),
            Route("/desk/login/code", self.code_status, methods=["GET"]),
            Route("/desk/login/{token}", self.confirm_page, methods=["GET"]),
            Route("/desk/logout", self.page(self.logout), methods=["POST"]),
            Route("/desk/language", self.switch_language, methods=["GET"]),
        ]

    def _signed_in(self, request: Request, connection: Connection, now: datetime) -> bool:
        token = request.cookies.get(SESSION_COOKIE)
        return bool(token) and desk_logins.session(connection, token or "", now) is not None

    def login_page(self, request: Request) -> Response:
        """Show a code for this browser to confirm in chat (or go on when already signed in)."""
        language, now = self.language(request), self.service.clock()
        pending = request.cookies.get(CODE_COOKIE, "")
        browser, _, code = pending.partition(".")
        with reading(self.service.db) as connection:
            if self._signed_in(request, connection, now):
                return RedirectResponse("/desk/proposals", status_code=303)
            state = desk_logins.code_confirmed(connection, browser, now) if browser else None
        fresh = state is None
        if fresh:
            browser = secrets.token_urlsafe(32)
            with self.service.db.begin() as connection:
                code = desk_logins.create_code(connection, browser, now)
        response = self.pages.html("login.html", language, code=code, confirmed=bool(state),
                                   minutes=desk_logins.LOGIN_MINUTES)  # fmt: skip
        if fresh:
            self.set_cookie(response, CODE_COOKIE, f"{browser}.{code}",
                            desk_logins.LOGIN_MINUTES * 60)  # fmt: skip
        return response

    def code_status(self, request: Request) -> Response:
        """Tell the login page (polling with htmx) whether its code has been confirmed."""
        language, now = self.language(request), self.service.clock()
        browser = request.cookies.get(CODE_COOKIE, "").partition(".")[0]
        with reading(self.service.db) as connection:
            state = desk_logins.code_confirmed(connection, browser, now) if browser else None
        return self.pages.html("login_status.html", language, confirmed=bool(state),
                               expired=state is None)  # fmt: skip

    def confirm_page(self, request: Request) -> Response:
        """Show the confirm button for a link from chat; opening the link does not use it."""
        language, token = self.language(request), request.path_params["token"]
        with reading(self.service.db) as connection:
            valid = desk_logins.link_valid(connection, token, self.service.clock())
        if not valid:
            return self.pages.html("login_gone.html", language, 410)
        return self.pages.html("confirm.html", language, token=token)

    async def login_link(self, request: Request) -> Response:
        """Sign in with a link's token, once, from its confirm page."""
        form = await request.form()
        token = form.get("token")
        return await run_in_threadpool(
            self._sign_in, request, lambda c, now: desk_logins.use_link(c, str(token or ""), now)
        )

    async def login_code(self, request: Request) -> Response:
        """Sign in this browser once its code was confirmed in chat."""
        await request.form()
        browser = request.cookies.get(CODE_COOKIE, "").partition(".")[0]
        return await run_in_threadpool(
            self._sign_in, request, lambda c, now: desk_logins.use_code(c, browser, now)
        )

    def _sign_in(
        self,
        request: Request,
        use: Callable[[Connection, datetime], tuple[str, str] | None],
    ) -> Response:
        language = self.language(request)
        if not self.same_origin(request):
            return self.forbidden(language)
        now = self.service.clock()
        delivery = None
        with self.service.db.begin() as connection:
            officer = use(connection, now)
            member = staff.find(connection, *officer) if officer else None
            if officer is None or member is None:
                return self.pages.html("login_gone.html", language, 410)
            session_id, token = desk_logins.open_session(connection, *officer, now)
            staff.audit(connection, staff.actor_of(*officer), "web_login",
                        {"session": session_id}, now)  # fmt: skip
            language = self.service.default_language
            notice = web_login_notice(language, when(now, language), session_id)
            delivery = self.service.queue(connection, Notice(*officer, (notice,)))
        if self.service.on_outbox is not None:
            self.service.on_outbox(delivery)
        response = RedirectResponse("/desk/proposals", status_code=303)
        self.set_cookie(response, SESSION_COOKIE, token, int(desk_logins.ABSOLUTE.total_seconds()))
        response.delete_cookie(CODE_COOKIE, path="/", secure=self.secure, httponly=True)
        return response

    def logout(self, visit: Visit) -> Response:
        """End this session."""
        desk_logins.revoke(visit.connection, visit.row["session_id"], visit.now)
        self.audit(visit, "web_logout", {"session": visit.row["session_id"]})
        response = RedirectResponse("/desk/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True)
        return response

    def switch_language(self, request: Request) -> Response:
        """Switch the desk between Thai and English and go back to the page."""
        chosen = request.query_params.get("to", "")
        back = request.query_params.get("next", "/desk")
        if not back.startswith("/desk") or back.startswith("//"):
            back = "/desk"
        response = RedirectResponse(back, status_code=303)
        if chosen in LANGUAGES:
            self.set_cookie(response, LANGUAGE_COOKIE, chosen, 365 * 24 * 3600)
        return response
