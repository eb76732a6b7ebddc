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

import hashlib
import io
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from gateway.errors import XmlDtdForbidden, XmlEntityForbidden, XmlMalformed, XmlTooDeep, XmlTooLarge

__all__ = [
    "ParserLimits",
    "DEFAULT_LIMITS",
    "TakenText",
    "Spliced",
    "ascii_only",
    "parse_xml",
    "serialize",
    "serialize_spliced",
    "payload_bytes",
    "payload_chunks",
    "payload_sha256",
    "take_text",
]


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


LARGE_TEXT = 1024 * 1024
"""Characters from which :func:`take_text` takes an element's text out of its tree."""
_ESCAPED = re.compile(r"[&<>\r]")
"""Characters that serialization or canonicalization writes otherwise than as themselves."""
_CHUNK = 1024 * 1024


class TakenText:
    """The large text of one element, held outside its tree while the tree stands in :attr:`marker` for it.

    libxml2 serializes and canonicalizes a text node by copying it whole, more than once. A text made of ASCII
    characters that are written as themselves (a base64 attachment) is the same in every output, so the output
    of the tree with the marker, with the marker replaced by the text chunk by chunk, is exactly the output of the
    tree with the text (:func:`serialize`, :func:`signing.algorithms.canonical_digest`), without those copies.
    The marker is a random token made of base64 characters only (in groups of four, so that it is a valid
    ``xs:base64Binary`` where the text was one); an output that does not hold it exactly once is made from the tree
    with its text put back (:meth:`put_back`)."""

    def __init__(self, element: etree._Element, text: str, *, marker: str | None = None) -> None:
        self.element = element
        self.text: str | None = text
        self.marker = marker if marker is not None else f"NSWGWTEXT{uuid.uuid4().hex}AAA"
        element.text = self.marker

    def rebind(self, root: etree._Element) -> TakenText | None:
        """The same text standing as the same marker in another tree (a document parsed from an output of this
        one: a mapping of it, the content without its signature), or None when no element of ``root``'s tree has
        exactly the marker as its text."""
        if self.text is None:
            return None
        for element in root.getroottree().iter(etree.Element):
            if element.text == self.marker:
                return TakenText(element, self.text, marker=self.marker)
        return None

    def put_back(self) -> None:
        """Give the tree its text again (every later output is then made from the whole tree)."""
        if self.text is not None:
            self.element.text, self.text = self.text, None

    def splice(self, small: bytes, write: Callable[[bytes], object]) -> bool:
        """Write ``small`` (an output of the tree with the marker) with the text in place of the marker; False
        (nothing written) when ``small`` does not hold the marker exactly once."""
        try:
            spliced = Spliced.of(small, self)
        except ValueError:
            return False
        if not isinstance(spliced, Spliced):
            return False
        for chunk in spliced.chunks():
            write(chunk)
        return True


class Spliced:
    """Bytes held as the parts of an output made with a :class:`TakenText`'s marker around the text that goes in
    its place: what a signed document, its evidence and each of its deliveries hold of one large attachment is then
    the one text, however many of them there are. :meth:`chunks` gives the bytes in order (the store writes them so),
    :meth:`tobytes` them whole. Made by :meth:`of`, which checks that the marker stands exactly once."""

    __slots__ = ("_parts", "_text", "_length")

    def __init__(self, before: bytes, after: bytes, text: str) -> None:
        self._parts = (before, after)
        self._text = text
        self._length = len(before) + len(text) + len(after)

    @classmethod
    def of(cls, small: bytes, taken: TakenText | None) -> bytes | Spliced:
        """``small`` with ``taken``'s text in place of its marker: a :class:`Spliced` when the marker stands in
        ``small`` exactly once, else ``small`` itself (no text taken, or none of it in ``small``: nothing to splice).
        ``ValueError`` when the marker stands more than once (an output that copied the text)."""
        if taken is None or taken.text is None:
            return small
        parts = small.split(taken.marker.encode("ascii"))
        if len(parts) == 1:
            return small
        if len(parts) != 2:
            raise ValueError("the large text stands more than once in this output")
        return cls(parts[0], parts[1], taken.text)

    def __len__(self) -> int:
        return self._length

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        """The bytes in order, none longer than ``size`` but the parts around the text."""
        yield self._parts[0]
        text = self._text
        for start in range(0, len(text), size):
            yield text[start : start + size].encode("ascii")
        yield self._parts[1]

    def sha256(self) -> bytes:
        running = hashlib.sha256()
        for chunk in self.chunks():
            running.update(chunk)
        return running.digest()

    def tobytes(self) -> bytes:
        """The bytes whole (one copy of the text more: for small payloads and outputs that need them so)."""
        out = io.BytesIO()
        for chunk in self.chunks():
            out.write(chunk)
        return out.getvalue()


def payload_bytes(data: bytes | Spliced) -> bytes:
    """``data`` as one ``bytes`` (a :class:`Spliced` made whole)."""
    return data if isinstance(data, bytes) else data.tobytes()


def payload_chunks(data: bytes | Spliced, size: int = _CHUNK) -> Iterator[bytes | memoryview]:
    """``data`` in order, in pieces of at most ``size`` bytes (views of ``bytes``; a :class:`Spliced`'s parts)."""
    if isinstance(data, Spliced):
        yield from data.chunks(size)
        return
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]


def payload_sha256(data: bytes | Spliced) -> bytes:
    """SHA-256 of ``data`` (a :class:`Spliced` chunk by chunk)."""
    return data.sha256() if isinstance(data, Spliced) else hashlib.sha256(data).digest()


def take_text(root: etree._Element, *, at_least: int = LARGE_TEXT) -> TakenText | None:
    """The first element text of ``root``'s tree of at least ``at_least`` ASCII characters that are all written as
    themselves (no ``&``, ``<``, ``>`` or carriage return), taken out of the tree; None when there is none. The tree
    is one :func:`parse_xml` made: its texts are text nodes (no CDATA section, no entity reference)."""
    for element in root.iter(etree.Element):
        text = element.text
        if text is not None and len(text) >= at_least and text.isascii() and _ESCAPED.search(text) is None:
            return TakenText(element, text)
    return None


def serialize(
    element: etree._Element | etree._ElementTree,
    *,
    declaration: bool = True,
    ascii: bool = False,
    taken: TakenText | None = None,
) -> bytes:
    """Serialize an element (or its tree) to UTF-8 bytes without reformatting.

    With ``ascii`` (the caller checked :func:`ascii_only`) the same bytes are made from lxml's serialization to
    text, which needs no encoder: at its peak it holds libxml2's output and one copy, twice the document, where a
    serialization to UTF-8 holds libxml2's output, its encoder's buffer and the copy into ``bytes``, three times.
    The bytes are the same either way; for a tree that does hold other characters the text would only take more
    memory (up to four bytes a character). With ``taken`` (:func:`take_text` of the tree) the text is written from
    outside the tree: the bytes are the same, and besides the tree only they are held."""
    if taken is not None and taken.text is not None:
        small = serialize(element, declaration=declaration, ascii=ascii)
        out = io.BytesIO()
        if taken.splice(small, out.write):
            return out.getvalue()
        taken.put_back()
    if not ascii:
        return etree.tostring(element, encoding="UTF-8", xml_declaration=declaration)
    text = etree.tostring(element, encoding="unicode")
    if declaration:
        text = _DECLARATION + text
    return text.encode("utf-8")


def serialize_spliced(
    element: etree._Element | etree._ElementTree,
    *,
    declaration: bool = True,
    ascii: bool = False,
    taken: TakenText | None = None,
) -> bytes | Spliced:
    """What :func:`serialize` gives, as a :class:`Spliced` sharing ``taken``'s text when the output holds it (the
    text is then never copied whole); as ``bytes`` otherwise."""
    small = serialize(element, declaration=declaration, ascii=ascii)
    try:
        return Spliced.of(small, taken)
    except ValueError:
        assert taken is not None
        taken.put_back()
        return serialize(element, declaration=declaration, ascii=ascii)
