"""Safe intake parsing: bytes in, a tree or malformed-level findings out, never an exception.

The standard demands UTF-8 without a BOM and at most 25 MB (OP192). Hostile constructs are
refused before libxml2 can act on them: no DTD (so no external entities and no entity
expansion bombs), no network access, and libxml2's own depth and size limits stay on
(``huge_tree`` off caps nesting at 256 levels and text nodes at 10 MB).

Validation may ask for a tree without the whitespace-only text between elements (libxml2's
keepBlanks=0): a smaller tree is quicker to check against the XSD and to read. Only bytes on
which that cannot change any element's own text get it (:func:`_blank_text_droppable`); bytes
written from a tree (translation, ``show --xml``) come from the default, blank-keeping parse.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace

from lxml import etree

from gateway.core.document import crs_follow_tags
from gateway.core.report import Finding, Level

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

_BOMS = {
    b"\xef\xbb\xbf": "UTF-8",
    b"\xff\xfe": "UTF-16 (little-endian)",
    b"\xfe\xff": "UTF-16 (big-endian)",
}
#: A message starting with none of these bytes has no byte-order mark.
_BOM_FIRST_BYTES = frozenset(bom[0] for bom in _BOMS)
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_USUAL_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ParseResult:
    """Either a tree (and no findings) or findings (and no tree).

    ``blank_text_dropped``: the bytes went through the blank-dropping parser (also when it
    failed on them), so the tree lacks whitespace-only text between elements.
    """

    tree: etree._ElementTree | None
    findings: tuple[Finding, ...]
    blank_text_dropped: bool = False


def _malformed(
    rule: str, message: str, line: int | None = None, column: int | None = None
) -> ParseResult:
    finding = Finding(rule=rule, message=message, line=line, column=column, level=Level.MALFORMED)
    return ParseResult(None, (finding,))


def _syntax_error(exc: etree.XMLSyntaxError) -> ParseResult:
    position: tuple[int | None, int | None] = exc.position or (None, None)
    message = str(exc.msg or exc)
    rule = "XML-DEPTH" if "depth" in message.lower() else "XML-SYNTAX"
    return _malformed(rule, f"not well-formed XML: {message}", *position)


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


_PER_THREAD = threading.local()


def _parser(drop_blank_text: bool = False, large_text: bool = False) -> etree.XMLParser:
    # One parser per thread and kind: lxml parsers are not safe to share between threads, and
    # reusing one skips setting up libxml2's parser context for every message (about a quarter
    # of the parse). A parser keeps no state from one document to the next that changes a tree
    # or an error. All kinds have the same safety options; ``large_text`` lifts libxml2's 10 MB
    # cap on one text node (huge_tree) for envelopes, whose base64 payload is one such node.
    slot = f"parser_{drop_blank_text:d}{large_text:d}"
    parser: etree.XMLParser | None = getattr(_PER_THREAD, slot, None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=large_text,
            remove_blank_text=drop_blank_text,
        )
        setattr(_PER_THREAD, slot, parser)
    return parser


def _blank_text_droppable(raw: bytes, has_markup_declaration: bool) -> bool:
    r"""Dropping blank text from ``raw`` cannot change the text of an element without element
    children, nor whether any other text is whitespace-only.

    libxml2 (keepBlanks=0) drops a whitespace-only run of character data when it is followed
    by "<" or a CR and its element has no text child yet. After an element child that run is
    a tail or the whitespace before an element, which neither the XSD (element-only content
    ignores it, mixed content takes any text) nor a rule reads. At the start of an
    element it can also cut a leaf's text where a comment, CDATA section or processing
    instruction follows (" <!--x-->1" would read "1"), or a CR ("<a>  \r\nx" would read
    "\nx"). So a message qualifies only with none of those: no "<!"
    (``has_markup_declaration``), no "?" after the XML declaration, and no CR after a blank.
    And no NUL byte in the first four: only those make libxml2 read UTF-16 or UCS-4, whose
    markup these byte searches would miss.
    """
    if has_markup_declaration or b"\0" in raw[:4]:
        return False
    if raw.startswith(_USUAL_DECLARATION):
        after_declaration = len(_USUAL_DECLARATION)
    elif raw.startswith(b"<?xml"):
        end = raw.find(b"?>", 5)
        after_declaration = len(raw) if end == -1 else end + 2
    else:
        after_declaration = 0
    if raw.find(b"?", after_declaration) != -1:
        return False
    # Every CR right after a ">" (CRLF line ends after tags, as we write them) means no CR
    # after a blank. In pure Python two counts cost most of what dropping the blanks saves;
    # the C walk very little (measured in the commit that added it).
    return crs_follow_tags(raw)


def parse_safely(
    raw: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    drop_blank_text: bool = False,
    large_text: bool = False,
) -> ParseResult:
    """Parse intake bytes, refusing everything the standard or safety forbids.

    ``large_text``: allow text nodes over libxml2's 10 MB cap (a StUF-GGk envelope carries its
    payload as one base64 text node); ``max_bytes`` still bounds the whole document.

    ``drop_blank_text``: leave out whitespace-only text between elements where the bytes
    allow it (see :func:`_blank_text_droppable`; ``blank_text_dropped`` in the result says
    whether they did). For reading and validating only: never serialise such a tree, it would
    lose the sender's line breaks and indentation.
    """
    if len(raw) > max_bytes:
        return _malformed(
            "XML-SIZE",
            f"message is {len(raw):,} bytes; the limit is {max_bytes:,} bytes (OP192: 25 MB)",
        )
    # isspace() stops at the first non-blank byte; strip() would copy the whole message.
    if not raw or raw.isspace():
        return _malformed("XML-EMPTY", "message is empty")
    for bom, name in _BOMS.items() if raw[0] in _BOM_FIRST_BYTES else ():
        if raw.startswith(bom):
            return _malformed(
                "XML-BOM",
                f"message starts with a {name} byte-order mark; "
                "iJw requires UTF-8 without BOM (OP192)",
                1,
                1,
            )
    # The usual declaration needs no regular expression: it declares UTF-8.
    declared = None if raw.startswith(_USUAL_DECLARATION) else _DECLARED_ENCODING.match(raw)
    if declared and declared.group(1).decode("ascii").upper().replace("_", "-") not in (
        "UTF-8",
        "UTF8",
    ):
        return _malformed(
            "XML-ENCODING",
            f"declared encoding {declared.group(1).decode('ascii')!r}; iJw requires UTF-8",
            1,
            declared.start(1) + 1,
        )
    try:
        if not raw.isascii():  # ASCII is valid UTF-8; only other bytes need the full decode
            raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_col(raw, exc.start)
        return _malformed(
            "XML-ENCODING",
            f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
            line,
            column,
        )
    # Both forbidden declarations start with "<!"; a plain byte search rules most messages out
    # before the case-insensitive regular expressions run. Most messages hold no "!" at all,
    # and a one-byte search (memchr) is several times cheaper than a two-byte one.
    markup_declaration = b"!" in raw and b"<!" in raw
    doctype = _DOCTYPE.search(raw) if markup_declaration else None
    if doctype is not None:
        line, column = _line_col(raw, doctype.start())
        return _malformed(
            "XML-DTD",
            "document type declarations (DTD) are not allowed: "
            "they enable entity expansion and external entities",
            line,
            column,
        )
    entity = _ENTITY_DECL.search(raw) if markup_declaration else None
    if entity is not None:
        line, column = _line_col(raw, entity.start())
        return _malformed("XML-DTD", "entity declarations are not allowed", line, column)
    dropping = drop_blank_text and _blank_text_droppable(raw, markup_declaration)
    try:
        parser = _parser(drop_blank_text=dropping, large_text=large_text)
        tree = etree.ElementTree(etree.fromstring(raw, parser))
    except etree.XMLSyntaxError as exc:
        return replace(_syntax_error(exc), blank_text_dropped=dropping)
    except (ValueError, etree.LxmlError) as exc:
        failed = _malformed("XML-SYNTAX", f"not well-formed XML: {exc}")
        return replace(failed, blank_text_dropped=dropping)
    # Not skipped when the bytes hold no "<!": libxml2 also reads UTF-16 without a BOM, whose
    # DOCTYPE no byte scan sees (and NUL-interleaved ASCII is valid UTF-8).
    if getattr(tree.docinfo, "doctype", ""):
        refused = _malformed("XML-DTD", "document type declarations (DTD) are not allowed")
        return replace(refused, blank_text_dropped=dropping)
    return ParseResult(tree, (), dropping)
