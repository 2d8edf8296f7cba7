"""How much a party may store, and how full the disk may get: the intake volume limits.

:class:`GatewayService.submit` asks :class:`IntakeVolume` before it stores anything, for
HTTP and ``inbox/`` alike. The per-party count comes from the store (the bytes the party's
stored messages add up to since the window began), so it survives a restart; the service
keeps it up to date in memory for the rest of the window and adds the bytes of submissions
still being stored, so concurrent requests cannot together pass the cap.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import GatewayError

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
STORAGE_RETRY_SECONDS = 60
"""Retry-After when the disk is below its floor: an operator has to act, so not soon."""


class QuotaExceededError(GatewayError):
    """The party has stored its allowance for the current window."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageFullError(GatewayError):
    """Storing the message would leave less free disk space than the configured floor."""

    retry_after = STORAGE_RETRY_SECONDS


def free_disk_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write on the file system holding ``folder``
    (its nearest existing parent when it does not exist yet)."""
    path = folder
    while not path.exists() and path.parent != path:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


@dataclass(frozen=True, slots=True)
class VolumeLimits:
    """``[limits]``: the per-party window cap (0: none) and the free-disk floor (0: none)."""

    party_bytes_per_window: int = 0
    window: dt.timedelta = dt.timedelta(hours=24)
    min_free_disk_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """Bytes set aside for one submission until it is stored or given up."""

    party: str
    size: int
    window_start: dt.datetime


ReceivedBytes = Callable[[str, dt.datetime], Awaitable[int]]
"""(party, since) → bytes of that party's messages stored since then (a store query)."""


class IntakeVolume:
    """Admit or refuse a submission by the party's window allowance and the free disk."""

    def __init__(
        self,
        limits: VolumeLimits,
        received_bytes: ReceivedBytes,
        free_disk: Callable[[], int] | None,
    ) -> None:
        self.limits = limits
        self._received_bytes = received_bytes
        self.free_disk = free_disk
        self._used: dict[str, tuple[dt.datetime, int]] = {}
        self._pending: Counter[str] = Counter()

    def window_start(self, now: dt.datetime) -> dt.datetime:
        """The start of the window ``now`` falls in (windows are aligned to the epoch)."""
        seconds = self.limits.window.total_seconds()
        elapsed = (now - EPOCH).total_seconds()
        return EPOCH + dt.timedelta(seconds=math.floor(elapsed / seconds) * seconds)

    async def used(self, party: str, now: dt.datetime) -> int:
        """Bytes ``party`` has stored in the window ``now`` falls in (read from the store
        the first time in a window)."""
        return await self._used_in(party, self.window_start(now))

    async def reserve(self, party: str, size: int, now: dt.datetime) -> Reservation:
        """Set ``size`` bytes aside for ``party``, or raise ``StorageFullError`` or
        ``QuotaExceededError`` (with the seconds until the window ends)."""
        floor = self.limits.min_free_disk_bytes
        if floor and self.free_disk is not None and self.free_disk() - size < floor:
            raise StorageFullError(
                f"message not accepted: the gateway's disk is nearly full (it keeps {floor} "
                "bytes free); try again later"
            )
        start = self.window_start(now)
        cap = self.limits.party_bytes_per_window
        if not cap:
            return Reservation(party, size, start)
        used = await self._used_in(party, start)
        if used + self._pending[party] + size > cap:
            end = start + self.limits.window
            retry_after = max(1, math.ceil((end - now).total_seconds()))
            raise QuotaExceededError(
                f"message not accepted: {party} may store {cap} bytes per "
                f"{self.limits.window.total_seconds() / 3600:g} h and has "
                f"{max(cap - used - self._pending[party], 0)} left in this window",
                retry_after,
            )
        self._pending[party] += size
        return Reservation(party, size, start)

    def settle(self, reservation: Reservation, stored: bool) -> None:
        """The submission is over: count its bytes if it stored a new message."""
        if not self.limits.party_bytes_per_window:
            return
        self._pending[reservation.party] -= reservation.size
        if self._pending[reservation.party] <= 0:
            del self._pending[reservation.party]
        counted = self._used.get(reservation.party)
        if stored and counted is not None and counted[0] == reservation.window_start:
            self._used[reservation.party] = (counted[0], counted[1] + reservation.size)

    async def _used_in(self, party: str, start: dt.datetime) -> int:
        counted = self._used.get(party)
        if counted is None or counted[0] != start:
            # Once per party and window: afterwards settle() keeps the count. A concurrent
            # first submission may have set it meanwhile (and settled into it): keep that.
            fetched = await self._received_bytes(party, start)
            counted = self._used.get(party)
            if counted is None or counted[0] != start:
                counted = (start, fetched)
                self._used[party] = counted
        return counted[1]
