"""Every dossier scenario of tests/unit/dossier, run through the daemon.

Each :class:`~tests.unit.dossier.scenario.Dossier` gets a gateway of its own (real
GatewayService over HTTP, real SQLite store, FakeClock at the scenario's TODAY 2026-09-01).
``Dossier.check``/``codes``/``accept`` submit the message as its header's Afzender and read the
verdict back: the findings from the store, and (for a message the gateway answers) the retour
it generated, which must carry exactly those retourcodes on exactly those classes.

Two party set-ups (``VARIANTS``):

* ``gemeente`` (the default): gemeente 0384 is answered by the BVO, aanbieder 42420001
  answers itself. The gemeente's JW301/JW319 are then *not* checked by the gateway: their
  entries are pending and count at once. Asking for the codes of such a message fails loudly.
* ``both``: 42420001 is answered by the BVO as well, so the B rules of JW301 and JW319
  (TR332, TR379, TR355, TR359, TR360, TR365, TR385) run in the gateway. The scenarios that ask
  for codes of a gemeente's message run here (``BOTH_ANSWERED``).

Differences from the unit runs, all deliberate (see docs/dossier.md):

* ``codes()``/``check()`` on a message the daemon accepts records it (the daemon cannot
  validate without deciding); a later ``accept()`` of the same bytes finds the stored outcome
  (the store deduplicates identical submissions) and only verifies it.
* ``Dossier(lists=..., today=...)`` is ignored: the daemon uses its configured lists (shipped
  CBS gemeente list, no contract table, TR381 off: the unit scenarios run without a code list
  and use invented codes such as 55A99 on purpose) and its clock (2026-09-01, so TR135 runs).
* The provider-side JW325 checks (``test_provider_checks.codes``) submit the JW325 as the
  gemeente; it must be *delivered* (queued, no retour) with the findings kept.
* ``history.remember_submission`` cannot inject anything: it verifies that the daemon stored
  the JW323 it rejected as a whole as submitted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import inspect
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

import gateway.daemon.app
import gateway.schemas
from gateway.core.catalogue import MESSAGE_KINDS
from gateway.core.document import MessageDocument, element_path
from gateway.core.dossier import claim_lines_in
from gateway.core.report import Finding, Level, ValidationReport
from gateway.core.route import token_digest
from gateway.core.rules.registry import REGISTRY
from gateway.core.validate import validate
from gateway.store.base import MessageQuery
from gateway.store.history import SqlHistory
from gateway.store.sql import SqlStore
from gateway.store.tables import REGISTER
from tests.integration.conftest import Harness, start_harness, stop_harness, token
from tests.pg_schemas import PG_DSN_VARIABLE, PgSchemas, pg_dsn
from tests.pseudonyms import TEST_PSEUDONYMS
from tests.unit.dossier import scenario, test_provider_checks
from tests.unit.dossier.suite import plain_scenarios
from tests.unit.rules.mutate import Mutable, official_schema_set

TODAY_AT = dt.datetime.combine(scenario.TODAY, dt.time(9, 0), tzinfo=dt.UTC)
# The unit scenarios run without a product code list (TR381 has its own daemon test).
RULES = 'dossier = true\nproduct_codes = ""'
# Deventer (0150) only sends the JW325 of test_tr337_claim_sent_to_another_gemeente.
EXTRA_PARTY = f"""[[parties]]
id = "deventer"
role = "gemeente"
identity = "0150"
channel = "mailbox"
token_sha256 = "{token_digest(token("deventer"))}"
"""
PARTY_OF = {
    "0384": "diemen",
    "0363": "amsterdam",
    "0150": "deventer",
    scenario.AANBIEDER: "provider-a",
    "65656055": "provider-b",
}
VARIANTS: dict[str, dict[str, dict[str, object]]] = {
    "gemeente": {"diemen": {"answered_by": "bvo"}},
    "both": {"diemen": {"answered_by": "bvo"}, "provider-a": {"answered_by": "bvo"}},
}
ANSWERED = {"gemeente": frozenset({"0384"}), "both": frozenset({"0384", scenario.AANBIEDER})}

BOTH_ANSWERED = frozenset(
    {
        # They ask for the codes of a JW301 or JW319 (the gemeente's messages).
        "test_requests::test_direct_allocation_path",
        "test_requests::test_allocation_after_investigation_path",
        "test_requests::test_rejection_paths",
        "test_requests::test_vow_after_settled_vot_and_its_answer",
        "test_requests::test_tr379_reference_without_request",
        "test_requests::test_tr332_number_reused_for_another_client",
        "test_requests::test_resend_with_same_number_is_a_change_not_tr332",
        "test_requests::test_tr385_deleting_a_claimed_allocation",
        "test_requests::test_deleting_after_full_credit_is_allowed",
        "test_requests::test_tr355_answer_to_unknown_request",
        "test_requests::test_tr359_answer_after_allocation",
        "test_requests::test_tr360_second_in_onderzoek",
        "test_requests::test_tr365_second_rejection",
    }
)
"""Scenarios run with the aanbieder answered by the BVO too; all others run on ``gemeente``."""

# Codes a retour carries on a class that was accepted.
ACCEPTED_CODES = frozenset({"0200", "8001"})


@functools.cache
def _schema_set(folders: tuple[Path, ...]) -> Any:
    return _LOAD_SCHEMA_SET(list(folders))


_LOAD_SCHEMA_SET = gateway.schemas.load_schema_set


def _cached_schema_set(folders: list[Path]) -> Any:
    """One schema set for every gateway of the run (loading it is most of a start-up)."""
    return _schema_set(tuple(folders))


# --- reading the daemon's verdict -----------------------------------------------------------


def _level_of(rule: str) -> Level:
    try:
        return REGISTRY[rule].level.report_level
    except KeyError:
        return Level.RULES


def _finding(stored: dict[str, Any]) -> Finding:
    return Finding(
        rule=stored["rule"],
        message=stored["message"],
        retourcode=stored["retourcode"],
        path=stored["path"],
        line=stored["line"],
        level=_level_of(stored["rule"]),
    )


def _report_level(findings: Collection[Finding]) -> Level:
    for level in (Level.MALFORMED, Level.XSD, Level.RULES, Level.STATE, Level.EXTERNAL):
        if any(f.level is level for f in findings):
            return level
    return Level.OK


def _resolve(root: etree._Element, path: str) -> etree._Element:
    """The element at a local-name path such as ``/Bericht/Client/StartProducten/StartProduct``."""
    steps = path.strip("/").split("/")
    assert etree.QName(root).localname == steps[0], path
    node = root
    for step in steps[1:]:
        name, _, index = step.partition("[")
        matches = [c for c in node if isinstance(c.tag, str) and etree.QName(c).localname == name]
        node = matches[int(index.rstrip("]")) - 1 if index else 0]
    return node


def _class_key(element: etree._Element) -> str:
    """How a class of a JW323 and of its JW325 are matched: the JW325 returns only the
    rejected prestaties, so a Prestatie is known by its ReferentieNummer and a Client by its
    key; the other retours mirror their original, so the path says it."""
    name = etree.QName(element).localname
    if name == "Prestatie":
        return f"Prestatie {element.findtext('{*}ProductReferentie/{*}ReferentieNummer')}"
    if name == "Client" and element.findtext("{*}Bsn") and _in_declaration(element):
        return f"Client {TEST_PSEUDONYMS.client_key(element.findtext('{*}Bsn') or '')}"
    if name in ("Declaratie", "DeclaratieAntwoord"):
        return "Declaratie"
    return element_path(element)


def _in_declaration(element: etree._Element) -> bool:
    parent = element.getparent()
    grand = parent.getparent() if parent is not None else None
    return grand is not None and etree.QName(grand).localname in (
        "Declaratie",
        "DeclaratieAntwoord",
    )


def expected_retour_codes(report: ValidationReport) -> set[tuple[str, str]]:
    """(class key, retourcode) of every finding with a retourcode, on the class it belongs to."""
    doc = report.document
    assert isinstance(doc, MessageDocument)
    return {
        (_class_key(_resolve(doc.root, scenario.class_path(report, f.path))), f.retourcode)
        for f in report.findings
        if f.retourcode
    }


def retour_codes(retour: etree._Element) -> set[tuple[str, str]]:
    """(class key, code) of every RetourCode in a retour that is not an acceptance."""
    found = set()
    for code in retour.iter("{*}RetourCode"):
        codes = code.getparent()  # RetourCode < RetourCodes < class
        holder = codes.getparent() if codes is not None else None
        assert holder is not None
        if (code.text or "") not in ACCEPTED_CODES:
            found.add((_class_key(holder), code.text or ""))
    return found


@dataclass(frozen=True)
class Outcome:
    """What the daemon did with one submission."""

    message_id: str
    state: str
    report: ValidationReport
    answered: bool
    retour: etree._Element | None


class DaemonHistory:
    """A scenario history behind a running gateway: messages are submitted, never recorded
    directly, and the History queries read the gateway's register."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, harness: Harness, answered: frozenset[str]
    ) -> None:
        self.loop = loop
        self.harness = harness
        self.answered = answered
        self.seen_bsns: set[str] = set()
        self.outcomes: dict[bytes, Outcome] = {}
        self.last: Outcome | None = None

    def submit(self, raw: bytes, *, recording: bool) -> ValidationReport:
        """Submit ``raw`` as its Afzender (once per distinct bytes) and return the verdict."""
        local = validate(raw, official_schema_set())
        doc = local.document
        assert isinstance(doc, MessageDocument), local.findings
        kind = MESSAGE_KINDS[doc.message_type]
        answered = not kind.is_retour and (doc.header_text("Ontvanger") or "") in self.answered
        if not recording and not answered and not kind.is_retour:
            raise AssertionError(
                f"the daemon does not check a {doc.message_type} to "
                f"{doc.header_text('Ontvanger')} in this variant: list the scenario in "
                "BOTH_ANSWERED"
            )
        self.seen_bsns.update(el.text.strip() for el in doc.iter_local("Bsn") if el.text)
        outcome = self.outcomes.get(raw)
        if outcome is None:
            outcome = self._submit(raw, doc, local, answered)
            self.outcomes[raw] = outcome
        self.last = outcome
        return outcome.report

    def _submit(
        self, raw: bytes, doc: MessageDocument, local: ValidationReport, answered: bool
    ) -> Outcome:
        sender = PARTY_OF[doc.header_text("Afzender") or ""]
        receipt = self.loop.run_until_complete(self.harness.submit(sender, raw))
        message_id = str(receipt["id"])
        state = str(receipt["state"])
        store = self.harness.store
        findings = tuple(_finding(stored) for stored in store.findings(message_id))
        report = ValidationReport(
            _report_level(findings), findings, local.message_type, local.release, doc
        )
        retour = self._retour(message_id)
        if answered:
            assert retour is not None, f"no retour for an answered {doc.message_type}"
            assert retour_codes(retour) == expected_retour_codes(report)
        else:
            assert retour is None
        if not findings:
            assert state in ("queued", "held"), (state, receipt)
        elif answered and doc.message_type != "JW323":
            assert state == "rejected", (state, report.rule_codes)
        return Outcome(message_id, state, report, answered, retour)

    def _retour(self, message_id: str) -> etree._Element | None:
        for message in self.harness.store.query(MessageQuery(limit=1000)):
            if message.in_reply_to == message_id:
                raw = self.harness.store.payload(message.id)
                assert raw is not None
                return etree.fromstring(raw)
        return None

    def _registered(self, message_id: str, kind: str | None) -> list[tuple[str | None, str]]:
        """(referentie, verdict) of a message's register rows of ``kind``; of every entry
        when None (not the submission or retour-verdict facts, which are no entries)."""
        query = select(REGISTER.c.referentie, REGISTER.c.verdict).where(
            REGISTER.c.message_id == message_id
        )
        if kind is None:
            query = query.where(REGISTER.c.kind.not_in(("submitted", "retour_verdict")))
        else:
            query = query.where(REGISTER.c.kind == kind)
        with self.harness.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(row[0], row[1]) for row in rows]

    # -- the RecordingHistory protocol -----------------------------------------------------

    def record(self, doc: MessageDocument, *, rejected_lines: Collection[str] = ()) -> None:
        """Verify that the daemon accepted the message just submitted, and with which lines:
        decided at once when it answered, pending its recipient's retour otherwise."""
        outcome = self.last
        assert outcome is not None
        lines = [line.referentie_nummer for _, line in claim_lines_in(doc)]
        kept = sorted(ref for ref in lines if ref not in set(rejected_lines))
        if lines and not kept:
            # The scenario "accepts" a JW323 with every line rejected; the daemon rejects it
            # as a whole, and keeps only the submission.
            assert outcome.state == "rejected"
            assert self._registered(outcome.message_id, "claim_line") == []
            self.remember_submission(doc)
            return
        assert outcome.state in ("queued", "held"), (outcome.state, outcome.report.rule_codes)
        retour = MESSAGE_KINDS[doc.message_type].is_retour
        verdict = "accepted" if outcome.answered or retour else "pending"
        if lines:
            registered = self._registered(outcome.message_id, "claim_line")
            assert sorted(registered) == [(ref, verdict) for ref in kept]
        entries = self._registered(outcome.message_id, None)
        assert entries, "an accepted message registers what it establishes"
        assert {found for _, found in entries} == {verdict}

    def remember_submission(self, doc: MessageDocument) -> None:
        """Verify that a JW323 the daemon rejected as a whole was stored as submitted."""
        outcome = self.last
        assert outcome is not None
        assert outcome.state == "rejected"
        identificatie = doc.header_text("BerichtIdentificatie/Identificatie") or ""
        submitted = SqlHistory(self.harness.store, self.seen_bsns).submitted_declaration(
            doc.header_text("Afzender") or "", doc.header_text("Ontvanger") or "", identificatie
        )
        assert submitted is not None
        assert submitted.declaratie_nummer == doc.text(doc.root, "Declaratie/DeclaratieNummer")

    def __getattr__(self, name: str) -> Any:
        # The scenarios' direct queries name clients by plain BSN: read with all of them.
        return getattr(SqlHistory(self.harness.store, self.seen_bsns), name)


def daemon_provider_codes(dossier: scenario.Dossier, answer: Mutable) -> set[tuple[str, str, str]]:
    """``test_provider_checks.codes`` through the daemon: the gemeente sends the JW325; it is
    delivered (no retour, never rejected for provider findings) and its findings are kept."""
    history = dossier.history
    assert isinstance(history, DaemonHistory)
    report = history.submit(answer.to_bytes(), recording=False)
    outcome = history.last
    assert outcome is not None
    assert outcome.state == "queued", (outcome.state, report.rule_codes)
    assert outcome.retour is None
    return {
        (f.rule, f.retourcode or "", test_provider_checks._class_path(f.path))
        for f in report.findings
    }


# --- the run ------------------------------------------------------------------------------


def _builds_dossier(
    fn: Callable[..., Any], module: ModuleType, seen: frozenset[str] = frozenset()
) -> bool:
    """True when the test, or a helper of its module it calls (at any depth), makes a Dossier."""
    if "Dossier(" in inspect.getsource(fn):
        return True
    helpers = [getattr(module, name, None) for name in fn.__code__.co_names if name not in seen]
    return any(
        _builds_dossier(f, module, seen | set(fn.__code__.co_names))
        for f in helpers
        if inspect.isfunction(f) and f.__module__ == module.__name__
    )


def _scenario_tests() -> list[Any]:
    cases = []
    for case, module, fn in plain_scenarios():
        if not _builds_dossier(fn, module):
            continue  # direct list checks without a dossier
        variant = "both" if case in BOTH_ANSWERED else "gemeente"
        cases.append(pytest.param(fn, variant, id=f"{case}[{variant}]"))
    return cases


PG_SUBSET = frozenset(
    {
        "test_declarations::test_credit_then_re_debit_in_one_message",
        "test_declarations::test_rejected_lines_are_not_recorded",
        "test_declarations::test_tr322_total_over_the_assignment",
        "test_history::test_most_recent_version_is_by_toewijzing_moment",
        "test_provider_checks::test_clean_answer_to_a_wholly_rejected_claim",
        "test_provider_checks::test_tr367_volume_differs",
        "test_requests::test_tr332_number_reused_for_another_client",
        "test_requests::test_tr360_second_in_onderzoek",
        "test_requests::test_tr374_vow_while_vot_pending",
        "test_startstop::test_tr019_start_without_allocation",
        "test_startstop::test_tr074_same_start_twice",
        "test_startstop::test_tr414_final_stop_before_temporary_stop",
    }
)
"""What also runs with the gateway's store on PostgreSQL (when GATEWAY_TEST_PG_DSN is set)."""


class PostgresStores:
    """Gateways on PostgreSQL, each in a schema of its own, dropped afterwards."""

    def __init__(self, dsn: str) -> None:
        self.schemas = PgSchemas(dsn, "daemon")

    def build(self, settings: Any, **kwargs: Any) -> gateway.daemon.app.Gateway:
        """``build_app`` with a store on a fresh schema."""
        store = SqlStore(self.schemas.new_url(), pseudonyms=TEST_PSEUDONYMS)
        return gateway.daemon.app.build_app(settings, store=store, **kwargs)

    def drop(self) -> None:
        """Drop every schema made."""
        self.schemas.drop_all()


@pytest.fixture
def daemon_dossiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., list[DaemonHistory]]]:
    """``use(variant, postgres=False)``: every Dossier made from then on gets a gateway of its
    own (on SQLite in tmp_path, or on a PostgreSQL schema of its own)."""
    loop = asyncio.new_event_loop()
    histories: list[DaemonHistory] = []
    postgres: list[PostgresStores] = []
    monkeypatch.setattr(gateway.daemon.app, "load_schema_set", _cached_schema_set)

    def use(variant: str, *, on_postgres: bool = False) -> list[DaemonHistory]:
        if on_postgres:
            postgres.append(PostgresStores(os.environ[PG_DSN_VARIABLE]))
        build = postgres[0].build if postgres else gateway.daemon.app.build_app

        def new() -> DaemonHistory:
            folder = tmp_path / f"gateway{len(histories)}"
            harness = loop.run_until_complete(
                start_harness(
                    folder, VARIANTS[variant], EXTRA_PARTY, RULES, now=TODAY_AT, build=build
                )
            )
            histories.append(DaemonHistory(loop, harness, ANSWERED[variant]))
            return histories[-1]

        scenario.NEW_HISTORY.append(new)
        return histories

    try:
        yield use
    finally:
        while len(scenario.NEW_HISTORY) > 1:
            scenario.NEW_HISTORY.pop()
        for history in histories:
            loop.run_until_complete(stop_harness(history.harness))
        loop.close()
        for stores in postgres:
            stores.drop()


@pytest.mark.parametrize(("scenario_test", "variant"), _scenario_tests())
def test_scenario_through_the_daemon(
    scenario_test: Callable[[], None],
    variant: str,
    daemon_dossiers: Callable[..., list[DaemonHistory]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scenario passes with the daemon deciding every message."""
    monkeypatch.setattr(test_provider_checks, "codes", daemon_provider_codes)
    histories = daemon_dossiers(variant)
    scenario_test()
    assert histories, "the scenario built no dossier"


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("scenario_test", "variant"),
    [case for case in _scenario_tests() if case.id.partition("[")[0] in PG_SUBSET],
)
def test_scenario_through_the_daemon_on_postgresql(
    scenario_test: Callable[[], None],
    variant: str,
    daemon_dossiers: Callable[..., list[DaemonHistory]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A representative subset with the gateway's store on PostgreSQL."""
    pg_dsn()  # skips without a server
    monkeypatch.setattr(test_provider_checks, "codes", daemon_provider_codes)
    histories = daemon_dossiers(variant, on_postgres=True)
    scenario_test()
    assert histories, "the scenario built no dossier"


# Every B rule has a scenario above (by its code, in the scenario's name or assertion); the E
# rules' unit tests check lists without a dossier, so tests/integration/test_dossier_paths.py
# sends one message per E rule through a gateway instead.
B_RULES_IN_SCENARIOS = frozenset(
    {
        *("TR019", "TR056", "TR063", "TR071", "TR074", "TR307", "TR308", "TR314", "TR321"),
        *("TR322", "TR323", "TR326", "TR332", "TR333", "TR337", "TR338", "TR339", "TR340"),
        *("TR341", "TR347", "TR349", "TR350", "TR351", "TR355", "TR357", "TR359", "TR360"),
        *("TR361", "TR365", "TR366", "TR367", "TR369", "TR371", "TR373", "TR374", "TR376"),
        *("TR379", "TR382", "TR384", "TR385", "TR387", "TR388", "TR389", "TR390", "TR413"),
        *("TR414", "TR415"),
    }
)
E_RULES_IN_DIRECT_TESTS = frozenset({"TR135", "TR346", "TR378", "TR381", "TR418"})
# B rules over state an operator records (``gateway settle``), not a message: the scenarios
# cannot make it, so tests/e2e/test_settlement.py drives each through a real service.
B_RULES_OVER_OPERATOR_STATE = frozenset({"BVO001"})


def test_every_b_and_e_rule_runs_through_the_daemon() -> None:
    """The two lists above are every B and E rule of the registry, and each code is asserted
    in a scenario this module runs (or in test_dossier_paths.py for the E rules)."""
    registered = {rule.code for rule in REGISTRY if rule.level.value in ("B", "E")}
    assert registered == (
        B_RULES_IN_SCENARIOS | E_RULES_IN_DIRECT_TESTS | B_RULES_OVER_OPERATOR_STATE
    )
    assert not B_RULES_IN_SCENARIOS & E_RULES_IN_DIRECT_TESTS
    scenarios = "".join(inspect.getsource(case.values[0]) for case in _scenario_tests())
    assert {code for code in B_RULES_IN_SCENARIOS if code not in scenarios} == set()
    direct = (Path(__file__).parent / "test_dossier_paths.py").read_text(encoding="utf-8")
    assert {code for code in E_RULES_IN_DIRECT_TESTS if f'"{code}"' not in direct} == set()
    settled = (Path(__file__).parents[1] / "e2e" / "test_settlement.py").read_text("utf-8")
    assert {code for code in B_RULES_OVER_OPERATOR_STATE if code not in settled} == set()
