"""Process-level memory settings of the daemon: glibc's allocator, tuned for a thread pool, and
the garbage collector, kept off the objects built at start-up.

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

And one for latency: :func:`freeze_startup_objects` once the daemon is up. A full collection of
the garbage collector walks every tracked object, and start-up leaves about 100,000 of them
(schemas, rule tables, code lists, mappings) that live as long as the process. A collection
runs in whichever thread allocates at the wrong moment and holds the GIL throughout, so every
request in flight waits with it: 50 to 160 ms per full collection in ``bench/daemon.py`` runs.
Frozen, those objects are never walked again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


def freeze_startup_objects() -> int:
    """Collect once, then move every object alive now out of the collector's reach for good
    (``gc.freeze``); returns how many objects are frozen. Call when start-up is complete: what
    is built later (per-message data, bounded caches) is collected as before."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
