"""The one hardened XML parser of the gateway.

Every byte of XML that enters the gateway (messages, signatures, receipts,
configuration documents, conformance vectors) is parsed here and nowhere
else. The parser

* never loads a DTD, never resolves an entity and never touches the network;
* rejects any document type declaration, internal subset or external DTD
  (``XML_DTD_FORBIDDEN``): this alone closes XXE, billion laughs, quadratic
  blow-up and external-DTD fetches;
* rejects entity references that survive parsing (``XML_ENTITY_FORBIDDEN``);
* enforces a size limit before parsing (``XML_TOO_LARGE``) and a depth limit
  (``XML_TOO_DEEP``). The size limit is the caller's: the gateway parses what it
  receives under ``gateway.max_message_bytes`` (:meth:`ParserLimits.of`), so the
  configured limit is the one enforced. A document larger than libxml2's fixed
  10 MB text-node limit (a large base64 attachment inside XML) is parsed with
  libxml2's ``huge_tree`` option, which lifts only those fixed limits: the byte
  limit above bounds every text node, the DTD refusal keeps every entity
  expansion out and the depth limit is checked as for every document;
* maps every libxml2 complaint to ``XML_MALFORMED`` with line and column;
* drops comments, so that a comment slipped into signed text (which XML
  canonicalization ignores) can never truncate what ``element.text`` returns
  (the SAML comment-truncation attack class, CVE-2017-11427 and kin).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

from gateway.errors import XmlDtdForbidden, XmlEntityForbidden, XmlMalformed, XmlTooDeep, XmlTooLarge

__all__ = ["ParserLimits", "DEFAULT_LIMITS", "ascii_only", "parse_xml", "serialize"]


@dataclass(frozen=True)
class ParserLimits:
    """Limits applied to every parsed document."""

    max_bytes: int = 16 * 1024 * 1024
    """Largest accepted document, in bytes (before decoding)."""
    max_depth: int = 128
    """Deepest accepted element nesting (the root element is depth 1)."""

    @classmethod
    def of(cls, max_bytes: int) -> ParserLimits:
        """The default limits with ``max_bytes`` (``gateway.max_message_bytes``) as the size limit."""
        return cls(max_bytes=max_bytes)


DEFAULT_LIMITS = ParserLimits()

_local = threading.local()

_DOCTYPE = re.compile(rb"<!DOCTYPE")
_NON_SPACE = re.compile(rb"\S")
_LIBXML2_TEXT_LIMIT = 10_000_000
"""libxml2's ``XML_MAX_TEXT_LENGTH``: without ``huge_tree`` a longer text node fails to parse. A document of at
most this many bytes cannot hold one (character references only shrink), so it is parsed without ``huge_tree``."""
_ELEMENT_START = re.compile(rb"<[A-Za-z_:]")


class _DenyResolver(etree.Resolver):
    """Answers every external load (DTD, entity) with nothing: no file or URL is ever opened."""

    def resolve(self, url, public_id, context):
        _local.denied = url
        return self.resolve_string("", context)


def _parser(huge: bool) -> etree.XMLParser:
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(huge)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=huge,
            remove_blank_text=False,
            remove_comments=True,
            collect_ids=False,
        )
        parser.resolvers.add(_DenyResolver())
        parsers[huge] = parser
    return parser


_depth_probes: dict[int, etree.XPath] = {}


def _too_deep(root: etree._Element, max_depth: int) -> bool:
    probe = _depth_probes.get(max_depth)
    if probe is None:
        # "/*/*/.../*" with max_depth+1 steps selects an element nested deeper than allowed;
        # libxml2 evaluates it in C without materialising the node-set.
        probe = etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")
        _depth_probes[max_depth] = probe
    return bool(probe(root))


def parse_xml(data: bytes | str, *, limits: ParserLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse ``data`` safely and return its root element.

    Raises an :class:`~gateway.errors.XmlError` subclass with a stable code on
    any input the gateway must not accept.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse_xml takes bytes, not {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise XmlTooLarge(f"document is {len(data)} bytes; the limit is {limits.max_bytes}", field="/")
    data = bytes(data)  # the same object for bytes; one copy of a bytearray or memoryview
    if _NON_SPACE.search(data) is None:
        raise XmlMalformed("document is empty", field="/")
    doctype = _DOCTYPE.search(data)
    if doctype is not None and _ELEMENT_START.search(data, 0, doctype.start()) is None:
        # Refuse before libxml2 reads a single declaration of the internal subset.
        raise XmlDtdForbidden("document type declarations are not accepted", field="DOCTYPE")
    parser = _parser(len(data) > _LIBXML2_TEXT_LIMIT)
    _local.denied = None
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        message = str(exc)
        line, column = exc.position if exc.position else (0, 0)
        where = f"line {line}, column {column}"
        lowered = message.lower()
        if "excessive depth" in lowered:
            raise XmlTooDeep(f"elements nest too deeply ({message})", field=where) from None
        if "entity" in lowered and ("not defined" in lowered or "undeclared" in lowered):
            raise XmlEntityForbidden(f"undeclared entity reference: {message}", field=where) from None
        raise XmlMalformed(message, field=where) from None
    if _local.denied is not None:
        raise XmlDtdForbidden(f"external resource {_local.denied!r} refused", field="DOCTYPE")
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlDtdForbidden(
            f"document type declarations are not accepted (found {docinfo.doctype or 'an internal subset'!r})",
            field="DOCTYPE",
        )
    if _too_deep(root, limits.max_depth):
        raise XmlTooDeep(f"elements nest deeper than {limits.max_depth} levels", field="/")
    return root


_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
"""What lxml writes before a UTF-8 serialization with ``xml_declaration=True``."""
_ASCII_READ = frozenset({"UTF-8", "US-ASCII", "ASCII"})
"""Encodings in which ASCII bytes can only be read as ASCII characters."""


def ascii_only(data: bytes, root: etree._Element) -> bool:
    """Whether ``root``, parsed from ``data``, holds ASCII characters only: ``data`` is ASCII, holds no character
    reference (``&#``; the parser resolves no entity but the five predefined ones, all ASCII) and was read as UTF-8
    or ASCII (what its XML declaration names). Such a tree may be serialized with ``serialize(..., ascii=True)``."""
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    return encoding in _ASCII_READ and data.isascii() and b"&#" not in data


def serialize(element: etree._Element | etree._ElementTree, *, declaration: bool = True, ascii: bool = False) -> bytes:
    """Serialize an element (or its tree) to UTF-8 bytes without reformatting.

    With ``ascii`` (the caller checked :func:`ascii_only`) the same bytes are made from lxml's serialization to
    text, which needs no encoder: at its peak it holds libxml2's output and one copy, twice the document, where a
    serialization to UTF-8 holds libxml2's output, its encoder's buffer and the copy into ``bytes``, three times.
    The bytes are the same either way; for a tree that does hold other characters the text would only take more
    memory (up to four bytes a character)."""
    if not ascii:
        return etree.tostring(element, encoding="UTF-8", xml_declaration=declaration)
    text = etree.tostring(element, encoding="unicode")
    if declaration:
        text = _DECLARATION + text
    return text.encode("utf-8")
