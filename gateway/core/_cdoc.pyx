# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""C-level builders for MessageDocument's lookup caches (optional; see gateway/core/document.py).

The pure-Python builders in document.py are the reference: every function here returns exactly
what they return, and document.py falls back to them when this module is missing or stale.

Why C: the pure builders ask lxml for each child's ``{namespace}Name`` tag string and cut the
local name off it, one Python-level iteration per element. Here the walk follows libxml2's
``children``/``next`` pointers and reads the element name the parser already interned in its
dictionary, so no tag string is built and no Python loop runs per element. Element proxies come
from lxml's own ``elementFactory``: the same object lxml would hand out for that node, so
MessageDocument's caches keyed by element identity stay valid.

The code reads lxml's ``_Element`` struct and libxml2's ``xmlNode`` from the headers it was
compiled against, so it is only safe with that lxml build. The build (setup.py) writes the
SHA-256 of this file into ``_cdoc_source.pxi``; with the versions from lxml's headers, document.py
checks both before using the module.

Relies on the GIL (CPython 3.11 as used here): the name cache below is shared module state.
"""

from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.string cimport memchr, strcmp, strlen
from lxml.includes cimport etreepublic as cetree
from lxml.includes cimport tree
from lxml.includes.tree cimport const_xmlChar

include "_cdoc_source.pxi"

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8(object) except NULL
    object PyUnicode_DecodeUTF8(const char*, Py_ssize_t, const char*)
    void PyUnicode_InternInPlace(PyObject**)
    PyObject* PyDict_GetItemWithError(object, object) except? NULL
    int PyList_Append(object, object) except -1

cdef extern from "lxml-version.h":
    const char* LXML_VERSION_STRING

cdef extern from "libxml/xmlversion.h":
    int C_LIBXML_VERSION "LIBXML_VERSION"

cetree.import_lxml__etree()

#: The SHA-256 of the .pyx this module was compiled from (written by setup.py).
PYX_SHA256 = _PYX_SOURCE_SHA256
#: The lxml and libxml2 versions whose headers this module was compiled against.
LXML_VERSION = LXML_VERSION_STRING.decode("ascii")
LIBXML_VERSION = (C_LIBXML_VERSION // 10000, C_LIBXML_VERSION // 100 % 100, C_LIBXML_VERSION % 100)


cdef enum:
    # A power of two: the slot is a mask of the pointer. A message uses a few dozen names.
    _NAME_SLOTS = 1024

# A direct-mapped cache from libxml2 name pointers to interned Python strings, so a name seen
# before costs a pointer compare and a strcmp instead of a UTF-8 decode. A pointer may be reused
# for another name once its parser dictionary is freed, so every hit is confirmed with strcmp;
# a miss or a stale entry just builds the string again. No Python code can run between reading
# and writing a slot (str objects are not tracked by the garbage collector, so the allocations
# here never trigger a collection), so the GIL keeps the slots consistent across threads.
cdef const_xmlChar* _slot_name[_NAME_SLOTS]
cdef PyObject* _slot_str[_NAME_SLOTS]


cdef inline object _local_name(const_xmlChar* c_name):
    # libxml2 packs dictionary names into pools one after another, so neighbouring names (iJw
    # names are longer than 8 bytes) land in neighbouring slots; a collision costs a decode.
    cdef size_t slot = ((<size_t>c_name) >> 3) & (_NAME_SLOTS - 1)
    cdef PyObject* cached = _slot_str[slot]
    if _slot_name[slot] == c_name and cached is not NULL:
        if strcmp(PyUnicode_AsUTF8(<object>cached), <const char*>c_name) == 0:
            return <object>cached
    name = PyUnicode_DecodeUTF8(<const char*>c_name, strlen(<const char*>c_name), NULL)
    cdef PyObject* interned = <PyObject*>name
    # InternInPlace steals a reference and may swap in the already interned string; the extra
    # reference it steals is the one the slot keeps.
    Py_INCREF(name)
    PyUnicode_InternInPlace(&interned)
    Py_XDECREF(_slot_str[slot])
    _slot_str[slot] = interned
    _slot_name[slot] = c_name
    return <object>interned


def local_name_of(cetree._Element el not None):
    """The element's local name, through the name cache (what the builders use)."""
    return _local_name(el._c_node.name)


def index_children(cetree._Element el not None):
    """``{local name: [child elements in document order]}``; comments and PIs skipped."""
    cdef dict by_name = {}
    cdef cetree._Document doc = el._doc
    cdef tree.xmlNode* c_node = el._c_node.children
    cdef PyObject* same
    while c_node is not NULL:
        if c_node.type == tree.XML_ELEMENT_NODE:
            name = _local_name(c_node.name)
            child = cetree.elementFactory(doc, c_node)
            same = PyDict_GetItemWithError(by_name, name)
            if same is NULL:
                by_name[name] = [child]
            else:
                PyList_Append(<object>same, child)
        c_node = c_node.next
    return by_name


def scan_local(cetree._Element top not None, names):
    """``{name: (elements with that local name, in document order)}`` for each of ``names``.

    One pass over the subtree for all names; ``top`` itself is included, as in
    ``top.iter("{*}Name", ...)``.
    """
    cdef dict grouped = {}
    for wanted in names:
        grouped[wanted] = []
    cdef cetree._Document doc = top._doc
    cdef tree.xmlNode* c_top = top._c_node
    cdef tree.xmlNode* c_node = c_top
    cdef PyObject* found
    while c_node is not NULL:
        if c_node.type == tree.XML_ELEMENT_NODE:
            found = PyDict_GetItemWithError(grouped, _local_name(c_node.name))
            if found is not NULL:
                PyList_Append(<object>found, cetree.elementFactory(doc, c_node))
            # Only elements are descended into: an entity reference's children belong to the
            # entity declaration, not to this subtree.
            if c_node.children is not NULL:
                c_node = c_node.children
                continue
        if c_node is c_top:
            break
        # Climb until a node has a next sibling, never above ``top``.
        while c_node.next is NULL:
            c_node = c_node.parent
            if c_node is c_top or c_node is NULL:
                c_node = NULL
                break
        if c_node is not NULL:
            c_node = c_node.next
    return {wanted: tuple(elements) for wanted, elements in grouped.items()}


cdef tree.xmlNode* _first_at(tree.xmlNode* c_parent, tuple steps, Py_ssize_t index) except? NULL:
    # UTF-8 of an ASCII str is its own buffer, cached in the object: no copy per call.
    cdef const char* wanted = PyUnicode_AsUTF8(steps[index])
    cdef bint last = index == len(steps) - 1
    cdef tree.xmlNode* c_node = c_parent.children
    cdef tree.xmlNode* found
    while c_node is not NULL:
        if c_node.type == tree.XML_ELEMENT_NODE and strcmp(<const char*>c_node.name, wanted) == 0:
            if last:
                return c_node
            found = _first_at(c_node, steps, index + 1)
            if found is not NULL:
                return found
        c_node = c_node.next
    return NULL


def first_at(cetree._Element el not None, tuple steps not None):
    """The first element at a path of local names below ``el`` (e.g. ``("Header",
    "BerichtCode")``), or None, in ElementPath's order: the first match below the first step's
    first element that has one."""
    if not steps:
        raise ValueError("a path needs at least one step")
    cdef tree.xmlNode* found = _first_at(el._c_node, steps, 0)
    if found is NULL:
        return None
    return cetree.elementFactory(el._doc, found)


def crs_follow_tags(bytes raw not None):
    """Whether every CR byte of ``raw`` comes right after a ">": exactly
    ``raw.count(b"\\r") == raw.count(b">\\r")``, the last test of xmlsafe's blank-text guard, in
    one memchr walk instead of two counts over the whole message."""
    cdef const char* start = raw
    cdef const char* end = start + len(raw)
    cdef const char* cr = <const char*>memchr(start, 13, end - start)
    while cr is not NULL:
        if cr == start or cr[-1] != 62:  # CR, ">"
            return False
        cr = <const char*>memchr(cr + 1, 13, end - cr - 1)
    return True
