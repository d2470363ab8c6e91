"""Normalisers and validators for what volunteers type."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.counts import Count, parse_people
from bot.domain.matching import match_one
from bot.domain.normalize import (
    THAI_DIGITS,
    ascii_digits,
    clean_text,
    find_phone,
    graphemes,
    parse_phone,
)
from bot.domain.province import load_province


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
    for typed in (str(number), thai, f"ประมาณ {number:,} คน"):
        assert parse_people(typed) == Count(number)


@pytest.mark.parametrize("typed", ["", "หลายคน", "1.5.6 7"])
def test_counts_need_one_number_or_one_range(typed: str) -> None:
    """No number, or several that are not a range, is not an answer."""
    assert parse_people(typed) is None


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


@pytest.mark.parametrize(
    ("typed", "low", "high", "unit"),
    [
        ("35", 35, None, "people"),
        ("ประมาณ 30-40 คน", 30, 40, "people"),
        ("30 – 40", 30, 40, "people"),
        ("สามสิบ", 30, None, "people"),
        ("สามสิบถึงสี่สิบคน", 30, 40, "people"),
        ("1,200 คน", 1200, None, "people"),
        ("12 ครัวเรือน", 12, None, "households"),
        ("ไม่ทราบค่ะ", None, None, "people"),
    ],
)
def test_counts_are_read_as_people_say_them(
    typed: str, low: int | None, high: int | None, unit: str
) -> None:
    """Numbers, ranges, Thai number words, households and "don't know"."""
    assert parse_people(typed) == Count(low, high, unit)


@pytest.mark.parametrize(
    ("text", "count"), [("ไม่มีเงิน", 6), ("ขาดรายได้", 8), ("ผู้สูงอายุ", 6), ("abc", 3)]
)
def test_length_is_what_a_reader_sees(text: str, count: int) -> None:
    """Thai vowel and tone marks above and below a letter are not letters of their own."""
    assert graphemes(text) == count


def test_a_phone_is_found_among_words_with_any_dash() -> None:
    """โทร 081–234–5678 ค่ะ has one phone in it; two numbers are not one phone."""
    found = find_phone("โทร 081–234–5678 ค่ะ")
    assert found is not None
    assert found.e164 == "+66812345678"
    assert find_phone("081-234-5678 หรือ 089-999-9999") is None


@pytest.mark.parametrize(
    ("typed", "code"),
    [("อ.แม่ริม", "5007"), ("อำเภอ แม่ริม ค่ะ", "5007"), ("เมือง", "5001"),
     ("กัลยานิวัฒนา", "5025"), ("mae rim", "5007"), ("7", "5007")],
)  # fmt: skip
def test_districts_match_by_prefix_part_and_small_typos(typed: str, code: str) -> None:
    """The matcher behind every typed choice, on the 25 districts."""
    labels = {d.code: [d.name_th, d.name_en] for d in load_province("CM").districts}
    assert match_one(typed, labels).codes == (code,)


def test_no_one_letter_slip_of_a_district_picks_another_district() -> None:
    """Dropping any one character of any district never matches a different district."""
    districts = load_province("CM").districts
    labels = {d.code: [d.name_th] for d in districts}
    for district in districts:
        name = district.name_th
        for i in range(len(name)):
            found = match_one(name[:i] + name[i + 1 :], labels).codes
            assert found in ((), (district.code,)), name[:i] + name[i + 1 :]
