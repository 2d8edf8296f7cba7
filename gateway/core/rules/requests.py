"""In-message rules (level X, retourcode 0001) for the request messages JW315, JW317, JW319.

JW315 is the provider's request for an assignment (VOT), JW317 its request to change current
assignments (VOW) and JW319 the municipality's answer to either. Semantics follow the official
iJw 3.2 XSLT (2.10.5) as summarised in spec §3.3–§3.5 and §7.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.core.document import MessageDocument
from gateway.core.rules.engine import RuleContext, Violation
from gateway.core.rules.registry import REGISTRY

#: Verwijzer types that are care professionals with an AGB code (huisarts, jeugdarts,
#: gecertificeerde instelling, medisch specialist).
PROFESSIONAL_REFERRER_TYPES = frozenset({"02", "03", "04", "05"})

REJECTED = "1"
UNDER_INVESTIGATION = "2"
WOONPLAATSBEGINSEL = "8"


# --- JW315 Verzoek om toewijzing ------------------------------------------------------------


@REGISTRY.rule(
    "CD043",
    types=("JW315",),
    summary="BeschikkingIngangsdatum is filled if and only if BeschikkingNummer is filled.",
)
def beschikking_date_with_number(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD043: a requested product carries both beschikking fields or neither."""
    for product in doc.all_local("AangevraagdProduct"):
        number = doc.find(product, "BeschikkingNummer")
        start = doc.find(product, "BeschikkingIngangsdatum")
        if number is not None and start is None:
            yield Violation(
                number,
                "BeschikkingNummer is filled but BeschikkingIngangsdatum is missing.",
            )
        elif number is None and start is not None:
            yield Violation(
                start,
                "BeschikkingIngangsdatum is filled but BeschikkingNummer is missing.",
            )


@REGISTRY.rule(
    "CD066",
    types=("JW315",),
    summary="Verwijzer of Type 02-05 with a ZorgverlenerCode has no Naam.",
)
def referrer_code_excludes_name(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD066: a professional referrer identified by AGB code is not also named."""
    for referrer in doc.all_local("Verwijzer"):
        kind = doc.text(referrer, "Type")
        name = doc.find(referrer, "Naam")
        if (
            kind in PROFESSIONAL_REFERRER_TYPES
            and doc.find(referrer, "ZorgverlenerCode") is not None
            and name is not None
        ):
            yield Violation(
                name,
                f"Verwijzer Type {kind} has a ZorgverlenerCode, so Naam must be left out.",
            )


@REGISTRY.rule(
    "CD067",
    types=("JW315",),
    summary="Verwijzer of Type 02-05 without a ZorgverlenerCode has a Naam.",
)
def referrer_needs_code_or_name(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD067: a professional referrer is identified by AGB code or, failing that, by name."""
    for referrer in doc.all_local("Verwijzer"):
        kind = doc.text(referrer, "Type")
        if (
            kind in PROFESSIONAL_REFERRER_TYPES
            and doc.find(referrer, "ZorgverlenerCode") is None
            and doc.find(referrer, "Naam") is None
        ):
            yield Violation(
                referrer,
                f"Verwijzer Type {kind} has no ZorgverlenerCode, so Naam is required.",
            )


@REGISTRY.rule(
    "CD068",
    types=("JW315",),
    summary="Verwijzer whose Type is not 02-05 has no ZorgverlenerCode.",
)
def referrer_code_only_for_professionals(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[Violation]:
    """CD068: only professional referrers (Type 02-05) carry an AGB code."""
    for referrer in doc.all_local("Verwijzer"):
        kind = doc.text(referrer, "Type")
        code = doc.find(referrer, "ZorgverlenerCode")
        if kind not in PROFESSIONAL_REFERRER_TYPES and code is not None:
            yield Violation(
                code,
                f"Verwijzer Type {kind} may not have a ZorgverlenerCode "
                "(only Types 02, 03, 04 and 05 may).",
            )


@REGISTRY.rule(
    "TR383",
    types=("JW315",),
    summary="ReferentieAanbieder is unique per AangevraagdProduct within the message.",
)
def request_references_unique(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR383: every requested product has its own ReferentieAanbieder; repeats are flagged."""
    seen: set[str] = set()
    for product in doc.all_local("AangevraagdProduct"):
        reference = doc.find(product, "ReferentieAanbieder")
        value = doc.text(reference)
        if reference is None or value is None:
            continue
        if value in seen:
            yield Violation(
                reference,
                f"ReferentieAanbieder {value!r} is used by more than one AangevraagdProduct.",
            )
        seen.add(value)


# --- JW317 Verzoek om wijziging -------------------------------------------------------------


@REGISTRY.rule(
    "TR352",
    types=("JW317",),
    summary="A Verzoek holds at least one OngewijzigdProduct or TeWijzigenProduct.",
)
def change_request_lists_current(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR352: a VOW starts from at least one current assignment, so one must be listed."""
    for request in doc.all_local("Verzoek"):
        current = doc.findall(request, "OngewijzigdeProducten/OngewijzigdProduct") + doc.findall(
            request, "TeWijzigenProducten/TeWijzigenProduct"
        )
        if not current:
            yield Violation(
                request,
                "The Verzoek has no OngewijzigdProduct and no TeWijzigenProduct; "
                "at least one current assignment must be listed.",
            )


@REGISTRY.rule(
    "TR353",
    types=("JW317",),
    summary="A Verzoek holds at least one TeWijzigenProduct or NieuwProduct.",
)
def change_request_changes_something(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR353: a VOW that changes nothing has no reason to exist."""
    for request in doc.all_local("Verzoek"):
        changes = doc.findall(request, "TeWijzigenProducten/TeWijzigenProduct") + doc.findall(
            request, "NieuweProducten/NieuwProduct"
        )
        if not changes:
            yield Violation(
                request,
                "The Verzoek has no TeWijzigenProduct and no NieuwProduct; "
                "at least one change or new product is required.",
            )


@REGISTRY.rule(
    "TR380",
    types=("JW317",),
    summary="GewensteIngangsdatum of a NieuwProduct lies after the message Dagtekening.",
)
def new_product_starts_after_dagtekening(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[Violation]:
    """TR380: a new product may only be requested from a date after the message date."""
    dagtekening = doc.dagtekening
    if dagtekening is None:
        return
    for product in doc.all_local("NieuwProduct"):
        wanted = doc.find(product, "GewensteIngangsdatum")
        start = doc.date_at(wanted)
        if wanted is not None and start is not None and start <= dagtekening:
            yield Violation(
                wanted,
                f"GewensteIngangsdatum {start.isoformat()} of a NieuwProduct must be after the "
                f"Dagtekening {dagtekening.isoformat()}.",
            )


# --- JW319 Antwoordbericht ------------------------------------------------------------------


@REGISTRY.rule(
    "CD085",
    types=("JW319",),
    summary="RedenAfwijzingVerzoek is filled when VerzoekAntwoord is 1 (rejected).",
)
def rejection_has_reason(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD085: a rejected request says why."""
    for answer in doc.all_local("Antwoord"):
        verdict = doc.find(answer, "VerzoekAntwoord")
        if doc.text(verdict) == REJECTED and doc.find(answer, "RedenAfwijzingVerzoek") is None:
            yield Violation(
                answer,
                "VerzoekAntwoord is 1 (rejected) but RedenAfwijzingVerzoek is missing.",
            )


@REGISTRY.rule(
    "CD086",
    types=("JW319",),
    summary="RedenAfwijzingVerzoek is absent when VerzoekAntwoord is 2 (under investigation).",
)
def investigation_has_no_reason(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """CD086: a request under investigation has not been rejected, so it has no reason."""
    for answer in doc.all_local("Antwoord"):
        reason = doc.find(answer, "RedenAfwijzingVerzoek")
        if doc.text(answer, "VerzoekAntwoord") == UNDER_INVESTIGATION and reason is not None:
            yield Violation(
                reason,
                f"VerzoekAntwoord is 2 (under investigation) but RedenAfwijzingVerzoek "
                f"{doc.text(reason)!r} is filled.",
            )


@REGISTRY.rule(
    "TR377",
    types=("JW319",),
    summary=(
        "Direction 'reden 8 ⇒ present': when RedenAfwijzingVerzoek is 8 (woonplaatsbeginsel), "
        "the Woonplaatsbeginsel class is present."
    ),
)
def woonplaatsbeginsel_required(doc: MessageDocument, ctx: RuleContext) -> Iterator[Violation]:
    """TR377: a rejection for woonplaatsbeginsel names the responsible municipality."""
    for answer in doc.all_local("Antwoord"):
        reason = doc.find(answer, "RedenAfwijzingVerzoek")
        if (
            reason is not None
            and doc.text(reason) == WOONPLAATSBEGINSEL
            and doc.find(answer, "Woonplaatsbeginsel") is None
        ):
            yield Violation(
                reason,
                "RedenAfwijzingVerzoek is 8 (woonplaatsbeginsel) but the Woonplaatsbeginsel "
                "class naming the responsible gemeente is missing.",
            )


@REGISTRY.rule(
    "TR409",
    types=("JW319",),
    summary=(
        "Direction 'present ⇒ reden 8': when RedenAfwijzingVerzoek is filled with a value "
        "other than 8, the Woonplaatsbeginsel class is absent."
    ),
)
def woonplaatsbeginsel_only_for_reason_8(
    doc: MessageDocument, ctx: RuleContext
) -> Iterator[Violation]:
    """TR409: only a woonplaatsbeginsel rejection carries the Woonplaatsbeginsel class.

    Like the official XSLT, the rule is anchored on a filled RedenAfwijzingVerzoek: an answer
    without any reden is CD085's business (rejected) or carries no reden at all (CD086).
    """
    for answer in doc.all_local("Antwoord"):
        reason = doc.text(answer, "RedenAfwijzingVerzoek")
        woonplaats = doc.find(answer, "Woonplaatsbeginsel")
        if reason is not None and reason != WOONPLAATSBEGINSEL and woonplaats is not None:
            yield Violation(
                woonplaats,
                f"RedenAfwijzingVerzoek is {reason}, not 8 (woonplaatsbeginsel), so the "
                "Woonplaatsbeginsel class must be left out.",
            )
