"""Reads a webhook body as strict JSON and checks its shape, saying why when it cannot."""

import json
import logging
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)


class BadBody(Exception):
    """A webhook body the bot refuses; the message says why without quoting the body."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        # two values for one key: which one a reader takes differs, so take neither
        raise ValueError("a key appears twice")
    return found


def parse_json(body: bytes) -> Any:
    """Return the JSON value of a body: UTF-8, no NaN or Infinity, no repeated keys."""
    try:
        return json.loads(
            body.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_no_repeats
        )
    except UnicodeDecodeError:
        raise BadBody("not UTF-8") from None
    except RecursionError:
        raise BadBody("nested too deeply") from None
    except ValueError as error:
        raise BadBody(f"not JSON ({type(error).__name__})") from None


def check(model: type[BaseModel], value: Any) -> None:
    """Check a value's shape against a model; BadBody names the first wrong field, not its value."""
    try:
        model.model_validate(value)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadBody(f"{where}: {first['type']}") from None
    except RecursionError:
        raise BadBody("nested too deeply") from None


def refused(platform: str, status: int, reason: str) -> JSONResponse:
    """Answer a webhook call the bot will not take, and log why (never what it carried)."""
    log.info("refused a %s webhook call (%d): %s", platform, status, reason)
    return JSONResponse({"error": reason}, status_code=status)
