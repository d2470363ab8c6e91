"""Match what a volunteer types to the options of a question, as people really type them."""

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from bot.domain.normalize import ascii_digits

# words in front of a name that say what kind of name it is: อ.แม่ริม, อำเภอแม่ริม, กลุ่มผู้สูงอายุ
_PREFIXES = ("อำเภอ", "อ.", "ตำบล", "ต.", "จังหวัด", "จ.", "กลุ่ม", "เลือก", "ข้อ")
# polite particles and softeners at the end of an answer, longest first
_PARTICLES = ("นะคะ", "นะครับ", "นะค่ะ", "ค่ะ", "คะ", "ครับ", "คับ", "ค่า", "จ้า", "จ้ะ", "นะ")
_SEPARATORS = re.compile(r"\s*(?:,|、|;|\+|&|และ|กับ|\band\b)\s*")
# a typo must score this much (rapidfuzz ratio, 0-100) and beat the next option by the margin;
# measured on the 25 districts and every option label: 80 lets กัลยานิวัฒนา, สันกำแพ่ง and
# ไชปราการ through, and no wrong district wins for any one-letter change of another
FUZZY_CUTOFF = 80
FUZZY_MARGIN = 8


def fold(typed: str, prefixes: bool = True) -> str:
    """Return the core of an answer: no prefix, particle, spacing, punctuation or emoji."""
    text = unicodedata.normalize("NFC", ascii_digits(typed)).casefold().strip()
    changed = True
    while changed:
        changed = False
        text = text.strip(" .…!?~")
        for prefix in _PREFIXES if prefixes else ():
            if text.startswith(prefix) and len(text) > len(prefix):
                text, changed = text[len(prefix) :].lstrip(" ."), True
        for particle in _PARTICLES:
            if text.endswith(particle) and len(text) > len(particle):
                text, changed = text[: -len(particle)].rstrip(), True
    # keep letters, combining marks (Thai vowels and tones) and digits; drop the rest, and the
    # variation selectors that follow an emoji (✏️), which Unicode also files as marks
    return "".join(
        ch for ch in text if unicodedata.category(ch)[0] in "LMN" and not "\ufe00" <= ch <= "\ufe0f"
    )


@dataclass(frozen=True)
class Match:
    """The result of matching: the codes found, or the candidates when the text was unclear."""

    codes: tuple[str, ...] = ()
    ambiguous: tuple[str, ...] = ()


def match_one(typed: str, labels: Mapping[str, Sequence[str]]) -> Match:
    """Match typed text to one option code, given each code's labels (in every language).

    Tried in order: the option's number, the whole label, a unique start of a label, a unique
    part of a label (or a label inside the text), then a small misspelling.
    """
    core = fold(typed)
    codes = list(labels)
    if not core:
        return Match()
    if core.isdigit():
        number = int(core)
        return Match((codes[number - 1],)) if 1 <= number <= len(codes) else Match()
    folded = {
        code: [f for f in (fold(label) for label in names) if f] for code, names in labels.items()
    }
    for test in (
        lambda f: f == core,
        lambda f: f.startswith(core),
        lambda f: core in f,
        lambda f: len(f) >= 3 and f in core,
    ):
        found = [code for code in codes if any(test(f) for f in folded[code])]
        if len(found) == 1:
            return Match((found[0],))
        if len(found) > 1:
            return Match(ambiguous=tuple(found))
    return _fuzzy(core, folded)


def _folded_labels(names: Sequence[str]) -> list[str]:
    """Return the cores of an option's labels, and the whole label when a prefix was cut off.

    "อำเภอ/งานทะเบียนราษฎร" is then found by "อำเภอ" as well as by "งานทะเบียน".
    """
    found: list[str] = []
    for name in names:
        for core in _cores(name):
            if core not in found:
                found.append(core)
    return found


@lru_cache(maxsize=4096)
def _cores(label: str) -> tuple[str, ...]:
    """Return a label's cores, once per label (labels are few, answers many)."""
    return tuple(core for core in (fold(label), fold(label, prefixes=False)) if core)


def _fuzzy(core: str, folded: Mapping[str, Sequence[str]]) -> Match:
    """Match a small misspelling with rapidfuzz, only when one option clearly wins."""
    choices = {(code, i): f for code, names in folded.items() for i, f in enumerate(names)}
    best: dict[str, float] = {}
    for _, score, (code, _i) in process.extract(
        core, choices, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF - FUZZY_MARGIN, limit=None
    ):
        best[code] = max(best.get(code, 0.0), score)
    ranked = sorted(best.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] < FUZZY_CUTOFF:
        return Match()
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < FUZZY_MARGIN:
        return Match(ambiguous=tuple(code for code, _ in ranked))
    return Match((ranked[0][0],))


def match_many(typed: str, labels: Mapping[str, Sequence[str]]) -> Match:
    """Match several options: "1 3", "1,3", "1 และ 3", "พมจ. และ อปท." (codes in option order)."""
    whole = match_one(typed, labels)
    if whole.codes:
        return whole
    chosen: list[str] = []
    for part in _SEPARATORS.split(ascii_digits(typed)):
        if not part.strip():
            continue
        found = match_one(part, labels)
        if not found.codes:
            # several numbers or names with only spaces between them
            pieces = [match_one(piece, labels) for piece in part.split()]
            if len(pieces) < 2 or not all(piece.codes for piece in pieces):
                return found if found.ambiguous else Match()
            found = Match(tuple(code for piece in pieces for code in piece.codes))
        chosen += found.codes
    order = list(labels)
    return Match(tuple(sorted(set(chosen), key=order.index)))


def is_one_of(typed: str, words: Sequence[str]) -> bool:
    """Tell whether typed text is one of some words, noise and particles aside."""
    core = fold(typed)
    return bool(core) and core in {fold(word) for word in words}


# particles that only close a sentence politely; "ค่า" and a lone "นะ" can end real words
_CLOSING = tuple(p for p in _PARTICLES if p not in ("ค่า", "นะ"))


def without_closing_particle(typed: str) -> str:
    """Return an answer without the polite particle a volunteer ended it with ("สมศรี ใจดีค่ะ")."""
    text = typed.rstrip(" .…!~")
    for particle in _CLOSING:
        if text.endswith(particle) and len(text) > len(particle):
            return text[: -len(particle)].rstrip(" .…!~") or typed
    return typed
