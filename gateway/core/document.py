"""A parsed, schema-identified iJw message and small helpers for reading it.

iJw puts message-level elements in the message namespace and the children of shared types in
the basisschema namespace. Rules read by local name (``{*}``) so that the split never matters
to them; the XSD layer has already enforced it.

Two ways to read exist. The module functions (:func:`find`, :func:`text`, ...) work on any
element through lxml's ElementPath. The :class:`MessageDocument` methods of the same names give
the same answers from a per-document child index, built lazily one element at a time; rules
use those, because they ask the same few elements for their children many times over.

The index is built by the pure-Python builders below, which are the reference, or by the
opt-in C extension ``gateway.core._cdoc`` (built with ``GATEWAY_BUILD_C=1`` at install) when it
was built from the ``_cdoc.pyx`` beside it and against the running lxml; the C builders give
exactly the same answers. :data:`C_INDEX` says which runs, :data:`C_INDEX_STATUS` why; a built
extension that is refused logs one warning saying why. Setting ``GATEWAY_PURE_PYTHON=1`` before
the import forces the pure-Python builders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar, cast, overload

from lxml import etree

from gateway.core.catalogue import MESSAGE_KINDS, Role
from gateway.core.schemaset import MessageSchema

Element = etree._Element


class _CIndex(Protocol):
    """The C builders of gateway/core/_cdoc.pyx (the module satisfies this protocol)."""

    PYX_SHA256: str
    LXML_VERSION: str
    LIBXML_VERSION: tuple[int, int, int]

    def index_children(self, el: Element) -> dict[str, list[Element]]: ...

    def scan_local(self, top: Element, names: Iterable[str]) -> dict[str, tuple[Element, ...]]: ...

    def first_at(self, el: Element, steps: tuple[str, ...]) -> Element | None: ...

    def crs_follow_tags(self, raw: bytes) -> bool: ...


#: Set (to anything but ``0``) before the import, runs the pure-Python builders even when the
#: C extension is there: for tests and for ruling the extension out when chasing a problem.
PURE_PYTHON_VARIABLE: Final = "GATEWAY_PURE_PYTHON"


def _load_c_index() -> tuple[_CIndex | None, str]:
    """The C extension when it is safe to use, and a line saying which builders run and why.

    The extension reads lxml's and libxml2's structs as laid out in the headers it was compiled
    against, and an edited .pyx that was not rebuilt would silently run the old code; so it is
    used only when it was built from the .pyx beside it and for the lxml that is running.
    """
    if os.environ.get(PURE_PYTHON_VARIABLE, "0") != "0":
        return None, f"pure Python: {PURE_PYTHON_VARIABLE} is set"
    try:
        # Opt-in: the default install has no such module. This form, unlike ``from
        # gateway.core import _cdoc``, raises ModuleNotFoundError naming it when it is absent.
        import gateway.core._cdoc as _cdoc  # noqa: PLC0415, PLR0402
    except ModuleNotFoundError as exc:
        if exc.name == "gateway.core._cdoc":
            return None, "pure Python: the C extension is not built (GATEWAY_BUILD_C=1 at install)"
        return None, _refused(f"the C extension cannot be loaded ({exc}); reinstall")
    except (ImportError, ValueError) as exc:  # Cython reports a changed lxml type as ValueError
        return None, _refused(f"the C extension cannot be loaded ({exc}); reinstall")
    try:
        source = Path(__file__).with_name("_cdoc.pyx").read_bytes()
    except OSError:
        return None, _refused("_cdoc.pyx is missing, so the C extension cannot be checked")
    if hashlib.sha256(source).hexdigest() != _cdoc.PYX_SHA256:
        return None, _refused("the C extension is stale (_cdoc.pyx changed; reinstall)")
    built_for = (_cdoc.LXML_VERSION, _cdoc.LIBXML_VERSION)
    if built_for != (etree.__version__, etree.LIBXML_COMPILED_VERSION):
        return None, _refused(
            f"the C extension was built for lxml {_cdoc.LXML_VERSION}, "
            f"this is lxml {etree.__version__} (reinstall)"
        )
    return _cdoc, f"C: gateway.core._cdoc (lxml {etree.__version__})"


def _refused(reason: str) -> str:
    """The status line for a built extension that is not used, logged once as a warning: it
    was asked for at install, so running without it is worth an operator's notice."""
    status = f"pure Python: {reason}"
    logging.getLogger(__name__).warning("%s", status)
    return status


_cdoc: _CIndex | None
_cdoc, C_INDEX_STATUS = _load_c_index()
#: True when MessageDocument's lookup caches and :func:`first_at` run in C (gateway.core._cdoc),
#: False when they run in pure Python; :data:`C_INDEX_STATUS` says why, in one line.
C_INDEX: Final = _cdoc is not None


def c_index_enabled() -> bool:
    """Whether lookups run in C now (:data:`C_INDEX`, unless a test switched it off)."""
    return _cdoc is not None


def crs_follow_tags(raw: bytes) -> bool:
    """Whether every CR byte of ``raw`` comes right after a ">" (gateway.core.xmlsafe's
    blank-text guard); one memchr walk in C when the extension runs, two counts otherwise."""
    if _cdoc is not None:
        return _cdoc.crs_follow_tags(raw)
    return b"\r" not in raw or raw.count(b"\r") == raw.count(b">\r")


#: Paths are code constants, so these caches stay small; the cap only guards against a caller
#: that builds paths from data.
_MAX_CACHED_PATHS: Final = 4096
_WILDCARDS: dict[str, str] = {}
#: A path step the child index can answer: a plain local name, no ElementPath syntax.
_PLAIN_STEP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_STEPS: dict[str, tuple[str, ...] | None] = {}
_NOT_CACHED: Final[tuple[str, ...]] = ()
#: ``{namespace}Name`` → ``Name``: a message uses a few dozen tags, read thousands of times.
_LOCAL_NAMES: dict[str, str] = {}
#: Per message type, the local names rules asked :meth:`MessageDocument.all_local` for so far.
#: A document scans the tree once for all of them (one C pass instead of one per name). Only
#: the speed depends on it; each set is replaced whole, never changed, so threads can share it.
#: Each entry holds the names and their ``{*}Name`` tag patterns, built once per change.
_SCANNED_NAMES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
_NOTHING_SCANNED: Final[tuple[frozenset[str], tuple[str, ...]]] = (frozenset(), ())
_MAX_SCANNED_NAMES: Final = 256

_T = TypeVar("_T")


def _tag_to_local(tag: str) -> str:
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag[tag.rfind("}") + 1 :]
        if len(_LOCAL_NAMES) < _MAX_CACHED_PATHS:
            _LOCAL_NAMES[tag] = name
    return name


def local_name(el: Element) -> str:
    """The element's name without namespace."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def wildcard(path: str) -> str:
    """Turn ``Client/Bsn`` into ``{*}Client/{*}Bsn`` for lxml's find methods."""
    found = _WILDCARDS.get(path)
    if found is None:
        found = "/".join(part if part in (".", "..") else "{*}" + part for part in path.split("/"))
        if len(_WILDCARDS) < _MAX_CACHED_PATHS:
            _WILDCARDS[path] = found
    return found


def _plain_steps(path: str) -> tuple[str, ...] | None:
    """``Product/Code`` as ``("Product", "Code")``; None when the path needs ElementPath."""
    steps = _PATH_STEPS.get(path, _NOT_CACHED)
    if steps is _NOT_CACHED:
        parts = tuple(path.split("/"))
        steps = parts if all(_PLAIN_STEP.fullmatch(part) for part in parts) else None
        if len(_PATH_STEPS) < _MAX_CACHED_PATHS:
            _PATH_STEPS[path] = steps
    return steps


#: Where a header names the message's day: its Dagtekening; a 2.3 JW304 (no
#: BerichtIdentificatie) its RetourDagtekening, a 2.3 JW303 its FactuurDagtekening.
DAY_PATHS: Final = (
    "BerichtIdentificatie/Dagtekening",
    "RetourHeader/RetourDagtekening",
    "DeclaratieFactuurIdentificatie/FactuurDagtekening",
)
#: What identifies a 2.3 JW303 (and the JW304 that answers it): the declarant's invoice number.
DECLARATION_2_3_NUMBER: Final = "DeclaratieFactuurIdentificatie/DeclarantFactuurNummer"


def day_of(root: Element) -> dt.date | None:
    """The day of the message whose ``Bericht`` is ``root`` (see :data:`DAY_PATHS`)."""
    for path in DAY_PATHS:
        found = date_at(root, f"Header/{path}")
        if found is not None:
            return found
    return None


def find(el: Element, path: str) -> Element | None:
    """The first element at a local-name path below ``el``, or None."""
    return el.find(wildcard(path))


def first_at(el: Element, path: str) -> Element | None:
    """Like :func:`find`, through lxml's C tag matching when the path is plain local names.

    For an element read once or twice this is cheaper than both ElementPath and a child index.
    The order is ElementPath's: the first match below the first step's first element that has
    one.
    """
    steps = _PATH_STEPS.get(path)
    if steps is None:
        steps = _plain_steps(path)
        if steps is None:
            return el.find(wildcard(path))
    if _cdoc is not None:
        return _cdoc.first_at(el, steps)
    return _first_at_steps(el, steps, 0)


def _first_at_steps(el: Element, steps: tuple[str, ...], index: int) -> Element | None:
    last = index == len(steps) - 1
    for match in el.iterchildren("{*}" + steps[index]):
        if last:
            return match
        found = _first_at_steps(match, steps, index + 1)
        if found is not None:
            return found
    return None


def findall(el: Element, path: str) -> list[Element]:
    """All elements at a local-name path below ``el``."""
    return el.findall(wildcard(path))


def text(el: Element | None, path: str | None = None) -> str | None:
    """The stripped text at a path below ``el`` (or of ``el`` itself), or None when absent."""
    if el is None:
        return None
    target = el if path is None else el.find(wildcard(path))
    if target is None or target.text is None:
        return None
    return target.text.strip()


def date_at(el: Element | None, path: str | None = None) -> dt.date | None:
    """The ``xs:date`` at a path, or None when absent or not a valid date."""
    value = text(el, path)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def int_at(el: Element | None, path: str | None = None) -> int | None:
    """The integer at a path, or None when absent or not an integer."""
    value = text(el, path)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def source_line(el: Element) -> int | None:
    """The line an element started on, when the parser recorded one."""
    line = el.sourceline
    return line if isinstance(line, int) and line > 0 else None


def element_path(el: Element) -> str:
    """A local-name path such as ``/Bericht/Client/Prestaties/Prestatie[2]``.

    The index appears only where a parent has several children of that name, so paths of
    single classes stay readable.
    """
    parts: list[str] = []
    node: Element | None = el
    while node is not None:
        name = local_name(node)
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


_NO_CHILDREN: Final[Sequence[Element]] = ()


class _cached_property(Generic[_T]):  # noqa: N801  (named like the functools decorator)
    """``functools.cached_property`` without its lock.

    On Python 3.11 every first read of a ``functools.cached_property`` takes one lock shared by
    all instances of the class; a document is read a few times and then dropped, so that lock
    is a cost per message. Without it, two threads reading the same fresh document may both
    compute the value; the values here are pure functions of the document, so either is right.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _cached_property[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object, owner: type | None = None) -> _T | _cached_property[_T]:
        if instance is None:
            return self
        value = self._compute(instance)
        # A non-data descriptor: from now on the instance attribute answers directly.
        instance.__dict__[self._name] = value
        return value


@dataclass(frozen=True, eq=False)
class MessageDocument:
    """A well-formed message whose root matched a known schema.

    The lookup methods cache what they read (children per element, elements per local name),
    so the tree must not be changed once a document wraps it; nothing in the gateway does (a
    retour or a masked copy is a new tree). The caches live and die with one document.
    """

    tree: etree._ElementTree
    schema: MessageSchema
    # Keyed by the element proxies themselves: holding them keeps lxml from handing out a new
    # proxy (with a new identity) for the same node while this document lives.
    _children: dict[Element, dict[str, list[Element]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _by_local_name: dict[str, tuple[Element, ...]] = field(
        default_factory=dict, init=False, repr=False
    )
    _header_texts: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)
    _memo: dict[Callable[[MessageDocument], object], object] = field(
        default_factory=dict, init=False, repr=False
    )

    @_cached_property
    def root(self) -> Element:
        """The ``Bericht`` element."""
        return self.tree.getroot()

    @property
    def message_type(self) -> str:
        """E.g. ``JW301``."""
        return self.schema.message_type

    @property
    def release(self) -> str:
        """E.g. ``3.2``."""
        return self.schema.release

    @_cached_property
    def header(self) -> Element:
        """The ``Header`` element (guaranteed present after the XSD layer)."""
        found = self.find(self.root, "Header")
        return found if found is not None else self.root

    def header_text(self, path: str) -> str | None:
        """Text of a header element, e.g. ``Afzender`` or ``BerichtIdentificatie/Identificatie``."""
        # Rules read one or two header fields, so lxml's own search is cheaper here than
        # indexing the Header's dozen children; the answer is the same (see :func:`text`).
        cache = self._header_texts
        if path not in cache:
            found = first_at(self.header, path)
            value = None if found is None else found.text
            cache[path] = None if value is None else value.strip()
        return cache[path]

    @property
    def afzender(self) -> str | None:
        """The header's Afzender (see :meth:`_party`)."""
        return self._party("Afzender")

    @property
    def ontvanger(self) -> str | None:
        """The header's Ontvanger (see :meth:`_party`)."""
        return self._party("Ontvanger")

    def _party(self, name: str) -> str | None:
        """``Afzender`` or ``Ontvanger`` of the header. A 2.3 JW303/JW304 header names
        ``Gemeente`` and ``Aanbieder`` instead; its Afzender is the party of the type's sender
        role (the aanbieder of a JW303, the gemeente of a JW304), its Ontvanger the other."""
        named = self.header_text(name)
        if named is not None or self.header_text("Gemeente") is None:
            return named
        kind = MESSAGE_KINDS.get(self.message_type)
        sender_is_gemeente = kind is not None and kind.sender is Role.GEMEENTE
        if (name == "Afzender") == sender_is_gemeente:
            return self.header_text("Gemeente")
        return self.header_text("Aanbieder")

    @property
    def identificatie(self) -> str | None:
        """The message's identification: ``BerichtIdentificatie/Identificatie``, or for a 2.3
        JW303/JW304 (whose header has none) the invoice's ``DeclarantFactuurNummer``."""
        return self.header_text("BerichtIdentificatie/Identificatie") or self.header_text(
            DECLARATION_2_3_NUMBER
        )

    @_cached_property
    def dagtekening(self) -> dt.date | None:
        """The message's Dagtekening, the reference date of many in-message rules; a 2.3
        JW303 has its FactuurDagtekening instead, a JW304 its RetourDagtekening."""
        value = next(filter(None, map(self.header_text, DAY_PATHS)), None)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None

    def iter_local(self, name: str) -> Iterator[Element]:
        """All elements with this local name anywhere in the message, in document order."""
        return iter(self.all_local(name))

    def all_local(self, name: str) -> tuple[Element, ...]:
        """Like :meth:`iter_local`, as a tuple (computed once per name and document)."""
        found = self._by_local_name.get(name)
        return found if found is not None else self._scan_local(name)

    def _scan_local(self, name: str) -> tuple[Element, ...]:
        by_local_name = self._by_local_name
        message_type = self.schema.message_type
        known, patterns = _SCANNED_NAMES.get(message_type, _NOTHING_SCANNED)
        if name not in known and len(known) < _MAX_SCANNED_NAMES:
            known = known | {name}
            patterns = tuple("{*}" + wanted for wanted in known)
            _SCANNED_NAMES[message_type] = (known, patterns)
        if _cdoc is not None:
            # The same grouping as below, in one C pass (a later name gets a pass of its own).
            names = known if not by_local_name and name in known else (name,)
            by_local_name.update(_cdoc.scan_local(self.root, names))
            return by_local_name[name]
        if by_local_name or name not in known:
            # Names asked for after the first scan (or beyond the cap): one scan each.
            found = tuple(self.root.iter("{*}" + name))
            by_local_name[name] = found
            return found
        # The first request of this document: one pass for every name its type has used.
        grouped: dict[str, list[Element]] = {wanted: [] for wanted in known}
        local_names = _LOCAL_NAMES
        for el in self.root.iter(*patterns):
            tag = el.tag
            local = local_names.get(tag)
            grouped[local if local is not None else _tag_to_local(tag)].append(el)
        for wanted, elements in grouped.items():
            by_local_name[wanted] = tuple(elements)
        return by_local_name[name]

    def memo(self, build: Callable[[MessageDocument], _T]) -> _T:
        """``build(self)``, computed once per document (rules share records through this).

        ``build`` is the cache key, so it must be a module-level function whose result depends
        on the document alone.
        """
        cache = self._memo
        if build in cache:
            return cast(_T, cache[build])
        value = build(self)
        cache[build] = value
        return value

    def children(self, el: Element) -> Mapping[str, Sequence[Element]]:
        """The element's child elements by local name, each list in document order."""
        by_name = self._children.get(el)
        if by_name is None:
            by_name = self._index_children(el)
        # The index also remembers answers to longer paths and misses (see _find_slow).
        return {name: found for name, found in by_name.items() if found and "/" not in name}

    def _index_children(self, el: Element) -> dict[str, list[Element]]:
        if _cdoc is not None:
            indexed = _cdoc.index_children(el)
            self._children[el] = indexed
            return indexed
        by_name: dict[str, list[Element]] = {}
        local_names = _LOCAL_NAMES
        for child in el:
            tag = child.tag
            if tag.__class__ is str:  # skips comments and processing instructions
                name = local_names.get(tag)
                if name is None:
                    name = _tag_to_local(tag)
                same = by_name.get(name)
                if same is None:
                    by_name[name] = [child]
                else:
                    same.append(child)
        self._children[el] = by_name
        return by_name

    def find(self, el: Element, path: str) -> Element | None:
        """The first element at a local-name path below ``el``, or None; as :func:`find`."""
        by_name = self._children.get(el)
        if by_name is None:
            by_name = self._index_children(el)
        # A one-step path is its own key, and _find_slow stores every other answer under its
        # path (an empty list for "none"), so each path is resolved once per element.
        found = by_name.get(path)
        if found is not None:
            return found[0] if found else None
        return self._find_slow(el, by_name, path)

    def _find_slow(
        self, el: Element, by_name: dict[str, list[Element]], path: str
    ) -> Element | None:
        steps = _PATH_STEPS.get(path)
        if steps is None:
            steps = _plain_steps(path)
            if steps is None:
                return el.find(wildcard(path))
        if len(steps) == 1:
            found = None
        elif _cdoc is not None:
            # One walk over libxml2's nodes; _resolve would index every element on the way.
            found = _cdoc.first_at(el, steps)
        else:
            found = self._resolve(by_name, steps)
        by_name[path] = [] if found is None else [found]
        return found

    def _resolve(
        self, by_name: Mapping[str, Sequence[Element]], steps: tuple[str, ...]
    ) -> Element | None:
        # ElementPath order: the first match below the first step's first element that has one.
        first, second = steps[0], steps[1]
        deeper = "/".join(steps[2:]) if len(steps) > 2 else None
        children = self._children
        for parent in by_name.get(first, _NO_CHILDREN):
            below = children.get(parent)
            if below is None:
                below = self._index_children(parent)
            for match in below.get(second, _NO_CHILDREN):
                if deeper is None:
                    return match
                found = self.find(match, deeper)
                if found is not None:
                    return found
        return None

    def findall(self, el: Element, path: str) -> list[Element]:
        """All elements at a local-name path below ``el``; as :func:`findall`."""
        steps = _plain_steps(path)
        if steps is None:
            return el.findall(wildcard(path))
        level: Sequence[Element] = (el,)
        children = self._children
        for step in steps:
            matches: list[Element] = []
            for parent in level:
                by_name = children.get(parent)
                if by_name is None:
                    by_name = self._index_children(parent)
                matches.extend(by_name.get(step, _NO_CHILDREN))
            level = matches
        return list(level)

    def text(self, el: Element | None, path: str | None = None) -> str | None:
        """The stripped text at a path below ``el`` (or of ``el`` itself); as :func:`text`."""
        if el is None:
            return None
        if path is not None:
            # find()'s one-step fast path, inlined: text() is the hottest reader of all.
            by_name = self._children.get(el)
            if by_name is None:
                by_name = self._index_children(el)
            found = by_name.get(path)
            if found:
                el = found[0]
            elif found is not None:
                return None
            else:
                target = self._find_slow(el, by_name, path)
                if target is None:
                    return None
                el = target
        value = el.text
        return None if value is None else value.strip()

    def date_at(self, el: Element | None, path: str | None = None) -> dt.date | None:
        """The ``xs:date`` at a path, or None when absent or invalid; as :func:`date_at`."""
        value = self.text(el, path)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None

    def int_at(self, el: Element | None, path: str | None = None) -> int | None:
        """The integer at a path, or None when absent or not an integer; as :func:`int_at`."""
        value = self.text(el, path)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            return None
