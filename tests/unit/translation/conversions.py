"""A declared conversion on top of the small demo folder (builders.py), its contract tariffs,
and the JW315 the provider starts with: legacy hours per week (old 45A50, Eenheid 04,
Frequentie 2) become one trajectory per month (new 45Q02, Eenheid 82, Frequentie 4) at the
region's trajectory price. Test data, invented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.core.document import findall
from tests.unit.translation.builders import example, set_text, to_bytes

CONVERSION_HEADER = (
    "scope,source_categorie,source_code,target_categorie,target_code,valid_from,valid_to,"
    "source_eenheid,source_frequentie,target_eenheid,target_frequentie,volume,claim,tariff,note\n"
)
CONVERSION = "DEMO,45,45A50,45,45Q02,2020-01-01,,04,2,82,4,1,per-month,contract,trajectory\n"
TRAJECTORY_TARIFF = 245_000
"""Eurocent per trajectory per month: the region's price for every provider."""
CONTRACTS = f"""\
# kind: contracts
# codes: OLD, NEW
gemeente,aanbieder,categorie,code,eenheid,tarief,valid_from,valid_to,note
DEMO,*,45,45Q02,82,{TRAJECTORY_TARIFF},2020-01-01,,trajectory per month
DEMO,65656055,45,45A50,04,7500,2020-01-01,,the provider's hourly price in its own terms
"""


def write_conversions(mappings: Path, rows: str = CONVERSION) -> Path:
    """Add ``conversions/`` (old -> new) and ``contracts/`` to a folder from write_folder;
    returns the contract file."""
    (mappings / "conversions").mkdir(exist_ok=True)
    (mappings / "conversions" / "old_to_new.csv").write_text(
        "# kind: conversions\n# from: old\n# to: new\n" + CONVERSION_HEADER + rows,
        encoding="utf-8",
    )
    (mappings / "contracts").mkdir(exist_ok=True)
    contracts = mappings / "contracts" / "test_contracts.csv"
    contracts.write_text(CONTRACTS, encoding="utf-8")
    return contracts


def jw315(  # noqa: PLR0917 - mirrors the message's own fields, in order
    aanbieder: str,
    gemeente: str,
    referentie: str,
    categorie: str,
    code: str,
    ingang: dt.date,
    omvang: tuple[str, str, str],
) -> bytes:
    """The official JW315 example reduced to one requested product with these values."""
    tree = example("JW315")
    root = tree.getroot()
    set_text(root, "Header/Afzender", aanbieder)
    set_text(root, "Header/Ontvanger", gemeente)
    asked = findall(root, "Client/AangevraagdeProducten/AangevraagdProduct")
    for extra in asked[1:]:
        extra.getparent().remove(extra)  # type: ignore[union-attr]
    first = asked[0]
    set_text(first, "ReferentieAanbieder", referentie)
    set_text(first, "Product/Categorie", categorie)
    set_text(first, "Product/Code", code)
    set_text(first, "ToewijzingIngangsdatum", ingang.isoformat())
    set_text(first, "ToewijzingEinddatum", (ingang + dt.timedelta(days=180)).isoformat())
    for path, value in zip(("Volume", "Eenheid", "Frequentie"), omvang, strict=True):
        set_text(first, f"Omvang/{path}", value)
    return to_bytes(tree)
