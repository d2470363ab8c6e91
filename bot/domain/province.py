"""Provinces as data: code, names and districts, loaded from bot/data/provinces.json."""

import json
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources


@dataclass(frozen=True)
class District:
    """One district (อำเภอ) with its official code and names."""

    code: str
    name_th: str
    name_en: str

    def name(self, language: str) -> str:
        """Return the district's name in a language."""
        return self.name_th if language == "th" else self.name_en


@dataclass(frozen=True)
class Office:
    """The provincial office that controls the data (PDPA) and how to reach it."""

    name: dict[str, str]
    short: dict[str, str]
    address: dict[str, str]
    phone: str
    email: str
    # personal data and proposals are kept this many years after the last proposal
    retention_years: int

    def values(self, language: str) -> dict[str, object]:
        """Return the office's details in a language, to fill a catalogue text."""
        pick = "th" if language == "th" else "en"
        return {
            "office": self.name[pick],
            "office_short": self.short[pick],
            "address": self.address[pick],
            "office_phone": self.phone,
            "email": self.email,
            "years": self.retention_years,
        }


@dataclass(frozen=True)
class Province:
    """A province the bot serves: its reference-number code, names and districts."""

    code: str
    name_th: str
    name_en: str
    districts: tuple[District, ...]
    office: Office

    def name(self, language: str) -> str:
        """Return the province's name in a language."""
        return self.name_th if language == "th" else self.name_en

    def district(self, code: str) -> District | None:
        """Return the district with a code, or None."""
        return self._by_code.get(code)

    @cached_property
    def _by_code(self) -> dict[str, District]:
        """Index the districts by code (exports look one up per row)."""
        return {d.code: d for d in self.districts}


@cache
def _provinces() -> dict:
    """Return the bundled provinces file, parsed."""
    text = resources.files("bot.domain.data").joinpath("provinces.json").read_text("utf-8")
    return dict(json.loads(text))


def known_provinces() -> list[str]:
    """Return the codes of the provinces the bot has data for."""
    return sorted(_provinces())


@cache
def load_province(code: str = "CM") -> Province:
    """Load a province by its code from the bundled data file."""
    raw = _provinces()
    if code not in raw:
        raise ValueError(f"unknown province {code!r}; known: {', '.join(sorted(raw))}")
    entry = raw[code]
    districts = tuple(District(c, th, en) for c, th, en in entry["districts"])
    office = Office(**entry["office"])
    return Province(code, entry["name"]["th"], entry["name"]["en"], districts, office)
