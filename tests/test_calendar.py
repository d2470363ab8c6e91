"""Bangkok time, Buddhist Era years and the Thai fiscal year."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.calendar import BANGKOK, fiscal_year, format_date


@pytest.mark.parametrize(
    ("moment", "year"),
    [
        (datetime(2016, 10, 1, 0, 0, tzinfo=UTC), 2560),
        (datetime(2017, 9, 30, 16, 59, tzinfo=UTC), 2560),  # 23:59 on 30 Sep in Bangkok
        (datetime(2017, 9, 30, 17, 0, tzinfo=UTC), 2561),  # midnight 1 Oct in Bangkok
        (datetime(2026, 11, 29, 3, 0, tzinfo=UTC), 2570),
        (datetime(2027, 1, 31, 12, 0, tzinfo=UTC), 2570),
    ],
)
def test_fiscal_year_runs_october_to_september_in_bangkok(moment: datetime, year: int) -> None:
    """FY 2560 is 1 Oct 2016 to 30 Sep 2017, counted in Bangkok time."""
    assert fiscal_year(moment) == year


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_fiscal_year_is_the_buddhist_year_it_ends_in(naive: datetime) -> None:
    """The fiscal year is always the BE year of the Bangkok date, or the next one from October."""
    moment = naive.replace(tzinfo=UTC)
    local = moment.astimezone(BANGKOK)
    expected = local.year + 543 + (1 if local.month >= 10 else 0)
    assert fiscal_year(moment) == expected


def test_dates_are_shown_in_bangkok_time_with_buddhist_years() -> None:
    """A UTC evening is the next morning in Bangkok, in BE."""
    moment = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)
    assert format_date(moment, "th") == "1 ม.ค. 2570 01:30 น."
    assert format_date(moment, "en") == "01 Jan 2570 (BE), 01:30"
