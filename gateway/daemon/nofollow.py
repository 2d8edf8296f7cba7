"""File-system access inside folders a party can write to: no link is ever followed.

A party that can write to ``inbox/<party>/`` or ``outbox/<party>/`` can also replace an
entry there by a symbolic link, at any moment. Everything below therefore works on directory
file descriptors: a folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its
parent's descriptor, a file with ``O_NOFOLLOW`` relative to its folder's, and its kind and
size are taken from ``fstat`` of the opened descriptor, so swapping a name for a link after a
check changes nothing. The roots (``[paths] inbox`` and ``outbox``) are the operator's own
configuration and are opened as configured.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO a party left behind must not hang the watcher.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
READ_CHUNK = 1 << 20


class RefusedPathError(Exception):
    """An entry the gateway will not use: a link, not a folder, or not a regular file."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _single_name(name: str) -> str:
    # A name with a slash would be resolved component by component, following links.
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise RefusedPathError(name, "is not a single file name")
    return name


def describe(parent_fd: int, name: str) -> str:
    """Why ``name`` cannot be used as a folder or regular file, from its ``lstat``."""
    try:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return "has disappeared"
    if stat.S_ISLNK(mode):
        return "is a symbolic link; links are never followed"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return "is a regular file"


def open_root(path: Path) -> int:
    """The operator's configured folder as a descriptor, created when missing."""
    path.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_folder(parent_fd: int, name: str, *, create: bool) -> int:
    """The folder ``name`` in ``parent_fd`` as a descriptor; never through a link.

    Raises ``RefusedPathError`` when ``name`` is a link or not a folder, and
    ``FileNotFoundError`` when it is missing and ``create`` is false.
    """
    _single_name(name)
    for _ in range(2):
        try:
            return os.open(name, DIRECTORY_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
            # mkdir never follows a link; made (or replaced by a link) meanwhile: the next
            # open decides.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent_fd)  # the umask decides
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise RefusedPathError(name, describe(parent_fd, name)) from None
            raise
    raise RefusedPathError(name, "keeps disappearing")


def open_regular_file(parent_fd: int, name: str) -> tuple[int, os.stat_result]:
    """``name`` in ``parent_fd`` opened for reading, with the ``fstat`` of the open file.

    Refuses a link (``O_NOFOLLOW``), anything but a regular file, and a file with other
    hard links (a hard link to a file outside the folder is as bad as a symbolic one).
    """
    _single_name(name)
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RefusedPathError(name, describe(parent_fd, name)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedPathError(name, "is not a regular file")
        if info.st_nlink != 1:
            raise RefusedPathError(name, "has other hard links; hard-linked files are refused")
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def read_bounded(fd: int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes from ``fd``: one byte more than allowed tells "too large"
    without reading a file that grew after its size was checked."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def exists(parent_fd: int, name: str) -> bool:
    """Whether ``name`` exists in ``parent_fd`` (a dangling link counts)."""
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
