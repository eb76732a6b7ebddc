"""The e-Form D certificate of origin (e-C/O) in the gateway tests: the sample certificate numbered as wanted (or
amending another), the importing side's ``CertificateNotification`` (the conformance kit's, so that both speak
the same schema), a party's REST submission, and a gateway carrying MOIT's e-C/Os to TH and TH-ASW's
notifications back to MOIT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from conformance.profiles.as4 import NOTICE_NS
from conformance.profiles.as4 import notification as kit_notification
from gateway.config import Config
from helpers.gateway import make_config

__all__ = ["NS", "SAMPLE", "TOKENS", "certificate", "notification", "submit", "th_config"]

SAMPLE = (Path(__file__).resolve().parents[2] / "samples" / "form_d_two_items.xml").read_bytes()
"""MOIT's sample e-Form D (number ``VN-SG-24-00001``)."""
NS = NOTICE_NS
TOKENS = {"MOIT": "moit-token", "TH-ASW": "th-asw-token"}
"""The bearer tokens of the issuer and of the Thai side in :func:`th_config`."""


def certificate(number: str, *, amends: str | None = None) -> bytes:
    """The sample Form D numbered ``number``; with ``amends``, an amendment of that certificate."""
    data = SAMPLE.replace(b"<ID>VN-SG-24-00001</ID>", f"<ID>{number}</ID>".encode())
    if amends is not None:
        data = data.replace(
            b"</PartialCumulation>\n",
            f"</PartialCumulation>\n    <AmendedCertificateID>{amends}</AmendedCertificateID>\n".encode(),
        )
    return data


def notification(kind: str, number: str, *, country: str = "VN", notifying: str = "TH", **fields: str) -> bytes:
    """A ``CertificateNotification`` of ``kind`` from ``notifying`` about certificate ``country`` ``number``;
    ``fields`` are further elements of ``Notification``, in the schema's order."""
    return kit_notification(kind, country, number, notifying, **fields)


async def submit(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    message_id: str,
    document_type: str,
    body: bytes,
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    """``body`` (format ``form-d``) posted to ``POST /v1/messages`` of the gateway at ``url`` with the bearer
    ``token`` and further ``headers``; the status and the JSON reply."""
    h = {
        "Authorization": f"Bearer {token}",
        "X-Message-Id": message_id,
        "X-Document-Type": document_type,
        "X-Format": "form-d",
        "Content-Type": "application/xml",
        **headers,
    }
    async with session.post(f"{url}/v1/messages", data=body, headers=h) as r:
        return r.status, json.loads(await r.read())


def th_config(tmp_path: Path, th_url: str, moit_box_url: str, *, extra: dict[str, Any]) -> Config:
    """MOIT's e-Form D routed to destination ``TH`` (delivered to party TH-ASW), TH-ASW's notifications routed to
    ``MOIT-BOX``; ``extra`` as in :func:`helpers.gateway.make_config`."""
    return make_config(
        tmp_path,
        {"TH": th_url, "MOIT-BOX": moit_box_url},
        per_destination={"TH": {"party": "TH-ASW"}},
        routes=[
            {"document_type": "eco.form_d", "sender": "MOIT", "to": ["TH"]},
            {"document_type": "eco.form_d.notification", "sender": "TH-ASW", "to": ["MOIT-BOX"]},
        ],
        parties={
            "MOIT": {"document_types": ["eco.form_d"]},
            "TH-ASW": {"tokens": [TOKENS["TH-ASW"]], "document_types": ["eco.form_d.notification"]},
        },
        document_types={
            "eco.form_d": {"codes": ["861"]},
            "eco.form_d.notification": {"roots": [f"{{{NS}}}CertificateNotification"]},
        },
        extra=extra,
    )
