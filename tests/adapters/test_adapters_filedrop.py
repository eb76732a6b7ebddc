"""File drop: atomic outbox writes; the watched inbox never loses or double-submits a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.filedrop import FileDropAdapter, FileDropInbox, atomic_write
from gateway.api import Gateway
from gateway.errors import ConfigError
from gateway.model import PartyId, SubmissionEnvelope, gateway_message_id
from gateway.ports import OutboundMessage
from gateway.store.base import MessageQuery
from helpers.adapters import vnsw_envelope
from helpers.gateway import Receiver, eventually, make_config


def _out(mid: str, payload: bytes = b"<Doc/>") -> OutboundMessage:
    return OutboundMessage(mid, payload, "MOIT", "eco.form_d", "c")


async def test_outbox_write_is_atomic_and_a_retry_rewrites_the_same_file(tmp_path: Path) -> None:
    (tmp_path / "outbox").mkdir()
    async with FileDropAdapter(tmp_path.as_uri()) as adapter:
        await adapter.deliver(_out("g1", b"<Doc>1</Doc>"))
        receipt = await adapter.deliver(_out("g1", b"<Doc>1</Doc>"))
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["g1.xml"]  # no temp file left behind
    assert (tmp_path / "outbox" / "g1.xml").read_bytes() == b"<Doc>1</Doc>"
    assert json.loads(receipt.raw) == {"file": "outbox/g1.xml"}


async def test_missing_outbox_is_partner_unavailable_naming_the_file(tmp_path: Path) -> None:
    async with FileDropAdapter((tmp_path / "nope").as_uri()) as adapter:
        with pytest.raises(Exception) as err:
            await adapter.deliver(_out("g2"))
    assert err.value.code == "PARTNER_UNAVAILABLE" and err.value.field == "outbox/g2.xml"  # type: ignore[attr-defined]
    assert isinstance(err.value.__cause__, OSError)


def test_inbox_without_a_party_is_config_invalid_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        FileDropInbox("legacy", options={"path": str(tmp_path)})
    assert err.value.field == "inbound.legacy.options.party"


@pytest.fixture
async def gateway(tmp_path: Path):  # type: ignore[no-untyped-def]
    receiver = await Receiver().start()
    gw = Gateway(make_config(tmp_path, {"BACKEND": receiver.url}))
    inbox = FileDropInbox(
        "mard",
        options={
            "path": str(tmp_path / "drop"),
            "party": "MARD",
            "document_type": "sps.permit",
            "interval": 0.05,
            "document_types": {"BNNPTNT0600011": "sps.permit"},
        },
    )
    gw.inbound.append(inbox)
    try:
        async with gw:
            yield gw, tmp_path / "drop", receiver
    finally:
        await receiver.stop()


async def test_dropped_files_are_submitted_and_moved_to_processed(gateway) -> None:  # type: ignore[no-untyped-def]
    gw, drop, receiver = gateway
    atomic_write(drop / "inbox", "permit-1.xml", b"<Permit>1</Permit>")
    atomic_write(drop / "inbox", "result.xml", vnsw_envelope("vn-77"))
    await eventually(lambda: len(list((drop / "processed").iterdir())) == 2)
    assert list((drop / "inbox").iterdir()) == []
    found = {r.message.envelope.message_id: r for r in await gw.store.search(MessageQuery(sender="MARD"))}
    assert set(found) == {"vn-77", next(m for m in found if m.startswith("sha256:"))}
    assert found["vn-77"].message.envelope.reference == "BNNPTNT11190000272"
    await eventually(lambda: len(receiver.processed) == 2)


async def test_bad_file_goes_to_error_with_a_sidecar_carrying_XML_MALFORMED(gateway) -> None:  # type: ignore[no-untyped-def]
    gw, drop, _ = gateway
    atomic_write(drop / "inbox", "broken.xml", b"<Permit>")
    # the sidecar is written before the file is moved next to it (a crash in between leaves the file in the
    # inbox, to be refused again): wait for both
    await eventually(lambda: (drop / "error" / "broken.xml").exists() and not (drop / "inbox" / "broken.xml").exists())
    sidecar = json.loads((drop / "error" / "broken.xml.error.json").read_bytes())
    assert sidecar["error"]["code"] == "XML_MALFORMED" and sidecar["file"] == "broken.xml"
    assert (drop / "error" / "broken.xml").read_bytes() == b"<Permit>"


async def test_file_that_is_not_the_inboxs_document_type_goes_to_error_with_DOCUMENT_TYPE_MISMATCH(
    tmp_path: Path,
) -> None:
    """The inbox declares its plain-XML files quarantine results; a Form D dropped there is refused by its root."""
    form_d = (
        Path(__file__).resolve().parents[1] / "vectors" / "mappings" / "formd" / "form_d_two_items.xml"
    ).read_bytes()
    config = make_config(
        tmp_path,
        {"BACKEND": "http://127.0.0.1:9/"},
        document_types={"sps.permit": {"procedures": ["BNNPTNT0600011/12/05"], "roots": ["QuarantineResult"]}},
    )
    gw = Gateway(config)
    drop = tmp_path / "drop"
    gw.inbound.append(
        FileDropInbox(
            "mard", options={"path": str(drop), "party": "MARD", "document_type": "sps.permit", "interval": 0.05}
        )
    )
    async with gw:
        atomic_write(drop / "inbox", "result.xml", b"<QuarantineResult>ok</QuarantineResult>")
        atomic_write(drop / "inbox", "eco.xml", form_d)
        await eventually(lambda: (drop / "error" / "eco.xml.error.json").exists())
        await eventually(lambda: (drop / "processed" / "result.xml").exists())
    error = json.loads((drop / "error" / "eco.xml.error.json").read_bytes())["error"]
    assert (error["code"], error["field"]) == ("DOCUMENT_TYPE_MISMATCH", "X-Document-Type")
    assert error["message"] == (
        "declared sps.permit, but the content is root element {urn:nsw-gateway:atiga:e-form-d:1}CertificateOfOrigin"
    )


async def test_vnsw_file_missing_its_message_id_goes_to_error_naming_the_element(gateway) -> None:  # type: ignore[no-untyped-def]
    gw, drop, _ = gateway
    atomic_write(drop / "inbox", "nomid.xml", vnsw_envelope("x").replace(b"<messageId>x</messageId>", b""))
    await eventually(lambda: (drop / "error" / "nomid.xml.error.json").exists())
    error = json.loads((drop / "error" / "nomid.xml.error.json").read_bytes())["error"]
    assert (error["code"], error["field"]) == ("REQUEST_INVALID", "/Envelope/Header/Reference/messageId")


async def test_partial_and_hidden_files_are_left_alone(gateway) -> None:  # type: ignore[no-untyped-def]
    gw, drop, _ = gateway
    (drop / "inbox" / "big.xml.part").write_bytes(b"<Permit>")
    (drop / "inbox" / ".writing.xml").write_bytes(b"<Permit>")
    atomic_write(drop / "inbox", "done.xml", b"<Permit>2</Permit>")
    await eventually(lambda: (drop / "processed" / "done.xml").exists())
    assert sorted(p.name for p in (drop / "inbox").iterdir()) == [".writing.xml", "big.xml.part"]


async def test_file_submitted_before_a_crash_is_moved_not_submitted_again(tmp_path: Path) -> None:
    """The gateway stored the file's message, then died before moving the file: the restart finds it again."""
    receiver = await Receiver().start()
    try:
        config = make_config(tmp_path, {"BACKEND": receiver.url})
        data = vnsw_envelope("vn-crash")
        async with Gateway(config) as gw:
            env = SubmissionEnvelope(
                sender=PartyId("MARD"),
                message_id="vn-crash",
                document_type="sps.permit",
                conversation_id="BNNPTNT11190000272",
                reference="BNNPTNT11190000272",
                format="vnsw",
            )
            first = await gw.broker.submit("MARD", env, data)
            assert first.created
        drop = tmp_path / "drop"
        atomic_write(drop / "inbox" if (drop / "inbox").mkdir(parents=True) is None else drop, "result.xml", data)
        gw = Gateway(config)
        gw.inbound.append(
            FileDropInbox(
                "mard",
                options={
                    "path": str(drop),
                    "party": "MARD",
                    "interval": 0.05,
                    "document_types": {"BNNPTNT0600011": "sps.permit"},
                },
            )
        )
        async with gw:
            await eventually(lambda: (drop / "processed" / "result.xml").exists())
            found = await gw.store.search(MessageQuery(sender="MARD"))
        assert [r.message.id for r in found] == [gateway_message_id("MARD", "vn-crash")]
        await eventually(lambda: len(receiver.requests) >= 1)
        assert receiver.counts() == {gateway_message_id("MARD", "vn-crash"): 1}
    finally:
        await receiver.stop()


async def test_a_reused_file_name_does_not_overwrite_the_processed_one(gateway) -> None:  # type: ignore[no-untyped-def]
    gw, drop, _ = gateway
    atomic_write(drop / "inbox", "export.xml", b"<Permit>A</Permit>")
    await eventually(lambda: (drop / "processed" / "export.xml").exists())
    atomic_write(drop / "inbox", "export.xml", b"<Permit>B</Permit>")
    await eventually(lambda: (drop / "processed" / "export.1.xml").exists())
    assert (drop / "processed" / "export.xml").read_bytes() == b"<Permit>A</Permit>"
    assert (drop / "processed" / "export.1.xml").read_bytes() == b"<Permit>B</Permit>"
    assert len(await gw.store.search(MessageQuery(sender="MARD"))) == 2
