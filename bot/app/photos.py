"""Keeps the photos volunteers send: download results checked, stored by hash, read for staff."""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine as Database

from bot.domain.calendar import utcnow
from storage import photos
from storage.photo_files import PhotoFiles, sniff

log = logging.getLogger(__name__)

# a failed download waits 30 s, then twice as long each time, never more than an hour
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


class PhotoGone(Exception):
    """The platform no longer has a photo (deleted, unsent, or never there): no retry helps."""


@dataclass(frozen=True)
class Due:
    """A photo waiting to be downloaded."""

    photo_id: int
    platform: str
    file_id: str
    attempts: int


@dataclass(frozen=True)
class KeptPhoto:
    """A stored photo's bytes and type."""

    sha256: str
    content_type: str
    content: bytes


class PhotoKeeper:
    """Records, checks and stores photos; the channels only fetch the bytes."""

    def __init__(
        self,
        db: Database,
        files: PhotoFiles,
        max_bytes: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.files = files
        self.max_bytes = max_bytes
        self.clock = clock

    def due(self, platforms: Iterable[str]) -> list[Due]:
        """Return photos of some platforms whose download is due now."""
        with self.db.begin() as connection:
            rows = photos.due(connection, platforms, self.clock())
        return [Due(r["id"], r["platform"], r["file_id"], r["attempts"]) for r in rows]

    def pending(self, platform: str, file_id: str) -> Due | None:
        """Return a photo if it still waits for its download."""
        with self.db.begin() as connection:
            row = photos.find(connection, platform, file_id)
        if row is None or row["status"] != photos.PENDING:
            return None
        return Due(row["id"], row["platform"], row["file_id"], row["attempts"])

    def keep(self, photo: Due, content: bytes) -> str:
        """Check downloaded bytes and store them; return the photo's new status."""
        kind = sniff(content)
        if len(content) > self.max_bytes:
            return self._close(photo, photos.REFUSED, f"larger than {self.max_bytes} bytes")
        if kind is None:
            return self._close(photo, photos.REFUSED, "not a JPEG, PNG or WebP image")
        sha256 = self.files.put(content)
        with self.db.begin() as connection:
            if photos.stored(connection, photo.photo_id, sha256, kind, len(content), self.clock()):
                return photos.STORED
            unused = sha256 not in photos.referenced(connection, [sha256])
        if unused:  # erased while it downloaded: the file must not outlive the volunteer
            self.files.remove([sha256])
        return "erased"

    def gone(self, photo: Due, reason: str) -> None:
        """Record that the platform no longer has a photo."""
        self._close(photo, photos.FAILED, reason)

    def failed(self, photo: Due, reason: str) -> None:
        """Keep a photo pending after a download failed, to retry later (ever less often)."""
        # the doubling stops once past the longest wait: 30 s * 2**42 is beyond what a
        # timedelta holds, and a download failing for days reaches that many attempts
        wait = min(FIRST_RETRY * 2 ** min(photo.attempts, 8), LONGEST_RETRY)
        with self.db.begin() as connection:
            photos.retry_later(
                connection, photo.photo_id, reason, photo.attempts + 1, self.clock() + wait
            )

    def _close(self, photo: Due, status: str, reason: str) -> str:
        log.warning("a %s photo was %s: %s", photo.platform, status, reason)
        with self.db.begin() as connection:
            photos.closed(connection, photo.photo_id, status, reason)
        return status

    def read(self, sha256: str) -> KeptPhoto | None:
        """Return a photo still kept (not erased), or None."""
        with self.db.begin() as connection:
            kind = photos.kept(connection, sha256)
        content = self.files.read(sha256) if kind else None
        return KeptPhoto(sha256, kind, content) if kind and content is not None else None

    def forget(self, hashes: Iterable[str]) -> None:
        """Delete the files of photos no row refers to any more (after an erasure)."""
        self.files.remove(hashes)

    def sweep(self) -> int:
        """Delete files no photo row refers to (left by a crash mid-erasure); return how many."""
        on_disk = self.files.hashes()
        with self.db.begin() as connection:
            unused = on_disk - photos.referenced(connection, on_disk)
        self.files.remove(unused)
        return len(unused)
