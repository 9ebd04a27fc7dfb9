"""Write report files atomically: a reader never sees a half-written report."""

from __future__ import annotations

import contextlib
import os
import secrets


def write_atomically(text: str, path: str | os.PathLike[str]) -> None:
    """Write beside ``path``, then rename over it; on any failure, remove the temporary file.

    The temporary file is opened with `open` rather than `tempfile`, so the report
    gets the usual permissions (umask) instead of tempfile's owner-only 0600.
    """
    target = os.path.abspath(path)
    temporary = f"{target}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
