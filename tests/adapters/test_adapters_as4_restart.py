"""Reception awareness and duplicate elimination across restarts, on real servers on 127.0.0.1.

The sender side: a message the partner received, whose answer was lost, is resent by a *new*
adapter instance on the reopened store (a gateway restart) from its recorded bytes, so the partner's
original receipt still acknowledges it. The receiver side: the received MessageIds kept in the
gateway's store answer a MessageId received before a restart with the original receipt.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from adapters.as4 import As4Adapter, As4Receiver, StateDuplicateStore, StateSentStore
from gateway.errors import GatewayError, PartnerUnavailable, ReceiptInvalid, StoreFull
from gateway.ports import AdapterState, OutboundMessage, StoreAdapterState
from gateway.store.sqlite import SqliteStore
from helpers.as4 import ACTION, AnswerCutter, Side, pmode, receiver_for, serve
from helpers.disk import fill, mounted_tmpfs

pytestmark = [pytest.mark.slow]


async def no_sleep(seconds: float) -> None:
    return None


@contextlib.asynccontextmanager
async def gateway_store(path: Path) -> AsyncIterator[AdapterState]:
    """The state of destination TH in the gateway's SQLite store at ``path``, open for the block: leaving it and
    entering it again is a restart of the gateway."""
    async with SqliteStore(path, synchronous="NORMAL") as store:
        yield StoreAdapterState(store, "destination:TH")


def adapter_for(
    gateway: Side, partner: Side, url: str, *, attempts: int, state: AdapterState | None = None
) -> As4Adapter:
    return As4Adapter(
        url,
        timeout=5,
        options={
            "pmode": pmode(gateway.party_id, partner.party_id, attempts=attempts),
            "signer": gateway.signer,
            "trust": partner.trust,
            "encryption_certificate": partner.certificate,
            "sleep": no_sleep,
        },
        state=state,
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
    receiver = receiver_for(partner, gateway)
    bodies: list[bytes] = []
    async with serve(recording(receiver, bodies)) as url, AnswerCutter(url) as cutter:
        # Before the restart: the partner processes the message, every answer is lost on the way back.
        async with (
            gateway_store(tmp_path / "gw.db") as state,
            adapter_for(gateway, partner, cutter.url, attempts=2, state=state) as first,
        ):
            with pytest.raises(PartnerUnavailable) as lost:
                await first.deliver(outbound("eco-restart-1"))
            assert first.transmissions == 2
        assert lost.value.code == "PARTNER_UNAVAILABLE"
        assert cutter.answers_dropped == 2 and receiver.delivered == 1
        # After the restart: the store reopened, a new adapter instance on it; the network is back.
        cutter.cutting = False
        async with (
            gateway_store(tmp_path / "gw.db") as state,
            adapter_for(gateway, partner, cutter.url, attempts=2, state=state) as second,
        ):
            receipt = await second.deliver(outbound("eco-restart-1"))
            assert second.transmissions == 1
    original = await receiver.store.receipt_for(gateway.party_id, "eco-restart-1@nsw-gateway")
    assert receipt.message_id == "eco-restart-1" and receipt.duplicate and receipt.status == 200
    assert original is not None and receipt.raw == original
    assert receiver.delivered == 1 and receiver.inbox.qsize() == 1
    assert len(bodies) == 3 and len(set(bodies)) == 1


async def test_resend_by_an_adapter_without_the_gateway_state_is_rebuilt_and_the_original_receipt_does_not_match(
    gateway: Side, partner: Side
) -> None:
    # Why the sent messages are gateway state (each adapter here keeps them in its own memory): the rebuilt message has other digests than the one the partner acknowledged.
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
    # A partner that does not mark duplicates: the receipt id recorded in the gateway's store tells.
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
        async with (
            gateway_store(tmp_path / "gw.db") as state,
            adapter_for(gateway, partner, url, attempts=1, state=state) as first,
        ):
            before = await first.deliver(outbound("eco-restart-3"))
        async with (
            gateway_store(tmp_path / "gw.db") as state,
            adapter_for(gateway, partner, url, attempts=1, state=state) as second,
        ):
            after = await second.deliver(outbound("eco-restart-3"))
    assert not before.duplicate and after.duplicate and after.raw == before.raw
    assert receiver.delivered == 1


async def test_message_id_resent_with_another_payload_is_refused_before_transmission(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    receiver = receiver_for(partner, gateway)
    async with (
        serve(receiver.app()) as url,
        gateway_store(tmp_path / "gw.db") as state,
        adapter_for(gateway, partner, url, attempts=1, state=state) as adapter,
    ):
        await adapter.deliver(outbound("eco-restart-4", b"<Doc>1</Doc>"))
        with pytest.raises(GatewayError) as caught:
            await adapter.deliver(outbound("eco-restart-4", b"<Doc>2</Doc>"))
        assert adapter.transmissions == 1
    assert caught.value.code == "GATEWAY_INTERNAL" and caught.value.details["cause"] == "AS4_MESSAGE_ID_REUSED"
    assert not caught.value.retryable


async def test_message_is_recorded_in_the_gateway_store_before_the_first_transmission(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    # The partner is down: nothing was answered, but the exact bytes are already in the store.
    receiver = receiver_for(partner, gateway)
    async with serve(receiver.app()) as url:
        pass
    async with (
        gateway_store(tmp_path / "gw.db") as state,
        adapter_for(gateway, partner, url, attempts=1, state=state) as adapter,
    ):
        with pytest.raises(PartnerUnavailable):
            await adapter.deliver(outbound("eco-restart-5"))
    async with gateway_store(tmp_path / "gw.db") as state:
        record = await StateSentStore(state, retention=60).get(partner.party_id, "eco-restart-5@nsw-gateway")
    assert (
        record is not None and record.body.startswith(b"--MIMEBoundary_") and "multipart/related" in record.content_type
    )
    assert record.references.count(b"Reference URI=") == 3 and record.receipt_id is None


async def test_received_message_ids_in_the_gateway_store_answer_with_the_original_receipt_after_a_restart(
    gateway: Side, partner: Side, tmp_path: Path
) -> None:
    async with SqliteStore(tmp_path / "partner.db", synchronous="NORMAL") as store:
        received = StateDuplicateStore(StoreAdapterState(store, "inbound:as4"), retention=3600)
        before_restart = receiver_for(partner, gateway, store=received)
        async with serve(before_restart.app()) as url:
            async with adapter_for(gateway, partner, url, attempts=3) as adapter:
                original = await adapter.deliver(outbound("eco-dup-restart"))
                port = int(url.split(":")[2].split("/")[0])
                await adapter.close()  # drop the keep-alive connection to the server that is about to stop
    async with SqliteStore(tmp_path / "partner.db", synchronous="NORMAL") as store:
        received = StateDuplicateStore(StoreAdapterState(store, "inbound:as4"), retention=3600)
        after_restart = receiver_for(partner, gateway, store=received)
        async with serve(after_restart.app(), port=port) as url2:
            assert url2 == url
            # The same adapter instance resends the same bytes to the restarted receiver.
            async with adapter:
                again = await adapter.deliver(outbound("eco-dup-restart"))
    assert before_restart.delivered == 1 and after_restart.delivered == 0 and after_restart.inbox.empty()
    assert again.duplicate and again.raw == original.raw and not original.duplicate


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk") as where:
        yield where


async def test_message_the_full_store_cannot_record_is_not_sent_and_fails_STORE_FULL_retryable(
    gateway: Side, partner: Side, tiny_disk: Path
) -> None:
    receiver = receiver_for(partner, gateway)
    # random content: compression leaves it larger than the room the store's WAL has left
    payload = b"<Doc>" + base64.b64encode(os.urandom(3 * 1024 * 1024)) + b"</Doc>"
    async with (
        serve(receiver.app()) as url,
        gateway_store(tiny_disk / "gw.db") as state,
        adapter_for(gateway, partner, url, attempts=2, state=state) as adapter,
    ):
        fill(tiny_disk)
        with pytest.raises(StoreFull) as caught:
            await adapter.deliver(outbound("eco-restart-6", payload))
        assert adapter.transmissions == 0
    assert caught.value.code == "STORE_FULL" and caught.value.retryable and caught.value.field == "store.url"
    assert StoreFull in As4Adapter.recoverable
    assert receiver.delivered == 0
