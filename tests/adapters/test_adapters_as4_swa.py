"""AS4 attachment references as WSS4J-based peers digest them (SwA 1.1 section 5.4.2), checked against Santuario.

The independent side is Apache Santuario Java (Debian libxml-security-java; tests/helpers/santuario.py compiles
tests/helpers/santuario/SwaCheck.java once): its exclusive C14N canonicalizes XML-typed attachments inside the
Attachment-Content-Signature-Transform, as WSS4J's does. Both directions, on PModes without compression (where the
transform shows) and with the default gzip compression (binary: digested unchanged):

* our XML, text and binary payloads verify at Santuario, and Santuario's open at our receiver;
* an XML attachment re-serialized after signing (attribute order, whitespace in tags, quotes, empty elements)
  still verifies at both; a changed text fails at both, ours with SIG_DIGEST_MISMATCH at the ``cid:``;
* an encrypted part is digested by its ``EncryptedData/@MimeType``, not by its application/octet-stream part;
* the ``as4`` package of the other interop tests always compresses (Peppol) and digests the gzip octets as they
  are, which the transform leaves unchanged: it has no case of its own here.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from adapters.as4 import As4Partner, PMode
from adapters.as4.ebms import RESPONDER, PartInfo, Party, Property, UserMessage, build_user_messaging, new_envelope
from adapters.as4.messages import Payload, ReceivedMessage, build_user_message, open_user_message
from adapters.as4.mime import MimePart, build_multipart, parse_multipart
from gateway.errors import DigestMismatch, NswError, XmlMalformed
from helpers.as4 import ACTION, SERVICE, Side, pmode
from helpers.santuario import Santuario
from signing.dev.pki import DevPki
from signing.wss import BASE64_BINARY, WSSE_NS, WSU_NS, X509V3, security_header, swa_content_octets
from signing.xenc import decrypt_attachments, encrypt_attachments
from signing.xml import parse_xml, serialize

pytestmark = [pytest.mark.interop]

US, THEM = "VN-NSW", "TH-ASW"
UNREGISTERED = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
CID = "form-d@th-asw.example"
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

FORM_D = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n"
    b'<?xml-stylesheet type="text/xsl" href="form-d.xsl"?>\n'
    b'<co:CertificateOfOrigin xmlns:co="urn:nsw-gateway:atiga:e-form-d:1" xmlns:unused="urn:x" Version="1" '
    b"Status='issued'>\n"
    b"  <co:ID>VN-TH-26-00042</co:ID>\n"
    b"  <co:Exporter><co:Name>C\xc3\xb4ng ty &amp; Partners</co:Name><co:Note/></co:Exporter>\n"
    b"  <!-- comments are not signed -->\n"
    b'  <co:Value currency="USD"><![CDATA[18350.00]]></co:Value>\n'
    b"</co:CertificateOfOrigin>\n"
)
FORM_D_RESERIALIZED = (
    b'<?xml-stylesheet type="text/xsl" href="form-d.xsl"?>'
    b'<co:CertificateOfOrigin   Status="issued"\n    Version="1" xmlns:co="urn:nsw-gateway:atiga:e-form-d:1">\n'
    b"  <co:ID >VN-TH-26-00042</co:ID>\n"
    b"  <co:Exporter><co:Name>C&#xF4;ng ty &amp; Partners</co:Name><co:Note></co:Note></co:Exporter>\n"
    b"  \n"
    b"  <co:Value currency='USD'>18350.00</co:Value>\n"
    b"</co:CertificateOfOrigin>"
)
"""FORM_D as another serializer writes it: C14N-equivalent (exclusive C14N drops the unused namespace, the
declaration, the comment and the CDATA section; the stylesheet PI stays, so it is kept here too)."""
FORM_D_CHANGED = FORM_D_RESERIALIZED.replace(b"18350.00", b"81350.00")
TEXT = b"Packing list\nline two\r\nline three\rend\n"
BINARY = bytes(range(256)) + b"\n<a/>\r\n"


@pytest.fixture(scope="module")
def santuario(tmp_path_factory: pytest.TempPathFactory) -> Santuario:
    return Santuario.compile(tmp_path_factory.mktemp("santuario"))


def agreement(us: str, them: str, *, compress: bool = False, encrypt: bool = False) -> PMode:
    return pmode(us, them, encrypt=encrypt, require_encryption=False).model_copy(update={"compress": compress})


def user(sender: str, receiver: str, parts: tuple[PartInfo, ...] = ()) -> UserMessage:
    return UserMessage(
        message_id=f"swa-{sender}-{len(parts)}@{sender.lower()}.example",
        timestamp=AT,
        sender=Party(sender, UNREGISTERED),
        receiver=Party(receiver, UNREGISTERED, role=RESPONDER),
        service=SERVICE,
        action=ACTION,
        conversation_id="swa-conversation",
        parts=parts,
    )


def ours(
    gateway: Side, partner: Side, payloads: list[Payload], *, compress: bool = False, encrypt: bool = False
) -> tuple[bytes, str]:
    """A user message built and signed by us for the partner."""
    out = build_user_message(
        user(US, THEM),
        payloads,
        signer=gateway.signer,
        pmode=agreement(US, THEM, compress=compress, encrypt=encrypt),
        encrypt_for=partner.certificate if encrypt else None,
    )
    return out.body, out.content_type


def open_at_partner(gateway: Side, partner: Side, body: bytes, content_type: str) -> ReceivedMessage:
    """Our receiver, run by the partner, opening a message from us."""
    return open_user_message(
        body,
        content_type,
        our_party_id=THEM,
        partner_for=lambda _: As4Partner(agreement(THEM, US), gateway.trust, gateway.certificate),
        decrypter=partner.decrypter,
    )


def open_at_gateway(gateway: Side, partner: Side, body: bytes, content_type: str) -> ReceivedMessage:
    """Our receiver opening a message from the partner."""
    return open_user_message(
        body,
        content_type,
        our_party_id=US,
        partner_for=lambda _: As4Partner(agreement(US, THEM), partner.trust, partner.certificate),
        decrypter=gateway.decrypter,
    )


def as_received(body: bytes, content_type: str) -> tuple[bytes, dict[str, tuple[bytes, str]]]:
    """The SOAP part and the attachments (content, Content-Type) of a built message."""
    mime = parse_multipart(body, content_type)
    return mime.soap, {cid: (part.content, part.content_type) for cid, part in mime.attachments.items()}


def theirs(
    santuario: Santuario, dev_pki: DevPki, partner: Side, signed: dict[str, tuple[bytes, str]]
) -> etree._Element:
    """A user message from the partner whose signature Santuario made over ``signed`` (Content-ID -> content,
    MIME type); returned as the parsed envelope, to be packaged with whatever attachment octets a test sends."""
    parts = tuple(PartInfo("cid:" + cid, (Property("MimeType", mime),)) for cid, (_, mime) in signed.items())
    envelope, header, _ = new_envelope()
    build_user_messaging(header, user(THEM, US, parts))
    security = security_header(envelope)
    assert security is not None
    token = etree.SubElement(
        security,
        f"{{{WSSE_NS}}}BinarySecurityToken",
        {"EncodingType": BASE64_BINARY, "ValueType": X509V3, f"{{{WSU_NS}}}Id": "X509-th-asw"},
    )
    token.text = base64.b64encode(partner.certificate.public_bytes(Encoding.DER)).decode("ascii")
    key = dev_pki.party("th-asw").key
    assert isinstance(key, rsa.RSAPrivateKey)
    return parse_xml(santuario.sign(serialize(envelope), key, signed))


def packaged(envelope: etree._Element, sent: dict[str, tuple[bytes, str]]) -> tuple[bytes, str]:
    return build_multipart(serialize(envelope), [MimePart(cid, mime, data) for cid, (data, mime) in sent.items()])


# --------------------------------------------------------------------------- the transform itself


@pytest.mark.parametrize(
    ("mime_type", "content"),
    [
        ("application/xml", FORM_D),
        ("text/xml; charset=UTF-8", FORM_D_RESERIALIZED),
        ("application/vnd.nsw.form-d+xml", FORM_D),
        ("text/plain", TEXT),
        ("text/csv; charset=utf-8", b"a,b\rc,d\n\ne,f"),
        ("application/octet-stream", BINARY),
        ("application/gzip", gzip.compress(FORM_D, mtime=0)),
        ("application/pdf", b"%PDF-1.7\n%\xe2\xe3\n"),
    ],
    ids=["xml", "text-xml-charset", "plus-xml", "text-lf-cr-crlf", "text-csv", "binary", "gzip", "pdf"],
)
def test_transform_gives_the_octets_santuario_gives(santuario: Santuario, mime_type: str, content: bytes) -> None:
    assert swa_content_octets(content, mime_type) == santuario.transform(content, mime_type)


def test_xml_is_canonicalized_text_gets_crlf_and_binary_is_unchanged() -> None:
    canonical = swa_content_octets(FORM_D, "application/xml")
    assert canonical.startswith(b'<?xml-stylesheet type="text/xsl" href="form-d.xsl"?>\n<co:CertificateOfOrigin')
    assert b"xmlns:unused" not in canonical and b"<!--" not in canonical and b"<co:Note></co:Note>" in canonical
    assert swa_content_octets(FORM_D_RESERIALIZED, "application/xml") == canonical
    assert swa_content_octets(TEXT, "text/plain") == b"Packing list\r\nline two\r\nline three\r\nend\r\n"
    assert swa_content_octets(BINARY, "application/octet-stream") == BINARY


# --------------------------------------------------------------------------- ours -> Santuario


def test_our_uncompressed_xml_payload_verifies_at_santuario(santuario: Santuario, gateway: Side, partner: Side) -> None:
    body, content_type = ours(gateway, partner, [Payload(FORM_D, "application/xml", CID)])
    soap, attachments = as_received(body, content_type)
    assert attachments == {CID: (FORM_D, "application/xml")}
    verdict = santuario.verify(soap, gateway.certificate, attachments)
    assert verdict.valid and verdict.references["cid:" + CID] == "ok", verdict
    assert open_at_partner(gateway, partner, body, content_type).payloads == {CID: FORM_D}


def test_our_text_with_lf_line_ends_and_binary_payloads_verify_at_santuario(
    santuario: Santuario, gateway: Side, partner: Side
) -> None:
    payloads = [
        Payload(TEXT, "text/plain", "annex@nsw.example"),
        Payload(BINARY, "application/pdf", "scan@nsw.example"),
    ]
    body, content_type = ours(gateway, partner, payloads)
    soap, attachments = as_received(body, content_type)
    verdict = santuario.verify(soap, gateway.certificate, attachments)
    assert verdict.valid and set(verdict.references.values()) == {"ok"}, verdict
    received = open_at_partner(gateway, partner, body, content_type)
    assert received.payloads == {"annex@nsw.example": TEXT, "scan@nsw.example": BINARY}


def test_our_compressed_payload_is_digested_as_gzip_octets_at_santuario(
    santuario: Santuario, gateway: Side, partner: Side
) -> None:
    body, content_type = ours(gateway, partner, [Payload(FORM_D, "application/xml", CID)], compress=True)
    soap, attachments = as_received(body, content_type)
    assert attachments[CID][1] == "application/gzip"
    assert santuario.verify(soap, gateway.certificate, attachments).valid
    assert open_at_partner(gateway, partner, body, content_type).payloads == {CID: FORM_D}


def test_our_xml_reserialized_in_transit_still_verifies_at_santuario_and_a_changed_text_does_not(
    santuario: Santuario, gateway: Side, partner: Side
) -> None:
    body, content_type = ours(gateway, partner, [Payload(FORM_D, "application/xml", CID)])
    soap, _ = as_received(body, content_type)
    assert santuario.verify(soap, gateway.certificate, {CID: (FORM_D_RESERIALIZED, "application/xml")}).valid
    changed = santuario.verify(soap, gateway.certificate, {CID: (FORM_D_CHANGED, "application/xml")})
    assert not changed.valid and changed.references["cid:" + CID] == "digest-mismatch"


def test_our_encrypted_xml_part_is_digested_by_its_encrypted_data_mime_type(
    santuario: Santuario, gateway: Side, partner: Side
) -> None:
    body, content_type = ours(gateway, partner, [Payload(FORM_D, "application/xml", CID)], encrypt=True)
    soap, attachments = as_received(body, content_type)
    assert attachments[CID][1] == "application/octet-stream"
    decrypted = decrypt_attachments(parse_xml(soap), {CID: attachments[CID][0]}, partner.decrypter)
    assert decrypted.mime_types == {CID: "application/xml"}
    plaintext = decrypted.attachments[CID]
    assert santuario.verify(soap, gateway.certificate, {CID: (plaintext, "application/xml")}).valid
    as_octets = santuario.verify(soap, gateway.certificate, {CID: (plaintext, "application/octet-stream")})
    assert not as_octets.valid, "the digest is over the canonical XML, not over the part's octets"
    assert open_at_partner(gateway, partner, body, content_type).payloads == {CID: FORM_D}


# --------------------------------------------------------------------------- Santuario -> ours


def test_santuario_signed_xml_payload_opens_at_our_receiver(
    santuario: Santuario, dev_pki: DevPki, gateway: Side, partner: Side
) -> None:
    envelope = theirs(santuario, dev_pki, partner, {CID: (FORM_D, "application/xml")})
    received = open_at_gateway(gateway, partner, *packaged(envelope, {CID: (FORM_D, "application/xml")}))
    assert received.payloads == {CID: FORM_D} and received.mime_types == {CID: "application/xml"}


def test_santuario_signed_text_with_lf_line_ends_and_binary_open_at_our_receiver(
    santuario: Santuario, dev_pki: DevPki, gateway: Side, partner: Side
) -> None:
    signed = {"annex@th.example": (TEXT, "text/plain"), "scan@th.example": (BINARY, "application/octet-stream")}
    envelope = theirs(santuario, dev_pki, partner, signed)
    received = open_at_gateway(gateway, partner, *packaged(envelope, signed))
    assert received.payloads == {"annex@th.example": TEXT, "scan@th.example": BINARY}
    crlf_text = b"Packing list\r\nline two\r\nline three\r\nend\r\n"  # the same text, as a CRLF mail hop writes it
    crlf = {**signed, "annex@th.example": (crlf_text, "text/plain")}
    assert open_at_gateway(gateway, partner, *packaged(envelope, crlf)).payloads["annex@th.example"] == crlf_text
    flipped = {**signed, "scan@th.example": (BINARY.replace(b"\r\n", b"\n"), "application/octet-stream")}
    with pytest.raises(DigestMismatch) as caught:
        open_at_gateway(gateway, partner, *packaged(envelope, flipped))
    assert caught.value.code == "SIG_DIGEST_MISMATCH" and caught.value.field == "cid:scan@th.example"


def test_santuario_signed_xml_reserialized_in_transit_opens_and_a_changed_text_fails_with_digest_mismatch(
    santuario: Santuario, dev_pki: DevPki, gateway: Side, partner: Side
) -> None:
    envelope = theirs(santuario, dev_pki, partner, {CID: (FORM_D, "application/xml")})
    sent = {CID: (FORM_D_RESERIALIZED, "application/xml")}
    assert open_at_gateway(gateway, partner, *packaged(envelope, sent)).payloads == {CID: FORM_D_RESERIALIZED}
    with pytest.raises(NswError) as caught:
        open_at_gateway(gateway, partner, *packaged(envelope, {CID: (FORM_D_CHANGED, "application/xml")}))
    assert caught.value.code == "SIG_DIGEST_MISMATCH" and caught.value.field == "cid:" + CID


def test_santuario_signed_xml_encrypted_by_the_sender_is_digested_by_encrypted_data_mime_type(
    santuario: Santuario, dev_pki: DevPki, gateway: Side, partner: Side
) -> None:
    envelope = theirs(santuario, dev_pki, partner, {CID: (FORM_D, "application/xml")})
    ciphertexts = encrypt_attachments(envelope, {CID: (FORM_D_RESERIALIZED, "application/xml")}, gateway.certificate)
    body, content_type = packaged(envelope, {CID: (ciphertexts[CID], "application/octet-stream")})
    assert open_at_gateway(gateway, partner, body, content_type).payloads == {CID: FORM_D_RESERIALIZED}


def test_xml_typed_attachment_that_is_not_xml_is_refused_with_xml_malformed(
    santuario: Santuario, dev_pki: DevPki, gateway: Side, partner: Side
) -> None:
    envelope = theirs(santuario, dev_pki, partner, {CID: (b"18350.00 <not xml", "application/octet-stream")})
    with pytest.raises(XmlMalformed) as caught:
        open_at_gateway(gateway, partner, *packaged(envelope, {CID: (b"18350.00 <not xml", "application/xml")}))
    assert caught.value.code == "XML_MALFORMED" and caught.value.field == "cid:" + CID


def test_our_xml_typed_payload_that_is_not_xml_is_refused_before_sending(gateway: Side, partner: Side) -> None:
    with pytest.raises(XmlMalformed) as caught:
        ours(gateway, partner, [Payload(b"18350.00 <not xml", "application/xml", CID)])
    assert caught.value.code == "XML_MALFORMED" and caught.value.field == "cid:" + CID
