"""The demo route of issue 5: an e-C/O Form D issued by the MOIT over VNSW SOAP reaches a partner state over
AS4, and the partner's signed receipt comes back, visible in ``GET /v1/messages/{id}`` history.

Everything real and on 127.0.0.1: the MOIT is a zeep client of our ``vnsw-soap`` endpoint; TH is the AS4
engineer's ``As4Receiver`` (signed, encrypted ebMS 3.0); the gateway delivers with ``As4Adapter``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from adapters.as4 import As4Adapter
from adapters.vnsw_soap import VnswSoapEndpoint
from gateway.api import Gateway
from gateway.dev.demo import eco_form_d
from gateway.model import gateway_message_id
from helpers.adapters import call_vnsw_endpoint, vnsw_envelope
from helpers.as4 import GATEWAY, PARTNER, pmode, receiver_for, side
from helpers.gateway import TOKENS, eventually, make_config
from signing.dev.pki import DevPki
from signing.xml import parse_xml


async def test_moit_form_d_over_vnsw_soap_reaches_th_over_as4_and_the_receipt_is_in_the_history(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    us, th = side(dev_pki, "nsw-gateway", GATEWAY), side(dev_pki, "th-asw", PARTNER)
    receiver = receiver_for(th, us)
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    as4_url = f"http://127.0.0.1:{runner.addresses[0][1]}/as4"
    try:
        adapter = As4Adapter(
            as4_url,
            timeout=10,
            options={
                "pmode": pmode(GATEWAY, PARTNER),
                "signer": us.signer,
                "trust": th.trust,
                "encryption_certificate": th.certificate,
            },
        )
        config = make_config(
            tmp_path,
            {"TH": as4_url},
            per_destination={"TH": {"adapter": "as4", "options": adapter.options}},
            routes=[{"document_type": "eco.form_d", "sender": "MOIT", "to": ["TH"]}],
        )
        gw = Gateway(config, adapters={"TH": adapter})
        gw.inbound.append(VnswSoapEndpoint("vnsw", options={"document_types": {"BCT0300001": "eco.form_d"}}))
        form_d = eco_form_d(7, "TH").decode().split("?>", 1)[1]
        envelope = vnsw_envelope(
            "moit-eco-7",
            sender="BCT",
            recipient="NSW",
            document_type="BCT0300001",
            type_="10",
            function="01",
            reference="VN-00000007",
            content=form_d,
        )
        async with gw:
            answer = await asyncio.to_thread(
                call_vnsw_endpoint, f"{gw.url}/vnsw/soap", TOKENS["MOIT"], envelope.decode()
            )
            assert parse_xml(answer.encode()).findtext("Header/Subject/function") == "99"
            gid = gateway_message_id("MOIT", "moit-eco-7")

            async def acknowledged() -> bool:
                record = await gw.store.get(gid)
                return record is not None and record.state.value == "ACKNOWLEDGED"

            await eventually(acknowledged)
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"{gw.url}/v1/messages/{gid}", headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r,
            ):
                shown = await r.json()
            record = await gw.store.get(gid)
        steps = [(t["to"], t["destination"]) for t in shown["history"]]
        assert steps[:4] == [("RECEIVED", None), ("VERIFIED", None), ("MAPPED", None), ("QUEUED", None)]
        assert ("DELIVERED", "TH") in steps and steps[-1] == ("ACKNOWLEDGED", "TH")
        assert shown["reference"] == "VN-00000007" and shown["deliveries"][0]["state"] == "ACKNOWLEDGED"
        got = receiver.inbox.get_nowait()
        [delivered] = got.payloads.values()  # what TH decrypted and verified: the MOIT's envelope with the Form D
        assert b"<messageId>moit-eco-7</messageId>" in delivered and b"<CertificateOfOrigin" in delivered
        assert record is not None and record.deliveries[0].receipt
        receipt = parse_xml(record.deliveries[0].receipt)
        assert any(etree.QName(e).localname == "Receipt" for e in receipt.iter() if isinstance(e.tag, str))
    finally:
        await runner.cleanup()
