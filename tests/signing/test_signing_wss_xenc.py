"""WS-Security and XML Encryption building blocks: algorithms per policy, MIME round trips, decryption failures."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

import pytest

from adapters.as4.ebms import Party, UserMessage, build_user_messaging, new_envelope
from adapters.as4.mime import MimePart, build_multipart, parse_multipart
from gateway.errors import AlgorithmForbidden, DecryptionFailed
from helpers.as4 import Side, side
from signing.algorithms import ECDSA_SHA256, RSA_PSS_SHA256
from signing.dev.pki import DevPki, generate_key
from signing.identity import SignerIdentity
from signing.keys import SoftwareSigner
from signing.policy import VerifyPolicy
from signing.wss import WssPolicy, sign_envelope, verify_envelope
from signing.xenc import decrypt_attachments, encrypt_attachments
from signing.xml import parse_xml, serialize


@pytest.fixture(scope="module")
def alice(dev_pki: DevPki) -> Side:
    return side(dev_pki, "customs", "A")


@pytest.fixture(scope="module")
def bob(dev_pki: DevPki) -> Side:
    return side(dev_pki, "mard", "B")


def envelope_with_messaging():  # type: ignore[no-untyped-def]
    envelope, header, _ = new_envelope()
    build_user_messaging(
        header,
        UserMessage("m1@x", datetime(2026, 1, 1, tzinfo=UTC), Party("A"), Party("B"), "svc", "act", "c1"),
    )
    return envelope


def test_ecdsa_signature_verifies_and_is_refused_when_the_policy_allows_only_rsa(dev_pki: DevPki, alice: Side) -> None:
    issued = dev_pki.issue("as4-ecdsa-signer", key=generate_key("p256"))
    signer = SoftwareSigner(issued.key, issued.cert, [dev_pki.issuing_cert])  # type: ignore[arg-type]
    envelope = envelope_with_messaging()
    sign_envelope(envelope, signer, {"a@x": (b"payload", "application/octet-stream")}, algorithm=ECDSA_SHA256)
    envelope = parse_xml(serialize(envelope))
    trust = dataclasses.replace(alice.trust, signers=SignerIdentity.of(issued.cert))
    result = verify_envelope(envelope, trust=trust, attachments={"a@x": (b"payload", "application/octet-stream")})
    assert result.signature_method == ECDSA_SHA256.uri and result.attachments == {"a@x": b"payload"}
    rsa_only = WssPolicy(
        dsig=VerifyPolicy(signature_methods=frozenset({"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}))
    )
    with pytest.raises(AlgorithmForbidden) as caught:
        verify_envelope(
            envelope, trust=trust, attachments={"a@x": (b"payload", "application/octet-stream")}, policy=rsa_only
        )
    assert caught.value.field.endswith("ds:SignatureMethod")


def test_rsa_pss_signature_verifies(alice: Side) -> None:
    envelope = envelope_with_messaging()
    sign_envelope(envelope, alice.signer, algorithm=RSA_PSS_SHA256)
    result = verify_envelope(parse_xml(serialize(envelope)), trust=alice.trust)
    assert result.signature_method == RSA_PSS_SHA256.uri and result.messaging is not None


def test_mime_round_trip_keeps_binary_attachments_byte_for_byte() -> None:
    blobs = [os.urandom(4096) + b"\r\n--\r", b"\r\n", b""]
    body, content_type = build_multipart(
        b"<S12:Envelope xmlns:S12='http://www.w3.org/2003/05/soap-envelope'/>",
        [MimePart(f"p{i}@x", "application/octet-stream", b) for i, b in enumerate(blobs)],
    )
    parsed = parse_multipart(body, content_type)
    assert [parsed.attachments[f"p{i}@x"].content for i in range(3)] == blobs


def test_payload_encrypted_for_another_recipient_is_refused(alice: Side, bob: Side) -> None:
    envelope = envelope_with_messaging()
    ciphertexts = encrypt_attachments(envelope, {"a@x": (b"secret", "application/xml")}, bob.certificate)
    with pytest.raises(DecryptionFailed) as caught:
        decrypt_attachments(envelope, ciphertexts, alice.decrypter)
    assert caught.value.code == "ENC_DECRYPTION_FAILED" and caught.value.field.endswith("xenc:EncryptedKey/ds:KeyInfo")
    assert decrypt_attachments(envelope, ciphertexts, bob.decrypter).attachments == {"a@x": b"secret"}


def test_altered_ciphertext_is_refused_naming_the_attachment(bob: Side) -> None:
    envelope = envelope_with_messaging()
    ciphertexts = encrypt_attachments(envelope, {"a@x": (b"secret", "application/xml")}, bob.certificate)
    ciphertexts["a@x"] = ciphertexts["a@x"][:-1] + bytes([ciphertexts["a@x"][-1] ^ 1])
    with pytest.raises(DecryptionFailed) as caught:
        decrypt_attachments(envelope, ciphertexts, bob.decrypter)
    assert caught.value.field == "cid:a@x"
