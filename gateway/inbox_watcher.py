"""Pick up files dropped into ``inbox/<party>/`` and hand them to the service as that party.

A file is taken only once its size and modification time are the same in two consecutive
scans, so a file still being copied in is never read half-way. After intake it moves to
``processed/`` or, when the message was rejected, to ``rejected/`` with ``<name>.why.json``
beside it. A crash between intake and the move re-submits the file on restart, which is
harmless: intake is idempotent.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.errors import StoreError
from gateway.core.model import State
from gateway.core.route import Party
from gateway.logs import get_logger
from gateway.outbox_writer import write_json_atomically
from gateway.service import GatewayService, IntakeClosedError, MessageTooLargeError

log = get_logger("gateway.inbox")

PROCESSED = "processed"
REJECTED = "rejected"


@dataclass
class ScanReport:
    """What one scan did."""

    processed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    waiting: int = 0
    failed: int = 0


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _free_name(folder: Path, name: str, message_id: str | None) -> Path:
    """``name`` in ``folder``, or a variant with the message id when that name is taken."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, suffix = name.partition(".")
    return folder / f"{stem}.{message_id or os.urandom(4).hex()}{dot}{suffix}"


class InboxWatcher:
    """Scans the inbox folders of all registered parties."""

    def __init__(self, service: GatewayService, inbox: Path) -> None:
        self.service = service
        self.inbox = inbox
        self._seen: dict[Path, tuple[int, int]] = {}

    def folders(self) -> list[tuple[Party, Path]]:
        """Each party's inbox folder (created when missing, so operators see where to drop)."""
        result = []
        for party in self.service.registry:
            folder = self.inbox / party.id
            folder.mkdir(parents=True, exist_ok=True)
            result.append((party, folder))
        return result

    async def scan(self) -> ScanReport:
        """One pass over every party's inbox; takes files that were stable since the last one."""
        report = ScanReport()
        current: dict[Path, tuple[int, int]] = {}
        for party, folder in await asyncio.to_thread(self.folders):
            for path in sorted(await asyncio.to_thread(self._candidates, folder)):
                signature = _signature(path)
                if signature is None:
                    continue
                if self._seen.get(path) != signature:
                    current[path] = signature
                    report.waiting += 1
                    continue
                if not await self._take(party, folder, path, report):
                    current[path] = signature  # keep it; try again on the next scan
        self._seen = current
        return report

    @staticmethod
    def _candidates(folder: Path) -> list[Path]:
        # Dot files are temporary files of a writer that renames into place when done.
        return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]

    async def _take(self, party: Party, folder: Path, path: Path, report: ScanReport) -> bool:
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            log.warning("inbox_read_failed", party=party.id, file=path.name, error=str(exc))
            report.failed += 1
            return False
        try:
            receipt = await self.service.submit(party, raw, actor=f"inbox:{party.id}")
        except MessageTooLargeError as exc:
            await self._move(
                folder, path, REJECTED, None, {"state": "rejected", "reason": str(exc)}
            )
            report.rejected.append(path.name)
            return True
        except (StoreError, IntakeClosedError) as exc:
            log.warning("inbox_intake_failed", party=party.id, file=path.name, error=str(exc))
            report.failed += 1
            return False
        msg = receipt.message
        if msg.state is State.REJECTED:
            findings = await asyncio.to_thread(self.service.store.findings, msg.id)
            why = {
                "id": msg.id,
                "state": msg.state.value,
                "reason": msg.reason,
                "findings": findings,
            }
            await self._move(folder, path, REJECTED, msg.id, why)
            report.rejected.append(path.name)
        else:
            await self._move(folder, path, PROCESSED, msg.id, None)
            report.processed.append(path.name)
        log.info(
            "inbox_file_taken",
            party=party.id,
            file=path.name,
            message_id=msg.id,
            state=msg.state.value,
        )
        return True

    async def _move(
        self,
        folder: Path,
        path: Path,
        where: str,
        message_id: str | None,
        why: Mapping[str, object] | None,
    ) -> None:
        def work() -> None:
            target_dir = folder / where
            target_dir.mkdir(exist_ok=True)
            target = _free_name(target_dir, path.name, message_id)
            if why is not None:
                write_json_atomically(
                    target_dir,
                    target.name + ".why.json",
                    json.dumps(why, indent=2, ensure_ascii=False),
                )
            path.replace(target)

        await asyncio.to_thread(work)
