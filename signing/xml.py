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
  (``XML_TOO_DEEP``);
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

__all__ = ["ParserLimits", "DEFAULT_LIMITS", "parse_xml", "serialize"]


@dataclass(frozen=True)
class ParserLimits:
    """Limits applied to every parsed document."""

    max_bytes: int = 16 * 1024 * 1024
    """Largest accepted document, in bytes (before decoding)."""
    max_depth: int = 128
    """Deepest accepted element nesting (the root element is depth 1)."""


DEFAULT_LIMITS = ParserLimits()

_local = threading.local()

_DOCTYPE = re.compile(rb"<!DOCTYPE")
_ELEMENT_START = re.compile(rb"<[A-Za-z_:]")


class _DenyResolver(etree.Resolver):
    """Answers every external load (DTD, entity) with nothing: no file or URL is ever opened."""

    def resolve(self, url, public_id, context):
        _local.denied = url
        return self.resolve_string("", context)


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            remove_blank_text=False,
            remove_comments=True,
            collect_ids=False,
        )
        parser.resolvers.add(_DenyResolver())
        _local.parser = parser
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
    if not data.strip():
        raise XmlMalformed("document is empty", field="/")
    data = bytes(data)
    doctype = _DOCTYPE.search(data)
    if doctype is not None and _ELEMENT_START.search(data, 0, doctype.start()) is None:
        # Refuse before libxml2 reads a single declaration of the internal subset.
        raise XmlDtdForbidden("document type declarations are not accepted", field="DOCTYPE")
    parser = _parser()
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


def serialize(element: etree._Element, *, declaration: bool = True) -> bytes:
    """Serialize an element (or its tree) to UTF-8 bytes without reformatting."""
    return etree.tostring(element, encoding="UTF-8", xml_declaration=declaration)
