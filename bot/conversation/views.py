"""Pure rendering of questions, review cards, menus and lists into neutral replies."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.conversation.state import State
from bot.domain.calendar import TH_MONTHS_SHORT, buddhist_year, format_date
from bot.domain.counts import format_count
from bot.domain.i18n import has, text
from bot.domain.messages import (
    SHARE_LOCATION,
    SHARE_PHONE,
    SHARE_PHOTO,
    Button,
    Card,
    CardRow,
    Reply,
)
from bot.domain.normalize import Phone
from bot.domain.province import Province
from bot.domain.questionnaire import Form, Kind, Question

CARD_VALUE_LIMIT = 300


def question_text(language: str, form: Form, question: Question, province: Province) -> str:
    """Return a question's wording, preferring the form's own variant."""
    specific = f"q.{form.name}.{question.key}"
    key = specific if has(language, specific) or has("th", specific) else f"q.{question.key}"
    return text(language, key, max=question.max_items, province=province.name(language))


def options(
    question: Question, answers: dict[str, Any], province: Province, own_district: str | None
) -> list[str]:
    """Return a question's option codes in the order shown (the volunteer's district first)."""
    if question.kind is Kind.DISTRICT:
        codes = [d.code for d in province.districts]
        if own_district in codes:
            codes.remove(own_district)
            codes.insert(0, own_district)
        return codes
    return list(question.option_codes(answers))


def own_district(form: Form, profile: dict[str, Any]) -> str | None:
    """Return the district offered first in a form: the volunteer's own, for proposals."""
    return profile.get("district") if form.name == "proposal" else None


def option_label(language: str, question: Question, code: str, province: Province) -> str:
    """Return the label of one option."""
    if question.kind is Kind.DISTRICT:
        district = province.district(code)
        return district.name(language) if district else code
    return text(language, f"opt.{question.key}.{code}", province=province.name(language))


def format_value(
    language: str, question: Question, value: Any, province: Province, limit: int = 0
) -> str:
    """Return an answer as the volunteer would read it."""
    if value is None or value == []:
        return text(language, "value.none")
    if question.kind in (Kind.CHOICE, Kind.DISTRICT):
        return option_label(language, question, value, province)
    if question.kind is Kind.MULTI:
        return ", ".join(option_label(language, question, v, province) for v in value)
    if question.kind is Kind.NUMBER:
        return format_count(language, value)
    if question.kind is Kind.PHONE:
        return Phone(value).national
    if question.kind is Kind.PHOTOS:
        return text(language, "value.photos", count=len(value))
    if isinstance(value, dict):
        return text(language, "value.location", **value)
    shown = str(value)
    if limit and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def ask(
    language: str,
    form: Form,
    question: Question,
    state: State,
    province: Province,
    profile: dict[str, Any],
    current: Any = None,
) -> Reply:
    """Render a question with its buttons (options, done, skip, back)."""
    body = question_text(language, form, question, province)
    if current is not None:
        shown = format_value(language, question, current, province, CARD_VALUE_LIMIT)
        body += "\n" + text(language, "current", value=shown)
    buttons: list[Button] = []
    own = own_district(form, profile)
    codes = options(question, state.answers, province, own)
    if question.kind in (Kind.CHOICE, Kind.DISTRICT):
        for code in codes:
            label = option_label(language, question, code, province)
            if question.kind is Kind.DISTRICT and code == own:
                label = text(language, "btn.my_district", district=label)
            buttons.append(Button(label, f"a:{question.key}:{code}"))
    elif question.kind is Kind.MULTI:
        for code in codes:
            mark = "☑️ " if code in state.pending else "⬜ "
            label = mark + option_label(language, question, code, province)
            buttons.append(Button(label, f"t:{question.key}:{code}"))
        buttons.append(Button(text(language, "btn.done"), f"d:{question.key}"))
    elif question.kind is Kind.PHOTOS and state.pending:
        buttons.append(Button(text(language, "btn.done"), f"d:{question.key}"))
    if question.kind is Kind.PHONE:
        buttons.append(Button(text(language, "btn.share_phone"), SHARE_PHONE))
    if question.kind is Kind.PLACE:
        buttons.append(Button(text(language, "btn.share_location"), SHARE_LOCATION))
    if question.kind is Kind.PHOTOS:
        buttons.append(Button(text(language, "btn.share_photo"), SHARE_PHOTO))
    if question.optional:
        buttons.append(Button(text(language, "btn.skip"), "cmd:skip"))
    if state.history or state.reviewed:
        buttons.append(Button(text(language, "btn.back"), "cmd:back"))
    return Reply(body, tuple(buttons), multi=question.kind is Kind.MULTI)


def review_card(language: str, form: Form, state: State, province: Province) -> Reply:
    """Render the review card of a form: every answer with an edit button, then the actions."""
    rows = []
    # the title names the proposal, so it heads the card though it is asked last
    for question in sorted(form.questions, key=lambda q: q.key != "title"):
        if not question.applies(state.answers) or question.key not in state.answers:
            continue
        label = text(language, f"label.{question.key}")
        value = format_value(
            language, question, state.answers[question.key], province, CARD_VALUE_LIMIT
        )
        edit = Button(text(language, "btn.edit", label=label), f"e:{question.key}")
        rows.append(CardRow(label, value, edit))
    if form.name == "proposal":
        title, hint = text(language, "review.title"), text(language, "review.hint")
        actions = (
            Button(text(language, "btn.submit"), "submit"),
            Button(text(language, "btn.cancel"), "cmd:cancel"),
        )
    else:
        title, hint = text(language, "profile.title"), text(language, "profile.hint")
        actions = (
            Button(text(language, "btn.save"), "save"),
            Button(text(language, "btn.cancel"), "cmd:cancel"),
        )
    card = Card(title, tuple(rows), hint)
    return Reply(card_text(card), actions, card=card)


def card_text(card: Card) -> str:
    """Return a card as plain text, for channels that draw no cards."""
    lines = [card.title, ""]
    lines += [f"{row.label}: {row.value}" for row in card.rows]
    if card.hint:
        lines += ["", card.hint]
    return "\n".join(lines)


def menu(language: str, lead: str | None = None) -> Reply:
    """Render the main menu."""
    body = lead + "\n\n" + text(language, "menu") if lead else text(language, "menu")
    buttons = (
        Button(text(language, "btn.new"), "cmd:new"),
        Button(text(language, "btn.status"), "cmd:status"),
        Button(text(language, "btn.profile"), "cmd:profile"),
        Button(text(language, "btn.my_data"), "cmd:mydata"),
        Button(text(language, "btn.help"), "cmd:help"),
    )
    return Reply(body, buttons)


def consent(language: str, province: Province) -> Reply:
    """Render the welcome and the PDPA consent question."""
    values = province.office.values(language)
    body = text(language, "welcome", **values) + "\n\n" + text(language, "consent", **values)
    other = "en" if language == "th" else "th"
    buttons = (
        Button(text(language, "btn.agree"), f"consent:yes:{language}"),
        Button(text(language, "btn.decline"), f"consent:no:{language}"),
        Button(text(language, "btn.other_language"), f"lang:{other}"),
    )
    return Reply(body, buttons)


def confirm(language: str, kind: str) -> Reply:
    """Render a yes/no question: cancel a draft, restart it, erase my data, or use idle text."""
    return Reply(
        text(language, f"confirm.{kind}"),
        (
            Button(text(language, f"btn.{kind}.yes"), f"{kind}:yes"),
            Button(text(language, f"btn.{kind}.no"), f"{kind}:no"),
        ),
    )


def recap(language: str, form: Form, state: State, province: Province) -> str:
    """Say where a volunteer left a form: how far they got and what it is about."""
    answered = [q for q in form.questions if q.key in state.answers and q.applies(state.answers)]
    if form.name != "proposal":
        return text(language, "recap.profile", count=len(answered))
    about = state.answers.get("title") or state.answers.get("problem")
    group = state.answers.get("target_group")
    lines = [text(language, "recap.proposal", count=len(answered))]
    if group:
        lines.append(
            text(language, "recap.group", group=text(language, f"opt.target_group.{group}"))
        )
    if about:
        short = str(about) if len(str(about)) <= 80 else str(about)[:79] + "…"
        lines.append(text(language, "recap.about", about=short))
    return "\n".join(lines)


def language_choice() -> Reply:
    """Render the language choice."""
    return Reply(
        text("th", "language.prompt"),
        (Button("ภาษาไทย", "lang:th"), Button("English", "lang:en")),
    )


def submitted(language: str, reference: str, office: str) -> Reply:
    """Render the confirmation of a submitted proposal with the menu under it."""
    return menu(language, text(language, "submitted", reference=reference, office_short=office))


def status_list(language: str, proposals: Sequence[dict[str, Any]], province: Province) -> Reply:
    """Render a volunteer's proposals, newest first: title, district, date, status, what next."""
    if not proposals:
        return Reply(text(language, "status.none"))
    lines = [text(language, "status.header", count=len(proposals))]
    for proposal in proposals:
        lines.append("")
        lines.append(proposal_line(language, proposal, province))
        lines.append(text(language, "status.is", status=result(language, proposal["status"])))
        if proposal.get("agency"):
            lines.append(text(language, "notify.agency", agency=proposal["agency"]))
        if proposal.get("comment"):
            lines.append(text(language, "status.comment", comment=proposal["comment"]))
        lines.append(what_next(language, proposal["status"], province))
    revise = tuple(
        Button(f"{text(language, 'btn.revise')} {p['reference']}", f"revise:{p['reference']}")
        for p in proposals
        if p["status"] == "needs_revision"
    )
    return Reply("\n".join(lines), revise)


def result(language: str, status: str) -> str:
    """Return a status as the volunteer reads it: a result, not a stage of office work."""
    return text(language, f"result.{status}")


def what_next(language: str, status: str, province: Province) -> str:
    """Say what happens next to a proposal in a status."""
    office = province.office.short["th" if language == "th" else "en"]
    return text(language, f"next.{status}", office_short=office, province=province.name(language))


def proposal_line(language: str, proposal: dict[str, Any], province: Province) -> str:
    """Return how a proposal is named to its volunteer: title, reference, district and date."""
    district = province.district(proposal.get("district") or "")
    title = proposal.get("title") or text(language, f"opt.target_group.{proposal['target_group']}")
    return text(
        language,
        "status.line",
        title=title,
        reference=proposal["reference"],
        district=district.name(language) if district else "–",
        date=format_date(proposal["submitted_at"], language),
    )


def my_data(
    language: str,
    form: Form,
    profile: dict[str, Any],
    consent_at: datetime | None,
    consent_version: str | None,
    proposal_count: int,
    province: Province,
) -> Reply:
    """Render a copy of everything stored about the volunteer."""
    lines = [text(language, "mydata.title"), ""]
    for question in form.questions:
        if question.applies(profile):
            label = text(language, f"label.{question.key}")
            value = format_value(language, question, profile.get(question.key), province)
            lines.append(f"{label}: {value}")
    lines.append(text(language, "mydata.language"))
    if consent_at is not None:
        date = format_date(consent_at, language)
        version = consent_label(language, consent_version)
        lines.append(text(language, "mydata.consent", date=date, version=version))
    lines += [text(language, "mydata.proposals", count=proposal_count), ""]
    lines.append(text(language, "mydata.hint"))
    return Reply("\n".join(lines))


def consent_label(language: str, version: str | None) -> str:
    """Name a version of the PDPA notice by its month in the reader's calendar (ธ.ค. 2569)."""
    try:
        year, month = (int(part) for part in (version or "").split("-"))
    except ValueError:
        return version or "–"
    if language == "th":
        return f"{TH_MONTHS_SHORT[month - 1]} {buddhist_year(year)}"
    return f"{datetime(year, month, 1):%b} {buddhist_year(year)} (BE)"


def draft_reminder(language: str) -> Reply:
    """Remind a volunteer of an unfinished proposal, with a button to carry on."""
    body = f"{text(language, 'reminder.draft')}\n\n{text(language, 'broadcast.footer')}"
    return Reply(body, (Button(text(language, "btn.continue"), "cmd:new"),))
