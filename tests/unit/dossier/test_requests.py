"""Level-B rules on JW301, JW315, JW317 and JW319: allocations, requests and answers."""

from __future__ import annotations

from tests.unit.dossier.scenario import (
    REF_1,
    REF_2,
    Dossier,
    Line,
    antwoord,
    declaratie,
    delete_allocation,
    only_first,
    toewijzing,
    vot,
    vow,
)
from tests.unit.rules.mutate import Mutable

PRODUCT_1 = "/Bericht/Client/ToegewezenProducten/ToegewezenProduct[1]"
PRODUCT_2 = "/Bericht/Client/ToegewezenProducten/ToegewezenProduct[2]"
VERZOEK = "/Bericht/Client/Verzoek"
ANTWOORD = "/Bericht/Antwoord"


def allocated() -> Dossier:
    """VOT answered by the JW301 example: both requests settled."""
    return Dossier().accept_all(vot(), toewijzing())


def with_change(message: Mutable, fragment: str) -> Mutable:
    """Turn the VOW's second unchanged product (300202) into a TeWijzigenProduct ``fragment``."""
    message.remove("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[2]")
    return message.insert_xml_after(
        "Client/Verzoek/OngewijzigdeProducten",
        f"<m:TeWijzigenProducten><m:TeWijzigenProduct>{fragment}</m:TeWijzigenProduct>"
        "</m:TeWijzigenProducten>",
    )


def change(number: str = "300202", wanted: str = "2026-06-01", omvang: str = "") -> str:
    """A TeWijzigenProduct body: a later end date and, by default, the same Omvang."""
    omvang = omvang or (
        "<m:Omvang><b:Volume>2</b:Volume><b:Eenheid>16</b:Eenheid>"
        "<b:Frequentie>2</b:Frequentie></m:Omvang>"
    )
    return (
        f"<m:ToewijzingNummer>{number}</m:ToewijzingNummer>"
        f"<m:GewensteIngangsdatum>{wanted}</m:GewensteIngangsdatum>"
        f"<m:Einddatum>2026-08-31</m:Einddatum>{omvang}"
    )


# --- process paths that must stay clean ---------------------------------------------------------


def test_direct_allocation_path() -> None:
    """315 → 301: the allocation honours both references without findings."""
    assert Dossier().accept_all(vot()).codes(toewijzing()) == set()


def test_allocation_after_investigation_path() -> None:
    """315 → 319(2) → 301."""
    dossier = Dossier().accept_all(vot(), antwoord(REF_1, "2"), antwoord(REF_2, "2"))
    assert dossier.codes(toewijzing()) == set()


def test_rejection_paths() -> None:
    """315 → 319(1) directly, and 315 → 319(2) → 319(1)."""
    dossier = Dossier().accept_all(vot())
    assert dossier.codes(antwoord(REF_1, "1")) == set()
    dossier.accept_all(antwoord(REF_2, "2"))
    assert dossier.codes(antwoord(REF_2, "1", "2026-04-20")) == set()


def test_vow_after_settled_vot_and_its_answer() -> None:
    """317 listing every current assignment, then answered by a 319."""
    dossier = allocated()
    dossier.accept(vow())
    assert dossier.codes(antwoord("VOW-1", "1", "2026-05-04")) == set()


def test_allocation_versions_ordered_by_toewijzing_moment_not_arrival() -> None:
    """OP080: a version fixed earlier but arriving later does not undo a deletion."""
    dossier = allocated()
    deletion = delete_allocation(toewijzing(), 1, tijd="15:00:00")
    older = toewijzing().set(f"{PRODUCT_1[9:]}/Toewijzingstijd", "13:00:00")
    dossier.accept_all(deletion, older)
    versions = dossier.history.allocation_versions("0384", 300201)
    assert len(versions) == 3
    current = max(versions, key=lambda v: v.moment)
    assert current.deleted


# --- JW301 -------------------------------------------------------------------------------------


def test_tr379_reference_without_request() -> None:
    """9379 on each product whose ReferentieAanbieder names no request."""
    assert Dossier().codes(toewijzing()) == {
        ("TR379", "9379", PRODUCT_1),
        ("TR379", "9379", PRODUCT_2),
    }


def test_tr332_number_reused_for_another_client() -> None:
    """9332: 300201 already belongs to another client of this gemeente."""
    dossier = allocated()
    message = only_first(toewijzing(), "ToegewezenProduct").set("Client/Bsn", "999900018")
    message.remove("Client/ToegewezenProducten/ToegewezenProduct/ReferentieAanbieder")
    assert dossier.codes(message) == {
        ("TR332", "9332", "/Bericht/Client/ToegewezenProducten/ToegewezenProduct")
    }


def test_resend_with_same_number_is_a_change_not_tr332() -> None:
    """Changing the end date of 300201 by resending it is the normal change path."""
    dossier = allocated()
    message = toewijzing()
    assert dossier.codes(message.set(f"{PRODUCT_1[9:]}/Einddatum", "2026-06-30")) == set()


def test_tr385_deleting_a_claimed_allocation() -> None:
    """9385: an assignment with accepted claim lines cannot be deleted."""
    dossier = allocated()
    dossier.accept(
        declaratie(
            "D1", ("2026-04-01", "2026-04-30"), "2026-05-05", Line("R1", "2026-04-01", "2026-04-30")
        )
    )
    assert dossier.codes(delete_allocation(toewijzing(), 1, tijd="13:00:00")) == {
        ("TR385", "9385", PRODUCT_1)
    }


def test_deleting_after_full_credit_is_allowed() -> None:
    """Once the claim is credited, the assignment can be deleted."""
    dossier = allocated()
    period = ("2026-04-01", "2026-04-30")
    dossier.accept(declaratie("D1", period, "2026-05-05", Line("R1", *period)))
    dossier.accept(declaratie("D2", period, "2026-05-20", Line("R2", *period, vorig="R1")))
    assert dossier.codes(delete_allocation(toewijzing(), 1, tijd="13:00:00")) == set()


# --- JW315 / JW317 -------------------------------------------------------------------------------


def test_tr347_reference_reused() -> None:
    """9347 on each AangevraagdProduct whose reference the aanbieder used before."""
    dossier = Dossier().accept_all(vot())
    products = "/Bericht/Client/AangevraagdeProducten/AangevraagdProduct"
    assert dossier.codes(vot("2026-03-21")) == {
        ("TR347", "9347", f"{products}[1]"),
        ("TR347", "9347", f"{products}[2]"),
    }


def test_tr374_vow_while_vot_pending() -> None:
    """9374: the VOT is only 'in onderzoek', so a VOW must wait."""
    dossier = allocated()
    dossier.accept(
        vot("2026-04-20")
        .set("Client/AangevraagdeProducten/AangevraagdProduct[1]/ReferentieAanbieder", "NEW-1")
        .set("Client/AangevraagdeProducten/AangevraagdProduct[2]/ReferentieAanbieder", "NEW-2")
    )
    dossier.accept(antwoord("NEW-1", "2", "2026-04-22"))
    dossier.accept(antwoord("NEW-2", "1", "2026-04-22"))
    assert dossier.codes(vow()) == {("TR374", "9374", VERZOEK)}


def test_tr349_vow_leaves_out_a_current_assignment() -> None:
    """9349 on the Verzoek: 300202 is current but neither unchanged nor changed."""
    message = vow().remove("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[2]")
    assert allocated().codes(message) == {("TR349", "9349", VERZOEK)}


def test_tr349_ignores_ended_and_deleted_assignments() -> None:
    """An assignment deleted before the VOW need not be listed."""
    dossier = allocated()
    dossier.accept(delete_allocation(toewijzing(), 2, tijd="13:00:00"))
    message = vow().remove("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[2]")
    assert dossier.codes(message) == set()


def test_tr350_unchanged_product_unknown() -> None:
    """9350 on the OngewijzigdProduct naming no current assignment."""
    message = vow().duplicate("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[2]")
    message.set(
        "Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[3]/ToewijzingNummer", "777"
    )
    assert allocated().codes(message) == {
        ("TR350", "9350", "/Bericht/Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[3]")
    }


TE_WIJZIGEN = "/Bericht/Client/Verzoek/TeWijzigenProducten/TeWijzigenProduct"


def test_changed_product_valid() -> None:
    """A TeWijzigenProduct for a current assignment from a future date is clean."""
    assert allocated().codes(with_change(vow(), change())) == set()


def test_tr351_changed_product_unknown() -> None:
    """9351 on the TeWijzigenProduct naming no current assignment."""
    message = with_change(vow(), change("777"))
    message.insert_xml_after(
        "Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct",
        "<m:OngewijzigdProduct><m:ToewijzingNummer>300202</m:ToewijzingNummer>"
        "</m:OngewijzigdProduct>",
    )
    assert allocated().codes(message) == {("TR351", "9351", TE_WIJZIGEN)}


def test_tr357_retroactive_change() -> None:
    """9357: GewensteIngangsdatum before the Dagtekening and not the original Ingangsdatum."""
    message = with_change(vow(), change(wanted="2026-04-15"))
    assert allocated().codes(message) == {("TR357", "9357", TE_WIJZIGEN)}


def test_tr373_total_changed_not_from_start() -> None:
    """9373: a new total (Frequentie 6) must apply from the Ingangsdatum."""
    total = (
        "<m:Omvang><b:Volume>20</b:Volume><b:Eenheid>16</b:Eenheid>"
        "<b:Frequentie>6</b:Frequentie></m:Omvang>"
    )
    assert allocated().codes(with_change(vow(), change(omvang=total))) == {
        ("TR373", "9373", TE_WIJZIGEN)
    }
    from_start = with_change(vow(), change(wanted="2026-04-01", omvang=total))
    assert allocated().codes(from_start) == set()


def test_tr361_new_product_overlaps_kept_assignment() -> None:
    """9361: the new product is 55A11, which 300201 already covers until 2026-07-14."""
    new = "Client/Verzoek/NieuweProducten/NieuwProduct"
    message = vow().set(f"{new}/Product/Categorie", "55").set(f"{new}/Product/Code", "55A11")
    assert allocated().codes(message) == {("TR361", "9361", f"/Bericht/{new}")}
    after = vow().set(f"{new}/Product/Categorie", "55").set(f"{new}/Product/Code", "55A11")
    assert allocated().codes(after.set(f"{new}/GewensteIngangsdatum", "2026-07-15")) == set()


# --- JW319 ---------------------------------------------------------------------------------------


def test_tr355_answer_to_unknown_request() -> None:
    """9355 on the Antwoord: no VOT/VOW with this reference."""
    assert Dossier().codes(antwoord("NOPE", "1")) == {("TR355", "9355", ANTWOORD)}


def test_tr359_answer_after_allocation() -> None:
    """9359: REF_1 was already honoured by an allocation."""
    assert allocated().codes(antwoord(REF_1, "1", "2026-04-02")) == {("TR359", "9359", ANTWOORD)}


def test_tr360_second_in_onderzoek() -> None:
    """9360: 'in onderzoek' only as the first answer."""
    dossier = Dossier().accept_all(vot(), antwoord(REF_1, "2"))
    assert dossier.codes(antwoord(REF_1, "2", "2026-04-01")) == {("TR360", "9360", ANTWOORD)}


def test_tr365_second_rejection() -> None:
    """9365: a rejection after a rejection."""
    dossier = Dossier().accept_all(vot(), antwoord(REF_1, "1"))
    assert dossier.codes(antwoord(REF_1, "1", "2026-04-01")) == {("TR365", "9365", ANTWOORD)}
