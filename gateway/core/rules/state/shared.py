"""What the cross-message rules share: their level, needs, code values and readers."""

from __future__ import annotations

from gateway.core.document import Element, find
from gateway.core.dossier import (
    History,
)
from gateway.core.rules.engine import RuleContext, RuleLevel

B = RuleLevel.CROSS_MESSAGE
HISTORY = ("history",)
MINUTE = "01"
HOUR = "04"
#: Eenheden of output-based delivery (OP261–OP264): weeks are counted by their Sundays (IV077).
OUTPUT_UNITS = frozenset({"82", "83"})
PER_DAY, PER_WEEK, PER_MONTH, TOTAL = "1", "2", "4", "6"
IN_ONDERZOEK = "2"
REJECTED = "1"


def history_of(ctx: RuleContext) -> History:
    history: History = ctx.history
    return history


def class_element(parent: Element, path: str) -> Element:
    """The element at ``path`` below ``parent``, or ``parent`` itself (same class either way)."""
    found = find(parent, path)
    return found if found is not None else parent
