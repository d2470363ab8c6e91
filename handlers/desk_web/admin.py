"""Administrators' pages: broadcasts (compose, preview, send, progress), staff and the audit log."""

from datetime import datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.desk import members
from bot.desk.broadcasts import MAX_TEXT
from bot.domain import platforms
from bot.domain.audience import Audience
from bot.domain.calendar import fiscal_year
from bot.domain.questionnaire import NETWORK_TYPES, TARGET_GROUPS
from bot.domain.roles import FACILITATOR, ROLES
from bot.domain.schedule import parse_when
from handlers.desk_web.site import DeskWeb, Visit
from storage import broadcasts, staff

EVERY = ("daily", "weekly", "monthly")
AUDIT_PAGE = 100


def audience_of(form: FormData | None, web: DeskWeb) -> Audience:
    """Read an audience from the composer's fields; values that name nothing are left out."""
    if form is None:
        return Audience()
    districts = {d.code for d in web.service.province.districts}

    def chosen(name: str, allowed: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in form.getlist(name) if v in allowed)

    return Audience(
        platforms=chosen("platform", platforms.MESSAGING),
        groups=chosen("group", TARGET_GROUPS),
        districts=chosen("district", districts),
        networks=chosen("network", NETWORK_TYPES),
        has_draft=form.get("has_draft") == "1",
        not_submitted_this_year=form.get("not_submitted") == "1",
    )


class AdminPages:
    """Broadcasts, staff and the audit log, for administrators only."""

    def __init__(self, web: DeskWeb) -> None:
        self.web = web

    def routes(self) -> list[BaseRoute]:
        """Return the administrators' routes."""
        page = self.web.page
        return [
            Route("/desk/broadcasts", page(self.broadcasts, "broadcast"), methods=["GET"]),
            Route(
                "/desk/broadcasts",
                page(self.send, "broadcast", before=self._refused_figures),
                methods=["POST"],
            ),
            Route(
                "/desk/broadcasts/preview",
                page(self.preview, "broadcast", only_reads=True),
                methods=["POST"],
            ),
            Route("/desk/broadcasts/{id:int}", page(self.progress, "broadcast"), methods=["GET"]),
            Route(
                "/desk/broadcasts/{id:int}/cancel", page(self.cancel, "broadcast"), methods=["POST"]
            ),
            Route("/desk/staff", page(self.staff, "staff"), methods=["GET"]),
            Route("/desk/staff/invite", page(self.invite, "invite"), methods=["POST"]),
            Route("/desk/staff/{id:int}", page(self.change, "staff"), methods=["POST"]),
            Route("/desk/staff/{id:int}/remove", page(self.remove, "staff"), methods=["POST"]),
            Route("/desk/audit", page(self.audit, "staff"), methods=["GET"]),
        ]

    # broadcasts -------------------------------------------------------------------------------

    def _composer(self, visit: Visit, status_code: int = 200, **context: Any) -> Response:
        return self.web.show(
            visit, "broadcasts.html", status_code, rows=broadcasts.listing(visit.connection, 20),
            groups=TARGET_GROUPS, networks=NETWORK_TYPES, messaging=platforms.MESSAGING,
            every=EVERY, form=visit.form, max_text=MAX_TEXT,
            describe=lambda a: Audience.from_json(a).describe(visit.language,
                                                              self.web.service.province),
            **context,
        )  # fmt: skip

    def broadcasts(self, visit: Visit) -> Response:
        """Show recent broadcasts and an empty composer."""
        return self._composer(visit)

    def _figures(self, visit: Visit) -> dict[str, Any]:
        """Count and sample the audience the composer describes, and render its text."""
        audience = audience_of(visit.form, self.web)
        year = fiscal_year(visit.now)
        return {
            "counts": broadcasts.preview(visit.connection, audience, year),
            "sample": broadcasts.sample(visit.connection, audience, year),
            "audience": audience.describe(visit.language, self.web.service.province),
            "text_th": visit.value("text_th")[:MAX_TEXT],
            "text_en": visit.value("text_en")[:MAX_TEXT],
        }

    def preview(self, visit: Visit) -> Response:
        """Show who would get the broadcast and how it looks (a fragment for htmx)."""
        figures = self._figures(visit)
        if visit.request.headers.get("hx-request") == "true":
            return self.web.show(visit, "broadcast_preview.html", **figures)
        return self._composer(visit, preview=figures)

    def _when(self, visit: Visit) -> tuple[datetime | None, str | None] | str:
        """Read when to send from the form: (moment or None for now, recurrence), or a problem."""
        every = visit.value("every") if visit.value("every") in EVERY else None
        if visit.value("timing") != "later":
            return None, every
        parsed = parse_when(visit.value("at"))
        if parsed is None or parsed[0] is None:
            return "bc.err.when"
        if parsed[0] < visit.now:
            return "bc.err.past"
        return parsed[0], every or parsed[1]

    def _problem(self, visit: Visit) -> str | None:
        """Say what keeps the composed broadcast from being sent (a catalogue key), or None."""
        when = self._when(visit)
        if not visit.value("text_th"):
            return "web.bc.need_text"
        return when if isinstance(when, str) else None

    def _refused_figures(self, visit: Visit) -> dict[str, Any] | None:
        """Count the audience of a broadcast that will be sent back, before the write begins."""
        return self._figures(visit) if self._problem(visit) else None

    def send(self, visit: Visit) -> Response:
        """Store the composed broadcast and schedule it (now, or at the chosen time)."""
        text_th = visit.value("text_th")[:MAX_TEXT]
        when = self._when(visit)
        problem = self._problem(visit)
        if problem is not None or isinstance(when, str):
            figures = visit.read if visit.read is not None else self._figures(visit)
            return self._composer(visit, 400, problem=problem, preview=figures)
        moment, every = when
        audience = audience_of(visit.form, self.web)
        text_en = visit.value("text_en")[:MAX_TEXT] or None
        created = broadcasts.create(visit.connection, visit.officer.actor, text_th, text_en,
                                    audience, moment or visit.now, every, visit.now)  # fmt: skip
        broadcasts.schedule(visit.connection, created)
        self.web.audit(visit, "broadcast", {"id": created, "web": True})
        return RedirectResponse(f"/desk/broadcasts/{created}", 303)

    def progress(self, visit: Visit) -> Response:
        """Show a broadcast's delivery so far (polled by htmx while it is being sent)."""
        found = broadcasts.get(visit.connection, visit.request.path_params["id"])
        if found is None:
            return self.web.not_found(visit)
        figures = broadcasts.report(visit.connection, found["id"])
        rows = []
        for platform, counts in sorted(figures["counts"].items()):
            total = sum(counts.values())
            rows.append({"platform": platform, "total": total, **counts})
        template = "broadcast_progress.html"
        if visit.request.headers.get("hx-request") != "true":
            template = "broadcast.html"
        return self.web.show(
            visit, template, b=found, rows=rows, figures=figures,
            audience=Audience.from_json(found["audience"]).describe(visit.language,
                                                                    self.web.service.province),
            live=found["status"] in ("scheduled", "sending"),
        )  # fmt: skip

    def cancel(self, visit: Visit) -> Response:
        """Cancel a broadcast that has not finished."""
        broadcast_id = visit.request.path_params["id"]
        if broadcasts.cancel(visit.connection, broadcast_id, visit.now):
            self.web.audit(visit, "broadcast_cancel", {"id": broadcast_id})
        return RedirectResponse(f"/desk/broadcasts/{broadcast_id}", 303)

    # staff ------------------------------------------------------------------------------------

    def staff(self, visit: Visit, status_code: int = 200, **context: Any) -> Response:
        """List staff with forms to change roles and groups, remove, and invite."""
        return self.web.show(
            visit, "staff.html", status_code, members=staff.members(visit.connection),
            roles=ROLES, groups=TARGET_GROUPS, **context,
        )  # fmt: skip

    def _role(self, visit: Visit) -> tuple[str, tuple[str, ...]] | None:
        """Read a role and its groups from a form; None when a facilitator has no group."""
        role = visit.value("role")
        form = visit.form
        groups = tuple(
            str(g) for g in (form.getlist("group") if form else ()) if g in TARGET_GROUPS
        )
        if role not in ROLES or (role == FACILITATOR and not groups):
            return None
        return role, groups if role == FACILITATOR else ()

    def invite(self, visit: Visit) -> Response:
        """Create a one-time invitation code to send to a new staff member."""
        chosen = self._role(visit)
        if chosen is None:
            return self.staff(visit, 400, problem="desk.staff.groups_needed")
        code = staff.create_invite(visit.connection, *chosen, visit.officer.actor, visit.now)
        self.web.audit(visit, "invite", {"role": chosen[0], "web": True})
        return self.staff(visit, code=code, invited=chosen[0])

    def change(self, visit: Visit) -> Response:
        """Change a staff member's role and groups (never leaving no administrator)."""
        found = staff.member(visit.connection, visit.request.path_params["id"])
        chosen = self._role(visit)
        if found is None:
            return self.web.not_found(visit)
        if chosen is None:
            return self.staff(visit, 400, problem="desk.staff.groups_needed")
        done = members.put(visit.connection, found["platform"], found["platform_user_id"],
                           *chosen, visit.officer.actor, visit.now)  # fmt: skip
        if done is not members.Change.DONE:
            return self.staff(visit, 400, problem=f"desk.staff.{done}")
        return RedirectResponse("/desk/staff", 303)

    def remove(self, visit: Visit) -> Response:
        """Remove a staff member (never the last administrator)."""
        found = staff.member(visit.connection, visit.request.path_params["id"])
        if found is None:
            return self.web.not_found(visit)
        done = members.remove(visit.connection, found["platform"], found["platform_user_id"],
                              visit.officer.actor, visit.now)  # fmt: skip
        if done is not members.Change.DONE:
            return self.staff(visit, 400, problem=f"desk.staff.{done}")
        return RedirectResponse("/desk/staff", 303)

    # audit ------------------------------------------------------------------------------------

    def audit(self, visit: Visit) -> Response:
        """Show the audit log, newest first, by actor and action."""
        params = visit.request.query_params
        actor, action = params.get("actor", "").strip(), params.get("action", "").strip()
        before = params.get("before", "")
        before_id = int(before) if before.isdigit() else None
        rows = staff.audit_page(visit.connection, actor or None, action or None, before_id,
                                AUDIT_PAGE + 1)  # fmt: skip
        older = rows[AUDIT_PAGE - 1]["id"] if len(rows) > AUDIT_PAGE else None
        return self.web.show(visit, "audit.html", rows=rows[:AUDIT_PAGE], actor=actor,
                             action=action, older=older)  # fmt: skip
