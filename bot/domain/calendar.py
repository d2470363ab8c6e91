"""Thai calendar rules: Bangkok time, Buddhist Era years and the government fiscal year."""

from datetime import UTC, datetime, timedelta, timezone

BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")
BE_OFFSET = 543

TH_MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)  # fmt: skip


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime; naive values are taken to be UTC already (as stored)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_bangkok(moment: datetime) -> datetime:
    """Convert a datetime to Bangkok time."""
    return as_utc(moment).astimezone(BANGKOK)


def buddhist_year(ce_year: int) -> int:
    """Return the Buddhist Era year for a Common Era year."""
    return ce_year + BE_OFFSET


def fiscal_year(moment: datetime) -> int:
    """Return the Thai fiscal year (Buddhist Era, named by the year it ends) containing a moment."""
    local = to_bangkok(moment)
    ce = local.year + 1 if local.month >= 10 else local.year
    return buddhist_year(ce)


def format_date(moment: datetime, language: str) -> str:
    """Format a moment as a Bangkok-time date and time a reader of the language expects."""
    local = to_bangkok(moment)
    if language == "th":
        month = TH_MONTHS_SHORT[local.month - 1]
        return f"{local.day} {month} {buddhist_year(local.year)} {local:%H:%M} น."
    return f"{local:%d %b} {buddhist_year(local.year)} (BE), {local:%H:%M}"
