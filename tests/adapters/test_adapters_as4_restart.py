"""Reception awareness and duplicate elimination across restarts, on real servers on 127.0.0.1.

The sender side: a message the partner received, whose answer was lost, is resent by a *new*
adapter instance (a gateway restart) from the sent store, byte for byte, so the partner's
original receipt still acknowledges it. The receiver side: the SQLite duplicate store answers
a MessageId received before a restart with the original receipt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from adapters.as4 import As4Adapter, As4Receiver, SqliteDuplicateStore
from adapters.as4.sent import SqliteSentStore
from gateway.errors import ConfigError, GatewayError, PartnerUnavailable, ReceiptInvalid, StoreUnavailable
from gateway.ports import OutboundMessage
from helpers.as4 import ACTION, GATEWAY, PARTNER, AnswerCutter, Side, pmode, receiver_for, serve, side
from signing.dev.pki import DevPki

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def gateway(dev_pki: DevPki) -> Side:
    return side(dev_pki, "nsw-gateway", GATEWAY)


@pytest.fixture(scope="module")
def partner(dev_pki: DevPki) -> Side:
    return side(dev_pki, "th-asw", PARTNER)


async def no_sleep(seconds: float) -> None:
    return None


def adapter_for(gateway: Side, partner: Side, url: str, *, attempts: int, **options: object) -> As4Adapter:
    return As4Adapter(
        url,
        timeout=5,
        options={
            "pmode": pmode(gateway.party_id, partner.party_id, attempts=attempts),
            "signer": gateway.signer,
            "trust": partner.trust,
            "encryption_certificate": partner.certificate,
            "sleep": no_sleep,
            **options,
        },
    )


def outbound(message_id: str, payload: bytes = b"<Doc>restart</Doc>") -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        payload=payload,
        sender="VN-MOIT",
        document_type=ACTION,
        conversation="conv-r",
        content_type="application/xml",
    )


def recording(receiver: As4Receiver, bodies: list[bytes]) -> web.Application:
    """The receiver's app, recording every request body that reaches the partner."""

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        bodies.append(await request.read())
        return await handler(request)

    app = receiver.app()
    app.middlewares.append(record)
    return app


async def test_resend_after_a_restart_sends_the_recorded_bytes_and_returns_the_verified_original_receipt(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    sent_store = str(tmp_path / "as4-sent.db")
    receiver = receiver_for(partner, gateway)
    bodies: list[bytes] = []
    async with serve(recording(receiver, bodies)) as url, AnswerCutter(url) as cutter:
        # Before the restart: the partner processes the message, every answer is lost on the way back.
        async with adapter_for(gateway, partner, cutter.url, attempts=2, sent_store=sent_store) as first:
            with pytest.raises(PartnerUnavailable) as lost:
                await first.deliver(outbound("eco-restart-1"))
            assert first.transmissions == 2
        assert lost.value.code == "PARTNER_UNAVAILABLE"
        assert cutter.answers_dropped == 2 and receiver.delivered == 1
        # After the restart: a new adapter instance with the same sent store; the network is back.
        cutter.cutting = False
        async with adapter_for(gateway, partner, cutter.url, attempts=2, sent_store=sent_store) as second:
            receipt = await second.deliver(outbound("eco-restart-1"))
            assert second.transmissions == 1
    original = await receiver.store.receipt_for(gateway.party_id, "eco-restart-1@nsw-gateway")
    assert receipt.message_id == "eco-restart-1" and receipt.duplicate and receipt.status == 200
    assert original is not None and receipt.raw == original
    assert receiver.delivered == 1 and receiver.inbox.qsize() == 1
    assert len(bodies) == 3 and len(set(bodies)) == 1


async def test_resend_after_a_restart_without_a_sent_store_is_rebuilt_and_the_original_receipt_does_not_match(
    gateway: Side, partner: Side
) -> None:
    # Why the sent store exists: the rebuilt message has other digests than the one the partner acknowledged.
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url, AnswerCutter(url) as cutter:
        async with adapter_for(gateway, partner, cutter.url, attempts=1) as first:
            with pytest.raises(PartnerUnavailable):
                await first.deliver(outbound("eco-restart-2"))
        cutter.cutting = False
        async with adapter_for(gateway, partner, cutter.url, attempts=1) as second:
            with pytest.raises(ReceiptInvalid) as caught:
                await second.deliver(outbound("eco-restart-2"))
    assert caught.value.code == "PARTNER_RECEIPT_INVALID"
    assert caught.value.details["cause"] == "PARTNER_RECEIPT_INVALID"
    assert caught.value.field is not None and caught.value.field.endswith("ebbp:NonRepudiationInformation")
    assert receiver.delivered == 1


async def test_receipt_seen_before_a_restart_is_reported_duplicate_after_it(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    # A partner that does not mark duplicates: the receipt id recorded in the sent store tells.
    sent_store = str(tmp_path / "as4-sent.db")
    receiver = receiver_for(partner, gateway)

    @web.middleware
    async def unmarked(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        response.headers.pop("X-AS4-Duplicate", None)
        return response

    app = receiver.app()
    app.middlewares.append(unmarked)
    async with serve(app) as url:
        async with adapter_for(gateway, partner, url, attempts=1, sent_store=sent_store) as first:
            before = await first.deliver(outbound("eco-restart-3"))
        async with adapter_for(gateway, partner, url, attempts=1, sent_store=sent_store) as second:
            after = await second.deliver(outbound("eco-restart-3"))
    assert not before.duplicate and after.duplicate and after.raw == before.raw
    assert receiver.delivered == 1


async def test_message_id_resent_with_another_payload_is_refused_before_transmission(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    receiver = receiver_for(partner, gateway)
    async with (
        serve(receiver.app()) as url,
        adapter_for(gateway, partner, url, attempts=1, sent_store=str(tmp_path / "s.db")) as adapter,
    ):
        await adapter.deliver(outbound("eco-restart-4", b"<Doc>1</Doc>"))
        with pytest.raises(GatewayError) as caught:
            await adapter.deliver(outbound("eco-restart-4", b"<Doc>2</Doc>"))
        assert adapter.transmissions == 1
    assert caught.value.code == "GATEWAY_INTERNAL" and caught.value.details["cause"] == "AS4_MESSAGE_ID_REUSED"
    assert not caught.value.retryable


async def test_sent_store_that_cannot_be_opened_is_a_config_error_naming_the_option(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        adapter_for(
            gateway, partner, "http://127.0.0.1:1/as4", attempts=1, sent_store=str(tmp_path / "missing-dir" / "s.db")
        )
    assert caught.value.code == "CONFIG_INVALID" and caught.value.field == "options.sent_store"


async def test_sent_store_records_the_message_before_the_first_transmission(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    # The partner is down: nothing was answered, but the exact bytes are already on disk.
    path = tmp_path / "s.db"
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url:
        pass
    async with adapter_for(gateway, partner, url, attempts=1, sent_store=str(path)) as adapter:
        with pytest.raises(PartnerUnavailable):
            await adapter.deliver(outbound("eco-restart-5"))
    store = SqliteSentStore(path)
    try:
        record = await store.get(partner.party_id, "eco-restart-5@nsw-gateway")
    finally:
        store.close()
    assert (
        record is not None and record.body.startswith(b"--MIMEBoundary_") and "multipart/related" in record.content_type
    )
    assert record.references.count(b"Reference URI=") == 3 and record.receipt_id is None


async def test_duplicate_store_in_sqlite_answers_with_the_original_receipt_after_a_receiver_restart(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    path = tmp_path / "partner-received.db"
    first_store = SqliteDuplicateStore(path)
    before_restart = receiver_for(partner, gateway, store=first_store)
    try:
        async with serve(before_restart.app()) as url:
            async with adapter_for(gateway, partner, url, attempts=3) as adapter:
                original = await adapter.deliver(outbound("eco-dup-restart"))
                port = int(url.split(":")[2].split("/")[0])
                await adapter.close()  # drop the keep-alive connection to the server that is about to stop
    finally:
        first_store.close()
    second_store = SqliteDuplicateStore(path)
    after_restart = receiver_for(partner, gateway, store=second_store)
    try:
        async with serve(after_restart.app(), port=port) as url2:
            assert url2 == url
            # The same adapter instance resends the same bytes to the restarted receiver.
            async with adapter:
                again = await adapter.deliver(outbound("eco-dup-restart"))
    finally:
        second_store.close()
    assert before_restart.delivered == 1 and after_restart.delivered == 0 and after_restart.inbox.empty()
    assert again.duplicate and again.raw == original.raw and not original.duplicate


async def test_sent_store_failure_is_store_unavailable_and_nothing_is_sent_unrecorded(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    receiver = receiver_for(partner, gateway)
    async with (
        serve(receiver.app()) as url,
        adapter_for(gateway, partner, url, attempts=2, sent_store=str(path)) as adapter,
    ):
        other = sqlite3.connect(path)
        try:
            other.execute("DROP TABLE as4_sent")
            other.commit()
        finally:
            other.close()
        with pytest.raises(StoreUnavailable) as caught:
            await adapter.deliver(outbound("eco-restart-6"))
        assert adapter.transmissions == 0
    assert (
        caught.value.code == "STORE_UNAVAILABLE"
        and caught.value.retryable
        and caught.value.field == "options.sent_store"
    )
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert StoreUnavailable in As4Adapter.recoverable
    assert receiver.delivered == 0
