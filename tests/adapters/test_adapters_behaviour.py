"""The adapter behaviour suite: the same scenarios against every registered adapter alias.

submit, receive, duplicate, retryable failure, non-retryable failure, receipt. The partner side of each
protocol is real and on 127.0.0.1 (tests/helpers/adapters.py). The parametrization is every alias of
``gateway.ports.BUILTIN_ADAPTERS``: an alias without a harness fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.errors import NswError, PartnerRejected
from gateway.ports import BUILTIN_ADAPTERS, MessageIdReceiptVerifier, OutboundMessage
from helpers.adapters import Harness
from helpers.gateway import TOKENS, eventually, make_config
from helpers.harnesses import HARNESSES

ALIASES = sorted(BUILTIN_ADAPTERS)


@pytest.fixture(params=ALIASES)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    alias = request.param
    cls = HARNESSES.get(alias)
    if cls is None:
        pytest.fail(f"adapter {alias!r} is registered but has no harness in tests/helpers/adapters.py")
    fixtures: dict[str, Any] = {}
    if alias == "as4":
        fixtures["dev_pki"] = request.getfixturevalue("dev_pki")
    h = cls(tmp_path, fixtures)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


def _outbound(h: Harness, message_id: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        payload=h.payload(message_id),
        sender=h.party,
        document_type=h.document_type,
        conversation=message_id,
    )


def _gateway(h: Harness, tmp_path: Path) -> Gateway:
    adapter = h.adapter()
    # The destination's options are the adapter's own (a config with adapter = "webhook" needs its signer).
    per: dict[str, Any] = {"P": {"adapter": h.alias, "options": adapter.options}}
    extra = getattr(h, "mailbox_destination", None)
    if extra is not None:
        per["P"] = extra()
    config = make_config(tmp_path, {"P": "http://127.0.0.1:9/unused"}, per_destination=per)
    gw = Gateway(config, adapters={"P": adapter})
    gw.inbound.extend(h.inbound())
    return gw


async def _state(gw: Gateway, gid: str) -> str | None:
    record = await gw.store.get(gid)
    return record.state.value if record is not None else None


class TestAdapterBehaviour:
    async def test_submit_is_delivered_once_and_acknowledged(self, harness: Harness, tmp_path: Path) -> None:
        mid = f"submit-{uuid.uuid4().hex[:8]}"
        async with _gateway(harness, tmp_path) as gw, aiohttp.ClientSession() as s:
            async with s.post(
                f"{gw.url}/v1/messages",
                data=harness.payload(mid),
                headers={
                    "Authorization": f"Bearer {TOKENS[harness.party]}",
                    "X-Message-Id": mid,
                    "X-Document-Type": harness.document_type,
                    "Content-Type": "application/xml",
                },
            ) as r:
                assert r.status == 202, await r.text()
                gid = (await r.json())["id"]

            async def acknowledged() -> bool:
                return await _state(gw, gid) == "ACKNOWLEDGED"

            await eventually(acknowledged)
            async with s.get(
                f"{gw.url}/v1/messages/{gid}", headers={"Authorization": f"Bearer {TOKENS[harness.party]}"}
            ) as r:
                steps = [(t["to"], t["destination"]) for t in (await r.json())["history"]]
        assert ("ACKNOWLEDGED", "P") in steps
        assert len(harness.processed()) == 1

    async def test_receive_brings_the_message_into_the_gateway(self, harness: Harness, tmp_path: Path) -> None:
        mid = f"recv-{uuid.uuid4().hex[:8]}"
        async with _gateway(harness, tmp_path) as gw:
            gid = await harness.receive(gw, mid)
            record = await gw.store.get(gid)
            assert record is not None and record.message.error is None
            assert record.message.state.value == "QUEUED"

    async def test_duplicate_message_id_is_processed_once(self, harness: Harness) -> None:
        mid = f"dup-{uuid.uuid4().hex[:8]}"
        async with harness.adapter() as adapter:
            first = await adapter.deliver(_outbound(harness, mid))
            second = await adapter.deliver(_outbound(harness, mid))
        assert first.message_id == second.message_id == mid
        assert len(harness.processed()) == 1

    async def test_retryable_failure_is_partner_unavailable_then_succeeds(self, harness: Harness) -> None:
        mid = f"retry-{uuid.uuid4().hex[:8]}"
        harness.set_mode("down")
        async with harness.adapter() as adapter:
            with pytest.raises(NswError) as err:
                await adapter.deliver(_outbound(harness, mid))
            assert isinstance(err.value, adapter.recoverable)
        assert err.value.code == "PARTNER_UNAVAILABLE" and err.value.retryable
        harness.set_mode("ok")
        async with harness.adapter() as adapter:
            receipt = await adapter.deliver(_outbound(harness, mid))
        assert receipt.message_id == mid and len(harness.processed()) == 1

    async def test_non_retryable_failure_is_partner_rejected(self, harness: Harness) -> None:
        mid = f"reject-{uuid.uuid4().hex[:8]}"
        harness.set_mode("reject")
        async with harness.adapter() as adapter:
            with pytest.raises(PartnerRejected) as err:
                await adapter.deliver(_outbound(harness, mid))
            assert not isinstance(err.value, adapter.recoverable)
        assert err.value.code == "PARTNER_REJECTED" and not err.value.retryable
        assert harness.processed() == []

    async def test_receipt_names_the_delivered_message_id(self, harness: Harness) -> None:
        mid = f"receipt-{uuid.uuid4().hex[:8]}"
        async with harness.adapter() as adapter:
            receipt = await adapter.deliver(_outbound(harness, mid))
        assert MessageIdReceiptVerifier().verify(receipt, mid, "P") == receipt.raw and receipt.raw


def test_every_registered_adapter_has_a_harness() -> None:
    assert sorted(set(BUILTIN_ADAPTERS) - set(HARNESSES)) == []
