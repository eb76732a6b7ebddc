"""Interop with the independent PyPI package ``as4`` (0.2.0, Peppol AS4 profile), both directions, over 127.0.0.1.

* as4 -> us: a message built, signed (RSA-SHA256, exc-C14N, BST reference), gzipped and encrypted
  (AES-128-GCM, RSA-OAEP MGF1-SHA256) by ``as4.peppol.build_peppol_message`` is POSTed to our
  As4Receiver; we accept it, and ``as4.peppol.parse_peppol_receipt`` + ``verify_non_repudiation``
  accept our signed receipt.
* us -> as4: ``as4`` has no server, only ``parse_peppol_message`` (parse + decrypt + verify +
  answer with a signal); a small aiohttp server on 127.0.0.1 wraps it. Our As4Adapter delivers
  to it, ``as4`` accepts our message and we accept its signed receipt.
* Wrapping: ``as4`` accepts a user message whose signed eb:Messaging was moved into
  wsse:Security and replaced by a forged one, and a genuine receipt re-wrapped to claim another
  message; we refuse both with SIG_WRAPPING.
"""

from __future__ import annotations

import copy

import as4
import as4.peppol
import pytest
from aiohttp import ClientSession, web
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from adapters.as4 import As4Adapter, As4Partner, As4Receiver, PartyConfig, PMode, ReceptionAwareness
from adapters.as4.mime import MimePart, build_multipart, parse_multipart
from gateway.errors import SignatureWrapping
from gateway.ports import OutboundMessage
from helpers.as4 import Side, serve, side
from signing.dev.pki import DevPki
from signing.wss import EB_NS, SOAP12_NS, WSSE_NS, WSU_NS
from signing.xml import parse_xml, serialize

pytestmark = [pytest.mark.interop]

PEPPOL_AP = "urn:fdc:peppol.eu:2017:identifiers:ap"
DOC_TYPE = (
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice"
    "##urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SENDER, RECIPIENT = "9932:0100000001", "9932:0200000002"
INVOICE = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>INV-1</ID></Invoice>'
US, THEM = "PVN000001", "PTH000002"


@pytest.fixture(scope="module")
def gateway(dev_pki: DevPki) -> Side:
    return side(dev_pki, "nsw-gateway", US)


@pytest.fixture(scope="module")
def partner(dev_pki: DevPki) -> Side:
    return side(dev_pki, "th-asw", THEM)


def as4_party(s: Side) -> as4.AS4InternalParty:
    key = s.decrypter._key  # the test PKI's private key, handed to the other implementation
    assert isinstance(key, rsa.RSAPrivateKey)
    return as4.peppol.create_peppol_internal_party(
        party_id=s.party_id, certificate=s.certificate, private_key=as4.AS4LocalPrivateKey(key)
    )


def as4_message(sender: Side, recipient: Side) -> as4.peppol.PeppolSendingExchange:
    return as4.peppol.build_peppol_message(
        INVOICE,
        local_party=as4_party(sender),
        remote_party=as4.peppol.create_peppol_external_party(
            party_id=recipient.party_id, certificate=recipient.certificate
        ),
        sender=SENDER,
        recipient=RECIPIENT,
        sender_country_id="TH",
        document_type_identifier_scheme="busdox-docid-qns",
        document_type_identifier_value=DOC_TYPE,
        process_identifier=PROCESS,
    )


def peppol_pmode(us: str, them: str) -> PMode:
    return PMode(
        id=f"peppol-{us}-{them}",
        agreement="urn:fdc:peppol.eu:2017:agreements:tia:ap_provider",
        initiator=PartyConfig(party_id=us, party_id_type=PEPPOL_AP),
        responder=PartyConfig(party_id=them, party_id_type=PEPPOL_AP),
        service=PROCESS,
        service_type="cenbii-procid-ubl",
        action="busdox-docid-qns::" + DOC_TYPE,
        property_types={"originalSender": "iso6523-actorid-upis", "finalRecipient": "iso6523-actorid-upis"},
        reception_awareness=ReceptionAwareness(attempts=1),
    )


def our_receiver(gateway: Side, partner: Side) -> As4Receiver:
    return As4Receiver(
        party_id=gateway.party_id,
        partners={
            partner.party_id: As4Partner(
                peppol_pmode(gateway.party_id, partner.party_id), partner.trust, partner.certificate
            )
        },
        signer=gateway.signer,
        decrypter=gateway.decrypter,
    )


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async with ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


async def test_as4_package_message_is_accepted_by_our_receiver_and_our_receipt_by_it(
    gateway: Side, partner: Side
) -> None:
    message = as4_message(partner, gateway)
    body, boundary = message.get_request_data()
    headers = message.get_http_headers(boundary)
    receiver = our_receiver(gateway, partner)
    async with serve(receiver.app()) as url:
        status, signal = await post(url, body, headers)
    assert status == 200
    received = receiver.inbox.get_nowait()
    assert received.user_message.message_id == message.message_id
    assert received.user_message.sender.party_id == THEM
    assert received.verification.certificate == partner.certificate
    (payload,) = received.payloads.values()
    assert INVOICE[len(b"<Invoice") :].split(b">")[0] in payload and b"StandardBusinessDocumentHeader" in payload
    # as4 verifies our receipt: signer, signature, coverage of eb:Messaging, digests, and non-repudiation.
    receipt = as4.peppol.parse_peppol_receipt(signal, gateway.certificate)
    assert receipt.success and receipt.original_message_id == message.message_id
    receipt.verify_non_repudiation(message.signed_references)


def as4_server(party: Side, trusted: Side, exchanges: list) -> web.Application:
    policy = as4.SecurityPolicy(signer_resolver=as4.pinned_certificates(trusted.certificate))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        exchange = as4.peppol.parse_peppol_message(
            request_headers=dict(request.headers),
            request_body=body,
            local_party=as4_party(party),
            security_policy=policy,
        )
        exchanges.append(exchange)
        headers, signal = exchange.build_signal()
        return web.Response(body=signal, headers=headers)

    app = web.Application()
    app.router.add_post("/as4", handle)
    return app


async def test_our_adapter_message_is_accepted_by_the_as4_package_and_its_receipt_by_us(
    gateway: Side, partner: Side
) -> None:
    sbd = next(iter(as4_message(gateway, partner).decrypted_data.values()))  # a schema-valid SBDH envelope
    exchanges: list = []
    async with serve(as4_server(partner, gateway, exchanges)) as url:
        options = {
            "pmode": peppol_pmode(US, THEM),
            "signer": gateway.signer,
            "trust": partner.trust,
            "encryption_certificate": partner.certificate,
        }
        async with As4Adapter(url, options=options) as adapter:
            receipt = await adapter.deliver(
                OutboundMessage(
                    message_id="peppol-0001",
                    payload=sbd,
                    sender="VN-MOIT",
                    document_type="invoice",
                    conversation="conv-peppol-1",
                    headers={"AS4-Property-originalSender": SENDER, "AS4-Property-finalRecipient": RECIPIENT},
                )
            )
    (exchange,) = exchanges
    assert exchange.message.parse_error is None, exchange.message.parse_error
    assert exchange.successful
    assert exchange.message.message_id == "peppol-0001@nsw-gateway"
    assert exchange.message.signer_certificate == gateway.certificate
    assert list(exchange.message.decrypted_data.values()) == [sbd]
    assert receipt.message_id == "peppol-0001" and b"NonRepudiationInformation" in receipt.raw


def _wrap_messaging(soap: bytes, forge) -> bytes:  # type: ignore[no-untyped-def]
    """Move the signed eb:Messaging into wsse:Security and put a forged copy (new wsu:Id) in its place."""
    envelope = parse_xml(soap)
    header = envelope.find(f"{{{SOAP12_NS}}}Header")
    messaging = header.find(f"{{{EB_NS}}}Messaging")
    security = header.find(f"{{{WSSE_NS}}}Security")
    forged = copy.deepcopy(messaging)
    forged.set(f"{{{WSU_NS}}}Id", "forged-messaging")
    forge(forged)
    header.replace(messaging, forged)
    security.append(messaging)
    return serialize(envelope)


async def test_messaging_moved_into_security_is_accepted_by_as4_but_refused_by_us(gateway: Side, partner: Side) -> None:
    message = as4_message(partner, gateway)
    body, boundary = message.get_request_data()
    headers = message.get_http_headers(boundary)
    mime = parse_multipart(body, headers["Content-Type"])

    def forge(m: etree._Element) -> None:
        m.find(f".//{{{EB_NS}}}ConversationId").text = "attacker-chosen-conversation"

    wrapped, content_type = build_multipart(
        _wrap_messaging(mime.soap, forge),
        [MimePart(p.content_id, "application/octet-stream", p.content) for p in mime.attachments.values()],
    )
    # as4 (receiving as the addressee) accepts the forged header.
    exchange = as4.peppol.parse_peppol_message(
        request_headers={"Content-Type": content_type},
        request_body=wrapped,
        local_party=as4_party(gateway),
        security_policy=as4.SecurityPolicy(signer_resolver=as4.pinned_certificates(partner.certificate)),
    )
    assert exchange.successful and exchange.conversation_id == "attacker-chosen-conversation"
    # We refuse it, with a signed EBMS:0101 naming SIG_WRAPPING.
    receiver = our_receiver(gateway, partner)
    async with serve(receiver.app()) as url:
        status, signal = await post(url, wrapped, {"Content-Type": content_type})
    assert receiver.inbox.empty()
    assert b"EBMS:0101" in signal and b"SIG_WRAPPING" in signal
    from adapters.as4.messages import open_user_message

    with pytest.raises(SignatureWrapping) as caught:
        open_user_message(
            wrapped,
            content_type,
            our_party_id=US,
            partner_for=lambda _: receiver.partners[THEM],
            decrypter=gateway.decrypter,
        )
    assert caught.value.field == "/S12:Envelope/S12:Header/wsse:Security/eb:Messaging"


async def test_receipt_rewrapped_for_another_message_is_accepted_by_as4_but_refused_by_us(
    gateway: Side, partner: Side
) -> None:
    # A genuine as4 receipt for message A, re-wrapped to claim delivery of message B.
    message_a, message_b = as4_message(gateway, partner), as4_message(gateway, partner)
    body, boundary = message_a.get_request_data()
    exchange = as4.peppol.parse_peppol_message(
        request_headers=message_a.get_http_headers(boundary),
        request_body=body,
        local_party=as4_party(partner),
        security_policy=as4.SecurityPolicy(signer_resolver=as4.pinned_certificates(gateway.certificate)),
    )
    _, genuine = exchange.build_signal()

    def claim_b(m: etree._Element) -> None:
        m.find(f".//{{{EB_NS}}}RefToMessageId").text = message_b.message_id
        nri = m.find(".//{http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0}NonRepudiationInformation")
        signed_info_b = message_b.soap_envelope.header.security.signature.signed_info.etree_element
        for part, ref in zip(nri, signed_info_b.findall("{http://www.w3.org/2000/09/xmldsig#}Reference"), strict=False):
            part.replace(part[0], copy.deepcopy(ref))

    forged = _wrap_messaging(genuine, claim_b)
    accepted = as4.peppol.parse_peppol_receipt(forged, partner.certificate)
    accepted.verify_non_repudiation(message_b.signed_references)
    assert accepted.original_message_id == message_b.message_id  # as4 believes B was delivered
    from adapters.as4.messages import verify_signal

    with pytest.raises(SignatureWrapping) as caught:
        verify_signal(forged, "application/soap+xml", trust=partner.trust)
    assert caught.value.code == "SIG_WRAPPING"
