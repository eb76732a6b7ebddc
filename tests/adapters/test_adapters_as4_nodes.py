"""AS4 state is gateway state: two gateway nodes on one PostgreSQL database, or one SQLite gateway restarted.

Everything real on 127.0.0.1: gateways built from plain configuration values (their ``as4`` inbound endpoint
and ``as4`` destination), TH-ASW as ``As4Adapter`` instances sending to them and as an ``As4Receiver`` they
send to, behind a proxy that loses its answers while told to, and a loopback destination.

* ``postgresql``: node 1 and node 2 are two :class:`~gateway.api.Gateway` instances (two store sessions, two
  node ids) on one fresh schema;
* ``sqlite``: node 2 is the same gateway started again on the same file after node 1 stopped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.as4 import As4Adapter
from gateway.api import Gateway
from gateway.config import Config
from gateway.model import State, gateway_message_id
from gateway.ports import MemoryAdapterState, OutboundMessage
from gateway.store import Store
from gateway.store.base import MessageQuery
from gateway.store.postgres import PostgresStore
from helpers.as4 import (
    ACTION,
    GATEWAY,
    PARTNER,
    AnswerCutter,
    partner_options,
    pmode,
    receiver_for,
    sender_to,
    serve,
    side,
    th_destination,
)
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.postgres import fresh_schema
from signing.dev.pki import DevPki

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("p12_password")]

FORM_D = b"<CertificateOfOrigin><ReferenceNo>TH-2026-0042</ReferenceNo><Form>D</Form></CertificateOfOrigin>"
KINDS = [pytest.param("postgresql", marks=[pytest.mark.postgres]), "sqlite"]


class Nodes:
    """Gateway nodes of one kind of store: :meth:`node` builds node ``n`` on the shared database."""

    def __init__(self, kind: str, config: Config, dsn: str | None) -> None:
        self.kind, self.config, self.dsn = kind, config, dsn

    def node(self, n: int) -> Gateway:
        store: Store | None = None
        if self.kind == "postgresql":
            assert self.dsn is not None
            store = PostgresStore(self.dsn, pool_size=4, node_name=f"as4-node-{n}")
        return Gateway(self.config, store=store)


@contextlib.asynccontextmanager
async def nodes(kind: str, config: Config) -> AsyncIterator[Nodes]:
    if kind == "sqlite":
        yield Nodes(kind, config, None)
        return
    async with fresh_schema() as dsn:
        yield Nodes(kind, config, dsn)


# ------------------------------------------------------------------------ a duplicate arriving at another node


def inbound_config(dev_pki: DevPki, tmp_path: Path, destination: str) -> Config:
    options: dict[str, Any] = {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "partners": {PARTNER: partner_options(dev_pki, "TH")},
    }
    return make_config(
        tmp_path,
        {"DEST": destination},
        parties={"TH": {"tokens": ["th-token"], "document_types": ["eco.form_d"]}},
        routes=[{"document_type": "eco.form_d", "sender": "TH", "to": ["DEST"]}],
        extra={"inbound": {"asean": {"endpoint": "as4", "options": options}}},
    )


def th_sender(dev_pki: DevPki, url: str, state: MemoryAdapterState) -> As4Adapter:
    """TH-ASW's adapter towards a gateway node; adapters with one ``state`` send one message's same bytes."""
    us, th = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    return sender_to(url, th, us, state=state)


@pytest.mark.parametrize("kind", KINDS)
async def test_duplicate_arriving_at_node_2_after_the_original_reached_node_1_gets_the_original_receipt_only(
    dev_pki: DevPki, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nswgw.as4.receiver")
    message = OutboundMessage(
        message_id="TH-ECO-42", payload=FORM_D, sender=PARTNER, document_type=ACTION, conversation="conv-42"
    )
    ebms_id = f"TH-ECO-42@{pmode(PARTNER, GATEWAY).message_id_domain}"
    th_state = MemoryAdapterState()  # TH-ASW's own record of what it sent: its resend carries the same bytes
    async with Receiver() as dest, nodes(kind, inbound_config(dev_pki, tmp_path, dest.url)) as cluster:
        node_1, node_2 = cluster.node(1), cluster.node(2)
        async with node_1:
            async with th_sender(dev_pki, f"{node_1.url}/as4", th_state) as to_node_1:
                original = await to_node_1.deliver(message)
            if kind == "postgresql":
                await node_2.start()  # both nodes run: the resend reaches the other one
        if kind == "sqlite":
            await node_2.start()  # the same gateway, restarted on its file
        try:
            async with th_sender(dev_pki, f"{node_2.url}/as4", th_state) as to_node_2:
                again = await to_node_2.deliver(message)

            async def acknowledged() -> bool:
                record = await node_2.store.get(gateway_message_id("TH", ebms_id))
                return record is not None and record.state is State.ACKNOWLEDGED

            await eventually(acknowledged)
            stored = await node_2.store.search(MessageQuery(sender="TH"))
            [endpoint_2] = node_2.inbound
        finally:
            await node_2.stop()
        [endpoint_1] = node_1.inbound
    assert not original.duplicate
    assert again.duplicate and again.raw == original.raw  # the same answer as on one node
    assert [r.message.envelope.message_id for r in stored] == [ebms_id]
    assert endpoint_1.receiver.delivered == 1 and endpoint_2.receiver.delivered == 0  # type: ignore[attr-defined]
    assert len(dest.requests) == 1 and dest.requests[0]["body"] == FORM_D
    assert f"AS4 duplicate {ebms_id} from {PARTNER} answered with its original receipt" in [
        r.getMessage() for r in caplog.records if r.name == "nswgw.as4.receiver"
    ]


# ---------------------------------------------------------- a resend picked up by another node, its receipt


def outbound_config(dev_pki: DevPki, tmp_path: Path, partner_url: str) -> Config:
    options = th_destination(dev_pki)
    pmode = {name: value for name, value in options["pmode"].items() if name != "agreement"}
    options["pmode"] = {**pmode, "reception_awareness": {"attempts": 1}}
    return make_config(
        tmp_path,
        {"TH": partner_url},
        gateway={"lease_seconds": 2},
        per_destination={"TH": {"adapter": "as4", "options": options}},
        routes=[{"document_type": "eco.form_d", "to": ["TH"]}],
    )


def recording(app: web.Application, bodies: list[bytes]) -> web.Application:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        bodies.append(await request.read())
        return await handler(request)

    app.middlewares.append(record)
    return app


@pytest.mark.parametrize("kind", KINDS)
async def test_resend_by_node_2_of_a_message_node_1_sent_carries_its_bytes_and_the_original_receipt_matches(
    dev_pki: DevPki, tmp_path: Path, kind: str
) -> None:
    us, th = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    partner = receiver_for(th, us)
    bodies: list[bytes] = []
    async with serve(recording(partner.app(), bodies)) as url, AnswerCutter(url) as cutter:
        async with nodes(kind, outbound_config(dev_pki, tmp_path, cutter.url)) as cluster:
            # Node 1 sends; TH-ASW receives and answers, but every answer is lost on the way back.
            async with cluster.node(1) as node_1, aiohttp.ClientSession() as session:
                status, ack = await submit(session, node_1.url, "MOIT", "ECO-NODES-1", "eco.form_d", FORM_D)
                assert status == 202, ack
                await eventually(lambda: partner.delivered == 1 and cutter.answers_dropped >= 1)
            # Node 2 picks the delivery up (node 1 is gone); the network is back.
            cutter.cutting = False
            async with cluster.node(2) as node_2:

                async def acknowledged() -> bool:
                    record = await node_2.store.get(ack["id"])
                    return record is not None and record.state is State.ACKNOWLEDGED

                await eventually(acknowledged)
                record = await node_2.store.get(ack["id"])
    ebms_id = f"{ack['id']}@nsw-gateway"
    original = await partner.store.receipt_for(GATEWAY, ebms_id)
    assert record is not None and original is not None
    [delivery] = record.deliveries
    assert delivery.receipt == original  # the partner's receipt of node 1's transmission, verified by node 2
    assert partner.delivered == 1 and partner.inbox.qsize() == 1
    assert len(bodies) >= 2 and len(set(bodies)) == 1  # node 2 resent node 1's bytes
    codes = [t.code for t in delivery.history if t.code is not None]
    assert "PARTNER_UNAVAILABLE" in codes and "PARTNER_RECEIPT_INVALID" not in codes
