"""What the headers claim must be what the document says: the declared document type against the content's kind
(every format, pass-through XML included), an intermediary's ``X-On-Behalf-Of`` against the enterprise the
document names, and that enterprise passed on to the receiving partner. Real gateway and receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api import Gateway
from gateway.errors import ConfigError
from gateway.model import State
from helpers.adapters import vnsw_envelope
from helpers.gateway import TOKENS, Receiver, eventually, make_config, submit
from mappings.registry import get

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "mappings"
FORM_D = (VECTORS / "formd" / "form_d_two_items.xml").read_bytes()
"""An ATIGA e-Form D whose exporter is 0300000001."""
EPHYTO = (VECTORS / "sps" / "uncefact-SPSCertificate-17-ephyto-sample-with-pdf-attachment.xml").read_bytes()
REGISTRATION = (VECTORS / "vnsw" / "mard_BNNPTNT0600011_t10_f01_registration_NSW_to_BNN_sample.xml").read_bytes()
"""A VNSW animal quarantine registration: names its registrant by name and address only."""
FORM_D_NS = "urn:nsw-gateway:atiga:e-form-d:1"
EXPORTER = "0300000001"
OTHER_ENTERPRISE = "0300000002"

DOCUMENT_TYPES: dict[str, dict[str, Any]] = {
    "eco.form_d": {"codes": ["861"], "roots": [f"{{{FORM_D_NS}}}CertificateOfOrigin"]},
    "sps.registration": {
        "procedures": ["BNNPTNT0600011/10/01"],
        "roots": ["AnimalConsignmentRegistration"],
        "enterprise_paths": ["Registrant/TaxCode"],
    },
    "sps.permit": {"procedures": ["BNNPTNT0600011/12/05"]},
    "sps.phyto": {"codes": ["851"]},
}
PARTIES: dict[str, dict[str, Any]] = {
    "MOIT": {"document_types": ["*"]},
    "MARD": {"document_types": ["sps.permit", "eco.form_d"]},
    "BROKER": {
        "tokens": [TOKENS["BROKER"]],
        "document_types": ["eco.form_d", "sps.registration"],
        "kind": "intermediary",
        "on_behalf_of": [EXPORTER, OTHER_ENTERPRISE],
        # the From block of the registration vector, so that only the enterprise is at stake
        "identities": {"vnsw": {"identity": "NSW", "ministryCode": "BTC", "organizationCode": "TCHQ"}},
    },
}


def registration_xml(enterprise: str | None) -> bytes:
    """A registration as pass-through XML, naming ``enterprise`` at ``Registrant/TaxCode`` (or no enterprise)."""
    registrant = f"<Registrant><TaxCode>{enterprise}</TaxCode></Registrant>" if enterprise else ""
    return f"<AnimalConsignmentRegistration>{registrant}<Head>12</Head></AnimalConsignmentRegistration>".encode()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession, Receiver]]:
    th = await Receiver().start()
    config = make_config(tmp_path, {"TH": th.url}, parties=PARTIES, document_types=DOCUMENT_TYPES)
    try:
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            yield gw, s, th
    finally:
        await th.stop()


async def _record(gw: Gateway, s: aiohttp.ClientSession, party: str, ack: dict[str, Any]) -> dict[str, Any]:
    async with s.get(f"{gw.url}/v1/messages/{ack['id']}", headers={"Authorization": f"Bearer {TOKENS[party]}"}) as r:
        assert r.status == 200
        return dict(await r.json())


async def test_an_eco_declared_as_a_quarantine_registration_by_an_intermediary_is_refused(rig) -> None:
    gw, s, th = rig
    status, body = await submit(
        s, gw.url, "BROKER", "ECO-AS-REG", "sps.registration", FORM_D, X_Format="form-d", X_On_Behalf_Of=EXPORTER
    )
    assert status == 422 and body["error"]["code"] == "DOCUMENT_TYPE_MISMATCH"
    assert body["error"]["field"] == "X-Document-Type"
    assert "document code 861" in body["error"]["message"]
    assert body["error"]["details"]["content"] == {"code": "861", "procedure": None, "root": None}
    assert body["ack"]["state"] == State.REJECTED.value and body["ack"]["destinations"] == []
    record = await _record(gw, s, "BROKER", body["ack"])
    assert record["state"] == "REJECTED" and record["error"]["code"] == "DOCUMENT_TYPE_MISMATCH"
    assert th.requests == []


JSON_FORM_D = get("json").emit(get("form-d").parse(FORM_D))


@pytest.mark.parametrize(
    ("party", "fmt", "body", "declared", "content"),
    [
        ("MOIT", "form-d", FORM_D, "sps.registration", "document code 861"),
        ("MOIT", "json", JSON_FORM_D, "sps.registration", "document code 861"),
        ("MOIT", "sps", EPHYTO, "eco.form_d", "document code 851"),
        ("MARD", "vnsw", vnsw_envelope("V-1"), "eco.form_d", "VNSW message BNNPTNT0600011/12/05"),
        ("MOIT", "xml", FORM_D, "sps.registration", f"root element {{{FORM_D_NS}}}CertificateOfOrigin"),
        ("MOIT", "xml", registration_xml(EXPORTER), "eco.form_d", "root element AnimalConsignmentRegistration"),
    ],
    ids=["form-d", "json", "sps", "vnsw", "xml-form-d-root", "xml-registration-root"],
)
async def test_each_format_declared_as_another_type_is_refused_saying_what_the_content_is(
    rig, party: str, fmt: str, body: bytes, declared: str, content: str
) -> None:
    gw, s, th = rig
    status, answer = await submit(s, gw.url, party, f"MIS-{fmt}-{declared}", declared, body, X_Format=fmt)
    assert status == 422 and answer["error"]["code"] == "DOCUMENT_TYPE_MISMATCH"
    assert answer["error"]["field"] == "X-Document-Type"
    assert answer["error"]["message"] == f"declared {declared}, but the content is {content}"
    assert th.requests == []


@pytest.mark.parametrize(
    ("party", "fmt", "body", "declared"),
    [
        ("MOIT", "form-d", FORM_D, "eco.form_d"),
        ("MOIT", "json", JSON_FORM_D, "eco.form_d"),
        ("MOIT", "xml", FORM_D, "eco.form_d"),
        ("MARD", "vnsw", vnsw_envelope("V-2"), "sps.permit"),
        ("MOIT", "xml", registration_xml(EXPORTER), "sps.registration"),
    ],
    ids=["form-d", "json", "xml-form-d", "vnsw", "xml-registration"],
)
async def test_each_format_of_the_declared_type_is_accepted_and_delivered(
    rig, party: str, fmt: str, body: bytes, declared: str
) -> None:
    gw, s, th = rig
    status, answer = await submit(s, gw.url, party, f"OK-{fmt}-{declared}", declared, body, X_Format=fmt)
    assert status == 202, answer
    await eventually(lambda: len(th.requests) == 1)
    assert th.requests[0]["headers"]["X-Document-Type"] == declared
    assert "X-On-Behalf-Of" not in th.requests[0]["headers"]


async def test_a_document_type_the_configuration_does_not_declare_is_refused(rig) -> None:
    gw, s, th = rig
    status, body = await submit(s, gw.url, "MOIT", "UNDECLARED", "invoice", FORM_D, X_Format="form-d")
    assert status == 422 and body["error"]["code"] == "DOCUMENT_TYPE_MISMATCH"
    assert body["error"]["field"] == "X-Document-Type" and body["error"]["details"]["declared"] == "invoice"
    assert th.requests == []


async def test_an_intermediary_naming_an_enterprise_the_document_does_not_name_is_refused(rig) -> None:
    gw, s, th = rig
    status, body = await submit(
        s, gw.url, "BROKER", "ECO-OTHER", "eco.form_d", FORM_D, X_Format="form-d", X_On_Behalf_Of=OTHER_ENTERPRISE
    )
    assert status == 403 and body["error"]["code"] == "DELEGATION_MISMATCH"
    assert body["error"]["field"] == "X-On-Behalf-Of"
    assert body["error"]["message"] == f"submitted on behalf of {OTHER_ENTERPRISE}, but the document names {EXPORTER}"
    # an authorization failure: nothing is stored, the message id stays free
    status, body = await submit(
        s, gw.url, "BROKER", "ECO-OTHER", "eco.form_d", FORM_D, X_Format="form-d", X_On_Behalf_Of=EXPORTER
    )
    assert status == 202 and body["on_behalf_of"] == EXPORTER
    await eventually(lambda: len(th.requests) == 1)


@pytest.mark.parametrize(
    ("fmt", "body", "declared"),
    [("vnsw", REGISTRATION, "sps.registration"), ("xml", registration_xml(None), "sps.registration")],
    ids=["vnsw-registration", "xml-registration"],
)
async def test_an_intermediary_submitting_a_document_that_names_no_enterprise_is_refused(
    rig, fmt: str, body: bytes, declared: str
) -> None:
    gw, s, th = rig
    status, answer = await submit(
        s, gw.url, "BROKER", f"NONE-{fmt}", declared, body, X_Format=fmt, X_On_Behalf_Of=EXPORTER
    )
    assert status == 403 and answer["error"]["code"] == "DELEGATION_MISMATCH"
    assert answer["error"]["field"] == "X-On-Behalf-Of" and answer["error"]["details"]["named"] == []
    assert answer["error"]["message"].endswith("but the document names no enterprise")
    assert th.requests == []


@pytest.mark.parametrize(
    ("fmt", "body", "declared"),
    [("form-d", FORM_D, "eco.form_d"), ("xml", registration_xml(EXPORTER), "sps.registration")],
    ids=["form-d-exporter", "xml-registrant"],
)
async def test_the_receiving_partner_sees_the_enterprise_the_intermediary_relayed_for(
    rig, fmt: str, body: bytes, declared: str
) -> None:
    gw, s, th = rig
    status, answer = await submit(
        s, gw.url, "BROKER", f"RELAY-{fmt}", declared, body, X_Format=fmt, X_On_Behalf_Of=EXPORTER
    )
    assert status == 202 and answer["sender"] == "BROKER" and answer["on_behalf_of"] == EXPORTER
    await eventually(lambda: len(th.requests) == 1)
    headers = th.requests[0]["headers"]
    assert (headers["X-Sender"], headers["X-On-Behalf-Of"], headers["X-Document-Type"]) == (
        "BROKER",
        EXPORTER,
        declared,
    )
    record = await _record(gw, s, "BROKER", answer)
    assert record["on_behalf_of"] == EXPORTER


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"document_types": {"eco.form_d": {}}}, "document_types.eco.form_d", "needs a content rule"),
        (
            {"document_types": {"eco.form_d": {"unchecked": True, "codes": ["861"]}}},
            "document_types.eco.form_d.unchecked",
            "drop one of them",
        ),
        ({"parties": {"MOIT": {"document_types": ["invoice"]}}}, "parties.MOIT.document_types[0]", "not declared"),
        ({"routes": [{"document_type": "invoice", "to": ["TH"]}]}, "routes[0].document_type", "not declared"),
        (
            {"document_types": {"sps.permit": {"procedures": ["BNNPTNT0600011/12"]}}},
            "document_types.sps.permit.procedures",
            "is not <documentType>/<type>/<function>",
        ),
        (
            {"document_types": {"sps.phyto": {"roots": ["{urn:x}"]}}},
            "document_types.sps.phyto.roots",
            "is not {namespace}LocalName",
        ),
    ],
    ids=[
        "no-rule",
        "unchecked-with-rule",
        "party-names-undeclared",
        "route-names-undeclared",
        "bad-procedure",
        "bad-root",
    ],
)
def test_a_document_type_without_a_content_rule_is_a_configuration_error(
    tmp_path: Path, change: dict[str, Any], field: str, says: str
) -> None:
    document_types = {**DOCUMENT_TYPES, **change.get("document_types", {})}
    with pytest.raises(ConfigError) as err:
        make_config(
            tmp_path,
            {"TH": "http://127.0.0.1:9/x"},
            parties={**PARTIES, **change.get("parties", {})},
            routes=change.get("routes"),
            document_types=document_types,
        )
    assert err.value.code == "CONFIG_INVALID" and err.value.field == field and says in err.value.message
