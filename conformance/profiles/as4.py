"""Profile ``asw-formd``: AS4 (ebMS 3.0 One-Way/Push) with the ATIGA e-Form D, as ASEAN partners exchange it.

The kit (as sender) builds user messages with the gateway's AS4 public API
(``adapters.as4.build_user_message``: gzip, WS-Security signature over eb:Messaging, Body and payload,
AES-128-GCM encryption for the party's certificate) from the kit's party ``settings.as4.kit_party_id``
to ``settings.as4.party_id``, posts them to ``settings.as4.endpoint`` and reads the answer: a signal whose
signature must verify for the party (``verify_signal``), and, for a receipt, that acknowledges exactly the
message and the references the kit signed (``check_receipt``). An ebMS error signal's ErrorDetail starts
with the party's coded error (``SIG_DIGEST_MISMATCH incident ...``).

As receiver the kit is the importing side: it receipts the e-Form Ds the party delivers (RX01, RX02), then
(RX03-RX07, which also need ``--target``) sends the party certificate notifications about them under eb:Action
``settings.as4.notification_action`` (receipt, utilization, rejection with a reason, verification request; one
about a certificate never carried) and reads each certificate's status as its issuer sees it
(``GET /v1/certificates/{country}/{number}`` with ``settings.as4.issuer_token``).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from adapters.as4 import (
    OutgoingMessage,
    Party,
    PartyConfig,
    Payload,
    PMode,
    ReceivedMessage,
    UserMessage,
    build_user_message,
    check_receipt,
    verify_signal,
)
from adapters.as4.mime import parse_multipart
from conformance.listener import Incoming, Listener, listening, require_target
from conformance.pki import ANOTHER_PARTNER, EXPIRED, REVOKED, KitPki, open_pki
from conformance.profiles.rest import CERTIFICATE_NUMBER, sample_document
from conformance.registry import case, profile
from conformance.runner import PREPARING, TRANSPORT_ERRORS, CaseContext, HttpReply, PrerequisiteUnmet, unreachable
from conformance.settings import As4Settings, RunOptions
from gateway.errors import NswError
from signing.identity import SignerIdentity
from signing.keys import Signer
from signing.trust import PinnedCertificate, TrustStore
from signing.wss import EB_NS, SOAP12_NS
from signing.xml import parse_xml, serialize

__all__ = ["AS4", "As4Session", "PARTY_ID_TYPE"]

PARTY_ID_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
_EB = f"{{{EB_NS}}}"
_S = f"{{{SOAP12_NS}}}"


@dataclass(frozen=True)
class SignalAnswer:
    """What the party answered: the verified signal (None if it did not verify) and the coded error."""

    status: int
    signal: object | None
    code: str | None
    problem: str


@dataclass
class As4Session:
    options: RunOptions
    pki: KitPki
    party_certificate: x509.Certificate
    receipt_trust: TrustStore
    """Who may sign for the party (its receipts; as receiver, its user messages)."""
    listener: Listener | None = None
    seen: set[str] = field(default_factory=set)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    """(issuing country, number) of each e-Form D the party delivered and the kit receipted, in order."""

    @property
    def settings(self) -> As4Settings:
        return self.options.settings.as4

    def pmode(self, action: str | None = None) -> PMode:
        s = self.settings
        return PMode(
            id=f"{s.kit_party_id}-{s.party_id}-formd" + (f"-{action}" if action else ""),
            initiator=PartyConfig(party_id=s.kit_party_id, party_id_type=PARTY_ID_TYPE),
            responder=PartyConfig(
                party_id=s.party_id,
                party_id_type=PARTY_ID_TYPE,
                role="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder",
            ),
            service=s.service,
            action=action or s.action,
            message_id_domain="conformance",
        )

    def signer(self, kind: str = "valid") -> Signer:
        if kind == "intruder":
            return self.pki.intruder_signer()
        if kind == "another-partner":
            if ANOTHER_PARTNER not in self.pki.pki.names:
                raise PrerequisiteUnmet(
                    f"the kit's PKI has no {ANOTHER_PARTNER!r} certificate; run 'nswgw conformance pki DIR --force'"
                )
            return self.pki.signer(ANOTHER_PARTNER)
        return self.pki.signer({"valid": self.options.settings.signer, "expired": EXPIRED, "revoked": REVOKED}[kind])

    def build(
        self,
        *,
        signer: str = "valid",
        conversation: str | None = None,
        action: str | None = None,
        payload: bytes | None = None,
    ) -> OutgoingMessage:
        """A signed, encrypted user message of the kit's party carrying ``payload`` (default: the sample e-Form D)
        under eb:Action ``action`` (default: settings 'as4.action')."""
        pm = self.pmode(action)
        user = UserMessage(
            message_id=f"{uuid.uuid4().hex}@conformance",
            timestamp=datetime.now(UTC),
            sender=Party(pm.initiator.party_id, pm.initiator.party_id_type, pm.initiator.role),
            receiver=Party(pm.responder.party_id, pm.responder.party_id_type, pm.responder.role),
            service=pm.service,
            action=pm.action,
            conversation_id=conversation or f"conf-conv-{uuid.uuid4().hex}",
        )
        body = sample_document() if payload is None else payload
        return build_user_message(
            user, [Payload(body)], signer=self.signer(signer), pmode=pm, encrypt_for=self.party_certificate
        )

    async def post(self, ctx: CaseContext, body: bytes, content_type: str, note: str = "") -> HttpReply:
        return await ctx.http.post(
            self.options.url(self.settings.endpoint),
            body,
            {"Content-Type": content_type, "SOAPAction": '""'},
            note=note,
        )

    def answer(self, ctx: CaseContext, reply: HttpReply) -> SignalAnswer:
        ctype = reply.headers.get("Content-Type", "application/soap+xml")
        try:
            verified = verify_signal(reply.body, ctype, trust=self.receipt_trust)
        except NswError as exc:
            code = reply.error_code or _unverified_error_code(reply.body, ctype)
            ctx.observe(code)
            return SignalAnswer(reply.status, None, code, f"the answer's signature does not verify: {exc}")
        code = None
        if verified.signal.errors:
            detail = verified.signal.errors[0].detail or verified.signal.errors[0].code
            code = detail.split()[0] if detail else None
        ctx.observe(code)
        return SignalAnswer(reply.status, verified, code, "")


def _unverified_error_code(body: bytes, content_type: str) -> str | None:
    try:
        root = parse_xml(parse_multipart(body, content_type).soap)
    except (NswError, ValueError):
        return None
    detail = root.findtext(f".//{_EB}ErrorDetail")
    return detail.split()[0] if detail else None


def _unverified_ebms_error(body: bytes, content_type: str) -> tuple[str | None, str]:
    """(eb:Error/@errorCode, its Description) of a signal, read without verification: a diagnostic only."""
    try:
        root = parse_xml(parse_multipart(body, content_type or "application/soap+xml").soap)
    except (NswError, ValueError):
        return None, ""
    error = root.find(f".//{_EB}SignalMessage/{_EB}Error")
    if error is None:
        return None, ""
    return error.get("errorCode"), (error.findtext(f"{_EB}Description") or "").strip()


def replace_soap(message: OutgoingMessage, change: Callable[[etree._Element], None]) -> bytes:
    """The message's bytes with its SOAP part rewritten by ``change(envelope)``."""
    soap = parse_multipart(message.body, message.content_type).soap
    envelope = parse_xml(soap)
    change(envelope)
    return message.body.replace(soap, serialize(envelope))


@asynccontextmanager
async def _session(options: RunOptions) -> AsyncIterator[As4Session]:
    s = options.settings
    require_target(options, token=False)
    if s.pki is None:
        raise PrerequisiteUnmet("no PKI configured (settings 'pki'); run 'nswgw conformance pki DIR'")
    pki = open_pki(s.pki)
    if s.as4.party_certificate is not None:
        cert = x509.load_pem_x509_certificate(s.as4.party_certificate.read_bytes())
        trust = TrustStore(s.as4.party_id, pinned=(PinnedCertificate(cert),))
    else:
        if s.as4.party_id not in pki.pki.names:
            raise PrerequisiteUnmet(
                f"no certificate of the party {s.as4.party_id!r} (settings 'as4.party_certificate')"
            )
        cert = pki.pki.party(s.as4.party_id).cert
        trust = TrustStore(
            s.as4.party_id,
            anchors=(pki.pki.root_cert,),
            intermediates=(pki.pki.issuing_cert,),
            signers=SignerIdentity.of(cert),
        )
    async with listening(options, s.as4.receiver_path) as listener:
        yield As4Session(options, pki, cert, trust, listener)


AS4 = profile(
    "asw-formd",
    "AS4 with the ATIGA e-Form D (ASEAN Single Window)",
    session=_session,
    description="ASEAN partners exchanging signed, encrypted e-Form D over AS4 One-Way/Push.",
)


def _refused(ctx: CaseContext, answer: SignalAnswer, *codes: str, prefix: str | None = None) -> None:
    ctx.check(answer.signal is not None or answer.code is not None, f"no readable answer ({answer.problem})")
    if prefix and answer.code and answer.code.startswith(prefix):
        return
    ctx.expect_code(answer.code, *codes, what="the error signal")


@case("NSW-AS4-TA00", AS4, preflight=True)
async def preflight(ctx: CaseContext) -> None:
    """The target is reachable, serves the AS4 endpoint and holds an agreement with the kit's party (run first).

    Prerequisite: a target URL (--target), the endpoint's path (settings 'as4.endpoint') and the kit's PKI.
    Predicate: a user message from the kit's party whose eb:ConversationId was altered after signing (so that
    nothing is delivered) is answered by the party with an ebMS signal, not HTTP 401/404/405 (no AS4 endpoint
    at that path) and not AS4_UNKNOWN_PMODE (no partner/P-Mode for the kit's eb:PartyId, Service and Action).
    When this fails, the other cases are NOT_RUN.
    """
    s: As4Session = ctx.session
    a = s.settings
    conversation = f"conf-preflight-{uuid.uuid4().hex}"
    sent = s.build(conversation=conversation)
    body = sent.body.replace(conversation.encode(), f"conf-preflight-{uuid.uuid4().hex}".encode())
    try:
        reply = await s.post(ctx, body, sent.content_type, note="preflight: altered after signing, never delivered")
    except TRANSPORT_ERRORS as exc:
        ctx.fail(unreachable(s.options.target, exc))
    ctx.check(
        reply.status not in (401, 404, 405),
        f"the target answers HTTP {reply.status} on POST {a.endpoint}: no AS4 endpoint there; configure "
        f"[inbound.asean] endpoint = \"as4\" at the gateway or correct settings 'as4.endpoint'; {PREPARING}",
    )
    answer = s.answer(ctx, reply)
    ctx.check(
        answer.signal is not None or answer.code is not None,
        f"the target's answer (HTTP {reply.status}) is no ebMS signal ({answer.problem}); {PREPARING}",
    )
    ebms, description = _unverified_ebms_error(reply.body, reply.headers.get("Content-Type", ""))
    ctx.check(
        ebms != "EBMS:0001",
        f"the gateway has no agreement with the kit's party {a.kit_party_id!r} (Service {a.service!r}, Action "
        f"{a.action!r}; it answers EBMS:0001 ValueNotRecognized: {description or answer.code}): add "
        f"[inbound.asean.options.partners.{a.kit_party_id}] with its pmode, trust and document_types; {PREPARING}",
    )


@case("NSW-AS4-TA01", AS4)
async def valid_message(ctx: CaseContext) -> None:
    """A valid signed and encrypted e-Form D is answered with a signed receipt bound to it.

    Prerequisite: the party holds a PMode for the kit's party (Service/Action of the settings) and trusts the
    kit's PKI; the kit knows the party's certificate.
    Predicate: HTTP 200 with a receipt signal whose signature verifies for the party, whose RefToMessageId is the
    message's MessageId and whose NonRepudiationInformation lists exactly the references the kit signed.
    """
    s: As4Session = ctx.session
    sent = s.build()
    reply = await s.post(ctx, sent.body, sent.content_type, note=f"MessageId {sent.user_message.message_id}")
    ctx.check(reply.status == 200, f"expected HTTP 200, got {reply.status}")
    answer = s.answer(ctx, reply)
    ctx.check(answer.signal is not None, answer.problem or "no signal")
    ctx.check(answer.code is None, f"the party answered an error signal ({answer.code})")
    try:
        check_receipt(answer.signal, sent)  # type: ignore[arg-type]
    except NswError as exc:
        ctx.fail(f"the receipt is not bound to the message: {exc}")


@case("NSW-AS4-TA02", AS4)
async def tampered(ctx: CaseContext) -> None:
    """A message whose signed eb:Messaging was altered after signing is refused with SIG_DIGEST_MISMATCH.

    Prerequisite: as NSW-AS4-TA01.
    Predicate: an ebMS error signal whose ErrorDetail code is SIG_DIGEST_MISMATCH (no receipt).
    """
    s: As4Session = ctx.session
    conversation = f"conf-conv-{uuid.uuid4().hex}"
    sent = s.build(conversation=conversation)
    body = sent.body.replace(conversation.encode(), f"conf-conv-{uuid.uuid4().hex}".encode())
    answer = s.answer(ctx, await s.post(ctx, body, sent.content_type, note="eb:ConversationId altered after signing"))
    _refused(ctx, answer, "SIG_DIGEST_MISMATCH")


@case("NSW-AS4-TA03", AS4)
async def signature_wrapping(ctx: CaseContext) -> None:
    """A forged eb:Messaging inserted next to the signed one (XML signature wrapping) is refused.

    Prerequisite: as NSW-AS4-TA01.
    Predicate: an ebMS error signal with a SIG_* code (duplicate id, wrapping, location...), no receipt.
    """
    s: As4Session = ctx.session
    sent = s.build()

    def wrap(envelope: etree._Element) -> None:
        header = envelope.find(f"{_S}Header")
        messaging = header.find(f"{_EB}Messaging") if header is not None else None
        assert header is not None and messaging is not None, "the kit built a message without eb:Messaging"
        forged = copy.deepcopy(messaging)
        for mid in forged.iter(f"{_EB}MessageId"):
            mid.text = f"{uuid.uuid4().hex}@forged"
        header.insert(0, forged)

    body = replace_soap(sent, wrap)
    answer = s.answer(ctx, await s.post(ctx, body, sent.content_type, note="forged eb:Messaging before the signed one"))
    _refused(ctx, answer, prefix="SIG_")


async def _cert_case(ctx: CaseContext, signer: str, code: str) -> None:
    s: As4Session = ctx.session
    sent = s.build(signer=signer)
    answer = s.answer(ctx, await s.post(ctx, sent.body, sent.content_type, note=f"signed by the {signer} certificate"))
    _refused(ctx, answer, code)


@case("NSW-AS4-TA04", AS4)
async def wrong_certificate(ctx: CaseContext) -> None:
    """A message signed by a certificate of another CA is refused with CERT_UNTRUSTED.

    Prerequisite: the party trusts only the kit's PKI for the kit's party.
    Predicate: an ebMS error signal whose ErrorDetail code is CERT_UNTRUSTED.
    """
    await _cert_case(ctx, "intruder", "CERT_UNTRUSTED")


@case("NSW-AS4-TA05", AS4)
async def expired_certificate(ctx: CaseContext) -> None:
    """A message signed with an expired certificate is refused with CERT_EXPIRED.

    Prerequisite: the party trusts the kit's PKI.
    Predicate: an ebMS error signal whose ErrorDetail code is CERT_EXPIRED.
    """
    await _cert_case(ctx, "expired", "CERT_EXPIRED")


@case("NSW-AS4-TA06", AS4)
async def revoked_certificate(ctx: CaseContext) -> None:
    """A message signed with a revoked certificate is refused with CERT_REVOKED.

    Prerequisite: the party trusts the kit's PKI and reads its CRL.
    Predicate: an ebMS error signal whose ErrorDetail code is CERT_REVOKED.
    """
    await _cert_case(ctx, "revoked", "CERT_REVOKED")


@case("NSW-AS4-TA07", AS4)
async def duplicate(ctx: CaseContext) -> None:
    """A message resent with the same MessageId (a retry after a lost receipt) gets the original receipt.

    Prerequisite: as NSW-AS4-TA01; the party's PMode has duplicate detection.
    Predicate: the retry, byte for byte the same message, is answered with the original receipt (the same
    receipt MessageId), i.e. it was not processed again. (The receipt's signature and binding are NSW-AS4-TA01's.)
    """
    s: As4Session = ctx.session
    sent = s.build()
    first = await s.post(ctx, sent.body, sent.content_type, note="original")
    a = _signal_ids(first)
    ctx.require(first.status == 200 and a is not None and a[2], "the original message got no receipt")
    second = await s.post(ctx, sent.body, sent.content_type, note="retry, same MessageId")
    b = _signal_ids(second)
    ctx.check(second.status == 200 and b is not None and b[2], "the retry got no receipt")
    assert a is not None and b is not None
    ctx.check(a[0] == b[0], f"the retry was processed again: a new receipt {b[0]!r} instead of the original {a[0]!r}")


def _signal_ids(reply: HttpReply) -> tuple[str, str, bool] | None:
    """(receipt MessageId, RefToMessageId, is a receipt) of a signal, read without verification (TA01 verifies)."""
    try:
        root = parse_xml(parse_multipart(reply.body, reply.headers.get("Content-Type", "application/soap+xml")).soap)
    except (NswError, ValueError):
        return None
    signal = root.find(f"{_S}Header/{_EB}Messaging/{_EB}SignalMessage")
    if signal is None:
        return None
    return (
        signal.findtext(f"{_EB}MessageInfo/{_EB}MessageId") or "",
        signal.findtext(f"{_EB}MessageInfo/{_EB}RefToMessageId") or "",
        signal.find(f"{_EB}Receipt") is not None,
    )


@case("NSW-AS4-TA08", AS4)
async def xxe(ctx: CaseContext) -> None:
    """A SOAP part with a document type declaration (XXE) is refused with XML_DTD_FORBIDDEN.

    Prerequisite: as NSW-AS4-TA01.
    Predicate: an ebMS error signal (or a coded HTTP error) with code XML_DTD_FORBIDDEN, no receipt.
    """
    s: As4Session = ctx.session
    sent = s.build()
    soap = parse_multipart(sent.body, sent.content_type).soap
    decl, rest = soap.split(b"?>", 1) if soap.startswith(b"<?xml") else (b"", soap)
    evil = (decl + b"?>" if decl else b"") + b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + rest
    answer = s.answer(ctx, await s.post(ctx, sent.body.replace(soap, evil), sent.content_type, note="XXE DOCTYPE"))
    _refused(ctx, answer, "XML_DTD_FORBIDDEN")


@case("NSW-AS4-TA09", AS4)
async def another_partners_certificate(ctx: CaseContext) -> None:
    """A message from the kit's party signed by another partner's certificate is refused with CERT_IDENTITY_MISMATCH.

    Prerequisite: the party binds the kit's eb:PartyId to the kit's certificate (its subject, or a pin), not to
    anything the kit's CA issued.
    Predicate: a message whose eb:From is the kit's PartyId, signed by a valid certificate of the same CA with
    another subject (``conformance-another-partner``), gets an ebMS error signal whose ErrorDetail code is
    CERT_IDENTITY_MISMATCH, no receipt.
    """
    await _cert_case(ctx, "another-partner", "CERT_IDENTITY_MISMATCH")


def _certificate(number: str, *, amends: str | None = None) -> bytes:
    """The sample e-Form D numbered ``number``; with ``amends``, an amendment of that certificate."""
    data = sample_document().replace(CERTIFICATE_NUMBER, f"<ID>{number}</ID>".encode())
    if amends is None:
        return data
    cumulation = b"</PartialCumulation>"
    return data.replace(cumulation, cumulation + f"<AmendedCertificateID>{amends}</AmendedCertificateID>".encode(), 1)


@case("NSW-AS4-TA10", AS4)
async def amendment_after_its_original(ctx: CaseContext) -> None:
    """An amendment cannot overtake its original: before it, CO_UNKNOWN; after it, receipted.

    Prerequisite: as NSW-AS4-TA01; the party keeps the certificates of origin it carried (issuing country and
    number) and takes amendments under the same Service/Action as e-Form Ds.
    Predicate: an amendment (AmendedCertificateID) of a certificate the kit has not sent yet is answered with an
    ebMS error signal whose ErrorDetail code is CO_UNKNOWN; the original, then the same amendment under a new
    MessageId, are each answered with a receipt (read as in NSW-AS4-TA07: its signature and binding are
    NSW-AS4-TA01's).
    """
    s: As4Session = ctx.session
    number = f"VN-CONF-{uuid.uuid4().hex[:12].upper()}"
    amendment = _certificate(f"{number}-A1", amends=number)
    early = s.build(payload=amendment)
    answer = s.answer(ctx, await s.post(ctx, early.body, early.content_type, note=f"amendment of {number}, first"))
    _refused(ctx, answer, "CO_UNKNOWN")
    for body, note in ((_certificate(number), f"original {number}"), (amendment, f"amendment of {number}, after")):
        sent = s.build(payload=body)
        reply = await s.post(ctx, sent.body, sent.content_type, note=note)
        ids = _signal_ids(reply)
        if ids is None or not ids[2]:
            ctx.observe(_unverified_error_code(reply.body, reply.headers.get("Content-Type", "")))
            ctx.fail(f"{note}: no receipt (HTTP {reply.status}, error {ctx.error_code or 'none'})")


# ----------------------------------------------------------------------------------- the kit as receiver


def _peek_id(m: Incoming) -> str:
    from adapters.as4.messages import peek_message_id

    try:
        return peek_message_id(parse_xml(parse_multipart(m.body, m.headers.get("Content-Type", "")).soap)) or ""
    except (NswError, ValueError):
        return ""


def _open(s: As4Session, m: Incoming) -> ReceivedMessage:
    """Decrypt and verify the party's user message with the kit's key and the party's trust."""
    from adapters.as4 import As4Partner, open_user_message
    from signing.xenc import SoftwareDecrypter

    a = s.settings
    pm = PMode(
        id=f"{a.kit_party_id}-{a.party_id}-formd-in",
        initiator=PartyConfig(party_id=a.kit_party_id, party_id_type=PARTY_ID_TYPE),
        responder=PartyConfig(party_id=a.party_id, party_id_type=PARTY_ID_TYPE),
        service=a.service,
        action=a.action,
        message_id_domain="conformance",
    )
    kit = s.pki.pki.party(s.options.settings.signer)
    if not isinstance(kit.key, rsa.RSAPrivateKey):
        raise PrerequisiteUnmet(
            f"the kit's certificate {s.options.settings.signer!r} has a {type(kit.key).__name__}; AS4 encryption "
            "(RSA-OAEP key transport) needs an RSA key: prepare the PKI with "
            "'nswgw conformance pki DIR --key-type rsa2048'"
        )
    return open_user_message(
        m.body,
        m.headers.get("Content-Type", ""),
        our_party_id=a.kit_party_id,
        partner_for=lambda _claimed: As4Partner(pm, s.receipt_trust, s.party_certificate),
        decrypter=SoftwareDecrypter(kit.key, kit.cert),
    )


def _receipt(ctx: CaseContext, s: As4Session, m: Incoming, received: ReceivedMessage) -> None:
    from adapters.as4 import build_receipt
    from adapters.as4.messages import SIGNAL_CONTENT_TYPE

    m.respond(
        ctx,
        200,
        build_receipt(received, s.signer(), domain="conformance"),
        {"Content-Type": SIGNAL_CONTENT_TYPE},
        note="signed receipt",
    )
    certificate = _certificate_of(received)
    if certificate is not None and certificate not in s.delivered:
        s.delivered.append(certificate)


def _certificate_of(received: ReceivedMessage) -> tuple[str, str] | None:
    """(issuing country, number) of the e-Form D a user message carries (None when it carries none the kit reads)."""
    from mappings import registry

    formd = registry.get("form-d")
    for payload in received.payloads.values():
        act = formd.certificate(payload)
        if act is not None and act.issues:
            return act.issuing_country, act.number
    return None


@case("NSW-AS4-RX01", AS4, role="receiver")
async def party_message_verifies(ctx: CaseContext) -> None:
    """The party's user message decrypts with the kit's key and verifies under the party's certificates.

    Prerequisite: the party holds a PMode towards the kit's party (settings 'as4'), encrypts for the kit's
    certificate and sends within the wait.
    Predicate: the message opens (MIME, WS-Security signature over eb:Messaging, Body and payloads, decryption,
    eb:From the party, eb:To the kit) and carries at least one payload; the kit answers a signed receipt.
    """
    s: As4Session = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, lambda x: _peek_id(x) not in s.seen, what="a user message")
    assert m is not None
    s.seen.add(_peek_id(m))
    try:
        received = _open(s, m)
    except NswError as exc:
        ctx.observe(exc.code)
        m.respond(ctx, 500, b"", note="refused")
        ctx.fail(f"the party's message does not open: {exc}")
    _receipt(ctx, s, m, received)
    ctx.check(received.payloads, "the user message carries no payload")


@case("NSW-AS4-RX02", AS4, role="receiver")
async def party_retries_same_message_id(ctx: CaseContext) -> None:
    """After a transient failure (HTTP 503) the party resends the same MessageId (AS4 reception awareness).

    Prerequisite: the party sends a user message within the wait.
    Predicate: the kit answers the first transmission 503; the party transmits again within the wait with the
    same eb:MessageId and byte-identical content, which still opens; the kit then answers a signed receipt.
    """
    s: As4Session = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, lambda x: _peek_id(x) not in s.seen, what="a user message")
    assert m is not None
    mid = _peek_id(m)
    s.seen.add(mid)
    m.respond(ctx, 503, b"transient failure (conformance kit)", note="transient failure")
    ctx.check(mid, "the transmission carries no eb:MessageId")
    again = await s.listener.next(
        ctx, s.options.wait, lambda x: _peek_id(x) == mid, what=f"a resend of {mid}", required=False
    )
    if again is None:
        ctx.fail(f"no resend of eb:MessageId {mid!r} within {s.options.wait:g} s")
    try:
        received = _open(s, again)
    except NswError as exc:
        ctx.observe(exc.code)
        again.respond(ctx, 500, b"", note="refused")
        ctx.fail(f"the resent message does not open: {exc}")
    _receipt(ctx, s, again, received)
    ctx.check(again.body == m.body, "the resend's bytes differ from the first transmission's")


# ------------------------------------------------------------- the kit as the importing side: the C/O lifecycle

NOTICE_NS = "urn:nsw-gateway:atiga:e-form-d:1"
"""Namespace of the ``CertificateNotification`` (mappings/schemas/formd/FORM_D.md, "Notification elements")."""


def notification(kind: str, country: str, number: str, notifying: str, **fields: str) -> bytes:
    """A ``CertificateNotification`` of ``kind`` about certificate ``country`` ``number`` from ``notifying``;
    ``fields`` are further elements of ``Notification`` (DeclarationID, DeclarationDate, ReasonCode, Reason,
    RequestID), given in the schema's order."""
    from xml.sax.saxutils import escape

    extra = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields.items())
    return (
        f'<CertificateNotification xmlns="{NOTICE_NS}"><Notification><TypeCode>{kind}</TypeCode>'
        f"<CertificateID>{escape(number)}</CertificateID><IssuingCountryCode>{country}</IssuingCountryCode>"
        f"<NotifyingCountryCode>{notifying}</NotifyingCountryCode>{extra}</Notification></CertificateNotification>"
    ).encode()


def _lifecycle(ctx: CaseContext, certificates: int) -> tuple[As4Session, str]:
    """The session, checked for what every lifecycle case needs, and the issuer's token."""
    s: As4Session = ctx.session
    ctx.require(
        s.options.target,
        "no target URL (--target): the kit sends its notifications to the party's AS4 endpoint and reads the "
        "certificates' status at its API",
    )
    token = s.settings.issuer_token
    ctx.require(token, "no token of the certificates' issuer (settings 'as4.issuer_token') to read their status")
    ctx.require(
        len(s.delivered) >= certificates,
        f"the party delivered {len(s.delivered)} e-Form D(s) the kit could read in NSW-AS4-RX01/RX02, "
        f"{certificates} needed",
    )
    assert token is not None
    return s, token


async def _notify(ctx: CaseContext, s: As4Session, body: bytes, note: str) -> SignalAnswer:
    sent = s.build(action=s.settings.notification_action, payload=body)
    reply = await s.post(ctx, sent.body, sent.content_type, note=note)
    answer = s.answer(ctx, reply)
    if answer.signal is not None and answer.code is None:
        try:
            check_receipt(answer.signal, sent)  # type: ignore[arg-type]
        except NswError as exc:
            ctx.fail(f"the receipt is not bound to the notification: {exc}")
    return answer


def _receipted(ctx: CaseContext, answer: SignalAnswer, what: str) -> None:
    ctx.check(answer.signal is not None, f"{what}: {answer.problem or 'no signal'}")
    ctx.check(answer.code is None, f"{what}: the party answered an error signal ({answer.code}), not a receipt")


async def _status(ctx: CaseContext, s: As4Session, token: str, certificate: tuple[str, str]) -> dict[str, Any]:
    """The issuer's view of ``certificate`` (``GET /v1/certificates/{country}/{number}``)."""
    country, number = certificate
    reply = await ctx.http.get(
        s.options.url(f"/v1/certificates/{quote(country, safe='')}/{quote(number, safe='')}"),
        {"Authorization": f"Bearer {token}"},
        note="the issuer's view",
    )
    body = reply.json()
    ctx.check(
        reply.status == 200 and isinstance(body, dict),
        f"the issuer cannot read {country} {number}: HTTP {reply.status} {reply.error_code or ''}".rstrip(),
    )
    assert isinstance(body, dict)
    return body


def _steps(status: dict[str, Any], step: str) -> list[dict[str, str]]:
    """The details of the history's steps ``step``."""
    history = status.get("history")
    return [
        e.get("detail") or {}
        for e in (history if isinstance(history, list) else [])
        if isinstance(e, dict) and e.get("status") == step
    ]


@case("NSW-AS4-RX03", AS4, role="receiver")
async def receipt_notification(ctx: CaseContext) -> None:
    """A receipt notification about an e-Form D the party delivered is receipted, and the issuer sees it received.

    Prerequisite: NSW-AS4-RX01 received an e-Form D (the kit reads its Certificate/ID and IssuingCountryCode);
    --target is the party's base URL, where the kit posts to settings 'as4.endpoint' with eb:Action settings
    'as4.notification_action'; settings 'as4.issuer_token' is the token of the certificate's issuer.
    Predicate: a CertificateNotification of TypeCode received about that certificate is answered with a signed
    receipt bound to it; then GET /v1/certificates/{country}/{number} with the issuer's token answers the status
    received, with a received step in the history.
    """
    s, token = _lifecycle(ctx, 1)
    country, number = s.delivered[0]
    body = notification("received", country, number, s.settings.notifying_country)
    _receipted(ctx, await _notify(ctx, s, body, f"received: {country} {number}"), "the receipt notification")
    status = await _status(ctx, s, token, s.delivered[0])
    ctx.check(status.get("status") == "received", f"the issuer sees {status.get('status')!r}, not 'received'")
    ctx.check(_steps(status, "received"), "the certificate's history has no received step")


@case("NSW-AS4-RX04", AS4, role="receiver")
async def utilization(ctx: CaseContext) -> None:
    """A utilization against an import declaration is receipted, and the issuer sees the certificate utilized.

    Prerequisite: as NSW-AS4-RX03.
    Predicate: a CertificateNotification of TypeCode utilized about NSW-AS4-RX01's certificate, naming an import
    declaration (DeclarationID, DeclarationDate), is answered with a signed receipt bound to it; the issuer then
    sees the status utilized, with a utilized step whose detail names that declaration.
    """
    s, token = _lifecycle(ctx, 1)
    country, number = s.delivered[0]
    declaration = f"{s.settings.notifying_country}-IMP-{uuid.uuid4().hex[:10].upper()}"
    day = datetime.now(UTC).date().isoformat()
    body = notification(
        "utilized", country, number, s.settings.notifying_country, DeclarationID=declaration, DeclarationDate=day
    )
    _receipted(ctx, await _notify(ctx, s, body, f"utilized: {country} {number}"), "the utilization")
    status = await _status(ctx, s, token, s.delivered[0])
    ctx.check(status.get("status") == "utilized", f"the issuer sees {status.get('status')!r}, not 'utilized'")
    ctx.check(
        any(d.get("declaration_number") == declaration for d in _steps(status, "utilized")),
        f"no utilized step of the certificate's history names the declaration {declaration!r}",
    )


@case("NSW-AS4-RX05", AS4, role="receiver")
async def rejection_with_reason(ctx: CaseContext) -> None:
    """A rejection with a reason is receipted, and the issuer sees the certificate rejected and why.

    Prerequisite: as NSW-AS4-RX03, and a second e-Form D received in NSW-AS4-RX02.
    Predicate: a CertificateNotification of TypeCode rejected about NSW-AS4-RX02's certificate, with a ReasonCode
    and a Reason, is answered with a signed receipt bound to it; the issuer then sees the status rejected, with a
    rejected step whose detail carries that reason code and text.
    """
    s, token = _lifecycle(ctx, 2)
    country, number = s.delivered[1]
    code, reason = "ORIGIN-CRITERION", f"regional value content not met ({uuid.uuid4().hex[:8]})"
    body = notification("rejected", country, number, s.settings.notifying_country, ReasonCode=code, Reason=reason)
    _receipted(ctx, await _notify(ctx, s, body, f"rejected: {country} {number}"), "the rejection")
    status = await _status(ctx, s, token, s.delivered[1])
    ctx.check(status.get("status") == "rejected", f"the issuer sees {status.get('status')!r}, not 'rejected'")
    ctx.check(
        any(d.get("reason_code") == code and d.get("reason") == reason for d in _steps(status, "rejected")),
        f"no rejected step of the certificate's history carries the reason {code} {reason!r}",
    )


@case("NSW-AS4-RX06", AS4, role="receiver")
async def verification_request(ctx: CaseContext) -> None:
    """A verification request (ATIGA retroactive check) is receipted and kept, without changing the status.

    Prerequisite: as NSW-AS4-RX03.
    Predicate: a CertificateNotification of TypeCode verification_request about NSW-AS4-RX01's certificate, with
    a ReasonCode and a RequestID, is answered with a signed receipt bound to it; the issuer then sees the status
    it saw before the request, and a verification_request step with that RequestID in the history.
    """
    s, token = _lifecycle(ctx, 1)
    country, number = s.delivered[0]
    before = (await _status(ctx, s, token, s.delivered[0])).get("status")
    request = f"VR-{uuid.uuid4().hex[:12]}"
    body = notification(
        "verification_request", country, number, s.settings.notifying_country, ReasonCode="RVC", RequestID=request
    )
    _receipted(ctx, await _notify(ctx, s, body, f"verification request: {country} {number}"), "the request")
    status = await _status(ctx, s, token, s.delivered[0])
    ctx.check(
        status.get("status") == before,
        f"the request changed the issuer's status from {before!r} to {status.get('status')!r}",
    )
    ctx.check(
        any(d.get("request_id") == request for d in _steps(status, "verification_request")),
        f"no verification_request step of the certificate's history has the RequestID {request!r}",
    )


@case("NSW-AS4-RX07", AS4, role="receiver")
async def unknown_certificate(ctx: CaseContext) -> None:
    """A notification about a certificate the party never delivered is refused with CO_UNKNOWN.

    Prerequisite: --target and settings 'as4.notification_action' as for NSW-AS4-RX03.
    Predicate: a utilization naming a certificate number of the issuing country of NSW-AS4-RX01's certificate
    that the party never carried is answered with a signed ebMS error signal whose ErrorDetail code is
    CO_UNKNOWN, no receipt.
    """
    s, _token = _lifecycle(ctx, 1)
    country = s.delivered[0][0]
    number = f"{country}-CONF-{uuid.uuid4().hex[:12].upper()}"
    body = notification(
        "utilized",
        country,
        number,
        s.settings.notifying_country,
        DeclarationID="CONF-NEVER-CARRIED",
        DeclarationDate=datetime.now(UTC).date().isoformat(),
    )
    _refused(ctx, await _notify(ctx, s, body, f"utilized: {country} {number}, never carried"), "CO_UNKNOWN")
