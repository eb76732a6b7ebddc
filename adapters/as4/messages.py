"""Building and opening AS4 messages: user messages, non-repudiation receipts, error signals.

Sending (:func:`build_user_message`): compress (gzip), sign eb:Messaging, the
Body and each payload's compressed octets, then encrypt each payload for the
partner (AS4 profile section 5.1: compress, sign, encrypt). Each attachment
digest is over the octets as the Attachment-Content-Signature-Transform gives
them for the MIME type the partner will see (the part's Content-Type, or
``EncryptedData/@MimeType``: ``application/gzip`` when compressed, digested as
is; XML canonicalized and other text with CRLF line ends when not;
:func:`signing.wss.swa_content_octets`).

Receiving (:func:`open_user_message`): split the MIME parts, parse the SOAP
part with the hardened parser, pick the partner by the (not yet trusted)
eb:From PartyId and, among that partner's agreements, the PMode by the (not
yet trusted) eb:Service, eb:Service/@type, eb:Action and AgreementRef/@pmode
(:func:`select_agreement`), verify the signature with that partner's trust
store (signer certificate, SignatureValue, eb:Messaging and Body digests:
public-key work only), read the UserMessage from the **verified** eb:Messaging
only and check that its eb:From (PartyId and type) is that partner
(``IDENTITY_MISMATCH``, EBMS:0004, otherwise; the trust store accepts only the
partner's own certificates, ``CERT_IDENTITY_MISMATCH`` otherwise) and its eb:To (PartyId and type) is
us (EBMS:0003), that its Service and Action are those of the selected PMode;
only then decrypt (our private key), check each attachment's signed digest
over the decrypted octets (AS4 signs before it encrypts, so these digests cannot
be checked earlier; each is over the octets transformed for the MIME type
declared by the part's Content-Type, or by ``EncryptedData/@MimeType`` when it
arrived encrypted), that every PartInfo has its MIME part (and no part is
unlisted), and decompress within a size limit.

Signals (:func:`build_receipt`, :func:`build_error_signal`,
:func:`verify_signal`, :func:`check_receipt`): signed SOAP envelopes without
attachments; a receipt copies the user message's ds:References into
ebbp:NonRepudiationInformation, and the sender accepts it only when those are
exactly the references it signed.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree

from adapters.as4.ebms import (
    EbmsError,
    PartInfo,
    Property,
    SignalMessage,
    UserMessage,
    build_error_messaging,
    build_pull_request_messaging,
    build_receipt_messaging,
    build_user_messaging,
    ebms_error_for,
    new_envelope,
    parse_signal_message,
    parse_user_message,
)
from adapters.as4.mime import MimePart, build_multipart, parse_multipart
from adapters.as4.pmode import PMode
from gateway.errors import (
    ConfigError,
    EncryptionMissing,
    IdentityMismatch,
    NswError,
    ReceiptInvalid,
    ValidationFailed,
    ValidationIssue,
)
from signing.algorithms import DS_NS
from signing.keys import Signer
from signing.trust import TrustStore
from signing.wss import (
    EB_NS,
    SOAP12_NS,
    SignedReference,
    WssPolicy,
    WssVerifyResult,
    element_path,
    sign_envelope,
    verify_envelope,
    verify_envelope_signature,
)
from signing.xenc import Decrypter, decrypt_attachments, encrypt_attachments
from signing.xml import DEFAULT_LIMITS, parse_xml, serialize

__all__ = [
    "As4Partner",
    "Payload",
    "OutgoingMessage",
    "ReceivedMessage",
    "VerifiedSignal",
    "new_message_id",
    "signed_references",
    "build_user_message",
    "open_user_message",
    "peek_message_id",
    "select_agreement",
    "AGREEMENT_PATH",
    "build_receipt",
    "build_error_signal",
    "build_empty_mpc_warning",
    "build_pull_request",
    "verify_signal",
    "check_receipt",
    "SIGNAL_CONTENT_TYPE",
]

SIGNAL_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
_EB = f"{{{EB_NS}}}"
_S = f"{{{SOAP12_NS}}}"
_DS = f"{{{DS_NS}}}"
_GZIP = "application/gzip"


@dataclass(frozen=True)
class As4Partner:
    """Everything about one partner: the agreement, whom we trust to sign for it, whom we encrypt to."""

    pmode: PMode
    trust: TrustStore
    encryption_certificate: x509.Certificate | None = None


@dataclass(frozen=True)
class Payload:
    """One payload to send: content, MIME type and (optionally) its Content-ID."""

    content: bytes
    mime_type: str = "application/xml"
    content_id: str | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """A built user message: the exact bytes to (re)send and the references we signed."""

    user_message: UserMessage
    body: bytes
    content_type: str
    references: tuple[SignedReference, ...]


@dataclass(frozen=True)
class ReceivedMessage:
    """A verified user message: read only these."""

    user_message: UserMessage
    payloads: Mapping[str, bytes]
    """Content-ID -> payload (decrypted, decompressed), in PayloadInfo order."""
    mime_types: Mapping[str, str]
    verification: WssVerifyResult
    partner: As4Partner = field(repr=False)


@dataclass(frozen=True)
class VerifiedSignal:
    """A signal whose signature verified for the partner; not yet correlated to a sent message."""

    signal: SignalMessage
    verification: WssVerifyResult
    raw: bytes


def new_message_id(domain: str) -> str:
    """A fresh ebMS MessageId (RFC 2822 msg-id form: local@domain)."""
    return f"{uuid.uuid4()}@{domain}"


def signed_references(signature: etree._Element) -> tuple[SignedReference, ...]:
    """The ds:References of a signature we produced."""
    out = []
    for ref in signature.iterfind(f"{_DS}SignedInfo/{_DS}Reference"):
        transforms = tuple(t.get("Algorithm", "") for t in ref.iterfind(f"{_DS}Transforms/{_DS}Transform"))
        method = ref.find(_DS + "DigestMethod")
        value = ref.find(_DS + "DigestValue")
        out.append(
            SignedReference(
                ref.get("URI", ""),
                transforms,
                method.get("Algorithm", "") if method is not None else "",
                "".join((value.text or "").split()) if value is not None else "",
                ref,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- sending


def build_user_message(
    user: UserMessage,
    payloads: Sequence[Payload],
    *,
    signer: Signer,
    pmode: PMode,
    encrypt_for: x509.Certificate | None,
) -> OutgoingMessage:
    """Compress, sign and encrypt one user message; ``user.parts`` is filled from ``payloads``."""
    if pmode.security.encrypt and encrypt_for is None:
        raise ConfigError(
            f"PMode {pmode.id} encrypts payloads but no encryption certificate is configured "
            f"for {pmode.responder.party_id}",
            field="encryption_certificate",
        )
    envelope, header, _ = new_envelope()
    parts: list[PartInfo] = []
    signed: dict[str, bytes] = {}
    mime: dict[str, str] = {}
    for number, payload in enumerate(payloads, start=1):
        cid = payload.content_id or f"part{number}-{uuid.uuid4().hex}@{pmode.message_id_domain}"
        props = [Property("MimeType", payload.mime_type)]
        data = payload.content
        if pmode.compress:
            data = gzip.compress(data, mtime=0)
            props.append(Property("CompressionType", _GZIP))
        parts.append(PartInfo("cid:" + cid, tuple(props)))
        signed[cid] = data
        mime[cid] = _GZIP if pmode.compress else payload.mime_type
    user = UserMessage(**{**user.__dict__, "parts": tuple(parts)})
    build_user_messaging(header, user)
    signature = sign_envelope(
        envelope,
        signer,
        {cid: (data, mime[cid]) for cid, data in signed.items()},
        algorithm=pmode.security.signature_method,
    )
    references = signed_references(signature)
    if pmode.security.encrypt:
        assert encrypt_for is not None
        ciphertexts = encrypt_attachments(
            envelope,
            {cid: (data, mime[cid]) for cid, data in signed.items()},
            encrypt_for,
            algorithm=pmode.security.encryption_algorithm,
        )
        attachments = [MimePart(cid, "application/octet-stream", ciphertexts[cid]) for cid in signed]
    else:
        attachments = [MimePart(cid, mime[cid], data) for cid, data in signed.items()]
    body, content_type = build_multipart(serialize(envelope), attachments)
    return OutgoingMessage(user, body, content_type, references)


# --------------------------------------------------------------------------- receiving


def _unverified_text(envelope: etree._Element, path: str) -> str | None:
    found = envelope.find(path)
    return (found.text or "").strip() if found is not None else None


def peek_message_id(envelope: etree._Element) -> str | None:
    """The (unverified) MessageId of an envelope, for RefToMessageId of an error signal only."""
    return _unverified_text(envelope, f"{_S}Header/{_EB}Messaging/{_EB}UserMessage/{_EB}MessageInfo/{_EB}MessageId")


AGREEMENT_PATH = "/S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage/eb:CollaborationInfo"
"""Where the elements that select the PMode of an inbound user message are."""


def _agreement_error(code: str, ebms: str, where: str, message: str) -> ValidationFailed:
    return ValidationFailed([ValidationIssue(f"{AGREEMENT_PATH}/{where}", code, message)], details={"ebms": ebms})


def _mismatch(pmode: PMode, service: str | None, service_type: str | None, action: str | None) -> str | None:
    """The first of eb:Service, eb:Service/@type, eb:Action that differs from ``pmode`` (None: it matches)."""
    if service != pmode.service:
        return "eb:Service"
    if service_type != pmode.service_type:
        return "eb:Service/@type"
    if action != pmode.action:
        return "eb:Action"
    return None


def select_agreement(
    agreements: As4Partner | Sequence[As4Partner],
    *,
    service: str | None,
    service_type: str | None,
    action: str | None,
    pmode_id: str | None = None,
) -> As4Partner:
    """The partner agreement (PMode) an inbound user message belongs to, by its Service, Service/@type and Action.

    ``agreements`` are the partner's PModes for messages to us (one or several,
    e.g. one per Action). A message naming a PMode (``AgreementRef/@pmode``) is
    held to that PMode; otherwise the first PMode whose Service, Service/@type
    and Action equal the message's is selected.

    Errors, per the ebMS 3.0 Core specification, section 6.7.1 (ebMS processing errors):

    * no PMode of the partner has these values, or ``@pmode`` names none of
      them: **EBMS:0001 ValueNotRecognized** (Content): "some element/attribute
      contains a value that could not be recognized and therefore could not be
      used by the MSH" (no P-Mode can be associated with the message; issue
      code ``AS4_UNKNOWN_PMODE``, field the eb:Service, eb:Service/@type,
      eb:Action or eb:AgreementRef/@pmode at fault);
    * the message names a PMode (``@pmode``) but its Service or Action are not
      that PMode's: **EBMS:0010 ProcessingModeMismatch** (Processing): "the ebMS
      header ... expected by the MSH is not compatible with the expected
      content, based on the associated P-Mode" (issue code
      ``AS4_PMODE_MISMATCH``).

    :func:`open_user_message` calls it twice: on the unverified header, only
    to pick the trust store and policy to verify with (a header forged around
    a signature is refused as such, e.g. ``SIG_WRAPPING``, not as an unknown
    PMode), then on the **verified** header, whose verdict counts.
    """
    candidates = (agreements,) if isinstance(agreements, As4Partner) else tuple(agreements)
    if pmode_id is not None:
        named = [a for a in candidates if a.pmode.id == pmode_id]
        if not named:
            raise _agreement_error(
                "AS4_UNKNOWN_PMODE",
                "EBMS:0001",
                "eb:AgreementRef/@pmode",
                f"no agreement {pmode_id!r} with this partner",
            )
        for agreement in named:  # one PMode id under several document types' Service/Action
            if _mismatch(agreement.pmode, service, service_type, action) is None:
                return agreement
        where = _mismatch(named[0].pmode, service, service_type, action)
        if where is not None:
            raise _agreement_error(
                "AS4_PMODE_MISMATCH",
                "EBMS:0010",
                where,
                f"{where} is not that of PMode {pmode_id!r} "
                f"(service {named[0].pmode.service!r}, action {named[0].pmode.action!r})",
            )
        return named[0]
    for agreement in candidates:
        if _mismatch(agreement.pmode, service, service_type, action) is None:
            return agreement
    if not any(a.pmode.service == service and a.pmode.service_type == service_type for a in candidates):
        where = "eb:Service" if not any(a.pmode.service == service for a in candidates) else "eb:Service/@type"
        value = service if where == "eb:Service" else service_type
    else:
        where, value = "eb:Action", action
    raise _agreement_error(
        "AS4_UNKNOWN_PMODE", "EBMS:0001", where, f"no agreement with this partner for {where} {value!r}"
    )


def _decompress(data: bytes, limit: int, where: str) -> bytes:
    engine = zlib.decompressobj(wbits=31)
    try:
        out = engine.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValidationFailed(
            [ValidationIssue(where, "AS4_DECOMPRESSION", f"not gzip data: {exc}")], details={"ebms": "EBMS:0303"}
        ) from exc
    if len(out) > limit or engine.unconsumed_tail:
        raise ValidationFailed(
            [ValidationIssue(where, "AS4_TOO_LARGE", f"the payload decompresses to more than {limit} bytes")],
            details={"ebms": "EBMS:0303"},
        )
    if not engine.eof:
        raise ValidationFailed(
            [ValidationIssue(where, "AS4_DECOMPRESSION", "truncated gzip data")], details={"ebms": "EBMS:0303"}
        )
    return out


def _check_parties(
    user: UserMessage,
    partner: As4Partner,
    claimed: str,
    our_party_id: str,
    messaging: etree._Element,
) -> None:
    """The signed eb:From (PartyId and type) is the partner the message was verified for (whose ``trust``
    accepted the signer's certificate as one of its signers), and the signed eb:To (PartyId and type) is us."""
    where_from = element_path(messaging) + "/eb:UserMessage/eb:PartyInfo/eb:From/eb:PartyId"
    responder = partner.pmode.responder
    if user.sender.party_id != claimed or user.sender.party_id != responder.party_id:
        raise IdentityMismatch(
            f"eb:From {user.sender.party_id!r} is not the partner whose key signed", field=where_from
        )
    if responder.party_id_type is not None and user.sender.party_type != responder.party_id_type:
        raise IdentityMismatch(
            f"eb:From {user.sender.party_id!r} has type {user.sender.party_type!r}, the partner's is "
            f"{responder.party_id_type!r}",
            field=where_from + "/@type",
        )
    where_to = element_path(messaging) + "/eb:UserMessage/eb:PartyInfo/eb:To/eb:PartyId"
    if user.receiver.party_id != our_party_id:
        raise ValidationFailed(
            [ValidationIssue(where_to, "AS4_PARTY", f"eb:To {user.receiver.party_id!r} is not us ({our_party_id!r})")],
            details={"ebms": "EBMS:0003"},
        )
    ours = partner.pmode.initiator.party_id_type
    if ours is not None and user.receiver.party_type != ours:
        raise ValidationFailed(
            [
                ValidationIssue(
                    where_to + "/@type",
                    "AS4_PARTY",
                    f"eb:To {user.receiver.party_id!r} has type {user.receiver.party_type!r}, ours is {ours!r}",
                )
            ],
            details={"ebms": "EBMS:0003"},
        )


def open_user_message(
    body: bytes,
    content_type: str,
    *,
    our_party_id: str,
    partner_for: Callable[[str], As4Partner | Sequence[As4Partner]],
    decrypter: Decrypter | None,
    at: datetime | None = None,
    max_payload_bytes: int = DEFAULT_LIMITS.max_bytes,
) -> ReceivedMessage:
    """Verify an inbound user message's sender, then decrypt it; return what was verified.

    ``max_payload_bytes`` bounds each (decompressed) payload of a partner whose PMode sets no
    ``max_payload_bytes`` of its own (default: the XML parser's limit).

    ``partner_for(party_id)`` returns the partner's agreement(s) for the
    claimed eb:From PartyId or raises (``AS4_UNKNOWN_PARTNER``); the one
    matching the message's Service and Action is selected by
    :func:`select_agreement` (EBMS:0001 when none does).
    """
    mime = parse_multipart(body, content_type)
    envelope = parse_xml(mime.soap)
    claimed = _unverified_text(
        envelope, f"{_S}Header/{_EB}Messaging/{_EB}UserMessage/{_EB}PartyInfo/{_EB}From/{_EB}PartyId"
    )
    if not claimed:
        raise ValidationFailed(
            [
                ValidationIssue(
                    "/S12:Envelope/S12:Header/eb:Messaging/eb:UserMessage/eb:PartyInfo/eb:From/eb:PartyId",
                    "AS4_MISSING",
                    "no eb:From PartyId",
                )
            ],
            details={"ebms": "EBMS:0009"},
        )
    collaboration = f"{_S}Header/{_EB}Messaging/{_EB}UserMessage/{_EB}CollaborationInfo"
    service_el = envelope.find(f"{collaboration}/{_EB}Service")
    agreement_el = envelope.find(f"{collaboration}/{_EB}AgreementRef")
    agreements = partner_for(claimed)
    try:  # the unverified header only picks the keys and policy to verify with ...
        partner = select_agreement(
            agreements,
            service=(service_el.text or "").strip() if service_el is not None else None,
            service_type=service_el.get("type") if service_el is not None else None,
            action=_unverified_text(envelope, f"{collaboration}/{_EB}Action"),
            pmode_id=agreement_el.get("pmode") if agreement_el is not None else None,
        )
    except ValidationFailed:  # ... the verdict on the agreement is given on the verified header, below
        partner = agreements if isinstance(agreements, As4Partner) else agreements[0]
    security = partner.pmode.security
    raw = {cid: part.content for cid, part in mime.attachments.items()}
    # The sender is authenticated (public keys only) before our private key decrypts anything: the signature
    # covers eb:Messaging and the Body as sent, the attachments as they were before encryption.
    signed = verify_envelope_signature(envelope, trust=partner.trust, content_ids=raw, policy=security.verify, at=at)
    assert signed.messaging is not None or not security.verify.require_messaging
    if signed.messaging is None:
        raise ValidationFailed(
            [ValidationIssue("/S12:Envelope/S12:Header/eb:Messaging", "AS4_MISSING", "no eb:Messaging")],
            details={"ebms": "EBMS:0009"},
        )
    user = parse_user_message(signed.messaging)
    chosen = select_agreement(
        agreements, service=user.service, service_type=user.service_type, action=user.action, pmode_id=user.pmode
    )
    if chosen is not partner:
        raise ValidationFailed(
            [
                ValidationIssue(
                    element_path(signed.messaging) + "/eb:UserMessage/eb:CollaborationInfo",
                    "AS4_PMODE_MISMATCH",
                    f"the signed header belongs to PMode {chosen.pmode.id!r}, "
                    f"not {partner.pmode.id!r} it was verified under",
                )
            ],
            details={"ebms": "EBMS:0010"},
        )
    _check_parties(user, partner, claimed, our_party_id, signed.messaging)
    decrypted = decrypt_attachments(envelope, raw, decrypter)
    if security.require_encryption:
        for cid in raw:
            if cid not in decrypted.encrypted:
                raise EncryptionMissing(
                    f"attachment cid:{cid} arrived unencrypted; the PMode requires encryption", field="cid:" + cid
                )
    verified = signed.verify_attachments(
        {
            cid: (data, decrypted.mime_types.get(cid) or mime.attachments[cid].content_type)
            for cid, data in decrypted.attachments.items()
        }
    )
    listed = [p.cid for p in user.parts]
    for part in user.parts:
        if part.cid not in verified.attachments:
            raise ValidationFailed(
                [ValidationIssue(part.href, "AS4_PART_MISSING", f"eb:PartInfo {part.href} has no signed MIME part")],
                details={"ebms": "EBMS:0007"},
            )
    for cid in raw:
        if cid not in listed:
            raise ValidationFailed(
                [
                    ValidationIssue(
                        "cid:" + cid, "AS4_PART_UNLISTED", f"MIME part <{cid}> is not listed in eb:PayloadInfo"
                    )
                ],
                details={"ebms": "EBMS:0007"},
            )
    payloads: dict[str, bytes] = {}
    mime_types: dict[str, str] = {}
    for part in user.parts:
        assert part.cid is not None
        data = verified.attachments[part.cid]
        compression = part.prop("CompressionType")
        limit = partner.pmode.max_payload_bytes or max_payload_bytes
        if compression == _GZIP:
            data = _decompress(data, limit, part.href)
        elif compression is not None:
            raise ValidationFailed(
                [ValidationIssue(part.href, "AS4_COMPRESSION", f"unsupported CompressionType {compression!r}")],
                details={"ebms": "EBMS:0303"},
            )
        elif len(data) > limit:
            raise ValidationFailed(
                [ValidationIssue(part.href, "AS4_TOO_LARGE", "payload exceeds the PMode's limit")],
                details={"ebms": "EBMS:0004"},
            )
        payloads[part.cid] = data
        mime_types[part.cid] = part.prop("MimeType") or decrypted.mime_types.get(part.cid) or "application/octet-stream"
    return ReceivedMessage(user, payloads, mime_types, verified, partner)


# --------------------------------------------------------------------------- signals


def _signed_signal(build: Callable[[etree._Element], object], signer: Signer) -> bytes:
    envelope, header, _ = new_envelope()
    build(header)
    sign_envelope(envelope, signer)
    return serialize(envelope)


def build_receipt(received: ReceivedMessage, signer: Signer, *, domain: str, at: datetime | None = None) -> bytes:
    """The signed non-repudiation receipt of a verified user message."""
    references = [r.element for r in received.verification.references]
    return _signed_signal(
        lambda header: build_receipt_messaging(
            header,
            message_id=new_message_id(domain),
            ref_to_message_id=received.user_message.message_id,
            references=references,
            timestamp=at or datetime.now(UTC),
        ),
        signer,
    )


def _signed_error_signal(
    err: EbmsError, ref_to_message_id: str | None, signer: Signer, *, domain: str, at: datetime | None
) -> bytes:
    """A signed ebMS error signal carrying ``err`` under a new MessageId of ``domain``."""
    return _signed_signal(
        lambda header: build_error_messaging(
            header,
            message_id=new_message_id(domain),
            ref_to_message_id=ref_to_message_id,
            errors=[err],
            timestamp=at or datetime.now(UTC),
        ),
        signer,
    )


def build_error_signal(
    error: NswError, ref_to_message_id: str | None, signer: Signer, *, domain: str, at: datetime | None = None
) -> bytes:
    """A signed ebMS error signal answering ``error`` (ErrorDetail carries our code and incident id)."""
    err = EbmsError(
        code=ebms_error_for(error),
        description=error.message,
        detail=f"{error.code} incident {error.incident_id}" + (f" at {error.field}" if error.field else ""),
        ref_to_message_in_error=ref_to_message_id,
    )
    return _signed_error_signal(err, ref_to_message_id, signer, domain=domain, at=at)


def build_pull_request(mpc: str, signer: Signer, *, domain: str, at: datetime | None = None) -> bytes:
    """A signed eb:PullRequest on ``mpc`` (ebMS 3.0 Core section 5.2.3.1)."""
    return _signed_signal(
        lambda header: build_pull_request_messaging(
            header, message_id=new_message_id(domain), mpc=mpc, timestamp=at or datetime.now(UTC)
        ),
        signer,
    )


def build_empty_mpc_warning(
    ref_to_message_id: str, mpc: str, signer: Signer, *, domain: str, at: datetime | None = None
) -> bytes:
    """The signed answer to a PullRequest on an MPC holding nothing for the puller: EBMS:0006
    EmptyMessagePartitionChannel, severity ``warning`` (ebMS 3.0 Core section 6.7.2)."""
    err = EbmsError(
        code="EBMS:0006",
        severity="warning",
        description=f"no message waiting on {mpc}",
        ref_to_message_in_error=ref_to_message_id,
    )
    return _signed_error_signal(err, ref_to_message_id, signer, domain=domain, at=at)


def verify_signal(
    body: bytes, content_type: str, *, trust: TrustStore, policy: WssPolicy | None = None, at: datetime | None = None
) -> VerifiedSignal:
    """Verify a signal's signature (eb:Messaging and Body) for the partner and parse the verified signal."""
    mime = parse_multipart(body, content_type or "application/soap+xml")
    envelope = parse_xml(mime.soap)
    policy = policy or WssPolicy()
    verified = verify_envelope(
        envelope,
        trust=trust,
        attachments={cid: (p.content, p.content_type) for cid, p in mime.attachments.items()},
        policy=policy.model_copy(update={"require_messaging": True, "require_body": True}),
        at=at,
    )
    assert verified.messaging is not None
    return VerifiedSignal(parse_signal_message(verified.messaging), verified, body)


def check_receipt(signal: VerifiedSignal, sent: OutgoingMessage) -> None:
    """The receipt acknowledges exactly ``sent``: its MessageId and every reference we signed."""
    where = (
        element_path(signal.verification.messaging) + "/eb:SignalMessage"
        if signal.verification.messaging is not None
        else "eb:SignalMessage"
    )
    if signal.signal.ref_to_message_id != sent.user_message.message_id:
        raise ReceiptInvalid(
            f"the receipt acknowledges {signal.signal.ref_to_message_id!r}, not {sent.user_message.message_id!r}",
            field=where + "/eb:MessageInfo/eb:RefToMessageId",
        )
    if not signal.signal.receipt:
        raise ReceiptInvalid("the signal is not a receipt", field=where)
    acknowledged = {r.key() for r in signed_references_of(signal.signal.acknowledged)}
    expected = {r.key() for r in sent.references}
    if acknowledged != expected:
        missing = sorted(k[0] for k in expected - acknowledged)
        extra = sorted(k[0] for k in acknowledged - expected)
        raise ReceiptInvalid(
            f"the receipt's NonRepudiationInformation does not match what we signed (not acknowledged: {missing}; "
            f"unknown: {extra})",
            field=where + "/eb:Receipt/ebbp:NonRepudiationInformation",
        )


def signed_references_of(elements: Sequence[etree._Element]) -> tuple[SignedReference, ...]:
    """SignedReference views of ds:Reference elements (e.g. those of a receipt)."""
    holder = etree.Element(_DS + "Signature")
    info = etree.SubElement(holder, _DS + "SignedInfo")
    out = []
    for el in elements:
        info.append(_copy(el))
    for ref, original in zip(signed_references(holder), elements, strict=True):
        out.append(SignedReference(ref.uri, ref.transforms, ref.digest_method, ref.digest_value, original))
    return tuple(out)


def _copy(el: etree._Element) -> etree._Element:
    import copy

    return copy.deepcopy(el)
