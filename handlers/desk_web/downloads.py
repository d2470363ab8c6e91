"""Workbooks streamed as they are written, after a page's transaction has ended."""

import os
import threading
from collections.abc import Callable, Iterator
from typing import IO

from starlette.responses import StreamingResponse

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CHUNK = 64 * 1024


def workbook(build: Callable[[IO[bytes]], None], filename: str) -> StreamingResponse:
    """Send a workbook that `build` writes to a stream, piece by piece as it is written.

    A page's own transaction ends when its handler returns; building the file only once the
    response starts, from its own read-only connection (which never takes SQLite's write
    lock), keeps a 100,000-row export out of it and from holding anyone's answer behind it.
    The zip is written to a pipe (zipfile writes data descriptors to an unseekable stream), so
    the first bytes leave at once instead of after the whole workbook.
    """
    headers = {"Content-Disposition": f'attachment; filename="{filename}"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(_piped(build), media_type=XLSX, headers=headers)


def _piped(build: Callable[[IO[bytes]], None]) -> Iterator[bytes]:
    reading, writing = os.pipe()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            with os.fdopen(writing, "wb") as out:
                build(out)
        except BaseException as error:  # handed to the response, which logs it
            failed.append(error)

    writer = threading.Thread(target=write, name="workbook", daemon=True)
    writer.start()
    # closing the read end (a browser that went away) stops the writer with a broken pipe
    with os.fdopen(reading, "rb") as pipe:
        while chunk := pipe.read(_CHUNK):
            yield chunk
    writer.join()
    if failed and not isinstance(failed[0], BrokenPipeError):
        raise failed[0]
