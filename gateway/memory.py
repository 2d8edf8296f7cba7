"""Process-level memory settings of the daemon: glibc's allocator, tuned for a thread pool.

The daemon validates in a pool of worker threads and commits in a thread of its own. glibc's
malloc gives every thread that allocates concurrently an arena of its own (up to 8 per core)
and keeps what is freed in an arena for that arena's later use, so each arena settles at the
high-water mark of whatever last ran in it (an lxml tree of a large message, a batch of rows)
and the process's resident memory creeps up with the number of arenas and their fragments,
although the live data does not grow. ``bench/daemon.py --trim-probe`` shows it: the thread
arenas hold several times the bytes they have in use.

Two remedies, both harmless where they do not apply (another C library, another OS):

* :func:`limit_malloc_arenas` before any thread starts: two arenas for the whole process
  (what ``MALLOC_ARENA_MAX=2`` does), so free memory is shared instead of duplicated per thread;
* :func:`release_free_memory` now and then (the daemon does it every housekeeping interval):
  ``malloc_trim(0)`` hands free pages inside every arena back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Protocol

M_ARENA_MAX = -8
"""mallopt parameter number of the arena limit (glibc's malloc.h)."""

DEFAULT_ARENAS = 2


class _Libc(Protocol):
    def mallopt(self, param: int, value: int) -> int: ...

    def malloc_trim(self, pad: int) -> int: ...


def _glibc() -> Any | None:
    """The C library if it is glibc (has malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    return libc


_LIBC: _Libc | None = _glibc()


def limit_malloc_arenas(count: int = DEFAULT_ARENAS, libc: _Libc | None = _LIBC) -> bool:
    """Cap glibc's malloc arenas at ``count`` (call before threads start); False when the C
    library is not glibc or refuses. An explicit ``MALLOC_ARENA_MAX`` in the environment is
    left to win: glibc read it at start-up and this call would override it."""
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def release_free_memory(libc: _Libc | None = _LIBC) -> bool:
    """Give free pages in every malloc arena back to the system; True if any were."""
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
