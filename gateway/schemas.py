"""Read schema folders once at startup and build the core's :class:`SchemaSet`.

A folder holds one release: a basisschema plus one XSD per message. Official releases have
quirks that this loader absorbs rather than asking anyone to edit the files: imports name
``basisschema.xsd`` while the file is ``Basisschema.xsd`` (so file names are resolved
case-insensitively), and line ends may be CRLF (XSD does not care).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.core.errors import SchemaInvalid
from gateway.core.schemaset import MessageSchema, SchemaSet

XS = "{http://www.w3.org/2001/XMLSchema}"
_NAMESPACE_RELEASE = re.compile(r"/(?P<std>ijw|iwmo)/(?P<major>\d+)_(?P<minor>\d+)/")
_MESSAGE_NAME = re.compile(r"^(?:jw|wmo)(\d{3})$", re.IGNORECASE)


class _CaseInsensitiveResolver(etree.Resolver):
    """Serve ``Basisschema.xsd`` when an import asks for ``basisschema.xsd``."""

    # lxml-stubs 0.5 lag lxml: lxml passes a context and Resolver has resolve_filename.
    def resolve(  # type: ignore[override]
        self, system_url: str, public_id: str, context: object
    ) -> object:
        wanted = Path(system_url.removeprefix("file://"))
        if wanted.exists() or not wanted.parent.is_dir():
            return None
        for candidate in wanted.parent.iterdir():
            if candidate.name.lower() == wanted.name.lower():
                return self.resolve_filename(str(candidate), context)  # type: ignore[attr-defined]
        return None


def _xsd_parser() -> etree.XMLParser:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(_CaseInsensitiveResolver())
    return parser


@dataclass(frozen=True, slots=True)
class FolderReport:
    """What ``gateway schemas check DIR`` prints: each message schema found, or why not."""

    folder: Path
    loaded: tuple[MessageSchema, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when at least one message schema loaded and nothing failed."""
        return bool(self.loaded) and not self.problems


def _berichtcode(doc: etree._ElementTree) -> str | None:
    """The fixed BerichtCode pattern of a message schema's Header."""
    for element in doc.iter(XS + "element"):
        if element.get("name") != "BerichtCode":
            continue
        pattern = element.find(f"{XS}simpleType/{XS}restriction/{XS}pattern")
        if pattern is not None:
            return pattern.get("value")
        fixed = element.get("fixed")
        if fixed:
            return fixed
    return None


def _message_type(path: Path, doc: etree._ElementTree, namespace: str) -> str:
    appinfo = doc.getroot().find(f"{XS}annotation/{XS}appinfo")
    if appinfo is not None:
        for child in appinfo:
            if isinstance(child.tag, str) and child.tag.endswith("}bericht") and child.text:
                return child.text.strip().upper()
    match = re.search(r"/(jw\d{3}|wmo\d{3})/", namespace, re.IGNORECASE)
    return (match.group(1) if match else path.stem).upper()


def _release(namespace: str) -> str:
    match = _NAMESPACE_RELEASE.search(namespace)
    if match is None:
        raise SchemaInvalid(f"namespace {namespace!r} names no release (…/ijw/3_2/…)")
    return f"{match['major']}.{match['minor']}"


def _basisschema_namespace(doc: etree._ElementTree) -> str:
    imported = doc.getroot().find(f"{XS}import")
    return "" if imported is None else imported.get("namespace", "")


def _find_case_insensitively(folder: Path, name: str) -> Path | None:
    for candidate in folder.iterdir():
        if candidate.name.lower() == name.lower():
            return candidate
    return None


def _check_imports(path: Path, doc: etree._ElementTree) -> None:
    """Name a missing imported file (usually the basisschema) instead of an unresolved type."""
    for imported in doc.getroot().iterfind(f"{XS}import"):
        location = imported.get("schemaLocation")
        if not location or "://" in location:
            continue
        target = path.parent / location
        found = _find_case_insensitively(target.parent, target.name)
        if found is None:
            raise SchemaInvalid(f"{path.name}: imports {location}, which is not in {target.parent}")
        try:
            etree.parse(str(found), _xsd_parser())
        except etree.XMLSyntaxError as exc:
            raise SchemaInvalid(f"{path.name}: imported {found.name} is not XML: {exc}") from exc


def load_message_schema(path: Path) -> MessageSchema:
    """Compile one message XSD (with its basisschema import) into a :class:`MessageSchema`."""
    try:
        doc = etree.parse(str(path), _xsd_parser())
        namespace = doc.getroot().get("targetNamespace")
        if not namespace:
            raise SchemaInvalid(f"{path.name}: no targetNamespace")
        if doc.getroot().find(f"{XS}element[@name='Bericht']") is None:
            raise SchemaInvalid(f"{path.name}: declares no Bericht root element")
        code = _berichtcode(doc)
        if code is None:
            raise SchemaInvalid(f"{path.name}: Header/BerichtCode has no fixed pattern")
        _check_imports(path, doc)
        xsd = etree.XMLSchema(doc)
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise SchemaInvalid(f"{path.name}: {exc}") from exc
    return MessageSchema(
        release=_release(namespace),
        message_type=_message_type(path, doc, namespace),
        namespace=namespace,
        berichtcode=code,
        xsd=xsd,
        source=path,
        basisschema_namespace=_basisschema_namespace(doc),
    )


def _is_message_schema(path: Path) -> bool:
    return path.suffix.lower() == ".xsd" and path.stem.lower() != "basisschema"


def check_folder(folder: Path) -> FolderReport:
    """Try to load every message schema in a folder and say what worked."""
    if not folder.is_dir():
        return FolderReport(folder, (), (f"{folder}: not a folder",))
    loaded: list[MessageSchema] = []
    problems: list[str] = []
    for path in sorted(p for p in folder.iterdir() if _is_message_schema(p)):
        try:
            loaded.append(load_message_schema(path))
        except SchemaInvalid as exc:
            problems.append(str(exc))
    if not loaded and not problems:
        problems.append(f"{folder}: no message schemas (*.xsd besides the basisschema)")
    return FolderReport(folder, tuple(loaded), tuple(problems))


def load_schema_set(folders: list[Path]) -> SchemaSet:
    """Load every folder; any problem is fatal at startup, with the file named."""
    schemas: list[MessageSchema] = []
    for folder in folders:
        report = check_folder(folder)
        if report.problems:
            raise SchemaInvalid("; ".join(report.problems))
        schemas.extend(report.loaded)
    return SchemaSet.of(schemas)


def load_envelope_schema(path: Path) -> etree.XMLSchema:
    """Compile the StUF-GGk envelope schema (``schemas/stuf-ggk0210/ggk0210.xsd``, which imports
    its StUF parts from beside it); a problem is fatal at startup, with the file named."""
    try:
        return etree.XMLSchema(etree.parse(str(path), _xsd_parser()))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise SchemaInvalid(f"{path}: {exc}") from exc
