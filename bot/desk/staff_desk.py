"""The staff desk in chat: lists, one proposal, counts, exports, review and staff management.

Anything that is not a staff matter, or that the sender may not do, returns None, so the
volunteer engine answers it exactly as it answers any unknown command: staff commands reveal
nothing to anyone else.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from bot.desk import lookups, members, review, views
from bot.desk.broadcasts import BroadcastDesk
from bot.desk.lookups import COUNT_UP_TO, Lookup, ReadAhead
from bot.desk.typed import split_command
from bot.domain import platforms, roles
from bot.domain.calendar import to_bangkok
from bot.domain.i18n import text, words
from bot.domain.messages import Button, Input, Notice, Press, Reply, Text
from bot.domain.normalize import clean_text
from bot.domain.proposal_filter import ProposalFilter, group_of, parse_filter, status_of
from bot.domain.province import Province
from bot.domain.questionnaire import TARGET_GROUPS
from bot.domain.roles import FACILITATOR, ROLES, STAFF_COMMANDS, Officer
from bot.domain.schedule import QuietHours
from storage import desk_logins, exports, staff
from storage import proposal_queries as queries

# typed words that ask for a web desk link, like /desk
# typed instead of /desk (LINE has no command menu)
WEB_WORDS = words("words.desk")


@dataclass
class DeskTurn:
    """The desk's answer: replies to the sender and notices to others."""

    replies: list[Reply]
    notices: list[Notice] = field(default_factory=list)
    # exports asked for, to build once this turn is committed (never inside it)
    exports: list[int] = field(default_factory=list)


class Desk:
    """Answers staff in chat from the database, within each officer's role."""

    def __init__(
        self,
        province: Province,
        clock: Callable[[], datetime],
        language: str = "th",
        quiet: QuietHours | None = None,
        web_url: str = "http://127.0.0.1:8080",
    ) -> None:
        self.province = province
        self.clock = clock
        self.language = language
        self.web_url = web_url.rstrip("/")
        self.broadcasts = BroadcastDesk(province, clock, language, quiet)

    def read_ahead(
        self, connection: Connection, platform: str, user_id: str, event: Input
    ) -> ReadAhead:
        """Make the long read a staff input will need (on a read-only connection, beforehand)."""
        ahead = ReadAhead()
        if not lookups.may_read(event):
            return ahead
        row = staff.find(connection, platform, user_id)
        if row is None:
            return ahead
        officer = staff.officer_of(row)
        lookup = lookups.wanted(event, officer, dict(row["desk"] or {}), self.province)
        if lookup is not None:
            ahead.results[lookup] = lookups.read(connection, lookup)
        return ahead

    def handle(
        self,
        connection: Connection,
        platform: str,
        user_id: str,
        event: Input,
        ahead: ReadAhead | None = None,
    ) -> DeskTurn | None:
        """Answer a staff matter; None when the input is not one (or not this sender's).

        `ahead` holds reads already made outside this transaction (see bot/desk/lookups.py).
        """
        if not isinstance(event, Text | Press) or (
            isinstance(event, Press) and not event.data.startswith("s:")
        ):
            return None  # a volunteer's answer: spare the lookup on every event
        typed = event.text if isinstance(event, Text) else None
        command, rest = split_command(typed) if typed is not None else (None, "")
        if command == "join":
            return self._join(connection, platform, user_id, rest)
        row = staff.find(connection, platform, user_id)
        if row is None:
            return None
        officer = staff.officer_of(row)
        desk = dict(row["desk"] or {})
        if isinstance(event, Press) and event.data.startswith("s:"):
            return self._press(connection, row, officer, desk, event.data[2:], ahead)
        if command is not None:
            # a command leaves whatever the desk was waiting for (a comment, a broadcast)
            waiting = [desk.pop(key, None) for key in ("await", "bc")]
            if any(w is not None for w in waiting):
                staff.save_desk(connection, row["id"], desk)
            if command not in STAFF_COMMANDS or not officer.may(command):
                return None
            return self._command(connection, row, officer, desk, command, rest, ahead)
        if typed is not None and clean_text(typed).casefold() in WEB_WORDS:
            return DeskTurn([self._web_link(connection, platform, user_id)])
        if typed is not None and desk.get("bc") and officer.may("broadcast"):
            replies = self.broadcasts.typed(connection, row, officer, desk, clean_text(typed))
            return DeskTurn(replies)
        if typed is not None and desk.get("await"):
            return self._awaited(connection, row, officer, desk, clean_text(typed))
        if typed is not None and queries.REFERENCE.match(clean_text(typed)) and officer.may("show"):
            return self._show(connection, officer, clean_text(typed))
        return None

    # commands -----------------------------------------------------------------------------------

    def _command(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        command: str,
        rest: str,
        ahead: ReadAhead | None,
    ) -> DeskTurn | None:
        if command == "desk":
            if rest:
                return self._web_code(rest)
            menu = views.help_card(self.language, officer)
            link = self._web_link(connection, row["platform"], row["platform_user_id"])
            return DeskTurn([Reply(f"{menu.text}\n\n{link.text}", menu.buttons)])
        if command == "proposals":
            found = parse_filter(rest, self.province)
            return self._list(connection, row, officer, desk, found, ahead=ahead)
        if command == "show":
            return self._show(connection, officer, rest)
        if command == "stats":
            return self._stats(connection, officer, parse_filter(rest, self.province), ahead)
        if command == "export":
            kind, _, words = rest.partition(" ")
            if kind.lower() not in ("csv", "xlsx"):
                kind, words = "xlsx", rest
            found = parse_filter(words, self.province)
            return self._export(connection, row, found, kind.lower())
        if command == "review":
            return self._review_typed(connection, row, officer, desk, rest)
        if command == "staff":
            return self._staff(connection, officer, rest)
        if command == "broadcast":
            return DeskTurn(self.broadcasts.begin(connection, row, desk))
        if command == "broadcasts":
            return DeskTurn(self.broadcasts.listing(connection))
        return self._invite(connection, officer, rest)

    def _say(self, key: str, **values: object) -> DeskTurn:
        return DeskTurn([Reply(text(self.language, key, **values))])

    def _join(
        self,
        connection: Connection,
        platform: str,
        user_id: str,
        code: str,
        confirmed: bool = False,
    ) -> DeskTurn | None:
        """Make the sender staff with an invitation's role; a lower role than theirs is asked."""
        invite = staff.find_invite(connection, code, self.clock())
        if invite is None:
            return None
        current = staff.find(connection, platform, user_id)
        if current is not None and roles.lower(invite["role"], current["role"]):
            if members.leaves_no_admin(connection, platform, user_id, invite["role"]):
                return self._say("desk.staff.last_admin")
            if not confirmed:
                return DeskTurn([self._ask_lower(current["role"], invite["role"], code)])
        invite = staff.redeem_invite(connection, code, platform, user_id, self.clock())
        if invite is None:
            return None
        role = text(self.language, f"role.{invite['role']}")
        officer = Officer(staff.actor_of(platform, user_id), invite["role"])
        staff.audit(connection, officer.actor, "join", {"role": invite["role"]}, self.clock())
        return DeskTurn([Reply(text(self.language, "desk.joined", role=role)),
                         views.help_card(self.language, officer)])  # fmt: skip

    def _ask_lower(self, current: str, offered: str, code: str) -> Reply:
        """Ask a staff member whether an invitation may lower their role."""
        now, then = (text(self.language, f"role.{r}") for r in (current, offered))
        buttons = (
            Button(text(self.language, "desk.join.btn.lower", role=then),
                   f"s:join:{code.strip().upper()}"),
            Button(text(self.language, "desk.join.btn.keep"), "s:joinkeep"),
        )  # fmt: skip
        return Reply(text(self.language, "desk.join.lower", current=now, role=then), buttons)

    def _web_link(self, connection: Connection, platform: str, user_id: str) -> Reply:
        """Return a one-time link that signs this officer in to the web desk."""
        token = desk_logins.create_link(connection, platform, user_id, self.clock())
        url = f"{self.web_url}/desk/login/{token}"
        return Reply(text(self.language, "desk.web.link", url=url,
                          minutes=desk_logins.LOGIN_MINUTES))  # fmt: skip

    def _web_code(self, code: str) -> DeskTurn:
        """Ask the officer to confirm signing in the browser that shows a code."""
        code = code.strip().upper()
        if len(code) > desk_logins.CODE_LENGTH + 2:
            return self._say("desk.web.code_bad")
        button = Button(text(self.language, "desk.web.btn.confirm"), f"s:web:{code}")
        return DeskTurn([Reply(text(self.language, "desk.web.code_ask", code=code), (button,))])

    def _web_press(self, connection: Connection, row: RowMapping, kind: str, arg: str) -> DeskTurn:
        """Confirm a browser's sign-in code, or end a web desk session, from a button."""
        owner = (row["platform"], row["platform_user_id"])
        now = self.clock()
        if kind == "web":
            if not desk_logins.confirm_code(connection, arg, *owner, now):
                return self._say("desk.web.code_bad")
            staff.audit(connection, staff.actor_of(*owner), "web_code", {}, now)
            return self._say("desk.web.code_done")
        if arg.isdigit() and desk_logins.revoke(connection, int(arg), now, owner):
            staff.audit(connection, staff.actor_of(*owner), "web_logout", {"session": int(arg)},
                        now)  # fmt: skip
            return self._say("desk.web.ended")
        return self._say("desk.web.ended_already")

    def _list(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        found: ProposalFilter,
        before_id: int | None = None,
        ahead: ReadAhead | None = None,
    ) -> DeskTurn:
        if before_id is None:
            desk["filter"] = found.to_json()
            staff.save_desk(connection, row["id"], desk)
        page = lookups.result(connection, ahead, Lookup("list", found, officer.scope, before_id))
        rows, total = page.rows, page.total
        self._audit(connection, officer, "list", {"filter": found.to_json(), "shown": len(rows)})
        description = found.describe(self.language, self.province)
        shown = f"{COUNT_UP_TO:,}+" if total > COUNT_UP_TO else f"{total:,}"
        reply = views.page(self.language, self.province, description, shown,
                           rows[: views.PAGE], len(rows) > views.PAGE)  # fmt: skip
        return DeskTurn([reply])

    def _show(self, connection: Connection, officer: Officer, reference: str) -> DeskTurn:
        found = queries.by_reference(connection, reference) if reference else None
        if found is None or not officer.sees(found["target_group"]):
            return self._say("desk.not_found", reference=reference or "-")
        self._audit(connection, officer, "show", {"reference": found["reference"]})
        return DeskTurn([views.proposal(self.language, self.province, found, officer)])

    def _stats(
        self,
        connection: Connection,
        officer: Officer,
        found: ProposalFilter,
        ahead: ReadAhead | None = None,
    ) -> DeskTurn:
        rows = lookups.result(connection, ahead, Lookup("stats", found, officer.scope))
        description = found.describe(self.language, self.province)
        return DeskTurn([views.stats(self.language, self.province, description, rows)])

    def _export(
        self, connection: Connection, row: RowMapping, found: ProposalFilter, kind: str
    ) -> DeskTurn:
        officer = staff.officer_of(row)
        stamp = to_bangkok(self.clock()).strftime("%Y%m%d-%H%M")
        asked = {"filter": found.to_json(), "scope": officer.scope, "masked": officer.masked}
        export_id = exports.request(
            connection, filename=f"proposals-{stamp}.{kind}", kind=kind, asked=asked,
            created_by=officer.actor, platform=row["platform"],
            recipient=row["platform_user_id"], now=self.clock(),
        )  # fmt: skip
        return DeskTurn([Reply(text(self.language, "desk.export.preparing"))], exports=[export_id])

    # review -------------------------------------------------------------------------------------

    def _review_typed(
        self, connection: Connection, row: RowMapping, officer: Officer, desk: dict[str, Any],
        rest: str,
    ) -> DeskTurn:  # fmt: skip
        reference, _, more = rest.partition(" ")
        status_word, _, note = more.strip().partition(" ")
        status = status_of(status_word)
        if not reference or status not in review.SETTABLE:
            return self._say("desk.review.usage")
        return self._set_status(
            connection, row, officer, desk, reference, status, note.strip() or None
        )

    def _set_status(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        reference: str,
        status: str,
        note: str | None = None,
    ) -> DeskTurn:
        asks = review.ASKS.get(status)
        if asks and note is None:
            found = queries.by_reference(connection, reference)
            if found is None or not officer.sees(found["target_group"]):
                return self._say("desk.not_found", reference=reference)
            if found["status"] != status:
                desk["await"] = {"reference": found["reference"], "status": status}
                staff.save_desk(connection, row["id"], desk)
                return self._ask(found["reference"], status, asks)
        changed = review.change_status(
            connection, officer, reference, status, self.clock(), language=self.language,
            comment=note if asks == "comment" else None,
            agency=note if asks == "agency" else None,
        )  # fmt: skip
        shown = text(self.language, f"status.{status}")
        if changed.outcome is review.Outcome.MISSING:
            return self._say("desk.ask.empty")
        if changed.outcome is not review.Outcome.DONE:
            return self._say(review.MESSAGE[changed.outcome], reference=changed.reference,
                             status=shown)  # fmt: skip
        told = text(self.language, "desk.review.done", reference=changed.reference, status=shown)
        if not changed.notices:
            told += "\n" + text(self.language, "desk.review.unreachable")
        return DeskTurn([Reply(told)], list(changed.notices))

    def _ask(self, reference: str, status: str, asks: str) -> DeskTurn:
        buttons: tuple[Button, ...] = ()
        if status not in review.REQUIRED:
            buttons = (Button(text(self.language, "desk.btn.no_comment"), "s:nocomment"),)
        asked = text(self.language, f"desk.ask.{asks}", reference=reference)
        return DeskTurn([Reply(asked, buttons)])

    def _awaited(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        typed: str,
    ) -> DeskTurn:
        waiting = desk.pop("await")
        staff.save_desk(connection, row["id"], desk)
        if not typed:
            return self._say("desk.ask.empty")
        return self._set_status(connection, row, officer, desk, waiting["reference"],
                                waiting["status"], typed)  # fmt: skip

    # buttons ------------------------------------------------------------------------------------

    def _press(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        data: str,
        ahead: ReadAhead | None = None,
    ) -> DeskTurn | None:
        kind, _, arg = data.partition(":")
        if kind == "bc" and officer.may("broadcast"):
            action, _, number = arg.partition(":")
            replies = self.broadcasts.press(connection, row, officer, desk, action, number)
            return DeskTurn(replies or [Reply(text(self.language, "err.stale"))])
        if kind in ("web", "endweb"):
            return self._web_press(connection, row, kind, arg)
        if kind == "join":
            joined = self._join(connection, row["platform"], row["platform_user_id"], arg, True)
            return joined or self._say("err.stale")
        if kind == "joinkeep":
            return self._say("desk.join.kept", role=text(self.language, f"role.{row['role']}"))
        saved = ProposalFilter.from_json(desk.get("filter"))
        needs = {"list": "proposals", "more": "proposals", "show": "show", "stats": "stats",
                 "exp": "export", "st": "review", "nocomment": "review",
                 "dl": "export"}  # fmt: skip
        if kind not in needs or not officer.may(needs[kind]):
            return None
        if kind == "list":
            return self._list(connection, row, officer, desk, ProposalFilter(), ahead=ahead)
        if kind == "more" and arg.isdigit():
            return self._list(connection, row, officer, desk, saved, int(arg), ahead)
        if kind == "show":
            return self._show(connection, officer, arg)
        if kind == "stats":
            return self._stats(connection, officer, ProposalFilter(), ahead)
        if kind == "exp" and arg in ("csv", "xlsx"):
            return self._export(connection, row, saved, arg)
        if kind == "dl":
            number, _, answer = arg.partition(":")
            if number.isdigit() and answer in ("yes", "no"):
                allow = answer == "yes"
                if exports.answer(connection, int(number), officer.actor, allow, self.clock()):
                    return self._say("desk.export.allowed" if allow else "desk.export.denied")
        if kind == "st":
            reference, _, status = arg.rpartition(":")
            if status in review.SETTABLE:
                return self._set_status(connection, row, officer, desk, reference, status)
        if kind == "nocomment" and (waiting := desk.pop("await", None)):
            staff.save_desk(connection, row["id"], desk)
            if waiting["status"] == "not_accepted":
                return self._set_status(connection, row, officer, desk, waiting["reference"],
                                        waiting["status"], "")  # fmt: skip
        return self._say("err.stale")

    # staff management ---------------------------------------------------------------------------

    def _staff(self, connection: Connection, officer: Officer, rest: str) -> DeskTurn:
        words = rest.split()
        if not words or words[0] == "list":
            return DeskTurn([views.members(self.language, staff.members(connection))])
        action, args = words[0].lower(), words[1:]
        if action == "add" and len(args) >= 3 and args[0] in platforms.ALL and args[2] in ROLES:
            groups = parse_groups(args[3:])
            if args[2] == FACILITATOR and not groups:
                return self._say("desk.staff.groups_needed")
            changed = members.put(connection, args[0], args[1], args[2], groups, officer.actor,
                                  self.clock())  # fmt: skip
            if changed is members.Change.LAST_ADMIN:
                return self._say("desk.staff.last_admin")
            return self._say("desk.staff.added", user=args[1],
                             role=text(self.language, f"role.{args[2]}"))  # fmt: skip
        if action == "remove" and len(args) == 2 and args[0] in platforms.ALL:
            changed = members.remove(connection, args[0], args[1], officer.actor, self.clock())
            if changed is members.Change.LAST_ADMIN:
                return self._say("desk.staff.last_admin")
            if changed is members.Change.UNKNOWN:
                return self._say("desk.staff.unknown", user=args[1])
            return self._say("desk.staff.removed", user=args[1])
        return self._say("desk.staff.usage")

    def _invite(self, connection: Connection, officer: Officer, rest: str) -> DeskTurn:
        words = rest.split()
        role = words[0].lower() if words else ""
        groups = parse_groups(words[1:])
        if role not in ROLES or (role == FACILITATOR and not groups):
            return self._say("desk.invite.usage")
        code = staff.create_invite(connection, role, groups, officer.actor, self.clock())
        self._audit(connection, officer, "invite", {"role": role})
        return self._say("desk.invite.code", code=code, role=text(self.language, f"role.{role}"))

    def _audit(
        self, connection: Connection, officer: Officer, action: str, detail: dict[str, Any]
    ) -> None:
        staff.audit(connection, officer.actor, action, detail, self.clock())


def parse_groups(words: list[str]) -> tuple[str, ...]:
    """Read target groups from codes or labels, comma- or space-separated."""
    found = []
    for word in ",".join(words).split(","):
        group = group_of(word.strip()) if word.strip() else None
        if group in TARGET_GROUPS and group not in found:
            found.append(group)
    return tuple(found)
