"""The ebMS 3.0 message model: eb:Messaging with a UserMessage or a SignalMessage (Receipt, Error, PullRequest).

Builders produce lxml elements; parsers read *verified* elements only (the
eb:Messaging returned by :func:`signing.wss.verify_envelope`) and raise
``VALIDATION_FAILED`` naming the element at fault.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from gateway.errors import (
    ClientError,
    DecryptionFailed,
    EncryptionMissing,
    NswError,
    SignatureError,
    ValidationFailed,
    ValidationIssue,
    XmlError,
    XmlTooLarge,
)
from signing.wss import EB_NS, NAMESPACES, SOAP12_NS, WSSE_NS, WSU_NS, element_path, new_id

__all__ = [
    "EBBP_NS",
    "INITIATOR",
    "RESPONDER",
    "DEFAULT_MPC",
    "Party",
    "Property",
    "PartInfo",
    "UserMessage",
    "EbmsError",
    "SignalMessage",
    "EBMS_ERRORS",
    "ebms_error_for",
    "new_envelope",
    "build_user_messaging",
    "build_receipt_messaging",
    "build_error_messaging",
    "build_pull_request_messaging",
    "parse_user_message",
    "parse_signal_message",
]

EBBP_NS = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"
INITIATOR = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator"
RESPONDER = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder"
DEFAULT_MPC = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC"

_EB = f"{{{EB_NS}}}"
_S = f"{{{SOAP12_NS}}}"
_EBBP = f"{{{EBBP_NS}}}"
_WSU_ID = f"{{{WSU_NS}}}Id"


@dataclass(frozen=True)
class Party:
    """eb:From or eb:To: one PartyId (with its type) and the role."""

    party_id: str
    party_type: str | None = None
    role: str = INITIATOR


@dataclass(frozen=True)
class Property:
    """An eb:Property of MessageProperties or PartProperties."""

    name: str
    value: str
    type: str | None = None


@dataclass(frozen=True)
class PartInfo:
    """One payload: ``href`` is ``cid:...`` for a MIME attachment."""

    href: str
    properties: tuple[Property, ...] = ()

    def prop(self, name: str) -> str | None:
        return next((p.value for p in self.properties if p.name == name), None)

    @property
    def cid(self) -> str | None:
        return self.href[4:] if self.href.startswith("cid:") else None


@dataclass(frozen=True)
class UserMessage:
    """eb:UserMessage (ebMS 3.0 core, section 5.2.2)."""

    message_id: str
    timestamp: datetime
    sender: Party
    receiver: Party
    service: str
    action: str
    conversation_id: str
    service_type: str | None = None
    agreement: str | None = None
    agreement_type: str | None = None
    pmode: str | None = None
    ref_to_message_id: str | None = None
    properties: tuple[Property, ...] = ()
    parts: tuple[PartInfo, ...] = ()
    mpc: str | None = None

    def prop(self, name: str) -> str | None:
        return next((p.value for p in self.properties if p.name == name), None)


@dataclass(frozen=True)
class EbmsError:
    """eb:Error of an error signal."""

    code: str
    severity: str = "failure"
    category: str | None = None
    short_description: str | None = None
    description: str | None = None
    detail: str | None = None
    ref_to_message_in_error: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class SignalMessage:
    """eb:SignalMessage: a Receipt (with the ds:References it acknowledges) or Errors."""

    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None
    receipt: bool
    acknowledged: tuple[etree._Element, ...] = field(default=(), repr=False)
    """The ds:Reference elements of ebbp:NonRepudiationInformation, in order."""
    errors: tuple[EbmsError, ...] = ()
    pull_mpc: str | None = None
    """The MPC of an eb:PullRequest (its ``@mpc``, the default MPC when absent); None for other signals."""


# ebMS 3.0 core section 6.7 and AS4 profile section 3.4: code -> (short description, category).
EBMS_ERRORS: dict[str, tuple[str, str]] = {
    "EBMS:0001": ("ValueNotRecognized", "Content"),
    "EBMS:0002": ("FeatureNotSupported", "Content"),
    "EBMS:0003": ("ValueInconsistent", "Content"),
    "EBMS:0004": ("Other", "Content"),
    "EBMS:0005": ("ConnectionFailure", "Communication"),
    "EBMS:0006": ("EmptyMessagePartitionChannel", "Communication"),
    "EBMS:0007": ("MimeInconsistency", "Unpackaging"),
    "EBMS:0008": ("FeatureNotSupported", "Unpackaging"),
    "EBMS:0009": ("InvalidHeader", "Unpackaging"),
    "EBMS:0010": ("ProcessingModeMismatch", "Processing"),
    "EBMS:0011": ("ExternalPayloadError", "Content"),
    "EBMS:0101": ("FailedAuthentication", "Processing"),
    "EBMS:0102": ("FailedDecryption", "Processing"),
    "EBMS:0103": ("PolicyNoncompliance", "Processing"),
    "EBMS:0202": ("DeliveryFailure", "Communication"),
    "EBMS:0301": ("MissingReceipt", "Communication"),
    "EBMS:0303": ("DecompressionFailure", "Communication"),
}

_POLICY_CODES = frozenset(
    {
        "SIG_MISSING",
        "SIG_ALGORITHM_FORBIDDEN",
        "SIG_WEAK_ALGORITHM",
        "SIG_HMAC_FORBIDDEN",
        "SIG_TRANSFORM_FORBIDDEN",
        "SIG_REFERENCE_COUNT",
    }
)


def ebms_error_for(error: NswError) -> str:
    """The ebMS error code answering one of our coded errors."""
    if isinstance(error, DecryptionFailed):
        return "EBMS:0102"
    if isinstance(error, EncryptionMissing) or error.code in _POLICY_CODES:
        return "EBMS:0103"
    if isinstance(error, SignatureError):
        return "EBMS:0101"
    if isinstance(error, XmlTooLarge):
        return "EBMS:0004"  # a message over the size limit, as a payload over its PMode's limit
    if isinstance(error, XmlError):
        return "EBMS:0009"
    code = error.details.get("ebms") if error.details else None
    if isinstance(code, str) and code in EBMS_ERRORS:
        return code
    if isinstance(error, ValidationFailed):
        return "EBMS:0003"
    if isinstance(error, ClientError):
        return "EBMS:0004"
    return "EBMS:0004"


# --------------------------------------------------------------------------- building


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _eb(parent: etree._Element, tag: str, text: str | None = None, /, **attrib: str | None) -> etree._Element:
    el = etree.SubElement(parent, _EB + tag, {k: v for k, v in attrib.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def new_envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    """An empty SOAP 1.2 envelope: (Envelope, Header, Body), the Body with a wsu:Id."""
    nsmap = {"S12": SOAP12_NS, "wsu": WSU_NS, "wsse": WSSE_NS, "eb": EB_NS}
    envelope = etree.Element(_S + "Envelope", nsmap=nsmap)
    header = etree.SubElement(envelope, _S + "Header")
    body = etree.SubElement(envelope, _S + "Body")
    body.set(_WSU_ID, new_id("body"))
    return envelope, header, body


def _messaging(header: etree._Element) -> etree._Element:
    messaging = etree.SubElement(header, _EB + "Messaging")
    messaging.set(_S + "mustUnderstand", "true")
    messaging.set(_WSU_ID, new_id("messaging"))
    return messaging


def _message_info(parent: etree._Element, message_id: str, timestamp: datetime, ref: str | None) -> None:
    info = _eb(parent, "MessageInfo")
    _eb(info, "Timestamp", _ts(timestamp))
    _eb(info, "MessageId", message_id)
    if ref:
        _eb(info, "RefToMessageId", ref)


def _properties(parent: etree._Element, name: str, props: Sequence[Property]) -> None:
    if props:
        holder = _eb(parent, name)
        for p in props:
            _eb(holder, "Property", p.value, name=p.name, type=p.type)


def build_user_messaging(header: etree._Element, message: UserMessage) -> etree._Element:
    """Append eb:Messaging/eb:UserMessage for ``message`` to the soap:Header."""
    messaging = _messaging(header)
    user = _eb(messaging, "UserMessage", mpc=message.mpc)
    _message_info(user, message.message_id, message.timestamp, message.ref_to_message_id)
    party_info = _eb(user, "PartyInfo")
    for tag, party in (("From", message.sender), ("To", message.receiver)):
        holder = _eb(party_info, tag)
        _eb(holder, "PartyId", party.party_id, type=party.party_type)
        _eb(holder, "Role", party.role)
    collab = _eb(user, "CollaborationInfo")
    if message.agreement:
        _eb(collab, "AgreementRef", message.agreement, type=message.agreement_type, pmode=message.pmode)
    _eb(collab, "Service", message.service, type=message.service_type)
    _eb(collab, "Action", message.action)
    _eb(collab, "ConversationId", message.conversation_id)
    _properties(user, "MessageProperties", message.properties)
    if message.parts:
        payload_info = _eb(user, "PayloadInfo")
        for part in message.parts:
            info = _eb(payload_info, "PartInfo", href=part.href)
            _properties(info, "PartProperties", part.properties)
    return messaging


def build_receipt_messaging(
    header: etree._Element,
    *,
    message_id: str,
    ref_to_message_id: str,
    references: Sequence[etree._Element],
    timestamp: datetime,
) -> etree._Element:
    """eb:SignalMessage/eb:Receipt carrying the user message's ds:References as ebbp:NonRepudiationInformation."""
    messaging = _messaging(header)
    signal = _eb(messaging, "SignalMessage")
    _message_info(signal, message_id, timestamp, ref_to_message_id)
    receipt = _eb(signal, "Receipt")
    nri = etree.SubElement(receipt, _EBBP + "NonRepudiationInformation", nsmap={"ebbp": EBBP_NS})
    for ref in references:
        part = etree.SubElement(nri, _EBBP + "MessagePartNRInformation")
        part.append(copy.deepcopy(ref))
    return messaging


def build_error_messaging(
    header: etree._Element,
    *,
    message_id: str,
    ref_to_message_id: str | None,
    errors: Sequence[EbmsError],
    timestamp: datetime,
) -> etree._Element:
    """eb:SignalMessage with one eb:Error per error."""
    messaging = _messaging(header)
    signal = _eb(messaging, "SignalMessage")
    _message_info(signal, message_id, timestamp, ref_to_message_id)
    for err in errors:
        short, category = EBMS_ERRORS.get(err.code, ("Other", "Content"))
        el = _eb(
            signal,
            "Error",
            errorCode=err.code,
            severity=err.severity,
            category=err.category or category,
            shortDescription=err.short_description or short,
            refToMessageInError=err.ref_to_message_in_error,
            origin=err.origin or "ebMS",
        )
        if err.description:
            _eb(el, "Description", err.description).set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        if err.detail:
            _eb(el, "ErrorDetail", err.detail)
    return messaging


def build_pull_request_messaging(
    header: etree._Element, *, message_id: str, mpc: str, timestamp: datetime
) -> etree._Element:
    """eb:SignalMessage/eb:PullRequest on ``mpc`` (ebMS 3.0 Core section 5.2.3.1)."""
    messaging = _messaging(header)
    signal = _eb(messaging, "SignalMessage")
    _message_info(signal, message_id, timestamp, None)
    _eb(signal, "PullRequest", mpc=mpc)
    return messaging


# --------------------------------------------------------------------------- parsing


def _fail(el: etree._Element | str, code: str, message: str, ebms: str = "EBMS:0009") -> ValidationFailed:
    path = el if isinstance(el, str) else element_path(el)
    return ValidationFailed([ValidationIssue(path, code, message)], details={"ebms": ebms})


def _one(parent: etree._Element, name: str, *, required: bool = True) -> etree._Element | None:
    found = parent.findall(_EB + name)
    if len(found) > 1:
        raise _fail(found[1], "AS4_REPEATED", f"eb:{name} occurs {len(found)} times; once is allowed")
    if not found:
        if required:
            raise _fail(f"{element_path(parent)}/eb:{name}", "AS4_MISSING", f"eb:{name} is required")
        return None
    return found[0]


def _text(parent: etree._Element, name: str, *, required: bool = True) -> str | None:
    el = _one(parent, name, required=required)
    if el is None:
        return None
    value = (el.text or "").strip()
    if required and not value:
        raise _fail(el, "AS4_EMPTY", f"eb:{name} is empty")
    return value or None


def _timestamp(info: etree._Element) -> datetime:
    el = _one(info, "Timestamp")
    assert el is not None
    raw = (el.text or "").strip()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(el, "AS4_TIMESTAMP", f"eb:Timestamp {raw!r} is not an xsd:dateTime", "EBMS:0003") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _party(party_info: etree._Element, name: str) -> Party:
    holder = _one(party_info, name)
    assert holder is not None
    ids = holder.findall(_EB + "PartyId")
    if len(ids) != 1:
        raise _fail(holder, "AS4_PARTY", f"eb:{name} must hold exactly one eb:PartyId (found {len(ids)})", "EBMS:0003")
    value = (ids[0].text or "").strip()
    if not value:
        raise _fail(ids[0], "AS4_EMPTY", "eb:PartyId is empty", "EBMS:0003")
    return Party(value, ids[0].get("type"), _text(holder, "Role") or "")


def _props(parent: etree._Element | None) -> tuple[Property, ...]:
    if parent is None:
        return ()
    out = []
    for p in parent.findall(_EB + "Property"):
        name = p.get("name")
        if not name:
            raise _fail(p, "AS4_PROPERTY", "eb:Property has no name", "EBMS:0003")
        out.append(Property(name, (p.text or "").strip(), p.get("type")))
    return tuple(out)


def _single_child(messaging: etree._Element, name: str) -> etree._Element:
    users = messaging.findall(_EB + "UserMessage")
    signals = messaging.findall(_EB + "SignalMessage")
    found = users if name == "UserMessage" else signals
    if len(users) + len(signals) != 1 or len(found) != 1:
        raise _fail(
            messaging,
            "AS4_BUNDLING",
            f"eb:Messaging must hold exactly one eb:{name} "
            f"(found {len(users)} UserMessage, {len(signals)} SignalMessage)",
            "EBMS:0002" if len(users) + len(signals) > 1 else "EBMS:0009",
        )
    return found[0]


def parse_user_message(messaging: etree._Element) -> UserMessage:
    """The UserMessage of a *verified* eb:Messaging."""
    user = _single_child(messaging, "UserMessage")
    info = _one(user, "MessageInfo")
    assert info is not None
    party_info = _one(user, "PartyInfo")
    collab = _one(user, "CollaborationInfo")
    assert party_info is not None and collab is not None
    service_el = _one(collab, "Service")
    agreement_el = _one(collab, "AgreementRef", required=False)
    assert service_el is not None
    parts = []
    payload_info = _one(user, "PayloadInfo", required=False)
    if payload_info is not None:
        for part in payload_info.findall(_EB + "PartInfo"):
            href = part.get("href")
            if not href or not href.startswith("cid:"):
                raise _fail(
                    part,
                    "AS4_PART_HREF",
                    f"eb:PartInfo href {href!r} is not a cid: reference to a MIME part",
                    "EBMS:0011",
                )
            parts.append(PartInfo(href, _props(_one(part, "PartProperties", required=False))))
    return UserMessage(
        message_id=_text(info, "MessageId") or "",
        timestamp=_timestamp(info),
        ref_to_message_id=_text(info, "RefToMessageId", required=False),
        sender=_party(party_info, "From"),
        receiver=_party(party_info, "To"),
        service=(service_el.text or "").strip(),
        service_type=service_el.get("type"),
        action=_text(collab, "Action") or "",
        conversation_id=_text(collab, "ConversationId") or "",
        agreement=(agreement_el.text or "").strip() if agreement_el is not None else None,
        agreement_type=agreement_el.get("type") if agreement_el is not None else None,
        pmode=agreement_el.get("pmode") if agreement_el is not None else None,
        properties=_props(_one(user, "MessageProperties", required=False)),
        parts=tuple(parts),
        mpc=user.get("mpc"),
    )


def parse_signal_message(messaging: etree._Element) -> SignalMessage:
    """The SignalMessage (Receipt or Errors) of a *verified* eb:Messaging."""
    signal = _single_child(messaging, "SignalMessage")
    info = _one(signal, "MessageInfo")
    assert info is not None
    receipt = _one(signal, "Receipt", required=False)
    pull = _one(signal, "PullRequest", required=False)
    acknowledged: list[etree._Element] = []
    if receipt is not None:
        nri = receipt.find(_EBBP + "NonRepudiationInformation")
        if nri is not None:
            acknowledged = list(nri.iterfind(f"{_EBBP}MessagePartNRInformation/{{{NAMESPACES['ds']}}}Reference"))
    errors = []
    for el in signal.findall(_EB + "Error"):
        code = el.get("errorCode") or ""
        if not code:
            raise _fail(el, "AS4_ERROR_CODE", "eb:Error has no errorCode", "EBMS:0003")
        description = el.find(_EB + "Description")
        detail = el.find(_EB + "ErrorDetail")
        errors.append(
            EbmsError(
                code=code,
                severity=el.get("severity") or "failure",
                category=el.get("category"),
                short_description=el.get("shortDescription"),
                description=(description.text or "").strip() if description is not None else None,
                detail=(detail.text or "").strip() if detail is not None else None,
                ref_to_message_in_error=el.get("refToMessageInError"),
                origin=el.get("origin"),
            )
        )
    if receipt is None and pull is None and not errors:
        raise _fail(
            signal, "AS4_SIGNAL", "eb:SignalMessage holds neither a Receipt, a PullRequest nor an Error", "EBMS:0003"
        )
    return SignalMessage(
        message_id=_text(info, "MessageId") or "",
        timestamp=_timestamp(info),
        ref_to_message_id=_text(info, "RefToMessageId", required=False),
        receipt=receipt is not None,
        acknowledged=tuple(acknowledged),
        errors=tuple(errors),
        pull_mpc=None if pull is None else (pull.get("mpc") or DEFAULT_MPC),
    )
