"""The text catalogues, one per language (Thai first), and lookup of a text by key."""

from bot.domain.i18n import en, th

CATALOGUES: dict[str, dict[str, str]] = {"th": th.TEXTS, "en": en.TEXTS}
LANGUAGES = tuple(CATALOGUES)


def text(language: str, key: str, **values: object) -> str:
    """Return the text for a key in a language (Thai when missing), filled with values."""
    catalogue = CATALOGUES.get(language, th.TEXTS)
    template = catalogue.get(key) or th.TEXTS[key]
    return template.format(**values) if values else template


def has(language: str, key: str) -> bool:
    """Tell whether a language's catalogue has a key."""
    return key in CATALOGUES.get(language, {})


def words(key: str) -> set[str]:
    """Return every language's typed words for a command, case-folded."""
    return {
        w.strip().casefold()
        for cat in CATALOGUES.values()
        for w in cat[key].split("|")
        if w.strip()
    }
