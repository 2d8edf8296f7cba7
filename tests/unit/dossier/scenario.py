"""Message sequences for cross-message rule tests, built from the official examples.

One gemeente (0384, as in the JW301 example), one aanbieder (42420001) and one client
(999900006). The JW301 example assigns two products from 2026-04-01:

* 300201: 55/55A11 until 2026-07-14, 2 uur per week (effort-based), reference 40A12341234;
* 300202: 55/55A12 until 2026-07-19, 2 dagdelen per week, reference 40A12341235.

The JW315 example asks for exactly those two references. A :class:`Dossier` validates every
message against what came before and folds it in only when it was accepted, as the daemon will.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from gateway.core.document import MessageDocument
from gateway.core.dossier import History, InMemoryHistory
from gateway.core.lists import ExternalLists
from gateway.core.report import Level, ValidationReport
from gateway.core.retour import RETOUR_CLASSES, retour_type_for
from gateway.core.rules import RuleContext
from gateway.core.schemaset import SchemaSet
from gateway.core.validate import validate
from tests.unit.rules.mutate import Mutable, load_example, official_schema_set

GEMEENTE = "0384"
AANBIEDER = "42420001"
BSN = "999900006"
REF_1 = "40A12341234"
REF_2 = "40A12341235"
TODAY = dt.date(2026, 9, 1)
_counter = iter(range(100_000, 999_999))


def _fresh_id(m: Mutable) -> Mutable:
    """Every message in a dossier gets its own Identificatie (TR056)."""
    return m.set("Header/BerichtIdentificatie/Identificatie", str(next(_counter)))


def _from_aanbieder(m: Mutable, dagtekening: str) -> Mutable:
    m.set("Header/Afzender", AANBIEDER).set("Header/Ontvanger", GEMEENTE)
    return _fresh_id(m.set("Header/BerichtIdentificatie/Dagtekening", dagtekening))


def _from_gemeente(m: Mutable, dagtekening: str) -> Mutable:
    m.set("Header/Afzender", GEMEENTE).set("Header/Ontvanger", AANBIEDER)
    return _fresh_id(m.set("Header/BerichtIdentificatie/Dagtekening", dagtekening))


def vot(dagtekening: str = "2026-03-20") -> Mutable:
    """JW315 asking for REF_1 and REF_2."""
    return _from_aanbieder(load_example("JW315"), dagtekening)


def toewijzing() -> Mutable:
    """JW301 assigning 300201 and 300202 (honouring REF_1 and REF_2)."""
    return _from_gemeente(load_example("JW301"), "2026-04-01")


def version(m: Mutable, index: int, *, tijd: str, **changes: str) -> Mutable:
    """Change ToegewezenProduct[index] of a JW301 into a later version fixed at ``tijd``."""
    base = f"Client/ToegewezenProducten/ToegewezenProduct[{index}]"
    m.set(f"{base}/Toewijzingstijd", tijd)
    for name, value in changes.items():
        if name == "RedenWijziging":
            m.insert_after(f"{base}/Einddatum", "RedenWijziging", value)
        else:
            m.set(f"{base}/{name}", value)
    return m


def delete_allocation(m: Mutable, index: int, *, tijd: str) -> Mutable:
    """Delete ToegewezenProduct[index]: RedenWijziging 13 with Einddatum = Ingangsdatum."""
    base = f"Client/ToegewezenProducten/ToegewezenProduct[{index}]"
    ingang = m.text(f"{base}/Ingangsdatum") or ""
    return version(m, index, tijd=tijd, Einddatum=ingang, RedenWijziging="13")


def start(dagtekening: str = "2026-04-15") -> Mutable:
    """JW305 starting 300201 on 2026-04-06 and 300202 on 2026-04-15, sent on 2026-04-15."""
    m = _from_aanbieder(load_example("JW305"), dagtekening)
    for i, begin in ((1, "2026-04-06"), (2, "2026-04-15")):
        m.set(f"Client/StartProducten/StartProduct[{i}]/ToewijzingIngangsdatum", "2026-04-01")
        m.set(f"Client/StartProducten/StartProduct[{i}]/Begindatum", begin)
    return m


def stop(
    dagtekening: str = "2026-07-20", *, reden: str = "31", einddatum: str = "2026-07-14"
) -> Mutable:
    """JW307 stopping both starts of :func:`start`."""
    m = _from_aanbieder(load_example("JW307"), dagtekening)
    for i, begin in ((1, "2026-04-06"), (2, "2026-04-15")):
        base = f"Client/StopProducten/StopProduct[{i}]"
        m.set(f"{base}/ToewijzingIngangsdatum", "2026-04-01").set(f"{base}/Begindatum", begin)
        m.set(f"{base}/RedenBeeindiging", reden).set(f"{base}/Einddatum", einddatum)
    return m


def only_first(m: Mutable, name: str) -> Mutable:
    """Drop the second StartProduct/StopProduct/AangevraagdProduct/ToegewezenProduct."""
    parent = {
        "StartProduct": "Client/StartProducten",
        "StopProduct": "Client/StopProducten",
        "AangevraagdProduct": "Client/AangevraagdeProducten",
        "ToegewezenProduct": "Client/ToegewezenProducten",
    }[name]
    return m.remove(f"{parent}/{name}[2]")


def vow(dagtekening: str = "2026-05-01", ref: str = "VOW-1") -> Mutable:
    """JW317 keeping 300201 and 300202 unchanged and asking for a new 45A03 from 2026-06-01."""
    m = _from_aanbieder(load_example("JW317"), dagtekening)
    m.set("Client/Verzoek/ReferentieAanbieder", ref)
    m.set("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct/ToewijzingNummer", "300201")
    m.duplicate("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct")
    m.set("Client/Verzoek/OngewijzigdeProducten/OngewijzigdProduct[2]/ToewijzingNummer", "300202")
    new = "Client/Verzoek/NieuweProducten/NieuwProduct"
    m.set(f"{new}/GewensteIngangsdatum", "2026-06-01").set(f"{new}/Einddatum", "2026-09-30")
    return m


def antwoord(ref: str, verzoek_antwoord: str, dagtekening: str = "2026-03-25") -> Mutable:
    """JW319 for ``ref``: 1 = rejected (reden 2, past niet binnen budget), 2 = in onderzoek."""
    m = _from_gemeente(load_example("JW319"), dagtekening)
    m.set("Antwoord/ReferentieAanbieder", ref).set("Antwoord/VerzoekAntwoord", verzoek_antwoord)
    m.remove("Antwoord/Woonplaatsbeginsel")
    if verzoek_antwoord == "2":
        m.remove("Antwoord/RedenAfwijzingVerzoek")
    else:
        m.set("Antwoord/RedenAfwijzingVerzoek", "2")
    return m


@dataclass(frozen=True)
class Line:
    """One Prestatie of a generated JW323 (eurocent amounts, debit unless ``vorig`` is set)."""

    ref: str
    begin: str
    end: str
    volume: int = 8
    tarief: int = 1250
    toewijzing: str = "300201"
    categorie: str = "55"
    code: str = "55A11"
    eenheid: str = "04"
    vorig: str | None = None
    bsn: str = BSN
    bedrag: int | None = None  # default: volume × tarief

    @property
    def signed(self) -> int:
        """Debit positive, credit negative."""
        amount = self.volume * self.tarief if self.bedrag is None else self.bedrag
        return -amount if self.vorig else amount


def declaratie(nummer: str, periode: tuple[str, str], dagtekening: str, *lines: Line) -> bytes:
    """A JW323 for one declaratieperiode with ``lines`` grouped per client, totals reconciled."""
    total = sum(line.signed for line in lines)
    clients: dict[str, list[str]] = {}
    for line in lines:
        vorig = (
            f"<ijw:VorigReferentieNummer>{line.vorig}</ijw:VorigReferentieNummer>"
            if line.vorig
            else ""
        )
        clients.setdefault(line.bsn, []).append(
            f"""<jw323:Prestatie>
<jw323:ProductReferentie><ijw:ReferentieNummer>{line.ref}</ijw:ReferentieNummer>{vorig}
</jw323:ProductReferentie>
<jw323:ToewijzingNummer>{line.toewijzing}</jw323:ToewijzingNummer>
<jw323:ProductCategorie>{line.categorie}</jw323:ProductCategorie>
<jw323:ProductCode>{line.code}</jw323:ProductCode>
<jw323:ProductPeriode><ijw:Begindatum>{line.begin}</ijw:Begindatum>
<ijw:Einddatum>{line.end}</ijw:Einddatum></jw323:ProductPeriode>
<jw323:GeleverdVolume>{line.volume}</jw323:GeleverdVolume>
<jw323:Eenheid>{line.eenheid}</jw323:Eenheid>
<jw323:ProductTarief>{line.tarief}</jw323:ProductTarief>
<jw323:IngediendBedrag><ijw:Bedrag>{abs(line.signed)}</ijw:Bedrag>
<ijw:DebetCredit>{"C" if line.vorig else "D"}</ijw:DebetCredit></jw323:IngediendBedrag>
</jw323:Prestatie>"""
        )
    client_xml = "".join(
        f"<jw323:Client><jw323:Bsn>{bsn}</jw323:Bsn><jw323:Prestaties>{''.join(items)}"
        "</jw323:Prestaties></jw323:Client>"
        for bsn, items in clients.items()
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<jw323:Bericht xmlns:ijw="http://www.istandaarden.nl/ijw/3_2/basisschema/schema"
 xmlns:jw323="http://www.istandaarden.nl/ijw/3_2/jw323/schema">
<jw323:Header><jw323:BerichtCode>490</jw323:BerichtCode>
<jw323:BerichtVersie>3</jw323:BerichtVersie><jw323:BerichtSubversie>2</jw323:BerichtSubversie>
<jw323:Afzender>{AANBIEDER}</jw323:Afzender><jw323:Ontvanger>{GEMEENTE}</jw323:Ontvanger>
<jw323:BerichtIdentificatie><ijw:Identificatie>{next(_counter)}</ijw:Identificatie>
<ijw:Dagtekening>{dagtekening}</ijw:Dagtekening></jw323:BerichtIdentificatie>
<jw323:XsdVersie><ijw:BasisschemaXsdVersie>1.0.0</ijw:BasisschemaXsdVersie>
<ijw:BerichtXsdVersie>1.0.0</ijw:BerichtXsdVersie></jw323:XsdVersie></jw323:Header>
<jw323:Declaratie><jw323:DeclaratieNummer>{nummer}</jw323:DeclaratieNummer>
<jw323:DeclaratiePeriode><ijw:Begindatum>{periode[0]}</ijw:Begindatum>
<ijw:Einddatum>{periode[1]}</ijw:Einddatum></jw323:DeclaratiePeriode>
<jw323:DeclaratieDagtekening>{dagtekening}</jw323:DeclaratieDagtekening>
<jw323:TotaalIngediendBedrag><ijw:TotaalBedrag>{abs(total)}</ijw:TotaalBedrag>
<ijw:DebetCredit>{"C" if total < 0 else "D"}</ijw:DebetCredit></jw323:TotaalIngediendBedrag>
<jw323:Clienten>{client_xml}</jw323:Clienten></jw323:Declaratie></jw323:Bericht>""".encode()


def class_path(report: ValidationReport, path: str | None) -> str:
    """The path of the retour class a finding's element belongs to (what gets the code)."""
    assert report.message_type is not None
    retour = retour_type_for(report.message_type)
    classes = {"Declaratie" if c == "DeclaratieAntwoord" else c for c in RETOUR_CLASSES[retour]}
    steps = (path or "/Bericht/Header").strip("/").split("/")
    for end in range(len(steps), 0, -1):
        if steps[end - 1].partition("[")[0] in classes:
            return "/" + "/".join(steps[:end])
    return "/Bericht/Header"


class RecordingHistory(History, Protocol):
    """A history the scenarios fold accepted messages into (see :class:`InMemoryHistory`)."""

    def record(self, doc: MessageDocument, *, rejected_lines: Collection[str] = ()) -> None:
        """Fold an accepted message in."""
        ...

    def remember_submission(self, doc: MessageDocument) -> None:
        """Remember a JW323 as submitted, whatever its verdict."""
        ...


def _in_memory() -> RecordingHistory:
    return InMemoryHistory()


NEW_HISTORY: list[Callable[[], RecordingHistory]] = [_in_memory]
"""How a :class:`Dossier` makes its history; tests/contract swaps in the SQL register."""


def _new_history() -> RecordingHistory:
    return NEW_HISTORY[-1]()


@dataclass
class Dossier:
    """A history plus the context to validate the next message against it."""

    history: RecordingHistory = field(default_factory=_new_history)
    lists: ExternalLists | None = None
    today: dt.date | None = None
    schemas: SchemaSet | None = None  # the official 3.2 XSDs when None

    def context(self, raw: bytes = b"") -> RuleContext:
        """The rule context the daemon would build (for the message ``raw``: a history that
        reads a register is made per message, with that message's clients)."""
        checking = getattr(self.history, "checking", None)
        history = checking(raw) if checking is not None and raw else self.history
        return RuleContext(today=self.today, history=history, lists=self.lists)

    def check(self, message: Mutable | bytes) -> ValidationReport:
        """Validate without recording; the message must pass XSD and in-message rules."""
        return self._check(message, recording=False)

    def _check(self, message: Mutable | bytes, *, recording: bool) -> ValidationReport:
        raw = message if isinstance(message, bytes) else message.to_bytes()
        submit = getattr(self.history, "submit", None)
        if submit is not None:
            # A history behind a daemon (tests/integration/test_dossier_scenarios.py): the
            # message is submitted and judged there, and recorded if the daemon accepts it.
            report: ValidationReport = submit(raw, recording=recording)
        else:
            report = validate(raw, self.schemas or official_schema_set(), self.context(raw))
        assert report.level in (Level.OK, Level.STATE, Level.EXTERNAL), [
            (f.rule, f.path, f.message) for f in report.findings
        ]
        return report

    def codes(self, message: Mutable | bytes) -> set[tuple[str, str, str]]:
        """(rule, retourcode, class path) of every finding."""
        report = self.check(message)
        return {(f.rule, f.retourcode or "", class_path(report, f.path)) for f in report.findings}

    def accept(self, message: Mutable | bytes, *, rejected_lines: tuple[str, ...] = ()) -> None:
        """Validate, insist on no findings (unless lines are rejected), and record."""
        report = self._check(message, recording=True)
        if not rejected_lines:
            assert report.ok, [(f.rule, f.path, f.message) for f in report.findings]
        assert isinstance(report.document, MessageDocument)
        self.history.record(report.document, rejected_lines=rejected_lines)

    def accept_all(self, *messages: Mutable | bytes) -> Dossier:
        """Accept each message in turn."""
        for message in messages:
            self.accept(message)
        return self
