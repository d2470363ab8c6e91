"""Splits long text into pieces within a platform's limit, at line breaks where possible."""


def split_text(text: str, limit: int) -> list[str]:
    """Split text into pieces of at most `limit` characters, breaking at newlines when it can."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text or " ")
    return pieces
