"""Regenerate the AS4 vectors of this folder: ``python tests/vectors/as4/generate.py``.

One file per scenario (the raw HTTP body of an AS4 request, or of a signal),
listed with its Content-Type and expected result in ``manifest.json``; the
scenarios are described in README.md. The signing keys are the TEST-ONLY keys
of ``tests/vectors/signing/pki`` (``moit`` signs as the partner TH-ASW and is
also the key we decrypt with; ``intruder`` chains to another CA). Everything
is checked at the fixed instant ``verify_at`` of tests/vectors/signing/vectors.json.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from adapters.as4.ebms import PartInfo, Party, Property, UserMessage, build_user_messaging, new_envelope  # noqa: E402
from adapters.as4.messages import As4Partner, Payload, build_receipt, build_user_message, open_user_message  # noqa: E402
from adapters.as4.mime import MimePart, build_multipart, parse_multipart  # noqa: E402
from adapters.as4.pmode import PartyConfig, PMode, SecurityConfig  # noqa: E402
from signing.algorithms import RSA_SHA1, SHA1_DIGEST  # noqa: E402
from signing.keys import SoftwareSigner  # noqa: E402
from signing.trust import TrustStore  # noqa: E402
from signing.wss import EB_NS, SOAP12_NS, WSSE_NS, WSU_NS, sign_envelope  # noqa: E402
from signing.xenc import SoftwareDecrypter  # noqa: E402
from signing.xml import parse_xml, serialize  # noqa: E402

PKI = ROOT / "tests" / "vectors" / "signing" / "pki"
AT = dt.datetime(2027, 5, 31, 12, 0, tzinfo=dt.UTC)
VERIFY_AT = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
US, PARTNER = "VN-NSW", "TH-ASW"
FORM_D = (ROOT / "tests" / "vectors" / "mappings" / "formd" / "form_d_two_items.xml").read_bytes()
CID = "form-d@th-asw.example"
_S, _EB, _WSSE = f"{{{SOAP12_NS}}}", f"{{{EB_NS}}}", f"{{{WSSE_NS}}}"


def cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PKI / f"{name}.pem").read_bytes())


def key(name: str):  # type: ignore[no-untyped-def]
    return serialization.load_pem_private_key((PKI / f"{name}.key.pem").read_bytes(), None)


def pmode(*, encrypt: bool) -> PMode:
    return PMode(
        id="th-vn-eco",
        initiator=PartyConfig(party_id=PARTNER),
        responder=PartyConfig(party_id=US),
        endpoint="http://127.0.0.1:1/as4",
        service="urn:asean:asw:services:eco",
        action="eco.form_d",
        compress=False,
        security=SecurityConfig(encrypt=encrypt, require_encryption=False),
    )


def user(message_id: str) -> UserMessage:
    return UserMessage(
        message_id=message_id,
        timestamp=AT,
        sender=Party(PARTNER),
        receiver=Party(US, role="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder"),
        service="urn:asean:asw:services:eco",
        action="eco.form_d",
        conversation_id="conv-vector-1",
    )


MOIT = SoftwareSigner(key("moit"), cert("moit"), [cert("issuing-ca")])
INTRUDER = SoftwareSigner(key("intruder"), cert("intruder"))


def build(message_id: str, *, signer: SoftwareSigner = MOIT, encrypt: bool = False) -> tuple[bytes, str]:
    out = build_user_message(
        user(message_id),
        [Payload(FORM_D, "application/xml", CID)],
        signer=signer,
        pmode=pmode(encrypt=encrypt),
        encrypt_for=cert("moit") if encrypt else None,
    )
    return out.body, out.content_type


def rewrite(body: bytes, content_type: str, change) -> tuple[bytes, str]:  # type: ignore[no-untyped-def]
    mime = parse_multipart(body, content_type)
    envelope = parse_xml(mime.soap)
    attachments = dict(mime.attachments)
    change(envelope, attachments)
    return build_multipart(serialize(envelope), list(attachments.values()))


def handcrafted(
    message_id: str,
    *,
    sign_messaging: bool = True,
    signed_attachments: tuple[str, ...] | None = None,
    algorithm=None,
    digest=None,
    extra_part: bool = False,
) -> tuple[bytes, str]:  # type: ignore[no-untyped-def]
    """A user message signed with chosen references and algorithms (for the policy vectors)."""
    envelope, header, _ = new_envelope()
    parts = [PartInfo("cid:" + CID, (Property("MimeType", "application/xml"),))]
    attachments = {CID: (FORM_D, "application/xml")}
    if extra_part:
        parts.append(PartInfo("cid:annex@th-asw.example", (Property("MimeType", "text/plain"),)))
        attachments["annex@th-asw.example"] = (b"Annex: packing list\n", "text/plain")
    um = user(message_id)
    build_user_messaging(header, UserMessage(**{**um.__dict__, "parts": tuple(parts)}))
    signed = {c: attachments[c] for c in (signed_attachments if signed_attachments is not None else attachments)}
    messaging = header.find(_EB + "Messaging")
    if not sign_messaging:
        header.remove(messaging)
    kwargs = {}
    if algorithm is not None:
        kwargs["algorithm"] = algorithm
    if digest is not None:
        kwargs["digest"] = digest
    sign_envelope(envelope, MOIT, signed, **kwargs)
    if not sign_messaging:
        header.append(messaging)
    mime_parts = [MimePart(c, mime_type, data) for c, (data, mime_type) in attachments.items()]
    return build_multipart(serialize(envelope), mime_parts)


def main() -> None:
    vectors: list[dict] = []

    def add(
        name: str, body: bytes, content_type: str, kind: str, expect: str | None, field: str | None, scenario: str
    ) -> None:
        (HERE / name).write_bytes(body)
        entry = {
            "file": name,
            "kind": kind,
            "content_type": content_type,
            "expect": expect or "ok",
            "scenario": scenario,
        }
        if field:
            entry["field"] = field
        vectors.append(entry)

    valid_body, valid_ct = build("vector-0001@th-asw.example")
    add(
        "valid_user_message.mime",
        valid_body,
        valid_ct,
        "user",
        None,
        None,
        "A signed One-Way/Push user message (Messaging, Body, the Form D attachment), not encrypted.",
    )
    enc_body, enc_ct = build("vector-0002@th-asw.example", encrypt=True)
    add(
        "valid_encrypted_user_message.mime",
        enc_body,
        enc_ct,
        "user",
        None,
        None,
        "The same, with the attachment encrypted (AES-128-GCM, RSA-OAEP MGF1-SHA256) for the moit key.",
    )

    def move_messaging(same_id: bool):  # type: ignore[no-untyped-def]
        def change(envelope: etree._Element, attachments: dict) -> None:
            header = envelope.find(_S + "Header")
            messaging = header.find(_EB + "Messaging")
            forged = copy.deepcopy(messaging)
            if not same_id:
                forged.set(f"{{{WSU_NS}}}Id", "messaging-forged")
            forged.find(f".//{_EB}ConversationId").text = "attacker-chosen"
            forged.find(f".//{_EB}Action").text = "eco.form_d.amendment"
            header.replace(messaging, forged)
            header.find(_WSSE + "Security").append(messaging)

        return change

    add(
        "wrapping_messaging_moved_into_security.mime",
        *rewrite(valid_body, valid_ct, move_messaging(False)),
        "user",
        "SIG_WRAPPING",
        "/S12:Envelope/S12:Header/wsse:Security/eb:Messaging",
        "The signed eb:Messaging is moved into wsse:Security and a forged eb:Messaging (new wsu:Id, other Action "
        "and ConversationId) takes its place in soap:Header. The `as4` package accepts this (it checks that some "
        "signed element is an eb:Messaging, not that it is the one it processes).",
    )
    add(
        "wrapping_forged_messaging_same_id.mime",
        *rewrite(valid_body, valid_ct, move_messaging(True)),
        "user",
        "SIG_DUPLICATE_ID",
        "/S12:Envelope/S12:Header/eb:Messaging",
        "As above, but the forged eb:Messaging keeps the signed one's wsu:Id, so that an id lookup that returns "
        "the first match finds the forged one.",
    )

    def second_body(envelope: etree._Element, attachments: dict) -> None:
        forged = etree.SubElement(envelope, _S + "Body")
        forged.text = "forged"

    add(
        "wrapping_second_body.mime",
        *rewrite(valid_body, valid_ct, second_body),
        "user",
        "SIG_WRAPPING",
        "/S12:Envelope/S12:Body",
        "A second, unsigned soap:Body is appended after the signed one.",
    )

    def tamper_attachment(envelope: etree._Element, attachments: dict) -> None:
        part = attachments[CID]
        attachments[CID] = MimePart(
            part.content_id,
            part.content_type,
            part.content.replace(b"<ImportCountryCode>SG<", b"<ImportCountryCode>MY<", 1),
        )

    add(
        "tampered_attachment.mime",
        *rewrite(valid_body, valid_ct, tamper_attachment),
        "user",
        "SIG_DIGEST_MISMATCH",
        "cid:" + CID,
        "The Form D attachment is altered after signing.",
    )

    def tamper_messaging(envelope: etree._Element, attachments: dict) -> None:
        envelope.find(f".//{_EB}Action").text = "eco.form_d.amendment"

    add(
        "tampered_messaging.mime",
        *rewrite(valid_body, valid_ct, tamper_messaging),
        "user",
        "SIG_DIGEST_MISMATCH",
        "/S12:Envelope/S12:Header/eb:Messaging",
        "eb:Action inside the signed eb:Messaging is altered after signing.",
    )

    def tamper_signed_info(envelope: etree._Element, attachments: dict) -> None:
        value = envelope.find(
            ".//{http://www.w3.org/2000/09/xmldsig#}SignedInfo/{http://www.w3.org/2000/09/xmldsig#}Reference/{http://www.w3.org/2000/09/xmldsig#}DigestValue"
        )
        value.text = "AAAA" + value.text[4:]

    add(
        "tampered_signed_info.mime",
        *rewrite(valid_body, valid_ct, tamper_signed_info),
        "user",
        "SIG_SIGNATURE_INVALID",
        "/S12:Envelope/S12:Header/wsse:Security/ds:Signature/ds:SignatureValue",
        "A DigestValue in SignedInfo is altered.",
    )

    add(
        "missing_attachment_reference.mime",
        *handcrafted("vector-0003@th-asw.example", signed_attachments=(CID,), extra_part=True),
        "user",
        "SIG_REFERENCE_COUNT",
        "cid:annex@th-asw.example",
        "Two attachments, the signature covers only the first: the second could be replaced at will.",
    )
    add(
        "messaging_not_signed.mime",
        *handcrafted("vector-0004@th-asw.example", sign_messaging=False),
        "user",
        "SIG_REFERENCE_COUNT",
        "/S12:Envelope/S12:Header/eb:Messaging",
        "The signature covers the Body and the attachment but not eb:Messaging.",
    )

    def strip_security(envelope: etree._Element, attachments: dict) -> None:
        header = envelope.find(_S + "Header")
        header.remove(header.find(_WSSE + "Security"))

    add(
        "unsigned_user_message.mime",
        *rewrite(valid_body, valid_ct, strip_security),
        "user",
        "SIG_MISSING",
        "/S12:Envelope/S12:Header/wsse:Security",
        "The wsse:Security header (and so the signature) is removed.",
    )
    add(
        "untrusted_certificate.mime",
        *build("vector-0005@th-asw.example", signer=INTRUDER),
        "user",
        "CERT_UNTRUSTED",
        "/S12:Envelope/S12:Header/wsse:Security/wsse:BinarySecurityToken",
        "Correctly signed, by a certificate of another CA than the partner's.",
    )
    add(
        "sha1_signature.mime",
        *handcrafted("vector-0006@th-asw.example", algorithm=RSA_SHA1, digest=SHA1_DIGEST),
        "user",
        "SIG_WEAK_ALGORITHM",
        "/S12:Envelope/S12:Header/wsse:Security/ds:Signature/ds:SignedInfo/ds:SignatureMethod",
        "Signed with RSA-SHA1 and SHA-1 digests.",
    )

    soap = parse_multipart(valid_body, valid_ct).soap
    xxe = b'<?xml version="1.0"?>\n<!DOCTYPE S12:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' + soap.split(
        b"?>", 1
    )[1].replace(b"conv-vector-1", b"&xxe;", 1)
    att = parse_multipart(valid_body, valid_ct).attachments[CID]
    add(
        "xxe_envelope.mime",
        *build_multipart(xxe, [att]),
        "user",
        "XML_DTD_FORBIDDEN",
        "DOCTYPE",
        "The SOAP part declares an external entity (XXE) used in eb:ConversationId.",
    )

    # Receipts: the genuine receipt of the valid message, and the same receipt re-wrapped for another message.
    partner = As4Partner(
        pmode(encrypt=False).model_copy(update={"responder": PartyConfig(party_id=PARTNER)}),
        TrustStore(PARTNER, anchors=(cert("root-ca"),), intermediates=(cert("issuing-ca"),), any_signer=True),
    )
    received = open_user_message(
        valid_body, valid_ct, our_party_id=US, partner_for=lambda _: partner, decrypter=None, at=VERIFY_AT
    )
    receipt = build_receipt(received, MOIT, domain="vn-nsw.example", at=AT)
    add(
        "valid_receipt.xml",
        receipt,
        "application/soap+xml",
        "receipt",
        None,
        None,
        "The signed non-repudiation receipt of valid_user_message.mime.",
    )
    other = open_user_message(
        enc_body,
        enc_ct,
        our_party_id=US,
        partner_for=lambda _: partner,
        decrypter=SoftwareDecrypter(key("moit"), cert("moit")),
        at=VERIFY_AT,
    )
    envelope = parse_xml(receipt)
    header = envelope.find(_S + "Header")
    messaging = header.find(_EB + "Messaging")
    forged = copy.deepcopy(messaging)
    forged.set(f"{{{WSU_NS}}}Id", "messaging-forged")
    forged.find(f".//{_EB}RefToMessageId").text = other.user_message.message_id
    nri = forged.find(".//{http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0}NonRepudiationInformation")
    for part, ref in zip(nri, other.verification.references, strict=False):
        part.replace(part[0], copy.deepcopy(ref.element))
    header.replace(messaging, forged)
    header.find(_WSSE + "Security").append(messaging)
    add(
        "receipt_wrapped_for_other_message.xml",
        serialize(envelope),
        "application/soap+xml",
        "receipt",
        "SIG_WRAPPING",
        "/S12:Envelope/S12:Header/wsse:Security/eb:Messaging",
        "The genuine receipt's signed eb:Messaging is moved into wsse:Security and a forged one claims delivery of "
        "valid_encrypted_user_message.mime (its RefToMessageId and ds:Reference digests). The `as4` package accepts "
        "such a receipt.",
    )

    manifest = {
        "verify_at": VERIFY_AT.isoformat(),
        "our_party_id": US,
        "partner_party_id": PARTNER,
        "signer": "tests/vectors/signing/pki/moit.pem",
        "trust": {
            "anchors": ["tests/vectors/signing/pki/root-ca.pem"],
            "intermediates": ["tests/vectors/signing/pki/issuing-ca.pem"],
        },
        "decryption_key": "tests/vectors/signing/pki/moit.key.pem",
        "receipts_acknowledge": "valid_user_message.mime",
        "vectors": vectors,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
