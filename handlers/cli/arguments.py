"""Checks of command-line arguments that typer's types cannot express, each naming its option."""

from pathlib import Path

import typer


def output_file(path: Path, kinds: tuple[str, ...], force: bool, hint: str) -> str:
    """Check a file about to be written (its ending, its folder, no unasked overwrite); its kind."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in kinds:
        endings = " or ".join(f".{k}" for k in kinds)
        raise typer.BadParameter(f"{path} must end in {endings}", param_hint=hint)
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; name a file", param_hint=hint)
    if not path.absolute().parent.is_dir():
        raise typer.BadParameter(f"the folder {path.parent} does not exist", param_hint=hint)
    if path.exists() and not force:
        raise typer.BadParameter(f"{path} exists; add --force to overwrite it", param_hint=hint)
    return kind
