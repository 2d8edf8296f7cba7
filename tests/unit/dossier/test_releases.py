"""The register across iJw releases: a 2.3 message registers what its 3.2 counterpart would,
so a 3.2 start finds the allocation a 2.3 JW301 made, and a 2.3 JW303 is identified by its
sender and invoice number (its header has no Afzender or BerichtIdentificatie)."""

from __future__ import annotations

from gateway.core.dossier import Identification, entries_of
from gateway.core.validate import validate
from gateway.schemas import load_schema_set
from tests.paths import EXAMPLES_DIR_23, OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23
from tests.unit.dossier.scenario import AANBIEDER, GEMEENTE, Dossier, only_first, start

BOTH_RELEASES = load_schema_set([OFFICIAL_XSD_DIR, OFFICIAL_XSD_DIR_23])


def allocation_2_3() -> bytes:
    """The 2.3 JW301 example: 0384 assigns 201 and 202 to 42420001, from 2018-07-15."""
    return (EXAMPLES_DIR_23 / "JW301.xml").read_bytes()


def start_of_201() -> bytes:
    """A 3.2 JW305 starting allocation 201 (the 2.3 JW301's first) on 2018-08-01."""
    m = only_first(start("2018-08-02"), "StartProduct")
    base = "Client/StartProducten/StartProduct"
    m.set(f"{base}/ToewijzingNummer", "201").set(f"{base}/ToewijzingIngangsdatum", "2018-07-15")
    m.set(f"{base}/Begindatum", "2018-08-01")
    m.set(f"{base}/Product/Categorie", "41").set(f"{base}/Product/Code", "ABCDE")
    return m.set("Client/Bsn", "123456782").to_bytes()


def test_a_3_2_start_finds_the_allocation_of_a_2_3_jw301() -> None:
    """Same gemeente, aanbieder, client and ToewijzingNummer: no TR019 (9019)."""
    assert (GEMEENTE, AANBIEDER) == ("0384", "42420001")  # the 2.3 example's parties
    without = Dossier(schemas=BOTH_RELEASES)
    assert "TR019" in {rule for rule, _, _ in without.codes(start_of_201())}
    dossier = Dossier(schemas=BOTH_RELEASES).accept_all(allocation_2_3())
    assert dossier.codes(start_of_201()) == set()


def test_a_2_3_declaration_registers_its_sender_and_invoice_number() -> None:
    raw = (EXAMPLES_DIR_23 / "JW303.xml").read_bytes()
    doc = validate(raw, BOTH_RELEASES).document
    assert doc is not None
    assert entries_of(doc)[0] == Identification("42420001", "JW303", "123456789012")
    answer = validate((EXAMPLES_DIR_23 / "JW304.xml").read_bytes(), BOTH_RELEASES).document
    assert answer is not None
    assert entries_of(answer)[0] == Identification("0384", "JW304", "123456789012")
