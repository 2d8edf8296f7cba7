"""The daemon's Prometheus metrics, through ``prometheus_client`` on a registry of its own.

Counters and latency histograms live in the process (they restart at zero, which Prometheus
handles). Queue figures come from the store at scrape time (:class:`StoreFigures`), so they
are right after a restart and in every process that reads the same store. Each
:class:`Metrics` has its own ``CollectorRegistry``: tests build several gateways in one process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.core.lifecycle import WAITING_STATES

if TYPE_CHECKING:
    from gateway.clock import Clock
    from gateway.store.base import Store

# The ``*_created`` series prometheus_client adds beside each counter tell a dashboard nothing
# a restart does not.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

COUNTERS: dict[str, str] = {
    "received": "Messages received (HTTP and inbox), including re-submissions not stored twice",
    "rejected": "Messages rejected by validation or routing",
    "delivered": "Messages delivered to their recipient",
    "retries": "Delivery attempts that failed transiently and were scheduled again",
    "dead": "Messages that went to dead (permanent failure or retries exhausted)",
}

# Seconds. Intake takes milliseconds to a few seconds (validation of a large message);
# delivery waits for the recipient: seconds when it fetches often, hours when it is held.
INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DELIVERY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)

# The queue: states in which a message waits for its recipient; dead ones get their own gauge.
_WAITING = frozenset(state.value for state in WAITING_STATES)


class Metrics:
    """Counters by name and party, intake and delivery latency, process figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = {
            name: Counter(f"gateway_messages_{name}", help_text, ["party"], registry=self.registry)
            for name, help_text in COUNTERS.items()
        }
        self._intake = Histogram(
            "gateway_intake_latency_seconds",
            "From a request's arrival to its 202 answer (message stored and processed)",
            ["party"],
            buckets=INTAKE_BUCKETS,
            registry=self.registry,
        )
        self._delivery = Histogram(
            "gateway_delivery_latency_seconds",
            "From a message's becoming deliverable (queued) to its delivery",
            ["party"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def know_parties(self, parties: Iterable[str]) -> None:
        """Show every counter at zero for these parties before anything happened to them
        (a rate over a series that appears late misses its first increase)."""
        for party in parties:
            for counter in self._counters.values():
                counter.labels(party=party)

    def inc(self, name: str, party: str | None, amount: int = 1) -> None:
        """Count ``amount`` events of ``name`` for ``party``."""
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name!r}")
        self._counters[name].labels(party=party or "unknown").inc(amount)

    def value(self, name: str, party: str | None = None) -> int:
        """One counter's value, for one party or summed over all parties."""
        total = 0.0
        for family in self._counters[name].collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and party in (None, sample.labels["party"]):
                    total += sample.value
        return int(total)

    def intake_answered(self, party: str, seconds: float) -> None:
        """A message from ``party`` was answered 202 ``seconds`` after its request arrived."""
        self._intake.labels(party=party).observe(max(0.0, seconds))

    def delivered(self, party: str, queued_at: dt.datetime, now: dt.datetime) -> None:
        """A message became delivered to ``party``; it had been deliverable since
        ``queued_at``."""
        self.inc("delivered", party)
        self._delivery.labels(party=party).observe(max(0.0, (now - queued_at).total_seconds()))

    def watch(self, collector: Collector) -> None:
        """Read ``collector`` at every scrape."""
        self.registry.register(collector)

    def render(self) -> bytes:
        """The text exposition of everything (blocking: store collectors read the store)."""
        return generate_latest(self.registry)


class StoreFigures(Collector):
    """The queue figures, read from the store at each scrape (in the scraping thread).

    ``gateway_queue_depth{party,state}`` counts the waiting states only; ``dead`` messages
    are ``gateway_dead_messages{party}``. The overdue counts and the group-commit totals are
    passed in as callables so this module needs neither the service nor the deadline code.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        overdue_retours: Callable[[], Mapping[str, int]],
        overdue_answers: Callable[[], Mapping[str, int]],
        write_batches: Callable[[], Mapping[str, float]],
    ) -> None:
        self._store = store
        self._clock = clock
        self._overdue_retours = overdue_retours
        self._overdue_answers = overdue_answers
        self._write_batches = write_batches

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering does not read the store.
        return []

    def collect(self) -> Iterator[Metric]:
        counts = self._store.counts_by_party()
        depth = GaugeMetricFamily(
            "gateway_queue_depth",
            "Messages waiting per recipient and state (queued, held)",
            labels=["party", "state"],
        )
        dead = GaugeMetricFamily(
            "gateway_dead_messages", "Messages in dead per recipient", labels=["party"]
        )
        for (party, state), count in sorted(counts.items()):
            if state in _WAITING:
                depth.add_metric([party, state], count)
            elif state == "dead":
                dead.add_metric([party], count)
        yield depth
        yield dead
        now = self._clock.now()
        oldest = GaugeMetricFamily(
            "gateway_oldest_waiting_seconds",
            "Age of the oldest queued or held message per recipient",
            labels=["party"],
        )
        for party, since in sorted(self._store.oldest_waiting().items()):
            oldest.add_metric([party], max(0.0, (now - since).total_seconds()))
        yield oldest
        yield _party_gauge(
            "gateway_overdue_retours",
            "Originals addressed to the party whose retour is past its due date",
            self._overdue_retours(),
        )
        yield _party_gauge(
            "gateway_overdue_answers",
            "Requests addressed to the party whose (final) answer is past due",
            self._overdue_answers(),
        )
        for metric, (help_text, value) in _write_batch_totals(self._write_batches()).items():
            yield CounterMetricFamily(metric, help_text, value=value)


WRITE_BATCH_COUNTERS: dict[str, str] = {
    "gateway_write_batches_total": "Transactions written by the group commit",
    "gateway_write_batch_records_total": "Received messages stored through the group commit",
    "gateway_write_batch_moves_total": "State moves written through the group commit",
    "gateway_write_batch_seconds_total": "Time spent writing group-commit transactions",
}


def _write_batch_totals(values: Mapping[str, float]) -> dict[str, tuple[str, float]]:
    return {
        metric: (help_text, float(values.get(metric, 0)))
        for metric, help_text in WRITE_BATCH_COUNTERS.items()
    }


def _party_gauge(metric: str, help_text: str, values: Mapping[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(metric, help_text, labels=["party"])
    for party, count in sorted(values.items()):
        gauge.add_metric([party], count)
    return gauge
