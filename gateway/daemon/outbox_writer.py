"""Write files so that a reader never sees half of one: temp file, fsync, rename, fsync dir.

A folder-channel recipient picks files up from ``outbox/<party>/``. Everything happens
relative to the folder's descriptor (opened without following links, ``gateway.daemon.nofollow``):
the temporary file is created with ``O_EXCL`` (which never follows a link) in the same folder,
so the rename is atomic on one file system, and its name starts with a dot, which pickup
scripts conventionally ignore. A crash between create and rename leaves that temporary file
behind; :func:`sweep_temp_files` removes such files once they are older than any write still
in flight can be.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat

TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
"""Names of this writer's temporary files: ``.<name>.<12 hex>.tmp``."""


def write_atomically(folder_fd: int, name: str, data: bytes) -> None:
    """Write ``data`` to ``name`` in the folder ``folder_fd`` atomically and durably.

    Writing the same name again (a retried delivery) replaces the file with the same content,
    so a retry never produces a second file. An existing ``name`` that is a link is replaced
    by the file, never written through.
    """
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(
        temp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o666,  # the umask decides, as for any file the gateway writes
        dir_fd=folder_fd,
    )
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder_fd)
        raise
    os.fsync(folder_fd)


def write_json_atomically(folder_fd: int, name: str, text: str) -> None:
    """Atomically write a UTF-8 text file (used for ``.why.json`` files)."""
    write_atomically(folder_fd, name, text.encode("utf-8"))


def sweep_temp_files(folder_fd: int, *, older_than: float, now: float) -> list[str]:
    """Remove this writer's temporary files last modified more than ``older_than`` seconds
    before ``now`` (wall-clock seconds, as file times are); return their names.

    Only regular files with a temporary name are touched; links and real messages stay.
    """
    removed = []
    with os.scandir(folder_fd) as entries:
        for entry in entries:
            if not TEMP_NAME.fullmatch(entry.name):
                continue
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime <= older_than:
                continue
            try:
                os.unlink(entry.name, dir_fd=folder_fd)
            except FileNotFoundError:
                continue
            removed.append(entry.name)
    return sorted(removed)
