"""Level-B rules on JW305/JW307 against a dossier built from the official examples."""

from __future__ import annotations

from tests.unit.dossier.scenario import (
    Dossier,
    delete_allocation,
    only_first,
    start,
    stop,
    toewijzing,
    vot,
)

START_1 = "/Bericht/Client/StartProducten/StartProduct[1]"
START_2 = "/Bericht/Client/StartProducten/StartProduct[2]"
STOP_1 = "/Bericht/Client/StopProducten/StopProduct[1]"
STOP_ONLY = "/Bericht/Client/StopProducten/StopProduct"
START_ONLY = "/Bericht/Client/StartProducten/StartProduct"


def allocated() -> Dossier:
    """VOT answered by the JW301 example."""
    return Dossier().accept_all(vot(), toewijzing())


def started() -> Dossier:
    """Both assignments started."""
    return allocated().accept_all(start())


def test_start_then_final_stop_is_clean() -> None:
    """Direct allocation → start → stop produces no codes anywhere."""
    dossier = started()
    assert dossier.codes(stop()) == set()


def test_temporary_stop_then_final_stop_then_new_start() -> None:
    """Start → temporary stop (20) → final stop, and a new start after a temporary stop."""
    dossier = started()
    dossier.accept(stop(reden="20", einddatum="2026-05-31"))
    dossier.accept(stop(reden="31", einddatum="2026-06-30"))
    fresh = started()
    fresh.accept(stop(reden="20", einddatum="2026-05-31"))
    restart = start("2026-06-16").set(f"{START_1[9:]}/Begindatum", "2026-06-15")
    restart.set(f"{START_2[9:]}/Begindatum", "2026-06-16")
    assert fresh.codes(restart) == set()


def test_correction_by_delete_and_resend_in_one_message() -> None:
    """IV008: delete (3) + new (1) in one JW305 corrects a key element without findings."""
    dossier = started()
    correction = only_first(start("2026-04-20"), "StartProduct")
    correction.duplicate("Client/StartProducten/StartProduct")
    correction.set(f"{START_1[9:]}/StatusAanlevering", "3")
    correction.set(f"{START_2[9:]}/Begindatum", "2026-04-07")
    dossier.accept(correction)
    stop_corrected = only_first(stop(), "StopProduct").set(
        "Client/StopProducten/StopProduct/Begindatum", "2026-04-07"
    )
    assert dossier.codes(stop_corrected) == set()


def test_tr019_start_without_allocation() -> None:
    """9019 on the StartProduct whose ToewijzingNummer was never assigned."""
    message = start().set(f"{START_2[9:]}/ToewijzingNummer", "999999")
    assert allocated().codes(message) == {("TR019", "9019", START_2)}


def test_tr019_start_on_deleted_allocation() -> None:
    """A deleted assignment (reden 13, latest version) cannot be started."""
    dossier = allocated()
    dossier.accept(delete_allocation(toewijzing(), 1, tijd="13:00:00"))
    assert dossier.codes(start()) == {("TR019", "9019", START_1)}


def test_tr019_start_for_another_client() -> None:
    """The number exists, but for this aanbieder it was assigned to another client."""
    dossier = allocated()
    message = start().set("Client/Bsn", "999900018")
    assert dossier.codes(message) == {
        ("TR019", "9019", START_1),
        ("TR019", "9019", START_2),
    }


def test_tr074_same_start_twice() -> None:
    """9074: the identical start is received a second time."""
    assert started().codes(only_first(start("2026-04-11"), "StartProduct")) == {
        ("TR074", "9074", START_ONLY)
    }


def test_tr326_second_start_while_running() -> None:
    """9326: a new start with another Begindatum while the first is not stopped."""
    message = only_first(start("2026-05-01"), "StartProduct")
    message.set("Client/StartProducten/StartProduct/Begindatum", "2026-05-01")
    assert started().codes(message) == {("TR326", "9326", START_ONLY)}


def test_tr063_delete_without_delivery() -> None:
    """9063: deleting a start that was never delivered."""
    message = only_first(start(), "StartProduct")
    message.set("Client/StartProducten/StartProduct/StatusAanlevering", "3")
    assert allocated().codes(message) == {("TR063", "9063", START_ONLY)}


def test_tr071_delete_start_that_has_a_stop() -> None:
    """9071: the start cannot be deleted while its stop exists."""
    dossier = started()
    dossier.accept(stop())
    message = only_first(start("2026-07-21"), "StartProduct")
    message.set("Client/StartProducten/StartProduct/StatusAanlevering", "3")
    assert dossier.codes(message) == {("TR071", "9071", START_ONLY)}


def test_tr382_stop_without_start() -> None:
    """9069 (TR382): a stop whose key matches no start."""
    dossier = allocated()
    assert dossier.codes(only_first(stop(), "StopProduct")) == {("TR382", "9069", STOP_ONLY)}


def test_tr382_stop_with_other_begindatum() -> None:
    """The Begindatum is a key element: a stop naming another Begindatum matches no start."""
    message = only_first(stop(), "StopProduct")
    message.set("Client/StopProducten/StopProduct/Begindatum", "2026-04-05")
    assert started().codes(message) == {("TR382", "9069", STOP_ONLY)}


def test_tr413_second_temporary_stop() -> None:
    """9413: a start has at most one temporary stop."""
    dossier = started()
    dossier.accept(only_first(stop(reden="20", einddatum="2026-05-31"), "StopProduct"))
    second = only_first(stop("2026-07-01", reden="20", einddatum="2026-06-30"), "StopProduct")
    assert dossier.codes(second) == {("TR413", "9413", STOP_ONLY)}


def test_tr414_final_stop_before_temporary_stop() -> None:
    """9414: the final stop may not end before the temporary stop did."""
    dossier = started()
    dossier.accept(only_first(stop(reden="20", einddatum="2026-06-30"), "StopProduct"))
    final = only_first(stop("2026-07-01", einddatum="2026-05-31"), "StopProduct")
    assert dossier.codes(final) == {("TR414", "9414", STOP_ONLY)}


def test_tr415_stop_after_final_stop() -> None:
    """9415: nothing stops a start twice."""
    dossier = started()
    dossier.accept(only_first(stop(einddatum="2026-06-30"), "StopProduct"))
    again = only_first(stop("2026-07-21", einddatum="2026-07-14"), "StopProduct")
    assert dossier.codes(again) == {("TR415", "9415", STOP_ONLY)}


def test_tr074_same_stop_twice_is_not_also_tr415() -> None:
    """An identical repeated stop is a duplicate (9074), not a second final stop."""
    dossier = started()
    dossier.accept(only_first(stop(), "StopProduct"))
    assert dossier.codes(only_first(stop("2026-07-21"), "StopProduct")) == {
        ("TR074", "9074", STOP_ONLY)
    }


def test_tr056_identificatie_reused_for_same_type() -> None:
    """9056 on the header: the aanbieder reuses a JW305 Identificatie."""
    dossier = allocated()
    first = only_first(start(), "StartProduct")
    dossier.accept(first)
    identificatie = first.text("Header/BerichtIdentificatie/Identificatie") or ""
    second = start("2026-04-16").remove("Client/StartProducten/StartProduct[1]")
    second.set("Header/BerichtIdentificatie/Identificatie", identificatie)
    assert dossier.codes(second) == {("TR056", "9056", "/Bericht/Header")}


def test_tr056_same_identificatie_other_type_is_fine() -> None:
    """Uniqueness is per message type: a JW307 may reuse a JW305's Identificatie."""
    dossier = allocated()
    first = start()
    dossier.accept(first)
    identificatie = first.text("Header/BerichtIdentificatie/Identificatie") or ""
    message = stop().set("Header/BerichtIdentificatie/Identificatie", identificatie)
    assert dossier.codes(message) == set()


def test_rejected_message_changes_nothing() -> None:
    """OP286: a start that was rejected is not recorded, so a stop on it still fails."""
    dossier = allocated()
    rejected = start().set(f"{START_2[9:]}/ToewijzingNummer", "999999")
    assert dossier.codes(rejected)  # rejected: the caller does not record it
    assert dossier.codes(only_first(stop(), "StopProduct")) == {("TR382", "9069", STOP_ONLY)}
