"""Prometheus text exposition of the daemon's counters and per-party queue figures.

Counters live in the process (they restart at zero, which Prometheus handles); queue depth
and oldest waiting age come from the store at scrape time, so they are right after a restart.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping

from gateway.core.lifecycle import WAITING_STATES

COUNTERS: dict[str, str] = {
    "received": "Messages received (HTTP and inbox), including re-submissions not stored twice",
    "rejected": "Messages rejected by validation or routing",
    "delivered": "Messages delivered to their recipient",
    "retries": "Delivery attempts that failed transiently and were scheduled again",
    "dead": "Messages that went to dead (permanent failure or retries exhausted)",
}


class Metrics:
    """Counters by name and party."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def inc(self, name: str, party: str | None, amount: int = 1) -> None:
        """Count ``amount`` events of ``name`` for ``party``."""
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name!r}")
        self._counts[(name, party or "unknown")] += amount

    def value(self, name: str, party: str | None = None) -> int:
        """One counter's value, for one party or summed over all parties."""
        if party is not None:
            return self._counts[(name, party)]
        return sum(v for (n, _), v in self._counts.items() if n == name)

    def render(
        self,
        counts: Mapping[tuple[str, str], int],
        oldest: Mapping[str, dt.datetime],
        now: dt.datetime,
    ) -> str:
        """The text format: counters, then queue depth and oldest age per party and state.

        ``counts`` may hold every state; the queue depth shows the waiting ones only (a
        delivered or dead message is in no queue).
        """
        lines: list[str] = []
        for name, help_text in COUNTERS.items():
            metric = f"gateway_messages_{name}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
            parties = sorted(p for (n, p) in self._counts if n == name)
            if not parties:
                lines.append(f"{metric} 0")
            for party in parties:
                lines.append(f'{metric}{{party="{_label(party)}"}} {self._counts[(name, party)]}')
        lines += [
            "# HELP gateway_queue_depth Messages waiting per recipient and state (queued, held)",
            "# TYPE gateway_queue_depth gauge",
        ]
        waiting = {state.value for state in WAITING_STATES}
        for (party, state), count in sorted(counts.items()):
            if state not in waiting:
                continue
            lines.append(
                f'gateway_queue_depth{{party="{_label(party)}",state="{_label(state)}"}} {count}'
            )
        lines += [
            "# HELP gateway_oldest_waiting_seconds Age of the oldest queued or held message",
            "# TYPE gateway_oldest_waiting_seconds gauge",
        ]
        for party, since in sorted(oldest.items()):
            age = max(0.0, (now - since).total_seconds())
            lines.append(f'gateway_oldest_waiting_seconds{{party="{_label(party)}"}} {age:.3f}')
        return "\n".join(lines) + "\n"


WRITE_BATCH_COUNTERS: dict[str, str] = {
    "gateway_write_batches_total": "Transactions written by the group commit",
    "gateway_write_batch_records_total": "Received messages stored through the group commit",
    "gateway_write_batch_moves_total": "State moves written through the group commit",
    "gateway_write_batch_seconds_total": "Time spent writing group-commit transactions",
}


def render_write_batches(values: Mapping[str, float]) -> str:
    """Group-commit counters in the text format (batch size = records / batches)."""
    lines: list[str] = []
    for metric, help_text in WRITE_BATCH_COUNTERS.items():
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines.append(f"{metric} {values.get(metric, 0):g}")
    return "\n".join(lines) + "\n"


def render_overdue_retours(overdue: Mapping[str, int]) -> str:
    """``gateway_overdue_retours{party}``: retours (and JW325s) the party owes past due."""
    return _party_gauge(
        "gateway_overdue_retours",
        "Originals addressed to the party whose retour is past its due date",
        overdue,
    )


def render_overdue_answers(overdue: Mapping[str, int]) -> str:
    """``gateway_overdue_answers{party}``: requests (JW315/JW317) the party owes an answer or a
    final answer past its due date (5 working days; 8 weeks after "in onderzoek")."""
    return _party_gauge(
        "gateway_overdue_answers",
        "Requests addressed to the party whose (final) answer is past due",
        overdue,
    )


def _party_gauge(metric: str, help_text: str, values: Mapping[str, int]) -> str:
    lines = [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
    for party, count in sorted(values.items()):
        lines.append(f'{metric}{{party="{_label(party)}"}} {count}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
