"""A verified document that goes on unchanged is signed from the tree verification parsed: the same bytes as
signing its serialized content, for every kind of document; what has no such tree, or goes to destinations that
need its bytes, is signed from its bytes. Real signatures with the dev PKI (RSA PKCS#1 v1.5: deterministic, so
equal inputs give equal bytes) and real loopback partners."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway.api import Gateway
from gateway.config import Config
from gateway.journal import check_evidence
from gateway.ports import DocumentSigner, DocumentVerifier, PartyId
from helpers.gateway import TOKENS, Receiver, eventually, make_config, submit
from helpers.ocsp import dev_pki  # noqa: F401
from helpers.stores import STORE_PARAMS, STORES
from signing.dev.pki import DevPki
from signing.keys import SoftwareSigner
from signing.policy import SigningProfile, VerifyPolicy
from signing.sign import sign_document, sign_element
from signing.trust import PinnedCertificate, TrustStore
from signing.verify import verify_document
from signing.xml import Spliced, parse_xml, payload_bytes, serialize

BULK = base64.b64encode(os.urandom(3 * 4096)).decode("ascii")
ECO = f'<Eco xmlns="urn:test:eco" kind="form-d"><Exporter>Minh Phu</Exporter><Scan>{BULK}</Scan></Eco>'


def _signer(pki: DevPki, name: str) -> SoftwareSigner:
    p = pki.party(name)
    return SoftwareSigner(p.key, p.cert, [pki.issuing_cert])


def _verifier(pki: DevPki, policy: VerifyPolicy) -> DocumentVerifier:
    trust = TrustStore(party="moit", pinned=(PinnedCertificate(pki.party("moit").cert),))
    return DocumentVerifier({"MOIT": (trust, policy)})


def _gateway_signer(pki: DevPki) -> DocumentSigner:
    profiles = {"TH": SigningProfile(), "LEGACY": SigningProfile.vnsw_legacy(), "PLAIN": None}
    return DocumentSigner(_signer(pki, "nsw-gateway"), profiles)


def _latin1(signed: bytes) -> bytes:
    """The same signed document encoded in ISO-8859-1 (the signature covers characters, not bytes)."""
    return signed.decode("utf-8").replace("encoding='UTF-8'", "encoding='ISO-8859-1'").encode("latin-1")


DOCUMENTS = {
    "ascii_with_escapes": (ECO.replace("Minh Phu", "Minh Phu &amp; Co &lt;JSC&gt;"), SigningProfile(), None),
    "non_ascii_utf8": (ECO.replace("Minh Phu", "Xuất khẩu Thủy sản 中"), SigningProfile(), None),
    "character_references": (ECO.replace("Minh Phu", "Caf&#233; &#x4E2D;"), SigningProfile(), None),
    "iso_8859_1": (ECO.replace("Minh Phu", "Café"), SigningProfile(), _latin1),
    "system_signature": (ECO, SigningProfile.vnsw_legacy(), None),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
@pytest.mark.parametrize("destination", ["TH", "LEGACY", "PLAIN"])
def test_verified_document_signed_from_its_tree_gives_the_bytes_of_signing_its_content(
    dev_pki: DevPki, name: str, destination: str
) -> None:
    text, sender_profile, encode = DOCUMENTS[name]
    raw = sign_document(text.encode("utf-8"), _signer(dev_pki, "moit"), sender_profile)
    raw = encode(raw) if encode is not None else raw
    policy = VerifyPolicy.vnsw_legacy() if sender_profile.placement == "system-signature" else VerifyPolicy()
    verified = _verifier(dev_pki, policy).verify(raw, PartyId("MOIT"))
    signer = _gateway_signer(dev_pki)
    from_bytes = signer.sign(verified.content, destination)
    assert verified.tree is not None
    from_tree = signer.sign_tree(verified.tree, destination, ascii=verified.ascii)
    assert from_tree == from_bytes
    if destination != "PLAIN":
        trust = TrustStore(party="gw", pinned=(PinnedCertificate(dev_pki.party("nsw-gateway").cert),))
        placement = VerifyPolicy.vnsw_legacy() if destination == "LEGACY" else VerifyPolicy()
        assert verify_document(from_tree, trust=trust, policy=placement).signer_subject.startswith("CN=nsw-gateway")


def test_document_with_a_processing_instruction_beside_its_root_has_no_tree_to_sign(dev_pki: DevPki) -> None:
    raw = sign_document(b'<?xml-stylesheet href="eco.xsl"?>\n' + ECO.encode(), _signer(dev_pki, "moit"))
    assert b"xml-stylesheet" in raw
    verified = _verifier(dev_pki, VerifyPolicy()).verify(raw, PartyId("MOIT"))
    assert verified.tree is None
    assert b"xml-stylesheet" not in verified.content and verified.signed is not None
    assert b"xml-stylesheet" not in verified.signed


def _config(
    tmp_path: Path, pki: DevPki, destinations: dict[str, str], per_destination: dict[str, dict[str, Any]]
) -> Config:
    gw_key = pki.party("nsw-gateway")
    return make_config(
        tmp_path,
        destinations,
        parties={
            name: {"trust": {"pinned": [{"certificate": str(pki.party("moit").cert_path)}]}}
            for name in ("MOIT", "MARD", "TRADER")
        },
        per_destination=per_destination,
        gateway={"verification": "signature", "signing": "on"},
        extra={"signing": {"keys": [{"pkcs12": str(gw_key.p12_path), "password": "changeit"}]}},
    )


async def test_signed_submission_to_one_destination_delivers_the_bytes_of_signing_its_verified_content(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    raw = sign_document(ECO.encode(), _signer(dev_pki, "moit"))
    th = await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url}, {})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "ECO-1", "eco.form_d", raw)
            assert status == 202, ack
            await eventually(lambda: len(th.processed) == 1)
    finally:
        await th.stop()
    content = _verifier(dev_pki, VerifyPolicy()).verify(raw, PartyId("MOIT")).content
    assert th.requests[0]["body"] == _gateway_signer(dev_pki).sign(content, "TH")


async def test_signed_submission_to_a_signed_and_an_unsigned_destination_delivers_each_its_own_bytes(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    raw = sign_document(ECO.encode(), _signer(dev_pki, "moit"))
    th, plain = await Receiver().start(), await Receiver().start()
    try:
        config = _config(
            tmp_path, dev_pki, {"TH": th.url, "PLAIN": plain.url}, {"PLAIN": {"signing": {"profile": "none"}}}
        )
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await submit(s, gw.url, "MOIT", "ECO-2", "eco.form_d", raw)
            assert status == 202, ack
            await eventually(lambda: len(th.processed) == 1 and len(plain.processed) == 1)
    finally:
        await th.stop()
        await plain.stop()
    content = _verifier(dev_pki, VerifyPolicy()).verify(raw, PartyId("MOIT")).content
    assert plain.requests[0]["body"] == content
    assert th.requests[0]["body"] == _gateway_signer(dev_pki).sign(content, "TH")


LARGE = ECO.replace(BULK, base64.b64encode(os.urandom(1536 * 1024)).decode("ascii"))
"""An e-C/O with a 2 MiB base64 scan: its text is taken out of the tree (:func:`signing.xml.take_text`)."""


def _whole_tree_outputs(pki: DevPki, raw: bytes) -> tuple[bytes, bytes, str, bytes]:
    """Evidence, content, content digest and the gateway's signed document, made by libxml2 from whole trees."""
    root = parse_xml(raw)
    result = verify_document(root, trust=TrustStore(party="moit", pinned=(PinnedCertificate(pki.party("moit").cert),)))
    evidence = serialize(result.element, ascii=True)
    parent = result.signature.getparent()
    assert parent is not None
    parent.remove(result.signature)
    digest = "sha256:" + hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).hexdigest()
    content = serialize(root, ascii=True)
    again = parse_xml(content)
    sign_element(again, _signer(pki, "nsw-gateway"), SigningProfile())
    return evidence, content, digest, serialize(again.getroottree(), ascii=True)


def test_large_signed_document_verified_gives_the_evidence_content_and_digest_of_its_whole_tree(
    dev_pki: DevPki,
) -> None:
    raw = sign_document(LARGE.encode(), _signer(dev_pki, "moit"))
    evidence, content, digest, resigned = _whole_tree_outputs(dev_pki, raw)
    verified = _verifier(dev_pki, VerifyPolicy()).verify(raw, PartyId("MOIT"))
    taken = verified.taken
    assert taken is not None and isinstance(verified.signed, Spliced)
    assert len(verified.content) < 4096  # the text stands as its marker: checks and mappings read a small document
    assert verified.signed.tobytes() == evidence
    assert payload_bytes(Spliced.of(verified.content, taken)) == content
    assert verified.digest == digest
    assert verified.tree is None  # its text was taken out: the signer parses the content
    signer = _gateway_signer(dev_pki)
    signed = signer.sign_spliced(verified.content, "TH", taken)
    assert isinstance(signed, Spliced) and signed.tobytes() == resigned
    assert payload_bytes(signer.sign_spliced(verified.content, "PLAIN", taken)) == content


def test_large_text_a_mapping_copied_twice_is_signed_whole(dev_pki: DevPki) -> None:
    raw = sign_document(LARGE.encode(), _signer(dev_pki, "moit"))
    verified = _verifier(dev_pki, VerifyPolicy()).verify(raw, PartyId("MOIT"))
    assert verified.taken is not None
    marker = verified.taken.marker
    twice = verified.content.replace(b"</Eco>", f"<Copy>{marker}</Copy></Eco>".encode())
    signed = _gateway_signer(dev_pki).sign_spliced(twice, "TH", verified.taken)
    assert isinstance(signed, bytes)
    bulk = LARGE.split("<Scan>")[1].split("</Scan>")[0]
    assert signed.count(bulk.encode()) == 2 and marker.encode() not in signed
    verify_document(
        signed, trust=TrustStore(party="gw", pinned=(PinnedCertificate(dev_pki.party("nsw-gateway").cert),))
    )


async def _submit_large(s: aiohttp.ClientSession, url: str, mid: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """``submit`` with the body streamed (aiohttp warns of a large body handed over as bytes)."""
    headers = {
        "Authorization": f"Bearer {TOKENS['MOIT']}",
        "X-Message-Id": mid,
        "X-Document-Type": "eco.form_d",
        "Content-Type": "application/xml",
    }
    async with s.post(f"{url}/v1/messages", data=io.BytesIO(raw), headers=headers) as r:
        return r.status, await r.json()


async def test_large_signed_submission_delivers_the_document_libxml2_signs_from_its_whole_tree(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    raw = sign_document(LARGE.encode(), _signer(dev_pki, "moit"))
    th = await Receiver().start()
    try:
        config = _config(tmp_path, dev_pki, {"TH": th.url}, {})
        async with Gateway(config) as gw, aiohttp.ClientSession() as s:
            status, ack = await _submit_large(s, gw.url, "ECO-3", raw)
            assert status == 202, ack
            await eventually(lambda: len(th.processed) == 1)
            duplicate, refused = await _submit_large(s, gw.url, "ECO-4", raw)
    finally:
        await th.stop()
    assert th.requests[0]["body"] == _whole_tree_outputs(dev_pki, raw)[3]
    assert duplicate == 409 and refused["error"]["code"] == "DUPLICATE_CONTENT"


@pytest.mark.parametrize("kind", STORE_PARAMS)
async def test_large_signed_submission_to_two_destinations_stores_and_delivers_the_whole_bytes_on_each_store(
    tmp_path: Path, dev_pki: DevPki, kind: str
) -> None:
    raw = sign_document(LARGE.encode(), _signer(dev_pki, "moit"))
    evidence, content, _, resigned = _whole_tree_outputs(dev_pki, raw)
    th, plain = await Receiver().start(), await Receiver().start()
    try:
        config = _config(
            tmp_path, dev_pki, {"TH": th.url, "PLAIN": plain.url}, {"PLAIN": {"signing": {"profile": "none"}}}
        )
        async with Gateway(config, store=STORES[kind](tmp_path)) as gw, aiohttp.ClientSession() as s:
            status, ack = await _submit_large(s, gw.url, "ECO-5", raw)
            assert status == 202, ack

            async def both_delivered() -> bool:
                return sum(e.kind == "DELIVERED" for e in await gw.store.journal()) == 2

            await eventually(both_delivered)
            assert await gw.store.message_payload(ack["id"]) == evidence
            entries = await gw.store.journal()
            digests = await gw.store.evidence_digests(entries)
    finally:
        await th.stop()
        await plain.stop()
    assert th.requests[0]["body"] == resigned
    assert plain.requests[0]["body"] == content
    accepted = [e for e in entries if e.message_id == ack["id"] and e.kind == "ACCEPTED"]
    assert [e.digest for e in accepted] == [hashlib.sha256(evidence).hexdigest()]
    assert check_evidence(entries, digests) == []
