"""How many people or households face a problem, as volunteers write it and as it is shown."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.i18n import text
from bot.domain.normalize import ascii_digits, plain_dashes

_NUMBER = re.compile(r"\d[\d,]*")


@dataclass(frozen=True)
class Count:
    """How many people or households face a problem: one number, a range, or unknown."""

    low: int | None
    high: int | None = None
    unit: str = "people"

    def to_json(self) -> dict[str, object]:
        """Return the count as a JSON-ready dict."""
        return {"low": self.low, "high": self.high, "unit": self.unit}

    @classmethod
    def from_json(cls, value: object) -> "Count":
        """Read a stored count (a bare number from before ranges existed, too)."""
        if isinstance(value, dict):
            return cls(value.get("low"), value.get("high"), value.get("unit") or "people")
        return cls(int(value) if isinstance(value, int | str) and str(value).isdigit() else None)


_UNKNOWN_WORDS = ("ไม่ทราบ", "ไม่รู้", "ไม่แน่ใจ", "unknown", "don't know", "dont know", "not sure")
_HOUSEHOLD_WORDS = ("ครัวเรือน", "หลังคาเรือน", "ครอบครัว", "household", "families", "family")
_RANGE = re.compile(r"^\D*?(\d+)\s*(?:-|–|ถึง|to|ถึงประมาณ)\s*(\d+)\D*$")


def _number_words(text: str) -> str:
    """Turn Thai number words into digits ("สามสิบ" → "30"), keeping other text."""
    from pythainlp.util import text_to_num  # imported on first use: it loads word lists

    return "".join(text_to_num(text))


def parse_people(text: str) -> Count | None:
    """Read how many people face a problem: "35", "๓๕ คน", "ประมาณ 30-40 คน", "สามสิบ",
    "12 ครัวเรือน" or "ไม่ทราบ"; None when the text says no number."""
    folded = plain_dashes(ascii_digits(text)).casefold()
    unit = "households" if any(w in folded for w in _HOUSEHOLD_WORDS) else "people"
    if any(w in folded for w in _UNKNOWN_WORDS):
        return Count(None, None, unit)
    if not re.search(r"\d", folded):
        folded = _number_words(folded)
    folded = re.sub(r"(?<=\d),(?=\d{3})", "", folded)
    ranged = _RANGE.match(folded)
    if ranged:
        low, high = sorted((int(ranged[1]), int(ranged[2])))
        return Count(low, high if high != low else None, unit)
    found = _NUMBER.findall(folded)
    if len(found) != 1 or len(found[0]) > 12:
        return None
    return Count(int(found[0].replace(",", "")), None, unit)


def stored_count(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a stored proposal's count as the questionnaire's answer (0 stored: unknown)."""
    return Count(row["people_affected"] or None, row["people_max"], row["people_unit"]).to_json()


def format_count(language: str, value: object) -> str:
    """Return how many face a problem with its unit: "40 คน", "30–40 คน", "ไม่ทราบ"."""
    count = Count.from_json(value)
    if count.low is None:
        return text(language, "value.count_unknown")
    number = f"{count.low:,}" if count.high is None else f"{count.low:,}–{count.high:,}"
    return text(language, f"value.{count.unit}", number=number)


_MAGNITUDES = {"พัน": 1_000, "หมื่น": 10_000, "แสน": 100_000, "ล้าน": 1_000_000}
_SCALED = re.compile(r"(\d+(?:\.\d+)?)\s*(พัน|หมื่น|แสน|ล้าน)")


def parse_baht(text: str) -> int | None:
    """Read an amount of baht: "20,000", "ประมาณ 2 หมื่นบาท", "1.5 แสน", "สองหมื่น"; else None."""
    scaled = _SCALED.search(ascii_digits(text).replace(",", ""))
    if scaled:
        return round(float(scaled[1]) * _MAGNITUDES[scaled[2]])
    count = parse_people(text)
    if count is None or count.low is None:
        return None
    return count.high or count.low
