"""What an unauthenticated client can make the AS4 endpoint spend: no decryption, a bounded number of signatures.

Everything real on 127.0.0.1: the gateway with its ``as4`` inbound endpoint, configured with our keys behind
counting implementations of the :class:`~signing.xenc.Decrypter` and :class:`~signing.keys.Signer` interfaces
(each call is a private-key operation), and TH-ASW sending with an ``As4Adapter`` or a raw HTTP POST.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding

from adapters.as4 import As4Adapter, Payload, verify_signal
from adapters.as4.ebms import Party, UserMessage, build_user_messaging, new_envelope
from adapters.as4.messages import As4Partner, build_user_message, open_user_message
from adapters.as4.mime import build_multipart, parse_multipart
from adapters.as4.receiver import ErrorSignalLimits, SignalBudget
from gateway.api import Gateway
from gateway.errors import (
    DigestMismatch,
    PartnerRejected,
    ReferenceCountInvalid,
    ValidationFailed,
)
from gateway.ports import OutboundMessage
from helpers.as4 import ACTION, GATEWAY, PARTNER, SERVICE, Side, partner_options, pmode, side
from helpers.gateway import make_config
from signing.algorithms import SignatureAlgorithm
from signing.dev.pki import DevPki
from signing.keys import Signer
from signing.trust import TrustStore
from signing.wss import EB_NS, WSSE_NS, sign_envelope, verify_envelope_signature
from signing.xenc import SoftwareDecrypter
from signing.xml import parse_xml, serialize

FORM_D = b"<CertificateOfOrigin><ReferenceNo>TH-2026-0001</ReferenceNo><Form>D</Form></CertificateOfOrigin>"
GZIP = "application/gzip"


class CountingDecrypter(SoftwareDecrypter):
    """Our decryption key, counting the key unwraps (RSA-OAEP with the private key)."""

    unwraps = 0

    def unwrap(self, wrapped: bytes, oaep: padding.OAEP) -> bytes:
        self.unwraps += 1
        return super().unwrap(wrapped, oaep)


class CountingSigner(Signer):
    """Our signing key, counting the signatures made with it."""

    def __init__(self, inner: Signer) -> None:
        self.inner = inner
        self.signatures = 0

    @property
    def certificate(self) -> x509.Certificate:
        return self.inner.certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self.inner.chain

    def sign(self, data: bytes, algorithm: SignatureAlgorithm) -> bytes:
        self.signatures += 1
        return self.inner.sign(data, algorithm)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


def us(dev_pki: DevPki) -> Side:
    return side(dev_pki, "nsw-gateway", GATEWAY)


def counting_keys(dev_pki: DevPki) -> tuple[CountingSigner, CountingDecrypter]:
    ours = us(dev_pki)
    issued = dev_pki.party("nsw-gateway")
    return CountingSigner(ours.signer), CountingDecrypter(issued.key, issued.cert)  # type: ignore[arg-type]


def gateway_with(
    dev_pki: DevPki, tmp_path: Path, signer: Signer, decrypter: CountingDecrypter, **limits: Any
) -> Gateway:
    """The gateway receiving from TH-ASW, whose one certificate is pinned."""
    options: dict[str, Any] = {
        "party_id": GATEWAY,
        "signer": signer,
        "decryption_key": decrypter,
        "partners": {
            PARTNER: partner_options(dev_pki, "TH", trust={"pinned": [str(dev_pki.party("th-asw").cert_path)]})
        },
    }
    if limits:
        options["error_signals"] = limits
    config = make_config(
        tmp_path,
        {"DEST": "http://127.0.0.1:9/unused"},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        routes=[{"document_type": "eco.form_d", "sender": "TH", "to": ["DEST"]}],
        extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
    )
    return Gateway(config)


def sender(dev_pki: DevPki, url: str, key: Signer) -> As4Adapter:
    """TH-ASW's sending side, signing with ``key`` (its own, or one we do not trust for it)."""
    ours = us(dev_pki)
    return As4Adapter(
        url,
        timeout=10,
        options={
            "pmode": pmode(PARTNER, GATEWAY, attempts=1),
            "signer": key,
            "trust": TrustStore.from_files(GATEWAY, pinned=[dev_pki.party("nsw-gateway").cert_path]),
            "encryption_certificate": ours.certificate,
        },
    )


def outbound(message_id: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, payload=FORM_D, sender=PARTNER, document_type=ACTION, conversation=f"c-{message_id}"
    )


def unsigned_encrypted_message(dev_pki: DevPki, number: int) -> tuple[bytes, str]:
    """A user message from TH-ASW with an encrypted payload and no ds:Signature (removed after building)."""
    agreement = pmode(PARTNER, GATEWAY)
    user = UserMessage(
        message_id=f"unsigned-{number}@th-asw",
        timestamp=datetime.now(UTC),
        sender=Party(PARTNER, agreement.initiator.party_id_type, agreement.initiator.role),
        receiver=Party(GATEWAY, agreement.responder.party_id_type, agreement.responder.role),
        service=SERVICE,
        action=ACTION,
        conversation_id="c-unsigned",
    )
    built = build_user_message(
        user,
        [Payload(FORM_D)],
        signer=side(dev_pki, "th-asw", PARTNER).signer,
        pmode=agreement,
        encrypt_for=us(dev_pki).certificate,
    )
    mime = parse_multipart(built.body, built.content_type)
    envelope = parse_xml(mime.soap)
    security = envelope.find(f".//{{{WSSE_NS}}}Security")
    assert security is not None
    signature = security.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    security.remove(signature)
    assert security.find("{http://www.w3.org/2001/04/xmlenc#}EncryptedKey") is not None
    return build_multipart(serialize(envelope), list(mime.attachments.values()))


def error_code(signal_body: bytes, dev_pki: DevPki) -> str:
    """The gateway error code in the ErrorDetail of our signed error signal."""
    signal = verify_signal(signal_body, "application/soap+xml", trust=us(dev_pki).trust)
    [error] = signal.signal.errors
    assert error.detail is not None
    return error.detail.split()[0]


async def test_unsigned_encrypted_message_is_refused_without_decrypting(dev_pki: DevPki, tmp_path: Path) -> None:
    signer, decrypter = counting_keys(dev_pki)
    body, content_type = unsigned_encrypted_message(dev_pki, 1)
    async with gateway_with(dev_pki, tmp_path, signer, decrypter) as gw, aiohttp.ClientSession() as session:
        async with session.post(f"{gw.url}/as4", data=body, headers={"Content-Type": content_type}) as r:
            assert r.status == 200
            answer = await r.read()
    assert error_code(answer, dev_pki) == "SIG_MISSING"
    assert decrypter.unwraps == 0


async def test_encrypted_message_signed_by_an_untrusted_key_is_refused_without_decrypting(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    signer, decrypter = counting_keys(dev_pki)
    async with gateway_with(dev_pki, tmp_path, signer, decrypter) as gw:
        # Signed with a certificate of the same CA that is not TH-ASW's pinned one, claiming to be TH-ASW.
        async with sender(dev_pki, f"{gw.url}/as4", side(dev_pki, "moit", "MOIT").signer) as adapter:
            with pytest.raises(PartnerRejected) as caught:
                await adapter.deliver(outbound("TH-FORGED-1"))
    assert caught.value.details["ebms"] == "EBMS:0101"
    assert str(caught.value.details["detail"]).startswith("CERT_UNTRUSTED ")
    assert decrypter.unwraps == 0


async def test_authentic_message_is_decrypted_once_after_its_signature_verified(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    signer, decrypter = counting_keys(dev_pki)
    async with gateway_with(dev_pki, tmp_path, signer, decrypter) as gw:
        async with sender(dev_pki, f"{gw.url}/as4", side(dev_pki, "th-asw", PARTNER).signer) as adapter:
            receipt = await adapter.deliver(outbound("TH-ECO-1"))
    assert receipt.message_id == "TH-ECO-1"
    assert decrypter.unwraps == 1 and signer.signatures == 1  # the receipt


async def test_beyond_the_per_client_bound_refusals_are_429_and_unsigned(dev_pki: DevPki, tmp_path: Path) -> None:
    signer, decrypter = counting_keys(dev_pki)
    gw = gateway_with(dev_pki, tmp_path, signer, decrypter, per_client_burst=2, per_client_rate=0)
    answers: list[tuple[int, bytes, str]] = []
    async with gw, aiohttp.ClientSession() as session:
        for number in range(4):
            body, content_type = unsigned_encrypted_message(dev_pki, number)
            async with session.post(f"{gw.url}/as4", data=body, headers={"Content-Type": content_type}) as r:
                answers.append((r.status, await r.read(), r.headers.get("Retry-After", "")))
        # A partner's authentic message is still received and answered with a signed receipt.
        async with sender(dev_pki, f"{gw.url}/as4", side(dev_pki, "th-asw", PARTNER).signer) as adapter:
            receipt = await adapter.deliver(outbound("TH-ECO-2"))
    assert [status for status, _, _ in answers] == [200, 200, 429, 429]
    assert [error_code(body, dev_pki) for _, body, _ in answers[:2]] == ["SIG_MISSING", "SIG_MISSING"]
    for _, body, retry_after in answers[2:]:
        detail = json.loads(body)["error"]  # JSON, not a (signed) SOAP signal
        assert detail["code"] == "AS4_SIGNAL_LIMIT" and detail["details"]["refused"] == "SIG_MISSING"
        assert int(retry_after) >= 1
    assert receipt.message_id == "TH-ECO-2"
    assert signer.signatures == 3  # two error signals and the receipt: none for the refusals beyond the bound
    assert decrypter.unwraps == 1


async def test_beyond_the_overall_bound_no_client_gets_a_signed_refusal(dev_pki: DevPki, tmp_path: Path) -> None:
    signer, decrypter = counting_keys(dev_pki)
    gw = gateway_with(dev_pki, tmp_path, signer, decrypter, burst=1, rate=0)
    async with gw, aiohttp.ClientSession() as session:
        statuses = []
        for number in range(3):
            body, content_type = unsigned_encrypted_message(dev_pki, number)
            async with session.post(f"{gw.url}/as4", data=body, headers={"Content-Type": content_type}) as r:
                statuses.append((r.status, (await r.json())["error"]["code"] if r.status == 429 else None))
    assert statuses == [(200, None), (429, "AS4_SIGNAL_LIMIT"), (429, "AS4_SIGNAL_LIMIT")]
    assert signer.signatures == 1 and decrypter.unwraps == 0


def test_signal_budget_refills_per_client_and_overall() -> None:
    now = [0.0]
    budget = SignalBudget(
        ErrorSignalLimits(per_client_burst=2, per_client_rate=1.0, burst=3, rate=0.5), clock=lambda: now[0]
    )
    assert [budget.take("a"), budget.take("a"), budget.take("a")] == [True, True, False]
    assert budget.take("b") and not budget.take("b")  # the overall bucket (3) is empty now
    now[0] = 1.0  # a refilled one token, the overall bucket half of one
    assert not budget.take("a")
    now[0] = 2.0  # the overall bucket has one token again
    assert budget.take("a") and not budget.take("b")
    assert budget.retry_after() == 2


def test_signal_budget_forgets_full_buckets_first() -> None:
    now = [0.0]
    budget = SignalBudget(ErrorSignalLimits(per_client_burst=1, per_client_rate=1.0, clients=2), clock=lambda: now[0])
    assert budget.take("a") and budget.take("b")
    now[0] = 5.0  # both refilled: forgotten when a third address arrives
    assert budget.take("c") and not budget.take("c")
    assert len(budget._clients) == 1


def test_payload_decompressing_beyond_the_pmodes_limit_is_refused_after_verification(dev_pki: DevPki) -> None:
    ours, th = us(dev_pki), side(dev_pki, "th-asw", PARTNER)
    agreement = pmode(PARTNER, GATEWAY)
    user = UserMessage(
        message_id="bomb-1@th-asw",
        timestamp=datetime.now(UTC),
        sender=Party(PARTNER, agreement.initiator.party_id_type, agreement.initiator.role),
        receiver=Party(GATEWAY, agreement.responder.party_id_type, agreement.responder.role),
        service=SERVICE,
        action=ACTION,
        conversation_id="c-bomb",
    )
    bomb = b"<a>" + b" " * 4_000_000 + b"</a>"  # some kilobytes once compressed
    built = build_user_message(user, [Payload(bomb)], signer=th.signer, pmode=agreement, encrypt_for=ours.certificate)
    assert len(built.body) < 100_000
    partner = As4Partner(pmode(GATEWAY, PARTNER).model_copy(update={"max_payload_bytes": 1_000_000}), th.trust)
    with pytest.raises(ValidationFailed) as caught:
        open_user_message(
            built.body,
            built.content_type,
            our_party_id=GATEWAY,
            partner_for=lambda _: partner,
            decrypter=ours.decrypter,
        )
    assert [i.code for i in caught.value.issues] == ["AS4_TOO_LARGE"]
    assert caught.value.details["ebms"] == "EBMS:0303"


def test_the_signature_is_verified_without_the_attachments_and_their_digests_afterwards(dev_pki: DevPki) -> None:
    th = side(dev_pki, "th-asw", PARTNER)
    envelope, header, _ = new_envelope()
    build_user_messaging(
        header,
        UserMessage("m1@x", datetime(2026, 1, 1, tzinfo=UTC), Party(PARTNER), Party(GATEWAY), SERVICE, ACTION, "c1"),
    )
    sign_envelope(envelope, th.signer, {"a@x": (b"compressed payload", GZIP)})
    envelope = parse_xml(serialize(envelope))
    signed = verify_envelope_signature(envelope, trust=th.trust, content_ids={"a@x"})
    assert signed.certificate == th.certificate and signed.messaging is not None
    verified = signed.verify_attachments({"a@x": (b"compressed payload", GZIP)})
    assert verified.attachments == {"a@x": b"compressed payload"}
    with pytest.raises(DigestMismatch) as caught:
        signed.verify_attachments({"a@x": (b"another payload", GZIP)})
    assert caught.value.field == "cid:a@x"
    with pytest.raises(ReferenceCountInvalid):
        signed.verify_attachments({"a@x": (b"compressed payload", GZIP), "b@x": (b"unsigned", GZIP)})
    action = envelope.find(f".//{{{EB_NS}}}Action")
    assert action is not None
    action.text = "other"  # an altered header is refused before any attachment is looked at
    with pytest.raises(DigestMismatch) as altered:
        verify_envelope_signature(envelope, trust=th.trust, content_ids={"a@x"})
    assert str(altered.value.field).endswith("eb:Messaging")
