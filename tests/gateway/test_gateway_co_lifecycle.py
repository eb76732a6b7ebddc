"""The e-Form D lifecycle end to end, on both stores: MOIT issues a certificate of origin, the partner receives
it, the importing side's notifications (received, utilized, rejected, verification request) travel back to MOIT,
amendments follow their original, and MOIT reads the certificate's status and history at
``GET /v1/certificates/{issuing_country}/{number}``. A reference to a certificate the gateway did not carry is
``CO_UNKNOWN`` and stores nothing; another party cannot read a certificate's status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.errors import CertificateNotifierMismatch, CertificateUnknown
from gateway.model import CertificateAct, Delivery, Message, PartyId, SubmissionAck, SubmissionEnvelope
from gateway.store.base import Store
from helpers import eco
from helpers.eco import NS, certificate
from helpers.gateway import Receiver, eventually, make_config
from helpers.stores import STORE_PARAMS, STORES

TOKENS = {"MOIT": "moit-token", "MARD": "mard-token", "TH-ASW": "th-asw-token", "MY-ASW": "my-asw-token"}


def notification(kind: str, number: str, country: str = "VN", **fields: str) -> bytes:
    """A ``CertificateNotification`` of ``kind`` about certificate ``country`` ``number``."""
    return eco.notification(kind, number, country=country, notifying="SG", **fields)


@dataclass
class Rig:
    gw: Gateway
    session: aiohttp.ClientSession
    partner: Receiver
    moit_inbox: Receiver

    async def submit(
        self, party: str, message_id: str, document_type: str, body: bytes, **headers: str
    ) -> tuple[int, dict[str, Any]]:
        return await eco.submit(self.session, self.gw.url, TOKENS[party], message_id, document_type, body, **headers)

    async def status(self, party: str, number: str, country: str = "VN") -> tuple[int, dict[str, Any]]:
        url = f"{self.gw.url}/v1/certificates/{country}/{number}"
        async with self.session.get(url, headers={"Authorization": f"Bearer {TOKENS[party]}"}) as r:
            return r.status, json.loads(await r.read())

    async def status_is(self, number: str, expected: str) -> bool:
        code, body = await self.status("MOIT", number)
        return code == 200 and body["status"] == expected


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    partner, moit_inbox = await Receiver().start(), await Receiver().start()
    config = make_config(
        tmp_path,
        {"TH": partner.url, "MOIT-BOX": moit_inbox.url},
        per_destination={"TH": {"party": "TH-ASW"}},
        routes=[
            {"document_type": "eco.form_d", "sender": "MOIT", "to": ["TH"]},
            {"document_type": "eco.form_d.amendment", "sender": "MOIT", "to": ["TH"]},
            {"document_type": "eco.form_d.notification", "sender": "TH-ASW", "to": ["MOIT-BOX"]},
            {"document_type": "eco.form_d.notification", "sender": "MY-ASW", "to": ["MOIT-BOX"]},
            {"document_type": "eco.form_d.notification", "sender": "MOIT", "to": ["TH"]},
        ],
        parties={
            "MOIT": {"document_types": ["eco.form_d", "eco.form_d.amendment", "eco.form_d.notification"]},
            "MARD": {"document_types": ["eco.form_d.notification"]},
            "TH-ASW": {"tokens": [TOKENS["TH-ASW"]], "document_types": ["eco.form_d.notification"]},
            "MY-ASW": {"tokens": [TOKENS["MY-ASW"]], "document_types": ["eco.form_d.notification"]},
        },
        document_types={
            "eco.form_d": {"codes": ["861"]},
            "eco.form_d.amendment": {"codes": ["861"]},
            "eco.form_d.notification": {"roots": [f"{{{NS}}}CertificateNotification"]},
        },
    )
    try:
        async with Gateway(config, store=STORES[request.param](tmp_path)) as gw, aiohttp.ClientSession() as session:
            yield Rig(gw, session, partner, moit_inbox)
    finally:
        await partner.stop()
        await moit_inbox.stop()


async def test_moit_issues_partner_receives_customs_utilizes_and_moit_sees_utilized(rig: Rig) -> None:
    status, ack = await rig.submit("MOIT", "CO-1", "eco.form_d", certificate("VN-SG-26-00001"))
    assert status == 202, ack
    await eventually(lambda: rig.status_is("VN-SG-26-00001", "delivered"))
    assert rig.partner.processed == [ack["id"]]

    status, received = await rig.submit(
        "TH-ASW", "N-1", "eco.form_d.notification", notification("received", "VN-SG-26-00001")
    )
    assert status == 202, received
    assert await rig.status_is("VN-SG-26-00001", "received")
    utilized = notification("utilized", "VN-SG-26-00001", DeclarationID="SG-IMP-778899", DeclarationDate="2026-12-04")
    status, used = await rig.submit("TH-ASW", "N-2", "eco.form_d.notification", utilized)
    assert status == 202 and used["destinations"] == ["MOIT-BOX"], used
    await eventually(lambda: len(rig.moit_inbox.processed) == 2)  # both notifications routed back to the issuer
    assert rig.moit_inbox.processed == [received["id"], used["id"]]

    code, body = await rig.status("MOIT", "VN-SG-26-00001")
    assert code == 200 and (body["issuer"], body["status"]) == ("MOIT", "utilized")
    assert [(e["status"], e["party"]) for e in body["history"]] == [
        ("issued", "MOIT"),
        ("delivered", "TH"),
        ("received", "TH-ASW"),
        ("utilized", "TH-ASW"),
    ]
    assert body["history"][-1]["detail"] == {
        "declaration_number": "SG-IMP-778899",
        "declaration_date": "2026-12-04",
        "notifying_country": "SG",
    }
    assert body["messages"] == [ack["id"], received["id"], used["id"]]


async def test_a_rejection_states_its_reason_and_sets_the_status_rejected(rig: Rig) -> None:
    await rig.submit("MOIT", "CO-2", "eco.form_d", certificate("VN-SG-26-00002"))
    rejected = notification("rejected", "VN-SG-26-00002", ReasonCode="ORIGIN-CRITERION", Reason="CTH not met")
    status, ack = await rig.submit("TH-ASW", "N-3", "eco.form_d.notification", rejected)
    assert status == 202, ack
    code, body = await rig.status("MOIT", "VN-SG-26-00002")
    assert code == 200 and body["status"] == "rejected"
    (step,) = [e for e in body["history"] if e["status"] == "rejected"]  # the receipt may come before or after
    assert (step["detail"]["reason_code"], step["detail"]["reason"]) == ("ORIGIN-CRITERION", "CTH not met")


async def test_a_rejection_without_a_reason_is_refused_by_the_rules(rig: Rig) -> None:
    await rig.submit("MOIT", "CO-3", "eco.form_d", certificate("VN-SG-26-00003"))
    status, body = await rig.submit(
        "TH-ASW", "N-4", "eco.form_d.notification", notification("rejected", "VN-SG-26-00003")
    )
    assert status == 422 and body["error"]["code"] == "VALIDATION_FAILED"
    assert [i["code"] for i in body["error"]["issues"]] == ["FORM_D_NOTICE_REASON_REQUIRED"]
    code, body = await rig.status("MOIT", "VN-SG-26-00003")
    assert code == 200 and [e["status"] for e in body["history"] if e["status"] != "delivered"] == ["issued"]


async def test_an_amendment_is_delivered_after_its_original_and_reflected_in_the_status(rig: Rig) -> None:
    rig.partner.fail_first = 3  # the original waits for retries; the amendment must not overtake it
    conversation = {"X-Conversation-Id": "CO-VN-SG-26-00005"}
    status, original = await rig.submit("MOIT", "CO-5", "eco.form_d", certificate("VN-SG-26-00005"), **conversation)
    assert status == 202, original
    amendment = certificate("VN-SG-26-00005-A1", amends="VN-SG-26-00005")
    status, amended = await rig.submit("MOIT", "CO-5-A1", "eco.form_d.amendment", amendment, **conversation)
    assert status == 202, amended
    await eventually(lambda: len(rig.partner.processed) == 2)
    assert rig.partner.processed == [original["id"], amended["id"]]

    async def both_delivered() -> bool:  # a receipt is recorded after the partner has processed the delivery
        code, body = await rig.status("MOIT", "VN-SG-26-00005")
        return code == 200 and body["status"] == "delivered" and len(body["history"]) == 4

    await eventually(both_delivered)
    code, body = await rig.status("MOIT", "VN-SG-26-00005")
    steps = [(e["status"], e["message"]) for e in body["history"]]
    assert steps[:2] == [("issued", original["id"]), ("amended", amended["id"])]
    assert sorted(steps[2:]) == sorted([("delivered", original["id"]), ("delivered", amended["id"])])
    assert body["history"][1]["detail"] == {"amended_by": "VN-SG-26-00005-A1"}


async def test_a_notification_about_a_certificate_never_carried_is_co_unknown_and_stores_nothing(rig: Rig) -> None:
    status, body = await rig.submit(
        "TH-ASW",
        "N-9",
        "eco.form_d.notification",
        notification("utilized", "VN-NOPE-1", DeclarationID="X", DeclarationDate="2026-12-04"),
    )
    assert status == 422 and body["error"]["code"] == "CO_UNKNOWN"
    assert body["error"]["field"] == "/CertificateNotification/Notification/CertificateID"
    assert body["error"]["details"] == {"issuing_country": "VN", "number": "VN-NOPE-1"}
    assert "ack" not in body
    async with rig.session.get(
        f"{rig.gw.url}/v1/messages", headers={"Authorization": f"Bearer {TOKENS['TH-ASW']}"}
    ) as r:
        assert (await r.json())["messages"] == []  # nothing stored, nothing queued
    assert await rig.gw.store.certificate("VN", "VN-NOPE-1") is None


async def test_a_third_party_notifying_about_a_certificate_delivered_to_another_is_refused_and_stores_nothing(
    rig: Rig,
) -> None:
    await rig.submit("MOIT", "CO-11", "eco.form_d", certificate("VN-SG-26-00011"))
    await eventually(lambda: rig.status_is("VN-SG-26-00011", "delivered"))
    notices = {
        "received": {},
        "utilized": {"DeclarationID": "MY-D-1", "DeclarationDate": "2026-12-04"},
        "rejected": {"ReasonCode": "RVC", "Reason": "not ours"},
        "verification_request": {"ReasonCode": "RVC", "RequestID": "VR-11"},
    }
    for kind, fields in notices.items():
        status, body = await rig.submit(
            "MY-ASW", f"N-11-{kind}", "eco.form_d.notification", notification(kind, "VN-SG-26-00011", **fields)
        )
        assert status == 403 and body["error"]["code"] == "CO_NOTIFIER_MISMATCH", kind
        assert body["error"]["field"] == "/CertificateNotification/Notification/CertificateID"
        assert body["error"]["details"] == {"issuing_country": "VN", "number": "VN-SG-26-00011", "delivered_to": ["TH"]}
    async with rig.session.get(
        f"{rig.gw.url}/v1/messages", headers={"Authorization": f"Bearer {TOKENS['MY-ASW']}"}
    ) as r:
        assert (await r.json())["messages"] == []  # nothing stored, nothing queued
    assert rig.moit_inbox.requests == []
    code, body = await rig.status("MOIT", "VN-SG-26-00011")
    assert body["status"] == "delivered" and [e["status"] for e in body["history"]] == ["issued", "delivered"]
    # the party answering for the destination it went to still notifies
    status, ack = await rig.submit(
        "TH-ASW", "N-11", "eco.form_d.notification", notification("received", "VN-SG-26-00011")
    )
    assert status == 202, ack
    assert await rig.status_is("VN-SG-26-00011", "received")


async def test_an_amendment_of_a_certificate_never_carried_is_co_unknown(rig: Rig) -> None:
    amendment = certificate("VN-SG-26-00006-A1", amends="VN-SG-26-00006")
    status, body = await rig.submit("MOIT", "CO-6-A1", "eco.form_d.amendment", amendment)
    assert status == 422 and body["error"]["code"] == "CO_UNKNOWN"
    assert body["error"]["field"] == "/CertificateOfOrigin/Certificate/AmendedCertificateID"
    assert rig.partner.requests == []


async def test_a_cancellation_by_a_party_that_did_not_issue_the_certificate_is_co_unknown(rig: Rig) -> None:
    await rig.submit("MOIT", "CO-7", "eco.form_d", certificate("VN-SG-26-00007"))
    status, body = await rig.submit(
        "TH-ASW", "N-7", "eco.form_d.notification", notification("cancelled", "VN-SG-26-00007")
    )
    assert status == 422 and body["error"]["code"] == "CO_UNKNOWN"
    status, ack = await rig.submit(
        "MOIT", "N-7", "eco.form_d.notification", notification("cancelled", "VN-SG-26-00007")
    )
    assert status == 202, ack
    assert await rig.status_is("VN-SG-26-00007", "cancelled")


async def test_a_verification_request_and_its_answer_are_kept_in_the_history_without_changing_the_status(
    rig: Rig,
) -> None:
    await rig.submit("MOIT", "CO-8", "eco.form_d", certificate("VN-SG-26-00008"))
    await eventually(lambda: rig.status_is("VN-SG-26-00008", "delivered"))
    ask = notification("verification_request", "VN-SG-26-00008", ReasonCode="RVC", RequestID="VR-1")
    assert (await rig.submit("TH-ASW", "N-8", "eco.form_d.notification", ask))[0] == 202
    answer = notification("verification_answer", "VN-SG-26-00008", Reason="RVC 45% confirmed", RequestID="VR-1")
    assert (await rig.submit("MOIT", "N-8-A", "eco.form_d.notification", answer))[0] == 202
    code, body = await rig.status("MOIT", "VN-SG-26-00008")
    assert body["status"] == "delivered"
    assert [e["status"] for e in body["history"]][-2:] == ["verification_request", "verification_answer"]
    assert body["history"][-1]["detail"]["request_id"] == "VR-1"


async def test_another_party_cannot_read_the_status_of_a_certificate_it_did_not_issue(rig: Rig) -> None:
    await rig.submit("MOIT", "CO-10", "eco.form_d", certificate("VN-SG-26-00010"))
    for party in ("MARD", "TH-ASW"):
        code, body = await rig.status(party, "VN-SG-26-00010")
        assert code == 404 and body["error"]["code"] == "MESSAGE_NOT_FOUND", party
    code, body = await rig.status("MOIT", "VN-SG-26-99999")
    assert code == 404 and body["error"]["code"] == "MESSAGE_NOT_FOUND"


# --------------------------------------------------------------------------- the store alone, both kinds


def _queued(mid: str, sender: str = "MOIT", at: float = 100.0) -> tuple[Message, list[Delivery], SubmissionAck]:
    env = SubmissionEnvelope(sender=PartyId(sender), message_id=mid, document_type="eco.form_d")
    m = Message.receive(env, at=at).verify(at=at).map(at=at).enqueue(at=at)
    ds = [Delivery.create(m, "TH", f"<m>{mid}</m>".encode(), content_type="application/xml", at=at, ttl=50.0)]
    return m, ds, SubmissionAck(m.id, sender, mid, m.state, at, ("TH",))


async def test_the_store_refuses_an_act_on_an_unknown_certificate_and_writes_nothing(store: Store) -> None:
    m, ds, ack = _queued("N-1", sender="TH-ASW")
    act = CertificateAct("utilized", "VN", "VN-1", "certificate_notice.certificate_number")
    with pytest.raises(CertificateUnknown) as refused:
        await store.accept(m, b"<n/>", ds, ack, certificate=act)
    assert (refused.value.code, refused.value.field) == ("CO_UNKNOWN", "certificate_notice.certificate_number")
    assert await store.get(m.id) is None
    assert await store.claim("TH", owner="w", limit=10, now=200.0, lease=5.0) == []
    assert await store.certificate("VN", "VN-1") is None


async def test_the_store_records_the_issue_its_delivery_receipt_and_a_notification(store: Store) -> None:
    m, ds, ack = _queued("CO-1")
    await store.accept(m, b"<co/>", ds, ack, certificate=CertificateAct("issued", "VN", "VN-1", "document.number"))
    (claimed,) = await store.claim("TH", owner="w", limit=1, now=101.0, lease=5.0)
    await store.record(claimed.delivered(at=102.0).acknowledged(b"<receipt/>", at=102.0), owner="w", now=102.0)
    n, nds, nack = _queued("N-1", sender="TH-ASW", at=110.0)
    utilized = CertificateAct("utilized", "VN", "VN-1", "x", {"declaration_number": "D-1"}, frozenset({"TH"}))
    await store.accept(n, b"<n/>", nds, nack, certificate=utilized)

    record = await store.certificate("VN", "VN-1")
    assert record is not None and (record.issuer, record.status) == ("MOIT", "utilized")
    assert [(e.status, e.message, e.party) for e in record.history] == [
        ("issued", m.id, "MOIT"),
        ("delivered", m.id, "TH"),
        ("utilized", n.id, "TH-ASW"),
    ]
    assert record.history[-1].detail == {"declaration_number": "D-1"}
    assert [e.at for e in record.history] == [100.0, 102.0, 110.0]


async def test_the_store_refuses_a_notification_from_a_party_answering_for_no_destination_it_went_to(
    store: Store,
) -> None:
    m, ds, ack = _queued("CO-3")
    await store.accept(m, b"<co/>", ds, ack, certificate=CertificateAct("issued", "VN", "VN-3", "document.number"))
    n, nds, nack = _queued("N-3", sender="MY-ASW", at=101.0)
    act = CertificateAct("utilized", "VN", "VN-3", "x", answers_for=frozenset({"MY"}))
    with pytest.raises(CertificateNotifierMismatch) as refused:
        await store.accept(n, b"<n/>", nds, nack, certificate=act)
    assert (refused.value.code, refused.value.field) == ("CO_NOTIFIER_MISMATCH", "x")
    assert refused.value.details["delivered_to"] == ["TH"]
    assert await store.get(n.id) is None
    record = await store.certificate("VN", "VN-3")
    assert record is not None and [e.status for e in record.history] == ["issued"]


async def test_a_late_receipt_does_not_undo_a_later_notification(store: Store) -> None:
    m, ds, ack = _queued("CO-2")
    await store.accept(m, b"<co/>", ds, ack, certificate=CertificateAct("issued", "VN", "VN-2", "document.number"))
    n, nds, nack = _queued("N-2", sender="TH-ASW", at=101.0)
    await store.accept(
        n, b"<n/>", nds, nack, certificate=CertificateAct("received", "VN", "VN-2", "x", answers_for=frozenset({"TH"}))
    )
    (claimed,) = await store.claim("TH", owner="w", limit=1, now=102.0, lease=5.0)
    await store.record(claimed.delivered(at=103.0).acknowledged(b"<receipt/>", at=103.0), owner="w", now=103.0)
    record = await store.certificate("VN", "VN-2")
    assert record is not None and record.status == "received"
    assert [e.status for e in record.history] == ["issued", "received", "delivered"]
