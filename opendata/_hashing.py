"""SHA-256 of files, read in chunks (files of any size, constant memory)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20
# Called with (bytes done, bytes in all) while a long step runs.
Progress = Callable[[int, int], None]


def file_sha256(
    path: Path, progress: Progress | None = None, *, copy_to: BinaryIO | None = None
) -> str:
    """The SHA-256 (hex) of a file, read in chunks (each also written to ``copy_to``, so a
    copy costs no second read)."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            if copy_to is not None:
                copy_to.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


__all__ = ["Progress", "file_sha256"]
