"""Validation results as data: findings and the report that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.core.document import MessageDocument


class Level(StrEnum):
    """How far a message got. The first failing layer decides the verdict.

    ``malformed`` and ``xsd`` findings get no retour message (the standard answers those through
    the transport: StUF055 / CC02); ``rules`` findings give a header-only retour with ``0001``;
    ``state`` and ``external`` findings carry a rule-specific retourcode on the faulty class.
    """

    OK = "ok"
    MALFORMED = "malformed"
    XSD = "xsd"
    RULES = "rules"
    STATE = "state"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with a message.

    ``rule`` is the standard's rule code (``CS002``) or, for the transport layers, a stable
    identifier such as ``XML-DTD`` or ``XSD``. ``path`` is a local-name path such as
    ``/Bericht/Client/ToegewezenProducten/ToegewezenProduct[2]/Einddatum``: the element the
    finding is about; the retour builder places codes on the class that holds it.
    """

    rule: str
    message: str
    retourcode: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None
    level: Level = Level.RULES

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape used by ``gateway validate --json`` and the daemon's API."""
        return {
            "rule": self.rule,
            "retourcode": self.retourcode,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The verdict on one message: the deepest layer reached and everything found there."""

    level: Level
    findings: tuple[Finding, ...] = ()
    message_type: str | None = None
    release: str | None = None
    document: MessageDocument | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when no layer found anything."""
        return self.level is Level.OK

    @property
    def rule_codes(self) -> tuple[str, ...]:
        """The rule codes of all findings, in order, for quick assertions and summaries."""
        return tuple(f.rule for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape used by ``gateway validate --json`` (without the file name)."""
        return {
            "message_type": self.message_type,
            "release": self.release,
            "level": self.level.value,
            "findings": [f.as_dict() for f in self.findings],
        }
