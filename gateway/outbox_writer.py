"""Write files so that a reader never sees half of one: temp file, fsync, rename, fsync dir.

A folder-channel recipient picks files up from ``outbox/<party>/``. The temporary file lives
in the same folder (so the rename is atomic on one file system) and starts with a dot, which
pickup scripts conventionally ignore.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/name`` atomically and durably; return the final path.

    Writing the same name again (a retried delivery) replaces the file with the same content,
    so a retry never produces a second file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    temp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        with temp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return target


def write_json_atomically(folder: Path, name: str, text: str) -> Path:
    """Atomically write a UTF-8 text file (used for ``.why.json`` files)."""
    return write_atomically(folder, name, text.encode("utf-8"))
