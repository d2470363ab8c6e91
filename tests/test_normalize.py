"""Normalisers and validators for what volunteers type."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.normalize import THAI_DIGITS, ascii_digits, clean_text, parse_count, parse_phone


@pytest.mark.parametrize(
    ("typed", "national"),
    [
        ("081-234-5678", "081-234-5678"),
        ("0812345678", "081-234-5678"),
        ("+66 81 234 5678", "081-234-5678"),
        ("66812345678", "081-234-5678"),
        ("๐๘๑-๒๓๔-๕๖๗๘", "081-234-5678"),
        ("(081) 234.5678", "081-234-5678"),
        ("053-123-456", "053-123-456"),
        ("02 123 4567", "02-123-4567"),
        ("095 555 0000", "095-555-0000"),
    ],
)
def test_phone_numbers_in_every_thai_form_are_accepted(typed: str, national: str) -> None:
    """Mobile and landline numbers parse whatever their separators, digits or prefix."""
    phone = parse_phone(typed)
    assert phone is not None
    assert phone.national == national


@pytest.mark.parametrize(
    "typed", ["", "12345", "081-234-567", "0812345678901", "+1 212 555 0100", "abc", "011234567"]
)
def test_wrong_phone_numbers_are_refused(typed: str) -> None:
    """Too short, too long, foreign or non-Thai numbers are not phone numbers here."""
    assert parse_phone(typed) is None


@given(st.from_regex(r"0[689][0-9]{8}", fullmatch=True), st.sampled_from(["", "-", " ", "."]))
def test_any_mobile_number_round_trips(digits: str, separator: str) -> None:
    """Any 10-digit mobile, written with any separator or in Thai digits, keeps its digits."""
    typed = separator.join([digits[:3], digits[3:6], digits[6:]])
    thai = typed.translate(str.maketrans("0123456789", THAI_DIGITS))
    for form in (typed, thai, "+66" + digits[1:]):
        phone = parse_phone(form)
        assert phone is not None
        assert phone.national.replace("-", "") == digits
        assert phone.e164 == "+66" + digits[1:]


@given(st.integers(min_value=0, max_value=10**9))
def test_counts_read_in_thai_or_ascii_digits_with_commas(number: int) -> None:
    """A number is read back whether typed in Thai digits, ASCII digits or with commas."""
    thai = str(number).translate(str.maketrans("0123456789", THAI_DIGITS))
    assert parse_count(str(number)) == number
    assert parse_count(thai) == number
    assert parse_count(f"ประมาณ {number:,} คน") == number


@pytest.mark.parametrize("typed", ["", "ไม่ทราบ", "10 ถึง 20 คน", "1.5.6 7"])
def test_counts_need_exactly_one_number(typed: str) -> None:
    """No number, or several, is not an answer."""
    assert parse_count(typed) is None


@given(st.text())
def test_ascii_digits_changes_only_thai_digits(typed: str) -> None:
    """Only the ten Thai digits change, each into its ASCII twin."""
    result = ascii_digits(typed)
    assert len(result) == len(typed)
    for before, after in zip(typed, result, strict=True):
        if before in THAI_DIGITS:
            assert after == str(THAI_DIGITS.index(before))
        else:
            assert after == before


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_clean_text_keeps_thai_marks_and_emoji(typed: str) -> None:
    """Cleaning only trims outer whitespace: Thai combining marks and emoji survive."""
    import unicodedata

    assert clean_text(typed) == unicodedata.normalize("NFC", typed).strip()


def test_clean_text_keeps_a_thai_sentence_with_emoji_intact() -> None:
    """Tone marks, vowels above and below, and emoji with skin tones are kept exactly."""
    typed = "  ผู้สูงอายุที่ไม่ทราบสิทธิ์ 👵🏽❤️ น้ำท่วม\x00 "
    assert clean_text(typed) == "ผู้สูงอายุที่ไม่ทราบสิทธิ์ 👵🏽❤️ น้ำท่วม"
