"""Evidence bundles: the bundle of a delivered message verifies offline with only the trust anchors, says what each
part proves, fails naming the part when any byte of any part changes, and outlives a rotation of the gateway key."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import Config
from gateway.errors import EvidenceInvalid, MessageNotFound, XmlMalformed
from gateway.evidence import build_bundle, verify_bundle
from gateway.model import Delivery, Excerpt, Message, PartyId, SubmissionAck, SubmissionEnvelope
from gateway.store import Store
from gateway.store.base import StoredTimestamp
from gateway.timestamps import head_imprint, request_timestamp
from helpers.admin import OPERATORS, OPS, Rig, gateway_toml, running
from helpers.console import log_in
from helpers.gateway import TOKENS, Receiver, doc, eventually, make_config, submit
from helpers.signing import PKI, cert, signer, verify_at
from helpers.stores import STORE_PARAMS, STORES
from helpers.tsa import TsaPki, TsaServer, tsa_pki, tsa_server  # noqa: F401
from signing.dev.pki import issue_certificate
from signing.keys import KeyRing, SoftwareSigner
from signing.policy import VerifyPolicy
from signing.sign import sign_document
from signing.trust import TrustStore

AT = verify_at().timestamp()
ROOT = cert("root-ca")
ISSUING = cert("issuing-ca")
_ISSUING_KEY = serialization.load_pem_private_key((PKI / "issuing-ca.key.pem").read_bytes(), None)


def _signer(name: str) -> SoftwareSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = issue_certificate(
        ISSUING,
        _ISSUING_KEY,  # type: ignore[arg-type]
        name,
        key.public_key(),
        not_before=verify_at() - dt.timedelta(days=1),
        not_after=verify_at() + dt.timedelta(days=30),
        key_usage=["digital_signature", "content_commitment"],
    )
    return SoftwareSigner(key, certificate, [ISSUING])


SENDER, RECEIVER, GATEWAY, GATEWAY_NEXT = (_signer(n) for n in ("MOIT sender", "TH receiver", "Gateway A", "Gateway B"))


def _trust(party: str) -> dict[str, tuple[TrustStore, VerifyPolicy]]:
    return {party: (TrustStore(party, anchors=(ROOT,), intermediates=(ISSUING,), any_signer=True), VerifyPolicy())}


async def _delivered(store: Store) -> str:
    """A signed submission from MOIT delivered to TH, which answered with a signed receipt."""
    submission = sign_document(b"<Doc><No>1</No><Goods>tea</Goods></Doc>", SENDER)
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id="M-1", document_type="eco.form_d")
    m = Message.receive(env, at=AT).verify(at=AT).map(at=AT).enqueue(at=AT)
    d = Delivery.create(m, "TH", b"<Mapped>tea</Mapped>", content_type="application/xml", at=AT, ttl=3600)
    await store.accept(m, submission, [d], SubmissionAck(m.id, "MOIT", "M-1", m.state, AT, ("TH",)))
    [claimed] = await store.claim("TH", owner="w", limit=1, now=AT + 1, lease=60)
    receipt = sign_document(f"<Receipt><MessageId>{m.id}</MessageId></Receipt>".encode(), RECEIVER)
    await store.record(claimed.delivered(at=AT + 1).acknowledged(receipt, at=AT + 2), owner="w", now=AT + 2)
    return m.id


async def _bundle(store: Store, signer: SoftwareSigner | KeyRing = GATEWAY, now: float = AT + 10) -> bytes:
    mid = await _delivered(store)
    return await build_bundle(store, signer, mid, now=now, senders=_trust("MOIT"), receivers=_trust("TH"))


PARTS = [
    "mimetype",
    "message.json",
    "submission/submission.xml",
    "submission/chain.pem",
    "submission/verification.json",
    "deliveries/1-TH/payload",
    "deliveries/1-TH/receipt.xml",
    "deliveries/1-TH/receipt-chain.pem",
    "deliveries/1-TH/delivery.json",
    "history.json",
    "journal/entries.jsonl",
    "journal/timestamps.json",
    "META-INF/manifest.xml",
    "META-INF/signature.xml",
]


def _flip(bundle: bytes, part: str) -> bytes:
    """The bundle with one byte of ``part`` changed (and the ZIP's own checksums made to match)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == part:
                i = len(data) // 2
                data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
            dst.writestr(info, data, compress_type=info.compress_type)
    return out.getvalue()


async def test_bundle_of_a_delivered_message_verifies_and_says_what_each_part_proves(store: Store) -> None:
    bundle = await _bundle(store)
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        assert z.namelist() == PARTS
        assert z.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
    proofs = {p.part: p.statement for p in verify_bundle(bundle, anchors=[ROOT])}
    assert proofs["META-INF/signature.xml"].startswith("manifest signed by the gateway key CN=Gateway A")
    assert proofs["submission"].startswith("signed by CN=MOIT sender")
    assert proofs["submission"].endswith("digest matches manifest")
    assert "receipt signed by CN=TH receiver" in proofs["delivery to TH"]
    assert proofs["journal"].startswith("chain of 2 entries intact from seq 1 to head 2")
    assert proofs["timestamps"] == "none stored yet over this message's entries"


@pytest.mark.parametrize("part", PARTS)
async def test_flipping_a_byte_of_any_part_fails_verify_naming_the_part(store: Store, part: str) -> None:
    bundle = await _bundle(store)
    with pytest.raises(EvidenceInvalid) as caught:
        verify_bundle(_flip(bundle, part), anchors=[ROOT])
    assert caught.value.code == "EVIDENCE_INVALID"
    assert caught.value.field == part


def _flip_stored(bundle: bytes, part: str) -> bytes:
    """The bundle with one byte of ``part``'s stored (compressed) data changed, the ZIP left as it is."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        info = z.getinfo(part)
    header = info.header_offset
    name_length, extra_length = (
        int.from_bytes(bundle[header + 26 : header + 28], "little"),
        int.from_bytes(bundle[header + 28 : header + 30], "little"),
    )
    i = header + 30 + name_length + extra_length + info.compress_size // 2
    return bundle[:i] + bytes([bundle[i] ^ 0x01]) + bundle[i + 1 :]


@pytest.mark.parametrize("part", PARTS)
async def test_flipping_a_stored_byte_of_any_part_in_the_zip_fails_verify_naming_the_part(
    store: Store, part: str
) -> None:
    bundle = await _bundle(store)
    with pytest.raises(EvidenceInvalid) as caught:
        verify_bundle(_flip_stored(bundle, part), anchors=[ROOT])
    assert (caught.value.code, caught.value.field) == ("EVIDENCE_INVALID", part)


async def test_a_timestamp_token_over_the_head_goes_in_the_bundle_and_verifies_under_the_tsa_anchor(
    store: Store, tsa_server: TsaServer, tsa_pki: TsaPki
) -> None:
    mid = await _delivered(store)
    head = await store.journal_head()
    assert head is not None
    token, info = await asyncio.to_thread(
        request_timestamp, tsa_server.url, head_imprint(head.seq, head.hash), anchors=[tsa_pki.root]
    )
    await store.timestamp_add(StoredTimestamp(head.seq, head.hash, token, info.gen_time.timestamp(), str(info.serial)))
    bundle = await build_bundle(store, GATEWAY, mid, now=AT + 10, senders=_trust("MOIT"), receivers=_trust("TH"))
    part = "journal/timestamp-1.tsr"
    proofs = {p.part: p.statement for p in verify_bundle(bundle, anchors=[ROOT, tsa_pki.root])}
    statement = proofs[f"timestamp {part}"]
    assert "CN=NSW test TSA" in statement
    assert statement.endswith(f"over entry {head.seq}: this message's entries [1, 2] existed by then")
    with pytest.raises(EvidenceInvalid) as caught:
        verify_bundle(bundle, anchors=[ROOT])  # the TSA's anchor not given
    assert (caught.value.code, caught.value.field) == ("EVIDENCE_INVALID", part)
    assert "TIMESTAMP_INVALID" in caught.value.message
    with pytest.raises(EvidenceInvalid) as caught:
        verify_bundle(_flip(bundle, part), anchors=[ROOT, tsa_pki.root])
    assert caught.value.field == part


async def test_a_bundle_under_other_anchors_fails_on_the_gateway_signature(store: Store) -> None:
    bundle = await _bundle(store)
    with pytest.raises(EvidenceInvalid) as caught:
        verify_bundle(bundle, anchors=[cert("other-ca")])
    assert caught.value.field == "META-INF/signature.xml"


async def test_a_bundle_made_before_a_key_rotation_still_verifies_after_it(store: Store) -> None:
    clock = [verify_at()]
    ring = KeyRing(
        [(GATEWAY, verify_at() - dt.timedelta(days=1)), (GATEWAY_NEXT, verify_at() + dt.timedelta(hours=1))],
        clock=lambda: clock[0],
    )
    before = await _bundle(store, ring)
    clock[0] = verify_at() + dt.timedelta(hours=2)
    assert ring.certificate == GATEWAY_NEXT.certificate, "the ring has rotated"
    after = await build_bundle(store, ring, _message_id(before), now=AT + 7200)
    assert "Gateway A" in str(verify_bundle(before, anchors=[ROOT])[0])
    assert "Gateway B" in str(verify_bundle(after, anchors=[ROOT])[0])


def _message_id(bundle: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return str(json.loads(z.read("message.json"))["id"])


async def test_a_refused_submission_has_a_bundle_that_verifies_with_its_stored_excerpt(store: Store) -> None:
    env = SubmissionEnvelope(sender=PartyId("MOIT"), message_id="M-bad", document_type="eco.form_d")
    data = b"<Doc><Unclosed></Doc>"
    m = Message.receive(env, at=AT).reject(XmlMalformed("not well-formed", field="line 1"), at=AT)
    await store.accept(m, Excerpt.of(data, 8), [], SubmissionAck(m.id, "MOIT", "M-bad", m.state, AT, ()))
    bundle = await build_bundle(store, GATEWAY, m.id, now=AT + 10)
    proofs = {p.part: p.statement for p in verify_bundle(bundle, anchors=[ROOT])}
    assert proofs["submission"].startswith("not signed")
    assert "journal" in proofs
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        assert z.read("submission/submission.xml") == data[:8]
        assert json.loads(z.read("message.json"))["state"] == "REJECTED"


async def test_a_submission_that_no_longer_verifies_is_bundled_and_fails_verify_naming_it(store: Store) -> None:
    mid = await _delivered(store)
    elsewhere = {"MOIT": (TrustStore("MOIT", anchors=(cert("other-ca"),), any_signer=True), VerifyPolicy())}
    bundle = await build_bundle(store, GATEWAY, mid, now=AT + 10, senders=elsewhere)
    with pytest.raises(EvidenceInvalid) as caught:
        verify_bundle(bundle, anchors=[ROOT])
    assert caught.value.field == "submission/submission.xml"
    assert "CERT_UNTRUSTED" in caught.value.message


async def test_a_bundle_of_an_unknown_message_is_refused_with_its_code(store: Store) -> None:
    with pytest.raises(MessageNotFound) as caught:
        await build_bundle(store, GATEWAY, "nope", now=AT)
    assert caught.value.code == "MESSAGE_NOT_FOUND"


async def test_evidence_verify_command_prints_proofs_and_names_a_broken_part(store: Store, tmp_path: Path) -> None:
    bundle = await _bundle(store)
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(bundle)
    bad.write_bytes(_flip(bundle, "deliveries/1-TH/payload"))
    run = [sys.executable, "-m", "gateway.cli", "evidence", "verify"]
    ok = subprocess.run([*run, str(good), "--anchors", str(PKI / "root-ca.pem")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "submission: signed by CN=MOIT sender" in ok.stdout and "evidence OK" in ok.stdout
    broken = subprocess.run([*run, str(bad), "--anchors", str(PKI / "root-ca.pem")], capture_output=True, text=True)
    assert broken.returncode == 1
    assert "evidence BROKEN: deliveries/1-TH/payload: differs from its manifest digest" in broken.stderr


def _gateway_config(tmp_path: Path, partner: Receiver) -> Config:
    """A gateway with the ``ops`` operator and the vector gateway key (with its chain, for KeyInfo)."""
    key = {"key": str(PKI / "moit.key.pem"), "certificate": str(PKI / "moit.pem"), "chain": str(PKI / "issuing-ca.pem")}
    return make_config(tmp_path, {"TH": partner.url}, extra={"operators": OPERATORS, "signing": {"keys": [key]}})


@pytest.fixture(params=STORE_PARAMS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with running(lambda partner: _gateway_config(tmp_path, partner), STORES[request.param](tmp_path)) as r:
        yield r


@pytest.fixture
async def sqlite_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The console's one-time link is recorded in the store the configuration names: the configured SQLite one."""
    async with running(lambda partner: _gateway_config(tmp_path, partner)) as r:
        yield r


def _parts(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return {n: z.read(n) for n in z.namelist() if not n.startswith("META-INF/")}


async def test_the_admin_endpoint_returns_the_same_bundle_and_refuses_non_operators(rig: Rig) -> None:
    _, ack = await submit(rig.session, rig.gw.url, "MOIT", "moit-ev", "eco.form_d", doc("ev"))

    async def acknowledged() -> bool:
        record = await rig.gw.store.get(ack["id"])
        return record is not None and record.state.value == "ACKNOWLEDGED"

    await eventually(acknowledged)
    path = f"{rig.gw.url}/v1/admin/messages/{ack['id']}/evidence"
    async with rig.session.get(path, headers={"Authorization": f"Bearer {OPS}"}) as r:
        assert (r.status, r.content_type) == (200, "application/vnd.etsi.asic-e+zip")
        served = await r.read()
    proofs = {p.part: p.statement for p in verify_bundle(served, anchors=[ROOT])}
    assert proofs["submission"].startswith("not signed")
    direct = await build_bundle(rig.gw.store, signer("moit"), ack["id"], now=AT)
    assert _parts(served) == _parts(direct), "the same parts as `nswgw evidence` writes"
    for token, expected in ((TOKENS["MOIT"], (403, "AUTH_FORBIDDEN")), (None, (401, "AUTH_REQUIRED"))):
        status, body = await rig.call("GET", f"/v1/admin/messages/{ack['id']}/evidence", token=token)
        assert (status, body["error"]["code"]) == expected
    status, body = await rig.call("GET", "/v1/admin/messages/nope/evidence")
    assert (status, body["error"]["code"]) == (404, "MESSAGE_NOT_FOUND")


async def test_the_console_message_page_links_the_bundle_which_verifies(sqlite_rig: Rig) -> None:
    rig = sqlite_rig
    _, ack = await submit(rig.session, rig.gw.url, "MOIT", "moit-console", "eco.form_d", doc("console"))

    async def acknowledged() -> bool:
        record = await rig.gw.store.get(ack["id"])
        return record is not None and record.state.value == "ACKNOWLEDGED"

    await eventually(acknowledged)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        ops = await log_in(rig.gw, http, "ops")
        status, page = await ops.page(f"/console/messages/{ack['id']}")
        assert status == 200
        [href] = page.xpath("//a[@id='download-bundle']/@href")
        async with http.get(f"{rig.gw.url}{href}") as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"] == f'attachment; filename="evidence-{ack["id"]}.zip"'
            served = await r.read()
    assert _parts(served) == _parts(await build_bundle(rig.gw.store, signer("moit"), ack["id"], now=AT))
    assert verify_bundle(served, anchors=[ROOT])[-2].part == "journal"


def test_evidence_command_writes_the_bundle_of_a_message_from_the_configured_store(tmp_path: Path) -> None:
    from gateway.cli import main
    from gateway.store.sqlite import SqliteStore

    key = f'''
[[signing.keys]]
key = "{PKI / "moit.key.pem"}"
certificate = "{PKI / "moit.pem"}"
chain = "{PKI / "issuing-ca.pem"}"
'''
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path, "http://127.0.0.1:9/inbox") + key, encoding="utf-8")

    async def populate() -> str:
        async with SqliteStore(tmp_path / "gw.db") as store:
            return await _delivered(store)

    mid = asyncio.run(populate())
    out = tmp_path / "evidence.zip"
    assert main(["evidence", mid, "-o", str(out), "--config", str(config)]) == 0
    proofs = {p.part: p.statement for p in verify_bundle(out.read_bytes(), anchors=[ROOT])}
    assert proofs["META-INF/signature.xml"].startswith("manifest signed by the gateway key CN=Vector moit")
    assert proofs["submission"].startswith("not signed"), "this configuration verifies no signatures"
    assert main(["evidence", "nope", "-o", str(tmp_path / "x.zip"), "--config", str(config)]) == 2
    assert not (tmp_path / "x.zip").exists()
