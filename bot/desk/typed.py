"""How staff type commands: "/command rest", with an optional @botname after the command."""

from bot.domain.normalize import clean_text


def split_command(typed: str) -> tuple[str | None, str]:
    """Split "/command rest" into the command's name and the rest; (None, text) otherwise."""
    typed = clean_text(typed)
    if not typed.startswith("/") or len(typed) < 2:
        return None, typed
    head, _, rest = typed[1:].partition(" ")
    return head.split("@")[0].lower(), rest.strip()
