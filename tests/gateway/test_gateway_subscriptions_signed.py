"""Agency subscriptions on the signed path: a ministry's signed VNSW document, verified; the subscriber's
projection written in its own format, signed with the gateway's key under its destination's profile and verified
by the agency's loopback server; in intake threads and in an intake process (``[gateway] intake_processes``). A
subscriber whose format cannot carry its fields of a document gets nothing of it, and the submission is not
refused: its history says so."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.disclosures import DisclosureQuery
from gateway.model import State
from helpers.gateway import Receiver, eventually, make_config, submit
from helpers.mappings import quarantine_result
from helpers.ocsp import dev_pki  # noqa: F401 - the fixture
from mappings.registry import get as get_format
from signing.dev.pki import DEFAULT_ORGANIZATION, DevPki
from signing.keys import SoftwareSigner
from signing.policy import SigningProfile, VerifyPolicy
from signing.sign import sign_document
from signing.trust import PinnedCertificate, TrustStore

RESULT = "sps.quarantine_result"
FIELDS = ["envelope", "permit.application_number", "permit.decision", "permit.decision_date"]


def _config(tmp_path: Path, pki: DevPki, urls: dict[str, str], processes: int) -> Any:
    gw_key = pki.party("nsw-gateway")
    mard = {
        "trust": {
            "anchors": [str(pki.root_cert_path)],
            "intermediates": [str(pki.issuing_cert_path)],
            "signers": [{"subject": {"CN": "mard", "O": DEFAULT_ORGANIZATION}}],
        },
        "verify": {"profile": "vnsw-legacy"},
        "format": "vnsw",
        "document_types": [RESULT],
    }
    return make_config(
        tmp_path,
        urls,
        routes=[{"to": ["CUSTOMS"]}],
        parties={"MARD": mard, "MOIT": {"trust": mard["trust"]}, "TRADER": {"trust": mard["trust"]}},
        per_destination={
            "CUSTOMS": {"format": "vnsw"},
            "POLICE": {"format": "vnsw"},
            "FORMD-AGENCY": {"format": "form-d"},
        },
        document_types={RESULT: {"procedures": ["BNNPTNT0600011/12/05"]}},
        gateway={"verification": "signature", "signing": "on", "intake_processes": processes},
        extra={
            "signing": {"keys": [{"pkcs12": str(gw_key.p12_path), "password": "changeit"}]},
            "subscriptions": {
                "POLICE": {
                    "destination": "POLICE",
                    "legal_basis": "Law 14/2022/QH15, Art. 9",
                    "document_types": [RESULT],
                    "fields": FIELDS,
                },
                "STRICT": {
                    "destination": "FORMD-AGENCY",
                    "legal_basis": "Decree 1/2025/ND-CP, Art. 1",
                    "document_types": [RESULT],
                    "fields": ["permit.application_number"],
                },
            },
        },
    )


@pytest.mark.parametrize("processes", [0, 1], ids=["threads", "one-process"])
async def test_a_subscribers_projection_is_signed_by_the_gateway_and_a_format_that_cannot_carry_it_refuses_nothing(
    tmp_path: Path, dev_pki: DevPki, processes: int
) -> None:
    gateway_cert = dev_pki.party("nsw-gateway").cert
    trust = (TrustStore("nsw-gateway", pinned=(PinnedCertificate(gateway_cert),)), VerifyPolicy())
    customs, police, strict = Receiver(verify_with=trust), Receiver(verify_with=trust), Receiver()
    for receiver in (customs, police, strict):
        await receiver.start()
    try:
        urls = {"CUSTOMS": customs.url, "POLICE": police.url, "FORMD-AGENCY": strict.url}
        config = _config(tmp_path, dev_pki, urls, processes)
        mard = dev_pki.party("mard")
        signed = sign_document(
            get_format("vnsw").emit(quarantine_result()),
            SoftwareSigner(mard.key, mard.cert, [dev_pki.issuing_cert]),
            SigningProfile.vnsw_legacy(),
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as session:
            status, ack = await submit(session, gw.url, "MARD", "QR-1", RESULT, signed)
            assert status == 202, ack
            assert ack["destinations"] == ["CUSTOMS", "POLICE"]

            async def delivered() -> bool:
                record = await gw.store.get(ack["id"])
                return record is not None and record.state is State.ACKNOWLEDGED

            await eventually(delivered)
            record = await gw.store.get(ack["id"])
            [stored] = await gw.store.disclosures(DisclosureQuery(message=ack["id"]))
    finally:
        for receiver in (customs, police, strict):
            await receiver.stop()
    assert record is not None
    [mapped] = [t for t in record.history if t.to_state is State.MAPPED]
    assert mapped.detail is not None and "not delivered to subscription STRICT (VALIDATION_FAILED)" in mapped.detail
    assert strict.requests == []
    assert customs.verified == police.verified == [gateway_cert.subject.rfc4514_string()]
    body = police.requests[0]["body"]
    assert b"Ho so hop le" in customs.requests[0]["body"] and b"Ho so hop le" not in body  # the reason withheld
    assert b"BNNPTNT11190000272" in body
    d = stored.disclosure
    assert (d.destination, d.subscription, d.fields, d.disclosed) == ("POLICE", "POLICE", tuple(FIELDS), tuple(FIELDS))
    assert d.sha256 == hashlib.sha256(body).hexdigest()
