"""Who a broadcast reaches: consenting volunteers, narrowed by platform, group, place, network."""

from dataclasses import dataclass, replace
from typing import Any

from bot.domain import platforms
from bot.domain.i18n import LANGUAGES, text
from bot.domain.normalize import clean_text
from bot.domain.proposal_filter import district_of, group_of
from bot.domain.province import Province
from bot.domain.questionnaire import NETWORK_TYPES


@dataclass(frozen=True)
class Audience:
    """Conditions on volunteers; empty fields match everyone who consented and opted in."""

    platforms: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    has_draft: bool = False
    not_submitted_this_year: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the audience as a JSON-ready dict."""
        return {
            "platforms": list(self.platforms),
            "groups": list(self.groups),
            "districts": list(self.districts),
            "networks": list(self.networks),
            "has_draft": self.has_draft,
            "not_submitted_this_year": self.not_submitted_this_year,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Audience":
        """Build an audience from its stored dict."""
        data = data or {}
        return cls(
            platforms=tuple(data.get("platforms") or ()),
            groups=tuple(data.get("groups") or ()),
            districts=tuple(data.get("districts") or ()),
            networks=tuple(data.get("networks") or ()),
            has_draft=bool(data.get("has_draft")),
            not_submitted_this_year=bool(data.get("not_submitted_this_year")),
        )

    def describe(self, language: str, province: Province) -> str:
        """Return the audience in words."""
        parts = [p.upper() if p == "line" else p.title() for p in self.platforms]
        parts += [text(language, f"opt.target_group.{g}") for g in self.groups]
        for code in self.districts:
            district = province.district(code)
            parts.append(district.name(language) if district else code)
        parts += [text(language, f"opt.network.{n}") for n in self.networks]
        if self.has_draft:
            parts.append(text(language, "audience.has_draft"))
        if self.not_submitted_this_year:
            parts.append(text(language, "audience.not_submitted"))
        return ", ".join(parts) or text(language, "audience.everyone")


def _network_of(typed: str) -> str | None:
    folded = typed.casefold()
    for code in NETWORK_TYPES:
        names = {code, *(text(lang, f"opt.network.{code}").casefold() for lang in LANGUAGES)}
        if folded in names:
            return code
    return None


def _flag_of(typed: str) -> str | None:
    folded = typed.casefold()
    for flag in ("has_draft", "not_submitted"):
        if folded in {w.casefold() for lang in LANGUAGES
                      for w in text(lang, f"words.{flag}").split("|")}:  # fmt: skip
            return flag
    return None


def parse_audience(typed: str, province: Province) -> tuple[Audience, list[str]]:
    """Read an audience from words; return it and the words that named nothing."""
    found, unknown = Audience(), []
    for word in clean_text(typed).split():
        folded = word.casefold()
        if folded in platforms.MESSAGING:
            found = replace(found, platforms=(*found.platforms, folded))
        elif (flag := _flag_of(word)) is not None:
            if flag == "has_draft":
                found = replace(found, has_draft=True)
            else:
                found = replace(found, not_submitted_this_year=True)
        elif (group := group_of(word)) is not None:
            found = replace(found, groups=(*found.groups, group))
        elif (district := district_of(word, province)) is not None:
            found = replace(found, districts=(*found.districts, district))
        elif (network := _network_of(word)) is not None:
            found = replace(found, networks=(*found.networks, network))
        elif folded not in {w.casefold() for lang in LANGUAGES
                            for w in text(lang, "words.everyone").split("|")}:  # fmt: skip
            unknown.append(word)
    return found, unknown
