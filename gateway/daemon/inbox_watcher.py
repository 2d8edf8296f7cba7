"""Pick up files dropped into ``inbox/<party>/`` and hand them to the service as that party.

A file is taken only once its size and modification time are the same in two consecutive
scans, so a file still being copied in is never read half-way. After intake it moves to
``processed/`` or, when the message was rejected, to ``rejected/`` with ``<name>.why.json``
beside it. A crash between intake and the move re-submits the file on restart, which is
harmless: intake is idempotent.

The party owns its folder and may plant links in it, so no link is ever followed
(``gateway.daemon.nofollow``): the party folder, ``processed/`` and ``rejected/`` are opened as
folders without following links, and the moves are renames between those open descriptors,
so replacing a folder by a link after the check moves nothing through the link. When one of
these folders is a link (or not a folder) nothing in the party's folder is taken: the watcher
logs ``inbox_folder_refused`` once and leaves everything where it is until an operator fixes
it. A file that is a link, not a regular file, or hard-linked elsewhere is refused and left in
place, with ``rejected/<name>.why.json`` saying why. A file larger than
``[limits] max_message_bytes`` is rejected from its ``fstat`` size without being read; reads
stop one byte past the limit.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.errors import IdentificatieReused, StoreError
from gateway.core.model import State
from gateway.core.route import Party
from gateway.daemon.nofollow import (
    RefusedPathError,
    describe,
    exists,
    open_folder,
    open_regular_file,
    open_root,
    read_bounded,
)
from gateway.daemon.outbox_writer import write_json_atomically
from gateway.logs import get_logger
from gateway.service.errors import IntakeClosedError, MessageTooLargeError
from gateway.service.gateway_service import GatewayService
from gateway.service.volume import QuotaExceededError, StorageFullError

log = get_logger("gateway.inbox")

PROCESSED = "processed"
REJECTED = "rejected"


@dataclass
class ScanReport:
    """What one scan did."""

    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    waiting: int = 0
    failed: int = 0
    deferred: int = 0
    """Files left in place because the party is over its allowance or the disk is full."""


@dataclass
class _PartyFolder:
    """A party's inbox folder and its two destination folders, open as descriptors."""

    party: Party
    fd: int
    processed: int
    rejected: int


class _TooLargeError(Exception):
    def __init__(self, size: int | None, limit: int) -> None:
        size_text = f"is {size} bytes" if size is not None else "grew past the limit"
        super().__init__(f"too large: the file {size_text}; the limit is {limit} bytes")


def _rejected_why(reason: str) -> dict[str, object]:
    return {"state": "rejected", "reason": reason}


def _signature(folder_fd: int, name: str) -> tuple[int, int] | None:
    try:
        info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns


def _free_name(folder_fd: int, name: str, tag: str | None) -> str:
    """``name`` in the folder, or a variant with ``tag`` (the message id) when it is taken."""
    if not exists(folder_fd, name):
        return name
    stem, dot, suffix = name.partition(".")
    return f"{stem}.{tag or os.urandom(4).hex()}{dot}{suffix}"


class InboxWatcher:
    """Scans the inbox folders of all registered parties."""

    def __init__(self, service: GatewayService, inbox: Path) -> None:
        self.service = service
        self.inbox = inbox
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}
        # Refusals reported in the previous scan, and those of the scan running now: an entry
        # left in place is reported (logged, .why.json) once, not on every scan.
        self._refused: set[tuple[str, str]] = set()
        self._refusing: set[tuple[str, str]] = set()

    async def scan(self) -> ScanReport:
        """One pass over every party's inbox; takes files that were stable since the last one."""
        report = ScanReport()
        current: dict[tuple[str, str], tuple[int, int]] = {}
        self._refusing = set()
        with ExitStack() as opened:
            for folder in await asyncio.to_thread(self._open_folders, opened):
                names = await asyncio.to_thread(self._candidates, folder, report)
                for name in sorted(names):
                    key = (folder.party.id, name)
                    if key in self._refused:
                        self._refusing.add(key)  # still there: not reported again
                    signature = _signature(folder.fd, name)
                    if signature is None:
                        continue
                    if self._seen.get(key) != signature:
                        current[key] = signature
                        report.waiting += 1
                        continue
                    if not await self._take(folder, name, report):
                        current[key] = signature  # keep it; try again on the next scan
        self._seen = current
        self._refused = self._refusing
        return report

    def _open_folders(self, opened: ExitStack) -> list[_PartyFolder]:
        """Each party's folders, open (created when missing, so operators see where to drop);
        a party whose folder, ``processed/`` or ``rejected/`` is refused is left out."""
        root = open_root(self.inbox)
        opened.callback(os.close, root)
        result = []
        for party in self.service.registry:
            try:
                fd = open_folder(root, party.id, create=True)
                opened.callback(os.close, fd)
                processed = open_folder(fd, PROCESSED, create=True)
                opened.callback(os.close, processed)
                rejected = open_folder(fd, REJECTED, create=True)
                opened.callback(os.close, rejected)
            except RefusedPathError as exc:
                self._refuse_folder(party, exc)
                continue
            result.append(_PartyFolder(party, fd, processed, rejected))
        return result

    def _refuse_folder(self, party: Party, exc: RefusedPathError) -> None:
        key = (party.id, exc.name + "/")
        self._refusing.add(key)
        if key not in self._refused:
            log.warning(
                "inbox_folder_refused",
                party=party.id,
                folder=exc.name,
                reason=f"{exc.reason}; nothing in this inbox is taken until it is fixed",
            )

    def _candidates(self, folder: _PartyFolder, report: ScanReport) -> list[str]:
        names = []
        with os.scandir(folder.fd) as entries:
            for entry in entries:
                # Dot files are temporary files of a writer that renames into place when done.
                if entry.name.startswith(".") or entry.name in (PROCESSED, REJECTED):
                    continue
                if entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
                elif not entry.is_dir(follow_symlinks=False):  # subfolders are not ours
                    refusal = RefusedPathError(entry.name, describe(folder.fd, entry.name))
                    self._refuse_file(folder, refusal, report)
        return names

    def _refuse_file(self, folder: _PartyFolder, exc: RefusedPathError, report: ScanReport) -> None:
        """Leave the entry where it is; say why in ``rejected/`` (a real folder: it was
        opened without following links) and in the log, once."""
        key = (folder.party.id, exc.name)
        self._refusing.add(key)
        if key in self._refused:
            return
        reason = f"refused: {exc.name} {exc.reason}; it is left where it is"
        log.warning("inbox_file_refused", party=folder.party.id, file=exc.name, reason=reason)
        why = {"state": "refused", "reason": reason}
        target = _free_name(folder.rejected, exc.name, "refused")
        write_json_atomically(
            folder.rejected, target + ".why.json", json.dumps(why, indent=2, ensure_ascii=False)
        )
        report.refused.append(exc.name)

    def _read(self, folder: _PartyFolder, name: str) -> bytes:
        """The file's bytes; its size is known (fstat) before anything is read."""
        limit = self.service.max_message_bytes
        fd, info = open_regular_file(folder.fd, name)
        try:
            if info.st_size > limit:
                raise _TooLargeError(info.st_size, limit)
            raw = read_bounded(fd, limit)
        finally:
            os.close(fd)
        if len(raw) > limit:
            raise _TooLargeError(None, limit)
        return raw

    async def _take(self, folder: _PartyFolder, name: str, report: ScanReport) -> bool:
        party = folder.party
        try:
            raw = await asyncio.to_thread(self._read, folder, name)
        except RefusedPathError as exc:
            await asyncio.to_thread(self._refuse_file, folder, exc, report)
            return True
        except _TooLargeError as exc:
            await self._move(folder, name, folder.rejected, None, _rejected_why(str(exc)))
            report.rejected.append(name)
            return True
        except OSError as exc:
            log.warning("inbox_read_failed", party=party.id, file=name, error=str(exc))
            report.failed += 1
            return False
        try:
            receipt = await self.service.intake.submit(party, raw, actor=f"inbox:{party.id}")
        except MessageTooLargeError as exc:
            too_large = _rejected_why(f"too large: {exc}")
            await self._move(folder, name, folder.rejected, None, too_large)
            report.rejected.append(name)
            return True
        except IdentificatieReused as exc:
            reused = {"state": "refused", "reason": str(exc), "earlier": exc.earlier_id}
            await self._move(folder, name, folder.rejected, None, reused)
            report.rejected.append(name)
            return True
        except (QuotaExceededError, StorageFullError) as exc:
            # Nothing was stored: the file waits in the inbox until there is room again.
            log.warning(
                "inbox_intake_deferred",
                party=party.id,
                file=name,
                error=str(exc),
                retry_after=exc.retry_after,
            )
            report.deferred += 1
            return False
        except (StoreError, IntakeClosedError) as exc:
            log.warning("inbox_intake_failed", party=party.id, file=name, error=str(exc))
            report.failed += 1
            return False
        msg = receipt.message
        if msg.state is State.REJECTED:
            findings = await asyncio.to_thread(self.service.store.findings, msg.id)
            why: dict[str, object] = {
                "id": msg.id,
                "state": msg.state.value,
                "reason": msg.reason,
                "findings": findings,
            }
            await self._move(folder, name, folder.rejected, msg.id, why)
            report.rejected.append(name)
        else:
            await self._move(folder, name, folder.processed, msg.id, None)
            report.processed.append(name)
        log.info(
            "inbox_file_taken",
            party=party.id,
            file=name,
            message_id=msg.id,
            state=msg.state.value,
        )
        return True

    async def _move(
        self,
        folder: _PartyFolder,
        name: str,
        where: int,
        message_id: str | None,
        why: Mapping[str, object] | None,
    ) -> None:
        """Rename ``name`` into the open folder ``where``: a rename moves a link itself and
        resolves nothing, and ``where`` stays the folder that was checked even if its name
        is swapped for a link meanwhile."""

        def work() -> None:
            target = _free_name(where, name, message_id)
            if why is not None:
                write_json_atomically(
                    where, target + ".why.json", json.dumps(why, indent=2, ensure_ascii=False)
                )
            os.rename(name, target, src_dir_fd=folder.fd, dst_dir_fd=where)

        await asyncio.to_thread(work)
