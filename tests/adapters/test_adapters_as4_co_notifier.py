"""A lifecycle notification over AS4 is taken only from the party the certificate of origin was delivered to.

Everything real on 127.0.0.1: the gateway (configured from plain TOML values, both stores), MOIT submitting its
e-Form Ds over REST, TH-ASW as an ``As4Adapter`` sending ``CertificateNotification`` documents to ``/as4``, and
loopback destinations for the two importing sides (TH, answered by party TH; MY) and for MOIT's inbox.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.as4 import As4Adapter
from gateway.api import Gateway
from gateway.errors import PartnerRejected
from gateway.ports import OutboundMessage
from helpers.as4 import GATEWAY, PARTNER, partner_options, pmode, side
from helpers.gateway import Receiver, eventually, make_config
from helpers.stores import STORE_PARAMS, STORES
from signing.dev.pki import DevPki

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "samples" / "form_d_two_items.xml").read_bytes()
NS = "urn:nsw-gateway:atiga:e-form-d:1"
NOTIFY = "NotifyFormD"


def certificate(number: str) -> bytes:
    return SAMPLE.replace(b"<ID>VN-SG-24-00001</ID>", f"<ID>{number}</ID>".encode())


def received(number: str) -> bytes:
    return (
        f'<CertificateNotification xmlns="{NS}"><Notification><TypeCode>received</TypeCode>'
        f"<CertificateID>{number}</CertificateID><IssuingCountryCode>VN</IssuingCountryCode>"
        f"<NotifyingCountryCode>TH</NotifyingCountryCode></Notification></CertificateNotification>"
    ).encode()


class Rig:
    def __init__(self, gw: Gateway, session: aiohttp.ClientSession, adapter: As4Adapter) -> None:
        self.gw, self.session, self.adapter = gw, session, adapter

    async def issue(self, message_id: str, number: str, destination: str) -> None:
        headers = {
            "Authorization": "Bearer moit-token",
            "X-Message-Id": message_id,
            "X-Document-Type": "eco.form_d",
            "X-Format": "form-d",
            "X-Destination": destination,
            "Content-Type": "application/xml",
        }
        async with self.session.post(f"{self.gw.url}/v1/messages", data=certificate(number), headers=headers) as r:
            assert r.status == 202, await r.text()

    async def status(self, number: str) -> dict[str, object]:
        url = f"{self.gw.url}/v1/certificates/VN/{number}"
        async with self.session.get(url, headers={"Authorization": "Bearer moit-token"}) as r:
            assert r.status == 200
            return dict(json.loads(await r.read()))

    async def delivered(self, number: str) -> bool:
        return (await self.status(number))["status"] == "delivered"

    def notice(self, message_id: str, number: str) -> OutboundMessage:
        return OutboundMessage(
            message_id=message_id,
            payload=received(number),
            sender=PARTNER,
            document_type=NOTIFY,
            conversation=f"conv-{message_id}",
        )


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AS4_TEST_P12_PASSWORD", "changeit")


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, dev_pki: DevPki, tmp_path: Path) -> AsyncIterator[Rig]:
    th, my, moit_box = await Receiver().start(), await Receiver().start(), await Receiver().start()
    th_partner = partner_options(dev_pki, "TH")
    th_partner["pmode"]["action"] = NOTIFY
    th_partner["document_types"] = {NOTIFY: "eco.form_d.notification"}
    inbound = {
        "party_id": GATEWAY,
        "signer": {"p12": str(dev_pki.party("nsw-gateway").p12_path), "password_env": "AS4_TEST_P12_PASSWORD"},
        "partners": {PARTNER: th_partner},
    }
    config = make_config(
        tmp_path,
        {"TH-BOX": th.url, "MY": my.url, "MOIT-BOX": moit_box.url},
        per_destination={"TH-BOX": {"party": "TH"}},
        routes=[
            {"document_type": "eco.form_d", "sender": "MOIT", "destination": "TH", "to": ["TH-BOX"]},
            {"document_type": "eco.form_d", "sender": "MOIT", "destination": "MY", "to": ["MY"]},
            {"document_type": "eco.form_d.notification", "sender": "TH", "to": ["MOIT-BOX"]},
        ],
        parties={
            "MOIT": {"document_types": ["eco.form_d"]},
            "TH": {"tokens": ["th-token"], "document_types": ["eco.form_d.notification"], "format": "form-d"},
        },
        document_types={
            "eco.form_d": {"codes": ["861"]},
            "eco.form_d.notification": {"roots": [f"{{{NS}}}CertificateNotification"]},
        },
        extra={"inbound": {"asean": {"endpoint": "as4", "options": inbound}}},
    )
    us, them = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as session:
            adapter = As4Adapter(
                f"{gw.url}/as4",
                timeout=10,
                options={
                    "pmode": pmode(PARTNER, GATEWAY, attempts=1).model_copy(update={"action": NOTIFY}),
                    "signer": them.signer,
                    "trust": us.trust,
                    "encryption_certificate": us.certificate,
                },
            )
            async with adapter:
                yield Rig(gw, session, adapter)
    finally:
        for receiver in (th, my, moit_box):
            await receiver.stop()


async def test_th_notifying_over_as4_about_a_certificate_delivered_to_my_is_refused_with_co_notifier_mismatch(
    rig: Rig,
) -> None:
    await rig.issue("CO-MY", "VN-MY-26-00001", "MY")
    await eventually(lambda: rig.delivered("VN-MY-26-00001"))
    with pytest.raises(PartnerRejected) as caught:
        await rig.adapter.deliver(rig.notice("TH-N-1", "VN-MY-26-00001"))
    assert caught.value.details["ebms"] == "EBMS:0004"
    assert str(caught.value.details["detail"]).startswith("CO_NOTIFIER_MISMATCH")
    status = await rig.status("VN-MY-26-00001")
    assert status["status"] == "delivered"
    assert [e["status"] for e in status["history"]] == ["issued", "delivered"]  # type: ignore[attr-defined]
    async with rig.session.get(f"{rig.gw.url}/v1/messages", headers={"Authorization": "Bearer th-token"}) as r:
        assert (await r.json())["messages"] == []  # nothing stored, nothing queued


async def test_th_notifying_over_as4_about_a_certificate_delivered_to_its_destination_is_receipted(
    rig: Rig,
) -> None:
    await rig.issue("CO-TH", "VN-TH-26-00001", "TH")
    await eventually(lambda: rig.delivered("VN-TH-26-00001"))
    receipt = await rig.adapter.deliver(rig.notice("TH-N-2", "VN-TH-26-00001"))
    assert receipt.message_id == "TH-N-2" and not receipt.duplicate
    assert (await rig.status("VN-TH-26-00001"))["status"] == "received"
