"""Normalisers and validators for typed input: Thai digits, phone numbers, counts, text."""

import re
import unicodedata
from dataclasses import dataclass

import regex
from pythainlp.util import normalize as thai_normalize

THAI_DIGITS = "๐๑๒๓๔๕๖๗๘๙"
_DIGIT_TABLE = str.maketrans(THAI_DIGITS, "0123456789")
_PHONE_NOISE = re.compile(r"[\s\-.()/]")


def ascii_digits(text: str) -> str:
    """Replace Thai digits with ASCII digits, leaving everything else as it is."""
    return text.translate(_DIGIT_TABLE)


def clean_text(text: str) -> str:
    """Return typed text in NFC with control characters removed and outer whitespace trimmed."""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    return kept.strip()


@dataclass(frozen=True)
class Phone:
    """A Thai phone number in international form, with its usual written national form."""

    e164: str

    @property
    def national(self) -> str:
        """Return the number as Thais write it: 081-234-5678, 053-123-456 or 02-123-4567."""
        digits = "0" + self.e164[3:]
        if digits.startswith("02"):
            return f"{digits[:2]}-{digits[2:5]}-{digits[5:]}"
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def parse_phone(text: str) -> Phone | None:
    """Parse a Thai mobile or landline number in any usual form, or return None."""
    raw = _PHONE_NOISE.sub("", ascii_digits(text.strip()))
    if raw.startswith("+"):
        raw = raw[1:]
        if not raw.startswith("66"):
            return None
    if raw.startswith("66"):
        raw = "0" + raw[2:]
    if not raw.isdigit() or not raw.startswith("0"):
        return None
    mobile = len(raw) == 10 and raw[1] in "689"
    landline = len(raw) == 9 and raw[1] in "234567"
    if not (mobile or landline):
        return None
    return Phone("+66" + raw[1:])


# dashes a phone keyboard or a copied number may carry: hyphen, non-breaking hyphen, figure
# dash, en dash, em dash, minus sign, small and full-width hyphen-minus
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
_DASH_TABLE = str.maketrans(dict.fromkeys(_DASHES, "-"))
_PHONE_CANDIDATE = re.compile(r"\+?\d[\d\s\-.()/]{6,}\d")
_WORDS = re.compile(r"[^\W\d_]", re.UNICODE)


def plain_dashes(text: str) -> str:
    """Replace every kind of dash with the ASCII hyphen-minus."""
    return text.translate(_DASH_TABLE)


def find_phone(text: str) -> Phone | None:
    """Find one Thai phone number in a text with words around it ("โทร 081–234–5678 ค่ะ")."""
    found = [
        phone
        for candidate in _PHONE_CANDIDATE.findall(plain_dashes(ascii_digits(text)))
        if (phone := parse_phone(candidate)) is not None
    ]
    return found[0] if len(found) == 1 else None


def graphemes(text: str) -> int:
    """Count the characters a reader sees: ไม่มีเงิน is 6, though it is 9 code points."""
    return len(regex.findall(r"\X", text))


def first_graphemes(text: str, maximum: int) -> str:
    """Return the start of a text, at most as many characters as a reader sees."""
    return "".join(regex.findall(r"\X", text)[:maximum]).rstrip()


def has_letters(text: str) -> bool:
    """Tell whether a text has at least one letter of any script (not only digits and marks)."""
    return _WORDS.search(text) is not None


def count_words(text: str) -> int:
    """Count the words of a text, Thai included (Thai is written without spaces between words)."""
    from pythainlp.tokenize import word_tokenize  # imported on first use: it loads a dictionary

    return sum(1 for word in word_tokenize(text) if has_letters(word) or word.strip().isdigit())


def search_form(*texts: str | None) -> str:
    """Return texts as search indexes and matches them: Thai marks in one order, one per line.

    Phones and keyboards leave vowels and tone marks in different orders that look the same
    ("น" + "ำ" + "้" and "น้ำ"); PyThaiNLP's normaliser puts them in the standard order and
    drops zero-width characters, repeated marks and doubled spaces.
    """
    return "\n".join(thai_normalize(unicodedata.normalize("NFC", t)) for t in texts if t)


def national_phone(stored: str | None) -> str | None:
    """Return a stored phone number (+66…) as Thais write it (081-234-5678), as text."""
    if stored and stored.startswith("+66"):
        return Phone(stored).national
    return stored
