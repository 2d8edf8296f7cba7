"""Reading a message into history records, and what an accepted message adds to the history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.core.document import Element, MessageDocument
from gateway.core.dossier.records import (
    CREDIT,
    DELETE_DELIVERY,
    FIRST_DELIVERY,
    Allocation,
    Answer,
    ClaimLine,
    Declaration,
    Delivery,
    DeliveryChange,
    DeliveryKind,
    Entry,
    Identification,
    Request,
    StartKey,
    SubmittedDeclaration,
    SubmittedLine,
)

# --- reading messages into history records -----------------------------------------------------


def _product(
    doc: MessageDocument, el: Element, path: str = "Product"
) -> tuple[str | None, str | None]:
    return doc.text(el, f"{path}/Categorie"), doc.text(el, f"{path}/Code")


# The readers below run once per document (MessageDocument.memo): the rules of several codes
# and the register update all ask for the same lines, and reading them is the costly part.
# Each public reader hands out a fresh list, so a caller can never change what another sees.


def allocations_in(doc: MessageDocument) -> list[tuple[Element, Allocation]]:
    """Each ToegewezenProduct of a JW301 with the allocation version it states."""
    return list(doc.memo(_allocations))


def _allocations(doc: MessageDocument) -> tuple[tuple[Element, Allocation], ...]:
    gemeente = doc.afzender or ""
    aanbieder = doc.ontvanger or ""
    bsn = doc.text(doc.root, "Client/Bsn") or ""
    result = []
    for product in doc.iter_local("ToegewezenProduct"):
        number = doc.int_at(product, "ToewijzingNummer")
        datum = doc.date_at(product, "Toewijzingsdatum")
        ingang = doc.date_at(product, "Ingangsdatum")
        tijd = _time(doc.text(product, "Toewijzingstijd"))
        if number is None or datum is None or ingang is None or tijd is None:
            continue  # XSD-valid messages always have these
        categorie, code = _product(doc, product)
        result.append(
            (
                product,
                Allocation(
                    gemeente=gemeente,
                    aanbieder=aanbieder,
                    bsn=bsn,
                    toewijzing_nummer=number,
                    toewijzingsdatum=datum,
                    toewijzingstijd=tijd,
                    ingangsdatum=ingang,
                    einddatum=doc.date_at(product, "Einddatum"),
                    referentie_aanbieder=doc.text(product, "ReferentieAanbieder"),
                    categorie=categorie,
                    code=code,
                    reden_wijziging=doc.text(product, "RedenWijziging"),
                    volume=doc.int_at(product, "Omvang/Volume"),
                    eenheid=doc.text(product, "Omvang/Eenheid"),
                    frequentie=doc.text(product, "Omvang/Frequentie"),
                    budget=doc.int_at(product, "Budget"),
                ),
            )
        )
    return tuple(result)


def _time(value: str | None) -> dt.time | None:
    if value is None:
        return None
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """A StartProduct/StopProduct of the message being read, with its StatusAanlevering."""

    element: Element
    delivery: Delivery
    status: str


def deliveries_in(doc: MessageDocument) -> list[DeliveryLine]:
    """Each StartProduct of a JW305 or StopProduct of a JW307 as a delivery line."""
    return list(doc.memo(_deliveries))


def _deliveries(doc: MessageDocument) -> tuple[DeliveryLine, ...]:
    aanbieder = doc.afzender or ""
    gemeente = doc.ontvanger or ""
    bsn = doc.text(doc.root, "Client/Bsn") or ""
    kind = DeliveryKind.START if doc.message_type == "JW305" else DeliveryKind.STOP
    name = "StartProduct" if kind is DeliveryKind.START else "StopProduct"
    result = []
    for product in doc.iter_local(name):
        begin = doc.date_at(product, "Begindatum")
        if begin is None:
            continue
        categorie, code = _product(doc, product)
        key = StartKey(doc.int_at(product, "ToewijzingNummer"), categorie, code, begin)
        delivery = Delivery(
            kind=kind,
            aanbieder=aanbieder,
            gemeente=gemeente,
            bsn=bsn,
            key=key,
            reden_beeindiging=doc.text(product, "RedenBeeindiging"),
            einddatum=doc.date_at(product, "Einddatum"),
        )
        status = doc.text(product, "StatusAanlevering") or ""
        result.append(DeliveryLine(product, delivery, status))
    return tuple(result)


def requests_in(doc: MessageDocument) -> list[tuple[Element, Request]]:
    """Each AangevraagdProduct of a JW315, or the Verzoek of a JW317, as a request."""
    return list(doc.memo(_requests))


def _requests(doc: MessageDocument) -> tuple[tuple[Element, Request], ...]:
    aanbieder = doc.afzender or ""
    gemeente = doc.ontvanger or ""
    bsn = doc.text(doc.root, "Client/Bsn") or ""
    dagtekening = doc.dagtekening or dt.date.min
    name = "AangevraagdProduct" if doc.message_type == "JW315" else "Verzoek"
    result = []
    for el in doc.iter_local(name):
        referentie = doc.text(el, "ReferentieAanbieder")
        if referentie is not None:
            request = Request(doc.message_type, aanbieder, gemeente, bsn, referentie, dagtekening)
            result.append((el, request))
    return tuple(result)


def answer_in(doc: MessageDocument) -> tuple[Element, Answer] | None:
    """The Antwoord of a JW319 as an answer."""
    for el in doc.iter_local("Antwoord"):
        referentie = doc.text(el, "ReferentieAanbieder")
        antwoord = doc.text(el, "VerzoekAntwoord")
        if referentie is None or antwoord is None:
            return None
        return el, Answer(
            gemeente=doc.afzender or "",
            aanbieder=doc.ontvanger or "",
            referentie=referentie,
            verzoek_antwoord=antwoord,
            dagtekening=doc.dagtekening or dt.date.min,
        )
    return None


def claim_lines_in(doc: MessageDocument) -> list[tuple[Element, ClaimLine]]:
    """Each Prestatie of a JW323 as a claim line, in document order."""
    return list(doc.memo(_claim_lines))


def _claim_lines(doc: MessageDocument) -> tuple[tuple[Element, ClaimLine], ...]:
    aanbieder = doc.afzender or ""
    gemeente = doc.ontvanger or ""
    nummer = doc.text(doc.root, "Declaratie/DeclaratieNummer") or ""
    result = []
    for client in doc.findall(doc.root, "Declaratie/Clienten/Client"):
        bsn = doc.text(client, "Bsn") or ""
        for prestatie in doc.findall(client, "Prestaties/Prestatie"):
            line = _claim_line(
                doc, prestatie, aanbieder=aanbieder, gemeente=gemeente, bsn=bsn, nummer=nummer
            )
            if line is not None:
                result.append((prestatie, line))
    return tuple(result)


def _claim_line(
    doc: MessageDocument,
    prestatie: Element,
    *,
    aanbieder: str,
    gemeente: str,
    bsn: str,
    nummer: str,
) -> ClaimLine | None:
    referentie = doc.text(prestatie, "ProductReferentie/ReferentieNummer")
    toewijzing = doc.int_at(prestatie, "ToewijzingNummer")
    begin = doc.date_at(prestatie, "ProductPeriode/Begindatum")
    end = doc.date_at(prestatie, "ProductPeriode/Einddatum")
    volume = doc.int_at(prestatie, "GeleverdVolume")
    bedrag = doc.int_at(prestatie, "IngediendBedrag/Bedrag")
    indicator = doc.text(prestatie, "IngediendBedrag/DebetCredit")
    if (
        referentie is None
        or toewijzing is None
        or begin is None
        or end is None
        or volume is None
        or bedrag is None
    ):
        return None
    return ClaimLine(
        aanbieder=aanbieder,
        gemeente=gemeente,
        bsn=bsn,
        declaratie_nummer=nummer,
        referentie_nummer=referentie,
        vorig_referentie_nummer=doc.text(prestatie, "ProductReferentie/VorigReferentieNummer"),
        toewijzing_nummer=toewijzing,
        categorie=doc.text(prestatie, "ProductCategorie") or "",
        code=doc.text(prestatie, "ProductCode") or "",
        begindatum=begin,
        einddatum=end,
        volume=volume,
        eenheid=doc.text(prestatie, "Eenheid") or "",
        bedrag=-bedrag if indicator == CREDIT else bedrag,
    )


# --- the claim as submitted (provider-side JW325 checks) --------------------------------------


def submitted_declaration_in(doc: MessageDocument) -> SubmittedDeclaration | None:
    """A JW323 read as a :class:`SubmittedDeclaration`; None for any other message type."""
    if doc.message_type != "JW323":
        return None
    totaal = doc.int_at(doc.root, "Declaratie/TotaalIngediendBedrag/TotaalBedrag")
    indicator = doc.text(doc.root, "Declaratie/TotaalIngediendBedrag/DebetCredit")
    if totaal is not None and indicator == CREDIT:
        totaal = -totaal
    return SubmittedDeclaration(
        aanbieder=doc.afzender or "",
        gemeente=doc.ontvanger or "",
        identificatie=doc.identificatie or "",
        dagtekening=doc.dagtekening,
        declaratie_nummer=doc.text(doc.root, "Declaratie/DeclaratieNummer") or "",
        basisschema_xsd_versie=doc.header_text("XsdVersie/BasisschemaXsdVersie"),
        bericht_xsd_versie=doc.header_text("XsdVersie/BerichtXsdVersie"),
        totaal=totaal,
        lines=tuple(
            SubmittedLine(line, doc.int_at(prestatie, "ProductTarief"))
            for prestatie, line in doc.memo(_claim_lines)
        ),
    )


# --- what an accepted message establishes ------------------------------------------------------


def entries_of(doc: MessageDocument, rejected_lines: Collection[str] = ()) -> list[Entry]:
    """Everything an ACCEPTED message adds to the history, in document order.

    Every message adds its :class:`Identification`. Of a JW323 only the prestaties whose
    ReferentieNummer is not in ``rejected_lines`` count, and its :class:`Declaration` only when
    at least one of them does. Both history implementations fold exactly these entries.
    """
    entries: list[Entry] = [
        Identification(
            doc.afzender or "",
            doc.message_type,
            doc.identificatie or "",
        )
    ]
    match doc.message_type:
        case "JW301":
            entries += [allocation for _, allocation in allocations_in(doc)]
        case "JW305" | "JW307":
            entries += [DeliveryChange(line.delivery, line.status) for line in deliveries_in(doc)]
        case "JW315" | "JW317":
            entries += [request for _, request in requests_in(doc)]
        case "JW319":
            found = answer_in(doc)
            if found is not None:
                entries.append(found[1])
        case "JW323":
            rejected = frozenset(rejected_lines)
            lines = [
                line for _, line in doc.memo(_claim_lines) if line.referentie_nummer not in rejected
            ]
            if lines:
                first = lines[0]
                entries.append(
                    Declaration(first.aanbieder, first.gemeente, first.declaratie_nummer)
                )
            entries += lines
        case _:
            pass
    return entries


def fold_deliveries(
    current: Sequence[Delivery], changes: Sequence[DeliveryChange]
) -> list[Delivery]:
    """The current deliveries after one message's start/stop lines.

    A correction is delete + new in one message (IV008), so the message's deletes apply first;
    a delete of an unknown delivery and a repeated delivery change nothing.
    """
    result = list(current)
    for change in sorted(changes, key=lambda c: c.status != DELETE_DELIVERY):
        if change.status == DELETE_DELIVERY:
            if change.delivery in result:
                result.remove(change.delivery)
        elif change.status == FIRST_DELIVERY and change.delivery not in result:
            result.append(change.delivery)
    return result
