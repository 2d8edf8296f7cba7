"""Settlements outside the chain on every backend: stored with their audit entry, read back by
the report's query and by the register's history, and BVO001 refusing a claim on them."""

from __future__ import annotations

import datetime as dt

from gateway.core.dossier import Settlement
from gateway.store.settlement import SETTLE_ACTION
from gateway.store.sql import SqlStore
from tests.contract.test_register_history import SqlRecordingHistory
from tests.unit.dossier.scenario import GEMEENTE, Dossier, Line, declaratie, toewijzing, vot

AT = dt.datetime(2026, 8, 1, 9, 0, tzinfo=dt.UTC)
APRIL = ("2026-04-01", "2026-04-30")
MAY = ("2026-05-01", "2026-05-31")
SETTLED_APRIL = Settlement(GEMEENTE, 300201, dt.date(2026, 4, 1), dt.date(2026, 4, 30), "INV-7")


def test_settlements_are_stored_audited_and_read_back(store: SqlStore) -> None:
    """Each settlement gets one audit entry naming the allocation, period and reference."""
    other = Settlement("0363", 300201, dt.date(2026, 1, 1), dt.date(2026, 3, 31), "INV-8")
    store.record_settlements(
        [(SETTLED_APRIL, "01J0000000000000000000000A"), (other, None)],
        actor="operator:anna",
        reason="paid by invoice",
        at=AT,
    )
    stored = store.settlements()
    assert [s.settlement for s in stored] == [SETTLED_APRIL, other]
    assert stored[0].message_id == "01J0000000000000000000000A"
    assert (stored[0].settled_by, stored[0].reason) == ("operator:anna", "paid by invoice")
    assert [s.settlement for s in store.settlements(GEMEENTE, 300201)] == [SETTLED_APRIL]
    audit = [e for e in store.audit_trail() if e["action"] == SETTLE_ACTION]
    assert [e["target"] for e in audit] == ["toewijzing:0384/300201", "toewijzing:0363/300201"]
    assert "2026-04-01..2026-04-30" in audit[0]["reason"]
    assert "INV-7" in audit[0]["reason"]


def test_a_claim_on_a_settled_period_is_refused_by_the_register(store: SqlStore) -> None:
    """Through the SQL history: April settled outside the chain is refused with 9389 on the
    Prestatie, May on the same allocation passes."""
    dossier = Dossier(history=SqlRecordingHistory(store))
    dossier.accept_all(vot(), toewijzing())
    store.record_settlements([(SETTLED_APRIL, None)], actor="operator:anna", reason="r", at=AT)
    april = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    assert {(rule, code) for rule, code, _ in dossier.codes(april)} == {("BVO001", "9389")}
    may = declaratie("D2", MAY, "2026-06-05", Line("R2", *MAY))
    assert dossier.codes(may) == set()
