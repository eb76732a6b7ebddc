"""Reading a VNSW ``Envelope`` header and writing the synchronous function-99 / function-00 answers.

The answers follow the reconstructed corpus messages exactly
(``shared/corpus/vnsw/reconstructed/ack_success_func99_NSW_to_BNN.xml`` and
``ack_error_func00_ErrorList.xml``): ``Reference/version`` ``01`` and a fresh
``messageId``; ``From``/``To`` swapped (we answer as the NSW); the request's
``documentType``, ``type``, ``reference``, ``documentYear``, ``preReference``,
``preDocumentYear``; ``function`` ``99`` with ``Content/ReceiveDate`` or
``00`` with ``Content/ErrorList/Error{ErrorCode,ErrorName}``; ``sendDate`` in
Vietnam time (``yyyy-MM-dd HH:mm:ss``); empty ``Body/Signature`` and
``SystemSignature``. On input whose header cannot be read, ``reference`` and
``type`` are literally ``00`` (as the ministry connector's ReceiveEndpoint does).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from gateway.errors import NswError, RequestInvalid

__all__ = ["NSW_IDENTITY", "VnswHeader", "read_header", "ack_envelope", "error_envelope", "AckAnswer", "read_answer"]

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

NSW_IDENTITY: Mapping[str, str] = {
    "name": "NSW",
    "identity": "NSW",
    "countryCode": "VN",
    "ministryCode": "BTC",
    "organizationCode": "TCHQ",
    "unitCode": "NSW",
}
"""The ``From`` block of the NSW's answers (as in the corpus); override with ``options.identity``."""

_PARTY_FIELDS = ("name", "identity", "countryCode", "ministryCode", "organizationCode", "unitCode")
_SUBJECT_FIELDS = (
    "documentType",
    "type",
    "function",
    "reference",
    "documentYear",
    "preReference",
    "preDocumentYear",
    "sendDate",
)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c) == name:
            return c
    return None


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


@dataclass(frozen=True)
class VnswHeader:
    """The header fields the transport needs (``Header/Reference``, ``From``, ``To``, ``Subject``)."""

    message_id: str
    document_type: str
    type: str
    function: str
    reference: str
    sender: Mapping[str, str] = field(default_factory=dict)
    recipient: Mapping[str, str] = field(default_factory=dict)
    subject: Mapping[str, str] = field(default_factory=dict)


def read_header(root: etree._Element) -> VnswHeader:
    """The header of a parsed VNSW ``Envelope``; :class:`RequestInvalid` naming the missing element otherwise."""
    if _local(root) != "Envelope":
        raise RequestInvalid(
            f"the VNSW root element is Envelope, not {_local(root) or root.tag!r}", field="/" + _local(root)
        )
    header = _child(root, "Header")
    if header is None:
        raise RequestInvalid("Envelope has no Header", field="/Envelope/Header")

    def need(path: tuple[str, ...]) -> str:
        el: etree._Element | None = header
        for name in path:
            el = _child(el, name)
        value = _text(el)
        if not value:
            raise RequestInvalid(f"{path[-1]} is missing or empty", field="/Envelope/Header/" + "/".join(path))
        return value

    def block(name: str, names: Iterable[str]) -> dict[str, str]:
        el = _child(header, name)
        return {n: _text(_child(el, n)) for n in names if _child(el, n) is not None}

    return VnswHeader(
        message_id=need(("Reference", "messageId")),
        document_type=need(("Subject", "documentType")),
        type=need(("Subject", "type")),
        function=need(("Subject", "function")),
        reference=need(("Subject", "reference")),
        sender=block("From", _PARTY_FIELDS),
        recipient=block("To", _PARTY_FIELDS),
        subject=block("Subject", _SUBJECT_FIELDS),
    )


def _now() -> str:
    return dt.datetime.now(VN_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _answer(
    header: VnswHeader | None,
    function: str,
    content: etree._Element,
    *,
    identity: Mapping[str, str],
    send_date: str,
    recipient: Mapping[str, str] | None = None,
) -> bytes:
    root = etree.Element("Envelope")
    h = etree.SubElement(root, "Header")
    ref = etree.SubElement(h, "Reference")
    etree.SubElement(ref, "version").text = "01"
    etree.SubElement(ref, "messageId").text = str(uuid.uuid4())
    for tag, values in (("From", identity), ("To", header.sender if header else (recipient or {}))):
        block = etree.SubElement(h, tag)
        for name in _PARTY_FIELDS:
            if name in values or name != "unitCode":
                etree.SubElement(block, name).text = values.get(name, "")
    subject = etree.SubElement(h, "Subject")
    s = dict(header.subject) if header else {}
    etree.SubElement(subject, "documentType").text = s.get("documentType", "00")
    etree.SubElement(subject, "type").text = s.get("type", "00")
    etree.SubElement(subject, "function").text = function
    etree.SubElement(subject, "reference").text = s.get("reference", "00")
    etree.SubElement(subject, "documentYear").text = s.get("documentYear") or send_date[:4]
    etree.SubElement(subject, "preReference").text = s.get("preReference") or s.get("reference", "00")
    if s.get("preDocumentYear") or not header:
        etree.SubElement(subject, "preDocumentYear").text = s.get("preDocumentYear") or send_date[:4]
    etree.SubElement(subject, "sendDate").text = send_date
    body = etree.SubElement(root, "Body")
    body.append(content)
    etree.SubElement(body, "Signature").text = ""
    etree.SubElement(root, "SystemSignature").text = ""
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def ack_envelope(
    header: VnswHeader, *, identity: Mapping[str, str] = NSW_IDENTITY, received_at: str | None = None
) -> bytes:
    """The function-99 answer: ``Content/ReceiveDate``."""
    when = received_at or _now()
    content = etree.Element("Content")
    etree.SubElement(content, "ReceiveDate").text = when
    return _answer(header, "99", content, identity=identity, send_date=when)


def error_envelope(
    header: VnswHeader | None,
    errors: Iterable[NswError | tuple[str, str]],
    *,
    identity: Mapping[str, str] = NSW_IDENTITY,
    recipient: Mapping[str, str] | None = None,
) -> bytes:
    """The function-00 answer: ``Content/ErrorList/Error{ErrorCode,ErrorName}``, one per coded error.

    ``ErrorCode`` is the gateway's stable code (``XML_MALFORMED``, ``AUTH_FORBIDDEN``...); ``ErrorName``
    names the element at fault and says why. ``recipient``: the ``To`` block when the header is unreadable.
    """
    content = etree.Element("Content")
    error_list = etree.SubElement(content, "ErrorList")
    for err in errors:
        code, name = (
            (err.code, f"{err.field}: {err.message}" if err.field else err.message)
            if isinstance(err, NswError)
            else err
        )
        e = etree.SubElement(error_list, "Error")
        etree.SubElement(e, "ErrorCode").text = code
        etree.SubElement(e, "ErrorName").text = name
    return _answer(header, "00", content, identity=identity, send_date=_now(), recipient=recipient)


@dataclass(frozen=True)
class AckAnswer:
    """A synchronous VNSW answer as read by the outbound adapter."""

    function: str
    reference: str
    document_type: str
    type: str
    errors: tuple[tuple[str, str], ...] = ()


def read_answer(root: etree._Element) -> AckAnswer:
    """Read a function-99 / function-00 answer (already parsed with ``parse_xml``)."""
    header = read_header(root)
    errors: list[tuple[str, str]] = []
    if header.function == "00":
        error_list = _child(_child(_child(root, "Body"), "Content"), "ErrorList")
        for e in error_list if error_list is not None else ():
            if _local(e) == "Error":
                errors.append((_text(_child(e, "ErrorCode")), _text(_child(e, "ErrorName"))))
    return AckAnswer(header.function, header.reference, header.document_type, header.type, tuple(errors))
