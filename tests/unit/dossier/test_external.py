"""Level-E rules: system date, CBS gemeente list, product code list and contract tariffs."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.core.lists import (
    ContractTariff,
    ExternalLists,
    InMemoryContracts,
    InMemoryProductCodes,
    ListFormatError,
    parse_gemeenten,
)
from gateway.core.report import Level
from gateway.core.rules import RuleContext
from gateway.core.validate import validate
from tests.paths import REPO
from tests.unit.dossier.scenario import Dossier, Line, declaratie, toewijzing, vot
from tests.unit.rules.mutate import example_bytes, load_example, official_schema_set

GEMEENTEN = parse_gemeenten(
    (REPO / "mappings" / "gemeenten_cbs.csv").read_text(encoding="utf-8").splitlines()
)
APRIL = ("2026-04-01", "2026-04-30")
PRESTATIE = "/Bericht/Declaratie/Clienten/Client/Prestaties/Prestatie"


def external_codes(raw: bytes, lists: ExternalLists | None = None, today: dt.date | None = None):
    """(rule, retourcode, path) of what level E finds, without any history."""
    report = validate(raw, official_schema_set(), RuleContext(today=today, lists=lists))
    assert report.level in (Level.OK, Level.EXTERNAL)
    return {(f.rule, f.retourcode, f.path) for f in report.findings}


def test_shipped_list_has_every_example_gemeente() -> None:
    """The examples' gemeenten (0384, 0363, 1916) and IJsselland's are in the shipped list."""
    day = dt.date(2026, 4, 1)
    for code in ("0384", "0363", "1916", "0193", "1773"):
        assert GEMEENTEN.valid_on(code, day), code
    assert not GEMEENTEN.knows("0999")


@pytest.mark.parametrize("message_type", ["JW301", "JW305", "JW315", "JW317", "JW319", "JW323"])
def test_examples_pass_external_rules(message_type: str) -> None:
    """The official examples meet TR378 with the shipped list and TR135 on a later day."""
    lists = ExternalLists(gemeenten=GEMEENTEN)
    assert external_codes(example_bytes(message_type), lists, dt.date(2026, 12, 31)) == set()


def test_tr135_dagtekening_after_system_date() -> None:
    """8848 on the header when the Dagtekening lies after today."""
    raw = example_bytes("JW301")  # Dagtekening 2026-04-01
    assert external_codes(raw, today=dt.date(2026, 3, 31)) == {
        ("TR135", "8848", "/Bericht/Header/BerichtIdentificatie/Dagtekening")
    }
    assert external_codes(raw, today=dt.date(2026, 4, 1)) == set()


def test_tr378_unknown_gemeente_in_header() -> None:
    """S300 on the header gemeente that is not in the CBS list."""
    raw = load_example("JW305").set("Header/Ontvanger", "0999").to_bytes()
    assert external_codes(raw, ExternalLists(gemeenten=GEMEENTEN)) == {
        ("TR378", "S300", "/Bericht/Header/Ontvanger")
    }


def test_tr378_gemeente_no_longer_valid() -> None:
    """A code whose validity ended before the Dagtekening is rejected; before, it is fine."""
    ended = parse_gemeenten(["code,naam,geldig_van,geldig_tot", "0384,Diemen,,2025-12-31"])
    lists = ExternalLists(gemeenten=ended)
    assert external_codes(example_bytes("JW301"), lists) == {
        ("TR378", "S300", "/Bericht/Header/Afzender")
    }
    older = load_example("JW301").set("Header/BerichtIdentificatie/Dagtekening", "2025-12-31")
    for index in (1, 2):  # fixed on that day too (TR134)
        older.set(
            f"Client/ToegewezenProducten/ToegewezenProduct[{index}]/Toewijzingsdatum", "2025-12-31"
        )
    assert external_codes(older.to_bytes(), lists) == set()


def test_tr378_woonplaatsbeginsel_gemeente() -> None:
    """S300 on the Woonplaatsbeginsel class of a JW319."""
    raw = load_example("JW319").set("Antwoord/Woonplaatsbeginsel/Gemeente", "1917").to_bytes()
    assert external_codes(raw, ExternalLists(gemeenten=GEMEENTEN)) == {
        ("TR378", "S300", "/Bericht/Antwoord/Woonplaatsbeginsel/Gemeente")
    }


def test_gemeente_list_rejects_bad_rows() -> None:
    """A malformed list fails loudly at load time, not silently at check time."""
    with pytest.raises(ListFormatError):
        parse_gemeenten(["code,naam,geldig_van,geldig_tot", "384,Diemen,,"])
    with pytest.raises(ListFormatError):
        parse_gemeenten(["code,naam,geldig_van,geldig_tot", "0384,Diemen,1-1-2020,"])
    with pytest.raises(ListFormatError):
        parse_gemeenten(["code,naam", "0384,Diemen"])


def test_tr381_code_not_in_category() -> None:
    """S329 on the product whose code the list files under another category."""
    codes = InMemoryProductCodes({"55": frozenset({"55A11"}), "45": frozenset({"55A12"})})
    raw = example_bytes("JW301")
    assert external_codes(raw, ExternalLists(product_codes=codes)) == {
        (
            "TR381",
            "S329",
            "/Bericht/Client/ToegewezenProducten/ToegewezenProduct[2]/Product/Code",
        )
    }
    fine = InMemoryProductCodes({"55": frozenset({"55A11", "55A12"})})
    assert external_codes(raw, ExternalLists(product_codes=fine)) == set()


def test_tr381_on_claim_lines() -> None:
    """S329 on a Prestatie's ProductCode."""
    codes = InMemoryProductCodes({"55": frozenset({"55A12"})})
    raw = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))
    assert external_codes(raw, ExternalLists(product_codes=codes)) == {
        ("TR381", "S329", f"{PRESTATIE}/ProductCode")
    }


CONTRACTS = InMemoryContracts(
    {("0384", "42420001", "55", "55A11"): ((None, None, ContractTariff(1250, "04")),)}
)


def test_tr346_amount_not_volume_times_tariff() -> None:
    """9346 when IngediendBedrag is not GeleverdVolume × ProductTarief."""
    raw = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL, bedrag=10001))
    assert external_codes(raw, ExternalLists(contracts=CONTRACTS)) == {
        ("TR346", "9346", f"{PRESTATIE}/IngediendBedrag")
    }


def test_tr346_minutes_on_hourly_contract_use_rounded_hourly_amount() -> None:
    """IV081: 50 minutes at 12.50/hour is round(1250 × 50 / 60) = 1042, not 50 × 21."""
    line = Line("R1", *APRIL, volume=50, eenheid="01", tarief=21, bedrag=1042)
    raw = declaratie("D1", APRIL, "2026-05-05", line)
    assert external_codes(raw, ExternalLists(contracts=CONTRACTS)) == set()
    assert external_codes(raw, ExternalLists()) == {
        ("TR346", "9346", f"{PRESTATIE}/IngediendBedrag")
    }


def test_tr418_tariff_differs_from_contract() -> None:
    """0611 when ProductTarief is not the contract tariff; no contract, no judgement."""
    raw = declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL, tarief=1300))
    assert external_codes(raw, ExternalLists(contracts=CONTRACTS)) == {
        ("TR418", "0611", f"{PRESTATIE}/ProductTarief")
    }
    assert external_codes(raw, ExternalLists()) == set()


def test_cross_message_and_external_together() -> None:
    """With history and lists both present, a clean dossier stays clean."""
    lists = ExternalLists(
        gemeenten=GEMEENTEN,
        product_codes=InMemoryProductCodes({"55": frozenset({"55A11", "55A12"})}),
        contracts=CONTRACTS,
    )
    dossier = Dossier(lists=lists, today=dt.date(2026, 9, 1))
    dossier.accept_all(vot(), toewijzing())
    assert dossier.codes(declaratie("D1", APRIL, "2026-05-05", Line("R1", *APRIL))) == set()


def test_validate_without_context_runs_no_b_or_e_rule() -> None:
    """`gateway validate` (no history, lists or today) is unaffected by these rules."""
    raw = load_example("JW305").set("Header/Ontvanger", "0999").to_bytes()
    assert validate(raw, official_schema_set()).ok
