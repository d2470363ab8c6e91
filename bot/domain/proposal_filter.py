"""What staff ask for: proposals by group, district, status, fiscal year, dates and keyword."""

import re
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from bot.domain.calendar import BE_OFFSET
from bot.domain.i18n import LANGUAGES, text
from bot.domain.normalize import ascii_digits, clean_text
from bot.domain.province import Province
from bot.domain.questionnaire import TARGET_GROUPS
from bot.domain.statuses import STATUSES

_DATE = r"(\d{1,2})/(\d{1,2})/(\d{4})"
_RANGE = re.compile(rf"^{_DATE}(?:-{_DATE})?$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MIN_GROUP_WORD = 3


@dataclass(frozen=True)
class ProposalFilter:
    """A set of conditions on proposals; empty fields match everything."""

    target_groups: tuple[str, ...] = ()
    subgroups: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    fiscal_year: int | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None
    keyword: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the filter as a JSON-ready dict."""
        data = asdict(self)
        for key in ("submitted_from", "submitted_to"):
            data[key] = data[key].isoformat() if data[key] else None
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "ProposalFilter":
        """Build a filter from its stored dict."""
        if not data:
            return cls()
        return cls(
            target_groups=tuple(data.get("target_groups") or ()),
            subgroups=tuple(data.get("subgroups") or ()),
            districts=tuple(data.get("districts") or ()),
            statuses=tuple(data.get("statuses") or ()),
            fiscal_year=data.get("fiscal_year"),
            submitted_from=date.fromisoformat(data["submitted_from"])
            if data.get("submitted_from")
            else None,
            submitted_to=date.fromisoformat(data["submitted_to"])
            if data.get("submitted_to")
            else None,
            keyword=data.get("keyword"),
        )

    def describe(self, language: str, province: Province) -> str:
        """Return the filter in words, for the header of a list."""
        parts = [text(language, f"opt.target_group.{g}") for g in self.target_groups]
        parts += [text(language, f"opt.subgroup.{g}") for g in self.subgroups]
        for code in self.districts:
            district = province.district(code)
            parts.append(district.name(language) if district else code)
        parts += [text(language, f"status.{s}") for s in self.statuses]
        if self.fiscal_year:
            parts.append(text(language, "desk.filter.year", year=self.fiscal_year))
        if self.submitted_from or self.submitted_to:
            start = be_date(self.submitted_from) if self.submitted_from else "…"
            end = be_date(self.submitted_to) if self.submitted_to else "…"
            parts.append(f"{start}–{end}")
        if self.keyword:
            parts.append(f"“{self.keyword}”")
        return ", ".join(parts) or text(language, "desk.filter.all")


def be_date(day: date) -> str:
    """Format a date as d/m/yyyy with a Buddhist Era year."""
    return f"{day.day}/{day.month}/{day.year + BE_OFFSET}"


def parse_date(typed: str) -> date | None:
    """Read d/m/yyyy (Buddhist or Common Era year) or yyyy-mm-dd; None if it is not a date."""
    typed = ascii_digits(typed.strip())
    iso = _ISO.match(typed)
    parts = iso.groups()[::-1] if iso else None
    if parts is None:
        found = _RANGE.match(typed)
        if found is None or found.group(4) is not None:
            return None
        parts = found.groups()[:3]
    return _day(*parts)


def _day(day: str, month: str, year: str) -> date | None:
    ce = int(year) - BE_OFFSET if int(year) > 2400 else int(year)
    try:
        return date(ce, int(month), int(day))
    except ValueError:
        return None


def year_of(typed: str) -> int | None:
    """Read a fiscal year typed in Buddhist (2570) or Common Era (2027); None otherwise."""
    typed = ascii_digits(typed.strip())
    if not typed.isdigit() or len(typed) != 4:
        return None
    year = int(typed)
    if 2500 <= year <= 2700:
        return year
    if 2000 <= year <= 2150:
        return year + BE_OFFSET
    return None


def group_of(typed: str) -> str | None:
    """Return the target group a word names (code, label or part of a label), or None."""
    folded = typed.casefold()
    if folded in TARGET_GROUPS:
        return folded
    if len(folded) < _MIN_GROUP_WORD:
        return None
    for code in TARGET_GROUPS:
        for language in LANGUAGES:
            if folded in text(language, f"opt.target_group.{code}").casefold():
                return code
    return None


def status_of(typed: str) -> str | None:
    """Return the status a word names (code or label), or None."""
    folded = typed.casefold()
    for code in STATUSES:
        names = {code, *(text(lang, f"status.{code}").casefold() for lang in LANGUAGES)}
        if folded in names:
            return code
    return None


def district_of(typed: str, province: Province) -> str | None:
    """Return the district a word names (code or name, with or without อำเภอ), or None."""
    folded = typed.casefold().removeprefix("อำเภอ").removeprefix("อ.").strip()
    for district in province.districts:
        names = {district.code, district.name_th.casefold(), district.name_en.casefold()}
        if folded in names:
            return district.code
    return None


def parse_filter(typed: str, province: Province) -> ProposalFilter:
    """Read a filter from words typed after a command; words that name nothing are the keyword.

    "ผู้สูงอายุ แม่ริม รอพิจารณา 2570 1/10/2569-31/12/2569 น้ำท่วม" filters by group,
    district, status, fiscal year and dates and searches for น้ำท่วม; quotes force a keyword.
    """
    found = ProposalFilter()
    keyword: list[str] = []
    typed = clean_text(typed)
    quoted = re.findall(r"[\"“”']([^\"“”']+)[\"“”']", typed)
    typed = re.sub(r"[\"“”']([^\"“”']+)[\"“”']", " ", typed)
    for word in typed.split():
        found, taken = _take(found, word, province)
        if not taken:
            keyword.append(word)
    words = " ".join([*quoted, *keyword]).strip()
    return replace(found, keyword=words or None)


def _take(found: ProposalFilter, word: str, province: Province) -> tuple[ProposalFilter, bool]:
    """Add what one word names to a filter; tell whether it named anything."""
    if (group := group_of(word)) is not None:
        return replace(found, target_groups=(*found.target_groups, group)), True
    if (district := district_of(word, province)) is not None:
        return replace(found, districts=(*found.districts, district)), True
    if (status := status_of(word)) is not None:
        return replace(found, statuses=(*found.statuses, status)), True
    if (year := year_of(word)) is not None:
        return replace(found, fiscal_year=year), True
    span = _RANGE.match(ascii_digits(word))
    if span is not None:
        start = _day(*span.groups()[:3])
        end = _day(*span.groups()[3:]) if span.group(4) else start
        if start is not None and end is not None:
            return replace(found, submitted_from=start, submitted_to=end), True
    return found, False
