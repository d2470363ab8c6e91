"""Photo files on disk, named by the SHA-256 of their content, and the check of what they are."""

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

# The three formats a phone camera or chat app sends, by the signatures their specifications
# fix at the start of the file; three byte comparisons need no library, and sniffing the bytes
# (never the name or the platform's claimed type) is what keeps other files out.
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def sniff(content: bytes) -> str | None:
    """Return the image type of some bytes (JPEG, PNG or WebP), or None for anything else."""
    for signature, kind in _SIGNATURES:
        if content.startswith(signature):
            return kind
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def digest(content: bytes) -> str:
    """Return the SHA-256 of some bytes in hex, the name a file is kept under."""
    return hashlib.sha256(content).hexdigest()


class PhotoFiles:
    """A folder of photo files by content hash; the same photo sent twice is kept once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Return where a photo with this hash is (or would be) kept."""
        return self.root / sha256[:2] / sha256

    def put(self, content: bytes) -> str:
        """Keep some bytes (written whole, or not at all); return their hash."""
        sha256 = digest(content)
        path = self.path(sha256)
        if path.exists():
            return sha256
        path.parent.mkdir(parents=True, exist_ok=True)
        # written beside and renamed, so a crash never leaves half a photo under its hash
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return sha256

    def read(self, sha256: str) -> bytes | None:
        """Return a kept photo's bytes, or None when it is not there."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, hashes: Iterable[str]) -> None:
        """Delete photo files (those already gone are ignored)."""
        for sha256 in hashes:
            self.path(sha256).unlink(missing_ok=True)

    def hashes(self) -> set[str]:
        """Return the hash of every photo kept here."""
        if not self.root.exists():
            return set()
        return {p.name for p in self.root.glob("??/*") if not p.name.startswith(".")}
