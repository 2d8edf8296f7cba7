"""The checks an aanbieder makes on a JW325 (level B): does the answer match the claim it answers?

A JW325 is matched to the JW323 it answers by DeclaratieIdentificatie (VECOZO does not link the
two by conversation id), and each returned prestatie to the submitted line by ProductReferentie.
The claim is read AS SUBMITTED (:meth:`gateway.core.dossier.History.submitted_declaration`):
every line, accepted or not, because the JW325 returns exactly the rejected ones.

* TR337: DeclaratieIdentificatie is the BerichtIdentificatie of a JW323 this aanbieder sent this
  gemeente (no retourcode);
* TR371: XsdVersieDeclaratie equals the XsdVersie of that JW323 (no retourcode);
* TR376: DeclaratieNummer equals the DeclaratieNummer of that JW323 (no retourcode);
* TR366 (9366): every returned prestatie's ReferentieNummer is a line of that JW323;
* TR367 (9367): every value of a returned prestatie equals the submitted line's.

A JW325 gets no retour, so these findings cannot go back to the gemeente: they are warnings for
the operators (see :func:`warnings_only`). When the claim is unknown only TR337 is reported; the
other checks need the claim to compare with.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.document import Element, MessageDocument, find, findall, int_at, text
from gateway.core.dossier import CREDIT, SubmittedDeclaration, SubmittedLine
from gateway.core.report import ValidationReport
from gateway.core.rules.engine import RuleContext, RuleLevel, Violation
from gateway.core.rules.registry import REGISTRY

B = RuleLevel.CROSS_MESSAGE
HISTORY = ("history",)
ANSWER = ("JW325",)
NO_RETOURCODE = ""

PROVIDER_RULES = frozenset({"TR337", "TR366", "TR367", "TR371", "TR376"})
"""The rules of this module: findings a JW325's recipient (the aanbieder) reports."""


def warnings_only(report: ValidationReport) -> bool:
    """True when every finding of a JW325 report comes from a provider-side check.

    Such a JW325 is not faulty in the gemeente's eyes and gets no retour: the daemon should
    deliver it and show the findings to operators rather than reject it.
    """
    return (
        report.message_type == "JW325"
        and bool(report.findings)
        and all(f.rule in PROVIDER_RULES for f in report.findings)
    )


def _claim(doc: MessageDocument, ctx: RuleContext) -> SubmittedDeclaration | None:
    """The JW323 this JW325 names in DeclaratieIdentificatie, if it was submitted."""
    # A history without the lookup (a register built before these checks) knows no claims;
    # the rules then stay silent instead of failing the whole validation.
    lookup = getattr(ctx.history, "submitted_declaration", None)
    identificatie = doc.header_text("DeclaratieIdentificatie/Identificatie")
    if lookup is None or identificatie is None:
        return None
    gemeente = doc.header_text("Afzender") or ""
    aanbieder = doc.header_text("Ontvanger") or ""
    claim: SubmittedDeclaration | None = lookup(aanbieder, gemeente, identificatie)
    return claim


def _header_element(doc: MessageDocument, path: str) -> Element:
    found = find(doc.header, path)
    return found if found is not None else doc.header


@REGISTRY.rule(
    "TR337",
    types=ANSWER,
    summary="DeclaratieIdentificatie is the BerichtIdentificatie of a JW323 the aanbieder sent "
    "(checked by the aanbieder).",
    retourcode=NO_RETOURCODE,
    level=B,
    needs=HISTORY,
)
def answers_a_submitted_claim(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR337: the JW325 answers a JW323 that this aanbieder sent to this gemeente."""
    identificatie = doc.header_text("DeclaratieIdentificatie/Identificatie") or ""
    claim = _claim(doc, ctx)
    where = _header_element(doc, "DeclaratieIdentificatie")
    if claim is None:
        yield Violation(
            where,
            f"DeclaratieIdentificatie {identificatie!r} names no JW323 this aanbieder sent "
            "this gemeente.",
        )
        return
    dagtekening = doc.header_text("DeclaratieIdentificatie/Dagtekening")
    submitted = claim.dagtekening.isoformat() if claim.dagtekening is not None else None
    if dagtekening != submitted:
        yield Violation(
            _header_element(doc, "DeclaratieIdentificatie/Dagtekening"),
            f"DeclaratieIdentificatie dated {dagtekening} but JW323 {identificatie!r} is dated "
            f"{submitted}.",
        )


@REGISTRY.rule(
    "TR371",
    types=ANSWER,
    summary="XsdVersieDeclaratie equals the XsdVersie of the JW323 answered "
    "(checked by the aanbieder).",
    retourcode=NO_RETOURCODE,
    level=B,
    needs=HISTORY,
)
def repeats_claim_xsd_version(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR371: the answer repeats the XSD versions the claim was built with."""
    claim = _claim(doc, ctx)
    if claim is None:
        return
    for name, submitted in (
        ("BasisschemaXsdVersie", claim.basisschema_xsd_versie),
        ("BerichtXsdVersie", claim.bericht_xsd_versie),
    ):
        answered = doc.header_text(f"XsdVersieDeclaratie/{name}")
        if answered != submitted:
            yield Violation(
                _header_element(doc, f"XsdVersieDeclaratie/{name}"),
                f"XsdVersieDeclaratie/{name} is {answered} but the JW323 says {submitted}.",
            )


@REGISTRY.rule(
    "TR376",
    types=ANSWER,
    summary="DeclaratieNummer equals the DeclaratieNummer of the JW323 answered "
    "(checked by the aanbieder).",
    retourcode=NO_RETOURCODE,
    level=B,
    needs=HISTORY,
)
def repeats_declaratie_nummer(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR376: the DeclaratieAntwoord carries the claim's own DeclaratieNummer."""
    claim = _claim(doc, ctx)
    element = find(doc.root, "DeclaratieAntwoord/DeclaratieNummer")
    if claim is None or element is None:
        return  # a header-only (0001) answer has no DeclaratieAntwoord
    answered = text(element)
    if answered != claim.declaratie_nummer:
        yield Violation(
            element,
            f"DeclaratieNummer {answered!r} differs from the JW323's {claim.declaratie_nummer!r}.",
        )


def _returned_prestaties(doc: MessageDocument) -> Iterator[tuple[Element, Element]]:
    """Each returned Prestatie with the Client it sits under."""
    for client in findall(doc.root, "DeclaratieAntwoord/Clienten/Client"):
        for prestatie in findall(client, "Prestaties/Prestatie"):
            yield client, prestatie


def _lines_by_reference(claim: SubmittedDeclaration) -> dict[str, SubmittedLine]:
    return {submitted.line.referentie_nummer: submitted for submitted in claim.lines}


@REGISTRY.rule(
    "TR366",
    types=ANSWER,
    summary="Every returned Prestatie is a line of the JW323 answered, by ProductReferentie "
    "(checked by the aanbieder).",
    retourcode="9366",
    level=B,
    needs=HISTORY,
)
def prestatie_was_claimed(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR366: the gemeente can only return a line the aanbieder claimed."""
    claim = _claim(doc, ctx)
    if claim is None:
        return
    lines = _lines_by_reference(claim)
    for _, prestatie in _returned_prestaties(doc):
        referentie = text(prestatie, "ProductReferentie/ReferentieNummer")
        if referentie not in lines:
            element = find(prestatie, "ProductReferentie/ReferentieNummer")
            yield Violation(
                element if element is not None else prestatie,
                f"ReferentieNummer {referentie!r} is not a line of the JW323 answered.",
            )


def _differences(
    client: Element, prestatie: Element, submitted: SubmittedLine
) -> Iterator[tuple[Element, str]]:
    """(element, name) of every value that differs from the submitted line."""
    line = submitted.line
    amount = int_at(prestatie, "IngediendBedrag/Bedrag")
    indicator = text(prestatie, "IngediendBedrag/DebetCredit")
    signed = None if amount is None else (-amount if indicator == CREDIT else amount)
    compared: tuple[tuple[Element, str, object, object], ...] = (
        (client, "Bsn", text(client, "Bsn"), line.bsn),
        (
            prestatie,
            "ProductReferentie/VorigReferentieNummer",
            text(prestatie, "ProductReferentie/VorigReferentieNummer"),
            line.vorig_referentie_nummer,
        ),
        (
            prestatie,
            "ToewijzingNummer",
            int_at(prestatie, "ToewijzingNummer"),
            line.toewijzing_nummer,
        ),
        (prestatie, "ProductCategorie", text(prestatie, "ProductCategorie"), line.categorie),
        (prestatie, "ProductCode", text(prestatie, "ProductCode"), line.code),
        (
            prestatie,
            "ProductPeriode/Begindatum",
            text(prestatie, "ProductPeriode/Begindatum"),
            line.begindatum.isoformat(),
        ),
        (
            prestatie,
            "ProductPeriode/Einddatum",
            text(prestatie, "ProductPeriode/Einddatum"),
            line.einddatum.isoformat(),
        ),
        (prestatie, "GeleverdVolume", int_at(prestatie, "GeleverdVolume"), line.volume),
        (prestatie, "Eenheid", text(prestatie, "Eenheid"), line.eenheid),
        (prestatie, "ProductTarief", int_at(prestatie, "ProductTarief"), submitted.tarief),
        (prestatie, "IngediendBedrag", signed, line.bedrag),
    )
    for parent, name, answered, claimed in compared:
        if answered != claimed:
            element = find(parent, name)
            yield (element if element is not None else parent), name


@REGISTRY.rule(
    "TR367",
    types=ANSWER,
    summary="A returned Prestatie repeats the values of the claimed line with the same "
    "ProductReferentie (checked by the aanbieder).",
    retourcode="9367",
    level=B,
    needs=HISTORY,
)
def prestatie_repeats_claim(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR367: Bsn, assignment, product, period, volume, unit, tariff and amount are unchanged."""
    claim = _claim(doc, ctx)
    if claim is None:
        return
    lines = _lines_by_reference(claim)
    for client, prestatie in _returned_prestaties(doc):
        submitted = lines.get(text(prestatie, "ProductReferentie/ReferentieNummer") or "")
        if submitted is None:
            continue  # TR366's finding
        # Values are named, never shown: the Bsn is one of them.
        for element, name in _differences(client, prestatie, submitted):
            yield Violation(element, f"{name} differs from the claimed line.")
