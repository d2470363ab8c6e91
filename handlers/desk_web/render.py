"""Jinja2 pages in the officer's language: catalogue texts, Buddhist-Era dates, numbers."""

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from bot.domain.calendar import BE_OFFSET, TH_MONTHS_SHORT, format_date, to_bangkok
from bot.domain.counts import format_count, stored_count
from bot.domain.i18n import has, text
from bot.domain.proposal_filter import be_date
from bot.domain.province import Province

TEMPLATES = Path(__file__).parent / "templates"


def number(value: int | float | None) -> str:
    """Format a number with thousands separators."""
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def day(value: date | datetime | None, language: str) -> str:
    """Format a day as a reader expects: 30 พ.ย. 2569, or 30 Nov 2569 (Buddhist Era)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        value = to_bangkok(value)
    return f"{value.day} {month(value, language)}"


def month(value: date, language: str) -> str:
    """Format a month with its Buddhist-Era year: พ.ย. 2569, or Nov 2569."""
    name = TH_MONTHS_SHORT[value.month - 1] if language == "th" else f"{value:%b}"
    return f"{name} {value.year + BE_OFFSET}"


def when(value: datetime | None, language: str) -> str:
    """Format a stored moment in Bangkok time: 30 พ.ย. 2569 14:05 น."""
    return format_date(value, language) if value is not None else "-"


def readable_json(value: object) -> str:
    """Return a value as JSON with Thai left readable (escaped for HTML by the template)."""
    return json.dumps(value, ensure_ascii=False)


class Pages:
    """Renders the desk's templates for one province."""

    def __init__(self, province: Province) -> None:
        self.province = province
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(num=number, be_date=be_date, json=readable_json)

    def html(
        self, template: str, language: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render a page in a language."""

        def t(key: str, **values: object) -> str:
            return text(language, key, **values)

        def district(code: str | None) -> str:
            found = self.province.district(code) if code else None
            return found.name(language) if found else (code or "-")

        def people_count(row: Any) -> str:
            return format_count(language, stored_count(row))

        def action_name(code: str) -> str:
            # an audit action's name in this language; a code nobody named yet shows as itself
            key = f"audit.action.{code}"
            return text(language, key) if has(language, key) else code

        body = self.env.get_template(template).render(
            t=t, lang=language, district=district, province=self.province,
            people_count=people_count, action_name=action_name, day=lambda v: day(v, language),
            when=lambda v: when(v, language), month=lambda v: month(v, language), **context,
        )  # fmt: skip
        headers = {"Cache-Control": "no-store", "Content-Language": language}
        return HTMLResponse(body, status_code=status_code, headers=headers)
