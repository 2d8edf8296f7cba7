"""The shipped demo: config.toml in a temporary folder, the dossier of docs/examples/ with what
docs/examples/README.md promises for each file, and readers of what the parties receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.config import Settings, load_config
from gateway.core.model import State
from tests.paths import REPO


def shipped_demo_folder(
    folder: Path, config: str = "config.toml", replace: Mapping[str, str] | None = None
) -> Path:
    """A copy of a shipped demo configuration (``replace``: text to swap in it, such as ports) in
    ``folder``, beside links to the shipped schemas/, mappings/ and docs/: its relative paths
    (schemas, mappings, the contract table) resolve to the shipped folders, and data, inbox and
    outbox stay in ``folder``. Returns the configuration's path."""
    text = (REPO / config).read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    (folder / config).write_text(text, encoding="utf-8")
    for shipped in ("schemas", "mappings", "docs"):
        (folder / shipped).symlink_to(REPO / shipped, target_is_directory=True)
    return folder / config


def shipped_demo_settings(folder: Path) -> Settings:
    """Settings of a copy of the shipped config.toml in ``folder`` (:func:`shipped_demo_folder`)."""
    return load_config(shipped_demo_folder(folder), {})


EXAMPLES = REPO / "docs" / "examples"

LEGACY_CODE = ("45", "45R14")  # what Jeugdhulp Oost (generation legacy) speaks
PROFILE_CODE = ("45", "IJ09P")  # what Deventer (generation profile-2018) speaks


@dataclass(frozen=True)
class Step:
    """One demo file: who sends it and what docs/examples/README.md promises for it."""

    file: str
    sender: str
    recipient: str
    state: State
    retour_type: str | None  # the retour the gateway builds on the recipient's behalf
    retour_codes: tuple[tuple[str, str], ...]  # (class, RetourCode) other than 0200/8001
    delivered_code: tuple[str, str] | None  # the product code in the payload the recipient gets


DOSSIER = (
    Step("01-JW315.xml", "jeugdhulp-oost", "gemeente-deventer", State.QUEUED, "JW316", (),
         PROFILE_CODE),
    Step("02-JW301.xml", "gemeente-deventer", "jeugdhulp-oost", State.QUEUED, None, (),
         LEGACY_CODE),
    Step("03-JW305.xml", "jeugdhulp-oost", "gemeente-deventer", State.QUEUED, "JW306", (),
         PROFILE_CODE),
    Step("04-JW317.xml", "jeugdhulp-oost", "gemeente-deventer", State.QUEUED, "JW318", (), None),
    Step("05-JW319.xml", "gemeente-deventer", "jeugdhulp-oost", State.QUEUED, None, (), None),
    Step("06-JW307.xml", "jeugdhulp-oost", "gemeente-deventer", State.QUEUED, "JW308", (),
         PROFILE_CODE),
    Step("07-JW323.xml", "jeugdhulp-oost", "gemeente-deventer", State.QUEUED, "JW325", (),
         PROFILE_CODE),
)  # fmt: skip
# The 2.3 leg (2018): Deventer still speaks iJw 2.3 then, Horizon (24240002) speaks it still.
LEG_2_3 = (
    Step("10-JW315-2.3.xml", "horizon", "gemeente-deventer", State.QUEUED, "JW316", (),
         PROFILE_CODE),
    Step("11-JW301-2.3.xml", "gemeente-deventer", "horizon", State.QUEUED, None, (),
         LEGACY_CODE),
    Step("12-JW303-2.3.xml", "horizon", "gemeente-deventer", State.QUEUED, "JW304", (),
         PROFILE_CODE),
)  # fmt: skip
FAULTY = Step(
    "90-JW305-no-allocation.xml", "zorgpartners", "gemeente-zwolle", State.REJECTED, "JW306",
    (("StartProduct", "9019"),), None,
)  # fmt: skip


def demo_token(party: str) -> str:
    """The public demo token of a party (docs/configuration.md, the README's curl lines)."""
    return "demo-token-" + party.removeprefix("gemeente-").removesuffix("-ijsselland")


def refusals(retour: bytes) -> list[tuple[str, str]]:
    """(class, code) of every RetourCode other than an acceptance (RetourCode < RetourCodes <
    the class it is about)."""
    found = []
    for code in etree.fromstring(retour).iter("{*}RetourCode"):
        holder = code.getparent().getparent()  # type: ignore[union-attr]
        if code.text not in ("0200", "8001") and holder is not None:
            found.append((etree.QName(holder).localname, code.text or ""))
    return found


def product_codes(raw: bytes) -> set[tuple[str, str]]:
    """Every (categorie, code) a message carries, whichever class holds it."""
    root = etree.fromstring(raw)
    found: set[tuple[str, str]] = set()
    for product in root.iter("{*}Product"):
        categorie, code = product.find("{*}Categorie"), product.find("{*}Code")
        if categorie is not None and code is not None:
            found.add((categorie.text or "", code.text or ""))
    for line in root.iter("{*}Prestatie"):
        found.add(
            (line.findtext("{*}ProductCategorie") or "", line.findtext("{*}ProductCode") or "")
        )
    return found


def message_type(raw: bytes) -> str:
    """JW301 for .../ijw/3_2/jw301/schema."""
    namespace = etree.QName(etree.fromstring(raw)).namespace or ""
    return namespace.rsplit("/", 2)[-2].upper()
