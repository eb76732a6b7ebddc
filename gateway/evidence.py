"""Evidence bundles: everything the gateway holds about one message, in one ZIP that an auditor checks offline
with only the trust anchors (``nswgw evidence MESSAGE_ID -o FILE``, ``nswgw evidence verify FILE --anchors PEM``).

The format (ASiC-E-like) is documented in docs/evidence.md. The manifest (``META-INF/manifest.xml``) lists every
part with its SHA-256; ``META-INF/signature.xml`` is a small document naming the manifest's SHA-256, signed
(enveloped XMLDSig) with the gateway's key through the :class:`~signing.keys.Signer` interface, so the whole
bundle hangs on one signature that :func:`signing.verify.verify_document` checks. Signatures inside parts (the
submission, signed receipts) are checked again offline, under the policy recorded when the bundle was made, at the
instant they were received: a certificate that expired or a key rotated since does not void old evidence.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import sys
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway import __version__
from gateway.config import Config
from gateway.errors import ConfigError, EvidenceInvalid, MessageNotFound, NswError
from gateway.journal import ACCEPTED, DELIVERED, JournalEntry, payload_digest, verify_chain
from gateway.store.base import Store, StoredTimestamp
from signing.algorithms import DS_NS
from signing.keys import Signer
from signing.policy import VerifyPolicy
from signing.sign import sign_document
from signing.trust import TrustStore
from signing.verify import verify_document
from signing.xml import parse_xml, serialize

__all__ = ["FORMAT", "MEDIA_TYPE", "Proof", "build_bundle", "party_trust", "verify_bundle", "register"]

FORMAT = "nswgw-evidence/1"
MEDIA_TYPE = "application/vnd.etsi.asic-e+zip"
NS = "urn:nswgw:evidence:1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
MANIFEST = "META-INF/manifest.xml"
SIGNATURE = "META-INF/signature.xml"
_E = f"{{{NS}}}"

PartyTrust = Mapping[str, tuple[TrustStore, VerifyPolicy]]
"""Per party (sender or destination): the trust store and policy its signatures were verified under."""


@dataclass(frozen=True)
class Proof:
    """What one part of a verified bundle proves."""

    part: str
    statement: str

    def __str__(self) -> str:
        return f"{self.part}: {self.statement}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _has_signature(data: bytes) -> bool:
    try:
        root = parse_xml(data)
    except NswError:
        return False
    return bool(root.findall(f".//{{{DS_NS}}}Signature"))


def _pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def _verification(
    data: bytes, party: str, trust: PartyTrust, at: float, chain_part: str
) -> tuple[dict[str, Any], bytes | None]:
    """The verification record of a signed part (re-verified now, at the instant it was received) and the PEM of
    its validated chain; a part without a signature, or of a party without trust, is recorded as unsigned."""
    entry = trust.get(party)
    if entry is None or not _has_signature(data):
        return {"signed": False, "party": party, "at": at}, None
    store, policy = entry
    try:
        result = verify_document(data, trust=store, policy=policy, at=datetime.fromtimestamp(at, UTC))
    except NswError as exc:  # recorded, not raised: the bundle of a message whose signature fails now is evidence too
        return {"signed": True, "party": party, "at": at, "error": {"code": exc.code, "message": exc.message}}, None
    record = {
        "signed": True,
        "party": party,
        "at": at,
        "signer": result.signer_subject,
        "signer_sha256": result.signer_fingerprint,
        "chain": [c.subject.rfc4514_string() for c in result.chain],
        "chain_part": chain_part,
        "signature_method": result.signature_method,
        "digest_method": result.digest_method,
        "c14n_method": result.c14n_method,
        "references": [result.reference_uri],
        "policy": policy.model_dump(mode="json"),
    }
    return record, _pem(result.chain)


async def _journal_segment(store: Store, message_id: str) -> list[JournalEntry]:
    """The entries from the message's first one up to the head: enough to recompute the chain between them."""
    base = await store.journal_base()
    out: list[JournalEntry] = []
    after = base.seq
    while True:
        page = await store.journal(after=after, limit=1000)
        if not page:
            return out
        for e in page:
            if out or e.message_id == message_id:
                out.append(e)
        after = page[-1].seq


def _manifest(parts: Mapping[str, bytes], message_id: str, created_at: float) -> bytes:
    root = etree.Element(_E + "Manifest", nsmap={None: NS}, format=FORMAT, message=message_id)
    root.set("created", repr(float(created_at)))
    root.set("gateway", __version__)
    for name, data in parts.items():
        etree.SubElement(root, _E + "Part", path=name, size=str(len(data)), DigestAlgorithm=SHA256).text = _sha(data)
    return serialize(root.getroottree())


def _signature(manifest: bytes, signer: Signer, message_id: str, created_at: float) -> bytes:
    root = etree.Element(_E + "EvidenceSignature", nsmap={None: NS})
    etree.SubElement(root, _E + "Message").text = message_id
    etree.SubElement(root, _E + "Created").text = repr(float(created_at))
    etree.SubElement(root, _E + "ManifestDigest", URI=MANIFEST, Algorithm=SHA256).text = _sha(manifest)
    return sign_document(root, signer)


async def build_bundle(
    store: Store,
    signer: Signer,
    message_id: str,
    *,
    now: float,
    senders: PartyTrust | None = None,
    receivers: PartyTrust | None = None,
) -> bytes:
    """The evidence bundle (ZIP bytes) of one message. ``senders``/``receivers``: the trust and policy of the
    submission's sender and of each destination's signed receipts (``gateway.security``); a party missing there is
    recorded as unsigned. The store's RFC 3161 tokens over journal entries from the message's first one on go in
    as stored (``gateway.timestamps``)."""
    record = await store.get(message_id)
    if record is None:
        raise MessageNotFound(f"no message {message_id}", field="MESSAGE_ID")
    submission = await store.message_payload(message_id) or b""
    sender = str(record.message.envelope.sender)
    received_at = record.message.received_at
    parts: dict[str, bytes] = {"message.json": _json(record.to_dict()), "submission/submission.xml": submission}
    verification, chain = _verification(submission, sender, senders or {}, received_at, "submission/chain.pem")
    if chain is not None:
        parts["submission/chain.pem"] = chain
    parts["submission/verification.json"] = _json(verification)
    for i, d in enumerate(record.deliveries, 1):
        prefix = f"deliveries/{i}-{d.destination}"
        info: dict[str, Any] = {
            "destination": d.destination,
            "state": d.state.value,
            "attempts": d.attempts,
            "content_type": d.content_type,
            "queued_at": d.queued_at,
            "last_error": d.last_error,
        }
        parts[f"{prefix}/payload"] = d.payload
        if d.receipt is not None:
            acknowledged = max((t.at for t in d.history if t.to_state.value == "ACKNOWLEDGED"), default=now)
            receipt_check, receipt_chain = _verification(
                d.receipt, d.destination, receivers or {}, acknowledged, f"{prefix}/receipt-chain.pem"
            )
            parts[f"{prefix}/receipt.xml"] = d.receipt
            if receipt_chain is not None:
                parts[f"{prefix}/receipt-chain.pem"] = receipt_chain
            info["receipt"] = receipt_check
        parts[f"{prefix}/delivery.json"] = _json(info)
    parts["history.json"] = _json([t.to_dict() for t in record.history])
    entries = await _journal_segment(store, message_id)
    parts["journal/entries.jsonl"] = b"".join(
        json.dumps(e.to_dict(), separators=(",", ":"), sort_keys=True).encode() + b"\n" for e in entries
    )
    stamps = await store.timestamps(since_seq=entries[0].seq) if entries else []
    listing = []
    for i, stamp in enumerate(stamps, 1):
        part = f"journal/timestamp-{i}.tsr"
        parts[part] = stamp.token
        listing.append(
            {"part": part, "seq": stamp.seq, "entry_hash": stamp.entry_hash, "hash": _imprint_algorithm(stamp)}
        )
    parts["journal/timestamps.json"] = _json(listing)
    manifest = _manifest(parts, message_id, now)
    signature = _signature(manifest, signer, message_id, now)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype", (1980, 1, 1, 0, 0, 0)), MEDIA_TYPE, compress_type=zipfile.ZIP_STORED)
        for name, data in {**parts, MANIFEST: manifest, SIGNATURE: signature}.items():
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# ---------------------------------------------------------------------------- offline verification


def _fail(part: str, detail: str) -> EvidenceInvalid:
    return EvidenceInvalid(f"{part}: {detail}", field=part)


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if not names or names[0] != "mimetype" or z.getinfo("mimetype").compress_type != zipfile.ZIP_STORED:
                raise _fail("mimetype", "not the first part, stored")
            parts: dict[str, bytes] = {}
            for name in names:
                try:
                    parts[name] = z.read(name)
                except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as exc:  # a CRC or inflate error: the part
                    raise _fail(name, f"unreadable: {exc}") from exc
            return parts
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise _fail("mimetype", f"not a readable ZIP: {exc}") from exc


def _check_signed(
    part: str, data: bytes, check: Mapping[str, Any], anchors: Sequence[x509.Certificate], chain: bytes | None
) -> str:
    """Verify a signed part again under its recorded policy, at its recorded instant; what it proves."""
    if not check.get("signed"):
        return "not signed (its party had no signature verification)"
    if "error" in check:
        raise _fail(part, f"did not verify when the bundle was made: {check['error'].get('code')}")
    try:
        intermediates = tuple(x509.load_pem_x509_certificates(chain)) if chain else ()
        policy = VerifyPolicy.model_validate(check["policy"])
        trust = TrustStore(
            str(check["party"]), anchors=tuple(anchors), intermediates=intermediates[1:], any_signer=True
        )
        at = datetime.fromtimestamp(float(check["at"]), UTC)
        result = verify_document(data, trust=trust, policy=policy, at=at)
    except NswError as exc:
        raise _fail(part, f"signature does not verify under the anchors: {exc.code} {exc.message}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise _fail(part, f"verification record unusable: {exc}") from exc
    if result.signer_fingerprint != check.get("signer_sha256"):
        raise _fail(part, f"signed by {result.signer_subject}, not the recorded {check.get('signer')}")
    when = datetime.fromtimestamp(float(check["at"]), UTC).isoformat()
    return (
        f"signed by {result.signer_subject} (chain {' <- '.join(c.subject.rfc4514_string() for c in result.chain)}),"
        f" {result.signature_method}, reference {result.reference_uri!r}, verified at {when}"
    )


def _load_json(parts: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(parts[name])
    except (KeyError, ValueError) as exc:
        raise _fail(name, f"missing or not JSON: {exc}") from exc


def verify_bundle(data: bytes, *, anchors: Sequence[x509.Certificate]) -> list[Proof]:
    """Check a bundle offline; what each part proves. Raises :class:`EvidenceInvalid` naming the first failing
    part."""
    if not anchors:
        raise ConfigError("no trust anchors given", field="--anchors")
    parts = _read_zip(data)
    if parts["mimetype"] != MEDIA_TYPE.encode():
        raise _fail("mimetype", f"is not {MEDIA_TYPE}")
    manifest_bytes, signature_bytes = parts.get(MANIFEST), parts.get(SIGNATURE)
    if manifest_bytes is None or signature_bytes is None:
        raise _fail(MANIFEST if manifest_bytes is None else SIGNATURE, "missing")
    # the gateway's signature over the manifest digest
    try:
        signed = verify_document(
            signature_bytes,
            trust=TrustStore("gateway", anchors=tuple(anchors), any_signer=True),
            at=datetime.fromtimestamp(float(parse_xml(signature_bytes).findtext(_E + "Created") or "0"), UTC),
        )
    except (NswError, ValueError) as exc:
        raise _fail(SIGNATURE, f"does not verify under the anchors: {exc}") from exc
    if signed.element.tag != _E + "EvidenceSignature":
        raise _fail(SIGNATURE, f"signs a {signed.element.tag!r}, not an EvidenceSignature")
    named = signed.element.find(_E + "ManifestDigest")
    if named is None or named.get("URI") != MANIFEST or (named.text or "") != _sha(manifest_bytes):
        raise _fail(MANIFEST, "differs from the digest the gateway signed")
    proofs = [Proof(SIGNATURE, f"manifest signed by the gateway key {signed.signer_subject}")]
    try:
        manifest = parse_xml(manifest_bytes)
    except NswError as exc:
        raise _fail(MANIFEST, f"unreadable: {exc}") from exc
    listed = {p.get("path") or "": (p.text or "") for p in manifest.findall(_E + "Part")}
    message_id = manifest.get("message") or ""
    if manifest.tag != _E + "Manifest" or manifest.get("format") != FORMAT:
        raise _fail(MANIFEST, f"not a {FORMAT} manifest")
    if signed.element.findtext(_E + "Message") != message_id:
        raise _fail(MANIFEST, "names another message than the signature does")
    for name in parts:
        if name not in listed and name not in ("mimetype", MANIFEST, SIGNATURE):
            raise _fail(name, "not listed in the manifest")
    for name, digest in listed.items():
        if name not in parts:
            raise _fail(name, "listed in the manifest but missing")
        if _sha(parts[name]) != digest:
            raise _fail(name, "differs from its manifest digest")
    # the submission
    check = _load_json(parts, "submission/verification.json")
    said = _check_signed(
        "submission/submission.xml",
        parts["submission/submission.xml"],
        check,
        anchors,
        parts.get(check.get("chain_part") or ""),
    )
    proofs.append(Proof("submission", f"{said}; digest matches manifest"))
    # deliveries and receipts
    delivered: dict[str, bytes] = {}
    receipts: dict[str, bool] = {}
    for name in sorted(n for n in listed if n.startswith("deliveries/") and n.endswith("/delivery.json")):
        prefix = name.rsplit("/", 1)[0]
        info = _load_json(parts, name)
        payload = parts.get(f"{prefix}/payload", b"")
        receipt = parts.get(f"{prefix}/receipt.xml")
        text = f"{len(payload)} bytes match manifest, {info.get('state')}"
        if receipt is not None:
            rc = info.get("receipt") or {}
            text += "; receipt " + _check_signed(
                f"{prefix}/receipt.xml", receipt, rc, anchors, parts.get(rc.get("chain_part") or "")
            )
        delivered[str(info.get("destination"))] = payload + (receipt or b"")
        receipts[str(info.get("destination"))] = receipt is not None
        proofs.append(Proof(f"delivery to {info.get('destination')}", text))
    history = _load_json(parts, "history.json")
    proofs.append(Proof("history", f"{len(history)} transition(s), matching manifest"))
    # the journal: chain from the message's first entry to the head, and the entries' evidence
    name = "journal/entries.jsonl"
    try:
        entries = JournalEntry.from_jsonl(parts.get(name, b""))
    except (ValueError, KeyError, TypeError) as exc:
        raise _fail(name, f"unreadable: {exc}") from exc
    if not entries:
        if _load_json(parts, "message.json").get("state") != "REJECTED":
            raise _fail(name, "holds no entry")
        proofs.append(Proof("journal", "no entry: a refused submission is not journaled"))
        proofs.extend(_check_timestamps(parts, entries, [], anchors))
        return proofs
    report = verify_chain(entries, start=(entries[0].seq - 1, entries[0].prev))
    if not report.ok:
        raise _fail(f"{name}#{report.problems[0].seq}", report.problems[0].problem)
    for e in entries:
        if e.message_id != message_id:
            continue
        evidence = parts["submission/submission.xml"] if e.kind == ACCEPTED else delivered.get(str(e.destination))
        if e.kind in (ACCEPTED, DELIVERED) and (evidence is None or payload_digest(evidence) != e.digest):
            raise _fail(f"{name}#{e.seq}", f"the {e.kind} entry's digest does not match the bundle's bytes")
    first = entries[0]
    if (first.message_id, first.kind) != (message_id, ACCEPTED):
        raise _fail(f"{name}#{first.seq}", f"does not start at the ACCEPTED entry of {message_id}")
    logged = {str(e.destination) for e in entries if e.message_id == message_id and e.kind == DELIVERED}
    unlogged = sorted(d for d, held in receipts.items() if held and d not in logged)
    if unlogged:
        raise _fail(name, f"holds no DELIVERED entry for the receipt from {', '.join(unlogged)}")
    mine = [e.seq for e in entries if e.message_id == message_id]
    proofs.append(
        Proof(
            "journal",
            f"chain of {len(entries)} entries intact from seq {entries[0].seq} to head {entries[-1].seq}"
            f" ({entries[-1].hash[:16]}...); this message's entries {mine} match its bytes",
        )
    )
    proofs.extend(_check_timestamps(parts, entries, mine, anchors))
    return proofs


def _imprint_algorithm(stamp: StoredTimestamp) -> str:
    """The hash algorithm of a stored token's imprint: the one whose imprint of its entry the token holds (recorded
    so that the verifier rebuilds the imprint; the token's verification checks it again)."""
    from gateway.timestamps import HASH_ALGORITHMS, head_imprint

    for algorithm in HASH_ALGORITHMS:
        if head_imprint(stamp.seq, stamp.entry_hash, algorithm) in stamp.token:
            return algorithm
    return "sha256"


def _check_timestamps(
    parts: Mapping[str, bytes],
    entries: Sequence[JournalEntry],
    mine: Sequence[int],
    anchors: Sequence[x509.Certificate],
) -> list[Proof]:
    from gateway.timestamps import head_imprint, verify_timestamp_token

    listing = _load_json(parts, "journal/timestamps.json")
    if not isinstance(listing, list):
        raise _fail("journal/timestamps.json", "not a list")
    hashes = {e.seq: e.hash for e in entries}
    proofs: list[Proof] = []
    for item in listing:
        part = str(item.get("part"))
        token = parts.get(part)
        if token is None:
            raise _fail(part, "listed in journal/timestamps.json but missing")
        seq = int(item.get("seq", 0))
        if hashes.get(seq) != item.get("entry_hash"):
            raise _fail(part, f"covers entry {seq}, which is not in the bundle's chain with that hash")
        try:
            info = verify_timestamp_token(token, head_imprint(seq, hashes[seq], str(item.get("hash"))), anchors)
        except NswError as exc:
            raise _fail(part, f"does not verify under the anchors: {exc.code} {exc.message}") from exc
        covered = [s for s in mine if s <= seq]
        proofs.append(
            Proof(
                f"timestamp {part}",
                f"token of {info.tsa_subject} at {info.gen_time.isoformat()} over entry {seq}: this message's"
                f" entries {covered} existed by then",
            )
        )
    return proofs or [Proof("timestamps", "none stored yet over this message's entries")]


# ---------------------------------------------------------------------------- command line


def party_trust(config: Config) -> tuple[PartyTrust, PartyTrust]:
    """The senders' and the signed-receipt destinations' trust and policies, as the running gateway verifies
    under them (``gateway.security``)."""
    from gateway.security import trust_store, verify_policy

    senders = {
        n: (trust_store(n, p.trust, field=f"parties.{n}.trust"), verify_policy(p.verify))
        for n, p in config.parties.items()
        if p.trust is not None
    }
    receivers = {
        n: (trust_store(n, d.trust, field=f"destinations.{n}.trust"), verify_policy(d.receipt_verify))
        for n, d in config.destinations.items()
        if d.receipt == "signed" and d.trust is not None
    }
    return senders, receivers


async def _build(config_path: str, message_id: str) -> bytes:
    import time

    from gateway.commands import _store
    from gateway.config import load_config
    from gateway.security import key_ring

    config = load_config(config_path)
    senders, receivers = party_trust(config)
    async with _store(config) as store:
        return await build_bundle(
            store, key_ring(config), message_id, now=time.time(), senders=senders, receivers=receivers
        )


def cmd_evidence(args: argparse.Namespace) -> int:
    """``evidence MESSAGE_ID -o FILE`` or ``evidence verify FILE --anchors PEM...``."""
    from gateway.cli import read_input, write_output

    if args.target[0] != "verify":
        if len(args.target) != 1:
            raise ConfigError("usage: nswgw evidence MESSAGE_ID -o FILE", field="MESSAGE_ID")
        write_output(args.output, asyncio.run(_build(args.config, args.target[0])), field="-o")
        return 0
    if len(args.target) != 2:
        raise ConfigError("usage: nswgw evidence verify FILE --anchors PEM...", field="FILE")
    anchors: list[x509.Certificate] = []
    for path in args.anchors:
        try:
            anchors.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"trust anchors {path} cannot be read: {exc}", field="--anchors") from exc
    data = read_input(args.target[1], field="FILE")
    try:
        proofs = verify_bundle(data, anchors=anchors)
    except EvidenceInvalid as exc:
        print(f"evidence BROKEN: {exc.message}", file=sys.stderr)
        return 1
    for p in proofs:
        print(p)
    print(f"evidence OK: {len(proofs)} part(s) verified")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser(
        "evidence",
        help="write the signed evidence bundle (ZIP) of one message (MESSAGE_ID -o FILE), or check one offline"
        " with only the trust anchors (verify FILE --anchors PEM...)",
    )
    ev.add_argument("target", nargs="+", metavar="MESSAGE_ID | verify FILE")
    ev.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    ev.add_argument("--config", default="nswgw.toml", help="gateway configuration (default: nswgw.toml)")
    ev.add_argument("--anchors", nargs="+", default=[], metavar="PEM", help="trust anchor certificates (verify)")
    ev.set_defaults(handler=cmd_evidence)
