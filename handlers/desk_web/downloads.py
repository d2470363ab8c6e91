"""Workbooks built after a page's transaction has ended, so a long build holds no write lock."""

import os
import tempfile
from collections.abc import Callable, Iterator

from starlette.responses import StreamingResponse

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CHUNK = 64 * 1024


def workbook(build: Callable[[str], None], filename: str) -> StreamingResponse:
    """Send a workbook that `build` writes to a path once the response starts, then delete it.

    A page runs in one write transaction (SQLite: BEGIN IMMEDIATE) that ends when its handler
    returns; building the file here instead, from its own read-only connection, keeps a
    100,000-row export from holding every volunteer's answer behind it.
    """
    headers = {"Content-Disposition": f'attachment; filename="{filename}"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(_built(build), media_type=XLSX, headers=headers)


def _built(build: Callable[[str], None]) -> Iterator[bytes]:
    handle, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    try:
        build(path)
        with open(path, "rb") as file:
            while chunk := file.read(_CHUNK):
                yield chunk
    finally:
        os.unlink(path)
