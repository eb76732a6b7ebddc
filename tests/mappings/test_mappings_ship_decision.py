"""The ``ship-decision`` format (mappings.shipdecision): an agency's decision on a ship call as XML, strict out
(XSD), lenient in, lossless round trip, and signed like every XML format."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ValidationFailed
from helpers.mappings import alnum, aware, o, text
from helpers.signing import signer, vector_trust, verify_at
from mappings import shipdecision
from mappings.model import DocumentInfo, ShipCallAnswer, ShipCallDecision, TradeMessage
from mappings.registry import get as get_format
from mappings.xmlformat import load_schema
from signing.policy import VerifyPolicy
from signing.sign import sign_document
from signing.verify import verify_document
from signing.xml import parse_xml

FORMAT = get_format("ship-decision")
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decision(answer: str = "refused", **extra: object) -> TradeMessage:
    body = {"call": "SGN-2026-0417", "answer": answer, **extra}
    return TradeMessage.model_validate({"document": {"type_code": "FAL-DEC"}, "ship_call_decision": body})


decisions = st.builds(
    lambda code, call, answer, at, reasons, conditions: TradeMessage(
        document=DocumentInfo(type_code=code),
        ship_call_decision=ShipCallDecision(
            call=call, answer=answer, decided_at=at, reasons=tuple(reasons), conditions=tuple(conditions)
        ),
    ),
    st.sampled_from(["FAL-DEC", "FALDEC", "DEC1"]),
    alnum,
    st.sampled_from(list(ShipCallAnswer)),
    o(aware),
    st.lists(text(60), max_size=3),
    st.lists(text(60), max_size=3),
)


@SETTINGS
@given(decisions)
def test_a_decision_survives_the_round_trip(msg: TradeMessage) -> None:
    assert FORMAT.parse(FORMAT.emit(msg)) == msg


def test_an_emitted_decision_validates_against_the_shipped_xsd() -> None:
    out = FORMAT.emit(_decision(reasons=["ship sanitation certificate expired"]))
    root = parse_xml(out)
    assert load_schema(shipdecision.XSD).validate(root)
    ns = {"d": shipdecision.NAMESPACE}
    assert root.findtext("d:Reason", namespaces=ns) == "ship sanitation certificate expired"
    assert FORMAT.media_type == "application/xml"


def test_a_decision_without_its_answer_is_not_emitted() -> None:
    msg = TradeMessage.model_validate({"document": {"type_code": "FAL-DEC"}, "ship_call_decision": {"call": "X"}})
    with pytest.raises(ValidationFailed) as info:
        FORMAT.emit(msg)
    assert [(i.path, i.code) for i in info.value.issues] == [("ship_call_decision.answer", "NATIVE_REQUIRED_MISSING")]


def test_a_reason_too_long_for_the_schema_is_not_emitted() -> None:
    with pytest.raises(ValidationFailed) as info:
        FORMAT.emit(_decision(reasons=["x" * 501]))
    assert {i.code for i in info.value.issues} == {"SCHEMA_INVALID"}


def test_reading_is_lenient_about_namespaces_unknown_and_empty_elements() -> None:
    data = (
        b"<ShipCallDecision><Note>ignored</Note><TypeCode>FAL-DEC</TypeCode><Call>SGN-2026-0417</Call>"
        b"<Answer>accepted</Answer><DecidedAt></DecidedAt><Reason/></ShipCallDecision>"
    )
    assert FORMAT.parse(data) == _decision("accepted")


def test_an_unknown_answer_is_refused_naming_the_field() -> None:
    data = b"<ShipCallDecision><TypeCode>FAL-DEC</TypeCode><Call>C</Call><Answer>maybe</Answer></ShipCallDecision>"
    with pytest.raises(ValidationFailed) as info:
        FORMAT.parse(data)
    assert [(i.path, i.code) for i in info.value.issues] == [("ship_call_decision.answer", "MODEL_INVALID")]


def test_another_root_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        FORMAT.parse(b"<Decision/>")
    assert [i.code for i in info.value.issues] == ["ROOT_UNEXPECTED"]


def test_a_signed_decision_verifies_and_reads_like_the_unsigned_one() -> None:
    msg = _decision("accepted_with_conditions", conditions=["berth 4 only"])
    signed = sign_document(FORMAT.emit(msg), signer("moit"))
    verify_document(signed, trust=vector_trust(), policy=VerifyPolicy(), at=verify_at())
    assert FORMAT.parse(signed) == msg


def test_the_mapping_table_names_every_element() -> None:
    assert dict(FORMAT.mapping_table())["/ShipCallDecision/Call"] == "ship_call_decision.call"
