"""Administrators compose, preview, send, cancel and follow broadcasts in chat."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from bot.domain.audience import Audience, parse_audience
from bot.domain.calendar import fiscal_year, format_date
from bot.domain.i18n import text
from bot.domain.messages import Button, Reply
from bot.domain.province import Province
from bot.domain.roles import Officer
from bot.domain.schedule import QuietHours, parse_when
from storage import broadcasts, staff

MAX_TEXT = 2000


class BroadcastDesk:
    """The broadcast wizard: Thai text, English text, audience, time, then a preview."""

    def __init__(
        self,
        province: Province,
        clock: Callable[[], datetime],
        language: str,
        quiet: QuietHours | None = None,
    ) -> None:
        self.province = province
        self.clock = clock
        self.language = language
        self.quiet = quiet or QuietHours()

    def _t(self, key: str, **values: object) -> str:
        return text(self.language, key, **values)

    def begin(self, connection: Connection, row: RowMapping, desk: dict[str, Any]) -> list[Reply]:
        """Start composing: ask for the Thai text."""
        desk["bc"] = {"step": "text"}
        staff.save_desk(connection, row["id"], desk)
        return [Reply(self._t("bc.ask.text"))]

    def typed(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        typed: str,
    ) -> list[Reply]:
        """Take the answer to the wizard's current question."""
        draft = desk["bc"]
        step = draft["step"]
        if step in ("text", "text_en"):
            if not typed:
                return [Reply(self._t(f"bc.ask.{step}"))]
            draft[step] = typed[:MAX_TEXT]
            return self._next(connection, row, desk, "text_en" if step == "text" else "audience")
        if step == "audience":
            audience, unknown = parse_audience(typed, self.province)
            if unknown:
                return [Reply(self._t("bc.err.audience", words=" ".join(unknown)))]
            draft["audience"] = audience.to_json()
            return self._next(connection, row, desk, "when")
        when = parse_when(typed)
        if when is None:
            return [Reply(self._t("bc.err.when"))]
        moment, every = when
        if moment is not None and moment < self.clock():
            return [Reply(self._t("bc.err.past"))]
        return self._preview(connection, row, officer, desk, moment, every)

    def press(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        action: str,
        arg: str,
    ) -> list[Reply] | None:
        """Answer a wizard or broadcast button; None for one that is stale."""
        draft = desk.get("bc")
        if action == "everyone" and draft and draft["step"] == "audience":
            draft["audience"] = Audience().to_json()
            return self._next(connection, row, desk, "when")
        if action == "skip" and draft and draft["step"] == "text_en":
            draft["text_en"] = None
            return self._next(connection, row, desk, "audience")
        if action == "now" and draft and draft["step"] == "when":
            return self._preview(connection, row, officer, desk, None, None)
        if not arg.isdigit():
            return None
        broadcast_id = int(arg)
        if action == "send" and broadcasts.schedule(connection, broadcast_id):
            staff.audit(connection, officer.actor, "broadcast", {"id": broadcast_id}, self.clock())
            return [Reply(self._t("bc.scheduled", id=broadcast_id))]
        if action == "cancel" and broadcasts.cancel(connection, broadcast_id, self.clock()):
            return [Reply(self._t("bc.cancelled", id=broadcast_id))]
        if action == "report":
            return [self.report(connection, broadcast_id)]
        return None

    def _next(
        self, connection: Connection, row: RowMapping, desk: dict[str, Any], step: str
    ) -> list[Reply]:
        desk["bc"]["step"] = step
        staff.save_desk(connection, row["id"], desk)
        buttons = {
            "text_en": (Button(self._t("bc.btn.skip"), "s:bc:skip"),),
            "audience": (Button(self._t("bc.btn.everyone"), "s:bc:everyone"),),
            "when": (Button(self._t("bc.btn.now"), "s:bc:now"),),
        }.get(step, ())
        return [Reply(self._t(f"bc.ask.{step}"), buttons)]

    def _preview(
        self,
        connection: Connection,
        row: RowMapping,
        officer: Officer,
        desk: dict[str, Any],
        moment: datetime | None,
        every: str | None,
    ) -> list[Reply]:
        """Store the broadcast as a draft and show who gets it, with send and cancel."""
        draft = desk.pop("bc")
        staff.save_desk(connection, row["id"], desk)
        audience = Audience.from_json(draft["audience"])
        now = self.clock()
        broadcast_id = broadcasts.create(connection, officer.actor, draft["text"],
                                         draft.get("text_en"), audience, moment or now, every,
                                         now)  # fmt: skip
        counts = broadcasts.preview(connection, audience, fiscal_year(now))
        body = self._t("bc.preview", id=broadcast_id,
                       audience=audience.describe(self.language, self.province),
                       telegram=f"{counts.get('telegram', 0):,}", line=f"{counts.get('line', 0):,}",
                       unreachable=f"{counts['unreachable']:,}",
                       when=self.when(moment, every), text=draft["text"])  # fmt: skip
        buttons = (
            Button(self._t("bc.btn.send"), f"s:bc:send:{broadcast_id}"),
            Button(self._t("bc.btn.cancel"), f"s:bc:cancel:{broadcast_id}"),
        )
        return [Reply(body, buttons)]

    def when(self, moment: datetime | None, every: str | None) -> str:
        """Describe when a broadcast goes out."""
        if moment is None:
            quiet = f"{self.quiet.start:%H:%M}–{self.quiet.end:%H:%M}"
            shown = self._t("bc.when.now", quiet=quiet)
        else:
            shown = format_date(moment, self.language)
        return f"{shown}, {self._t(f'bc.every.{every}')}" if every else shown

    def listing(self, connection: Connection) -> list[Reply]:
        """List recent broadcasts, with a report button for each."""
        rows = broadcasts.listing(connection, 10)
        if not rows:
            return [Reply(self._t("bc.none"))]
        lines = [
            self._t(
                "bc.line",
                id=r["id"],
                status=self._t(f"bc.status.{r['status']}"),
                when=self.when(r["next_at"] or r["created_at"], r["every"]),
                audience=Audience.from_json(r["audience"]).describe(self.language, self.province),
                text=r["text_th"][:80],
            )
            for r in rows
        ]
        buttons = tuple(Button(self._t("bc.btn.report", id=r["id"]), f"s:bc:report:{r['id']}")
                        for r in rows)  # fmt: skip
        return [Reply("\n\n".join(lines), buttons)]

    def report(self, connection: Connection, broadcast_id: int) -> Reply:
        """Render a broadcast's delivery report."""
        found = broadcasts.get(connection, broadcast_id)
        if found is None:
            return Reply(self._t("bc.none"))
        return Reply(report_text(self.language, found, broadcasts.report(connection, broadcast_id)))


def report_text(language: str, found: RowMapping, figures: dict[str, Any]) -> str:
    """Describe a broadcast's deliveries per platform and the reasons for failures and skips."""
    lines = [text(language, "bc.report", id=found["id"], runs=figures["runs"],
                  status=text(language, f"bc.status.{found['status']}"))]  # fmt: skip
    for platform, counts in sorted(figures["counts"].items()):
        # being sent, or waiting to be tried again after a failed send: not there yet
        waiting = counts.get("pending", 0) + counts.get("sending", 0)
        lines.append(text(language, "bc.report.platform", platform=platform,
                          **{s: f"{counts.get(s, 0):,}" for s in ("sent", "failed", "skipped")},
                          pending=f"{waiting:,}"))  # fmt: skip
    for reason, count in sorted(figures["reasons"].items()):
        lines.append(text(language, "bc.report.reason", reason=reason, count=f"{count:,}"))
    if found["refused"]:
        lines.append(text(language, "bc.report.refused", reason=found["refused"]))
    return "\n".join(lines)
