"""Pure rendering of the staff desk: proposal lists, one proposal in full, counts, staff."""

from collections.abc import Mapping, Sequence
from typing import Any

from bot.conversation.views import format_value, proposal_line, result, what_next
from bot.domain.calendar import format_date
from bot.domain.i18n import text
from bot.domain.messages import Button, Image, Reply
from bot.domain.normalize import national_phone
from bot.domain.province import Province
from bot.domain.questionnaire import PROPOSAL, TARGET_GROUPS
from bot.domain.roles import STAFF_COMMANDS, Officer, mask_name, mask_phone
from bot.domain.statuses import SETTABLE

PAGE = 10


def district_name(province: Province, code: str | None, language: str) -> str:
    """Return a district's name, or its code when unknown."""
    district = province.district(code) if code else None
    return district.name(language) if district else (code or "-")


def help_card(language: str, officer: Officer) -> Reply:
    """List the staff commands this officer may use."""
    role = text(language, f"role.{officer.role}")
    lines = [text(language, "desk.help.title", role=role)]
    lines += [text(language, f"desk.help.{c}") for c in STAFF_COMMANDS if officer.may(c)]
    buttons = (
        Button(text(language, "desk.btn.newest"), "s:list"),
        Button(text(language, "desk.btn.stats"), "s:stats"),
    )
    return Reply("\n".join(lines), buttons)


def page(
    language: str,
    province: Province,
    description: str,
    total: str,
    rows: Sequence[Mapping[Any, Any]],
    more: bool,
) -> Reply:
    """Render a page of proposals with a button for each, the next page and exports."""
    if not rows:
        return Reply(text(language, "desk.list.none", filter=description))
    lines = [text(language, "desk.list.header", filter=description, total=total)]
    for row in rows:
        lines.append(
            text(
                language,
                "desk.list.line",
                reference=row["reference"],
                group=text(language, f"opt.target_group.{row['target_group']}"),
                district=district_name(province, row["district"], language),
                status=text(language, f"status.{row['status']}"),
                date=format_date(row["submitted_at"], language),
                problem=row.get("title") or row["problem"],
            )
        )
    buttons = [Button(row["reference"], f"s:show:{row['reference']}") for row in rows]
    if more:
        buttons.append(Button(text(language, "desk.btn.more"), f"s:more:{rows[-1]['id']}"))
    buttons += [
        Button(text(language, "desk.btn.xlsx"), "s:exp:xlsx"),
        Button(text(language, "desk.btn.csv"), "s:exp:csv"),
    ]
    return Reply("\n".join(lines), tuple(buttons))


def proposal(
    language: str, province: Province, found: Mapping[Any, Any], officer: Officer
) -> Reply:
    """Render one proposal in full: answers, the volunteer, history, and review buttons."""
    lines = [
        text(language, "desk.show.title", reference=found["reference"]),
        text(language, "desk.show.status", status=text(language, f"status.{found['status']}")),
        text(language, "desk.show.submitted", date=format_date(found["submitted_at"], language)),
        "",
    ]
    answers = found["answers"]
    for question in PROPOSAL.questions:
        if question.applies(answers) and question.key != "photos":
            label = text(language, f"label.{question.key}")
            value = format_value(language, question, answers.get(question.key), province)
            lines.append(f"{label}: {value}")
    images = _photos_line(language, found.get("photo_files") or [], lines)
    name, phone = found["full_name"], national_phone(found["phone"])
    if officer.masked:
        name, phone = mask_name(name), mask_phone(phone)
    lines += ["", text(language, "desk.show.volunteer", name=name or "-", phone=phone or "-",
                       organisation=found["organisation"] or "-")]  # fmt: skip
    lines.append(text(language, "desk.show.history"))
    for change in found["history"]:
        line = text(language, "desk.show.change", date=format_date(change["changed_at"], language),
                    status=text(language, f"status.{change['to_status']}"),
                    by=change["changed_by"])  # fmt: skip
        if change["agency"]:
            line += " → " + change["agency"]
        if change["comment"]:
            line += f" “{change['comment']}”"
        lines.append(line)
    buttons: tuple[Button, ...] = ()
    if officer.may("review"):
        buttons = tuple(
            Button(text(language, f"desk.set.{status}"), f"s:st:{found['reference']}:{status}")
            for status in SETTABLE
            if status != found["status"]
        )
    return Reply("\n".join(lines), buttons, images=images)


def _photos_line(
    language: str, files: Sequence[Mapping[str, Any]], lines: list[str]
) -> tuple[Image, ...]:
    """Add how many photos there are (and any not kept) to lines; return those kept."""
    if not files:
        return ()
    line = text(language, "desk.show.photos", count=len(files))
    waiting = sum(1 for f in files if f["status"] in (None, "pending"))
    lost = sum(1 for f in files if f["status"] in ("refused", "failed"))
    if waiting:
        line += " " + text(language, "desk.show.photos_waiting", count=waiting)
    if lost:
        line += " " + text(language, "desk.show.photos_lost", count=lost)
    lines.append(line)
    return tuple(Image(f["sha256"], f["content_type"]) for f in files if f["status"] == "stored")


def stats(
    language: str, province: Province, description: str, rows: Sequence[Mapping[Any, Any]]
) -> Reply:
    """Render counts per target group, and per district within each group."""
    if not rows:
        return Reply(text(language, "desk.list.none", filter=description))
    total = sum(r["proposals"] for r in rows)
    people = sum(r["people"] for r in rows)
    lines = [text(language, "desk.stats.header", filter=description, total=f"{total:,}",
                  people=f"{people:,}")]  # fmt: skip
    for group in TARGET_GROUPS:
        mine = sorted((r for r in rows if r["target_group"] == group),
                      key=lambda r: -r["proposals"])  # fmt: skip
        if not mine:
            continue
        lines.append("")
        lines.append(text(language, "desk.stats.group",
                          group=text(language, f"opt.target_group.{group}"),
                          count=f"{sum(r['proposals'] for r in mine):,}",
                          people=f"{sum(r['people'] for r in mine):,}"))  # fmt: skip
        for r in mine:
            lines.append(text(language, "desk.stats.district",
                              district=district_name(province, r["district"], language),
                              count=f"{r['proposals']:,}", people=f"{r['people']:,}"))  # fmt: skip
    return Reply("\n".join(lines))


def members(language: str, rows: Sequence[Mapping[Any, Any]]) -> Reply:
    """Render the list of staff members."""
    lines = [text(language, "desk.staff.header", count=len(rows))]
    for row in rows:
        groups = ", ".join(text(language, f"opt.target_group.{g}") for g in row["groups"] or ())
        lines.append(text(language, "desk.staff.line", platform=row["platform"],
                          user=row["platform_user_id"], name=row["name"] or "-",
                          role=text(language, f"role.{row['role']}"),
                          groups=f" ({groups})" if groups else ""))  # fmt: skip
    return Reply("\n".join(lines))


def notice(language: str, found: Mapping[str, Any], status: str, comment: str | None,
           agency: str | None, province: Province) -> Reply:  # fmt: skip
    """Tell a volunteer their proposal's status changed, what happens next (and how to revise)."""
    named = proposal_line(language, dict(found), province)
    lines = [text(language, "notify.status", proposal=named, status=result(language, status))]
    if agency:
        lines.append(text(language, "notify.agency", agency=agency))
    if comment:
        lines.append(text(language, "notify.comment", comment=comment))
    lines.append(what_next(language, status, province))
    buttons: tuple[Button, ...] = ()
    if status == "needs_revision":
        buttons = (Button(text(language, "btn.revise"), f"revise:{found['reference']}"),)
    return Reply("\n".join(lines), buttons)


def web_login_notice(language: str, when: str, session_id: int) -> Reply:
    """Tell an officer their account signed in to the web desk, with a button to end it."""
    button = Button(text(language, "desk.web.btn.end"), f"s:endweb:{session_id}")
    return Reply(text(language, "desk.web.signed_in", when=when), (button,))
