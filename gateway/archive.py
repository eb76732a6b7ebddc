"""Retention: finished messages leave the store for signed archive bundles (``nswgw archive``), which an
auditor checks offline (``nswgw archive verify``).

**What is archived.** A message is *finished* when none of its deliveries is still to do: every one is
``ACKNOWLEDGED`` or ``DEAD`` (a refused submission has none), and none is leased. A ``QUEUED``, ``SENDING`` or
leased delivery keeps its message in the store however old it is; a ``DEAD`` one is archived with its error
(replay it before it ages out if it must still go). A finished message is archived once it is older (from
``received_at``) than its document type's ``retention``, else ``[retention] default``, and (``--before``) than
the given instant.

**Journal.** The journal is pruned only as a contiguous prefix, and a bundle holds exactly the messages whose
journal entries are that prefix: walking from the store's :class:`~gateway.store.base.JournalBase`, entries are
taken while they belong to archivable messages, and cut back before the first entry of any message that still
has an entry after the cut. The newest entry is never pruned (new entries chain on from it). The store records
the last pruned ``(seq, hash)`` and the bundle's manifest digest; ``nswgw log verify`` and the start check walk
the remaining entries from there. An ``OPERATOR`` entry (an operator's action) goes with the prefix once it is
older than ``[retention] default`` (and ``--before``), its action record with it; a younger one stops the prefix.

**Bundle** ``nswgw-archive-<first seq>-<last seq>.tar``: ``messages.jsonl`` (envelope, acknowledgement, state,
the stored evidence base64), ``deliveries.jsonl`` (payload, receipt, attempts, error), ``history.jsonl`` (every
transition), ``journal.jsonl`` (the pruned entries), ``operator_actions.jsonl`` (the record of each ``OPERATOR``
entry, base64, byte for byte as stored; absent from bundles written before operator actions were journaled, and
then not listed in their manifest), ``disclosures.jsonl`` (the record of each ``DISCLOSED`` entry with its message
and destination, base64; likewise absent from older bundles; the store keeps its disclosure rows for the operator's
list, their entries pruned), ``signer.pem`` (the gateway's signing certificate),
``manifest.json`` (counts, time range, SHA-256 of every member above, the segment's first ``prev`` and last
``hash``, the previous bundle's manifest digest, gateway version) and ``manifest.sig`` (base64 signature of
``manifest.json`` by the gateway's signing key, the algorithm of its certificate). It is written to
``.<name>.tmp``, fsynced and renamed, and only then is the store pruned, in one transaction; a crash in between
leaves the bundle, and the next run finds it under the same name, checks it and prunes (nothing is written
twice, nothing lost).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import tarfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway import __version__
from gateway.config import Config
from gateway.disclosures import DisclosureQuery
from gateway.errors import ArchiveSignatureInvalid, ArchiveTampered, ConfigError, NswError
from gateway.journal import ACCEPTED, DISCLOSED, GENESIS, OPERATOR, JournalEntry, payload_digest, verify_chain
from gateway.model import State
from gateway.periodic import Periodic
from gateway.store.base import JournalBase, Store
from signing.keys import Signer, default_algorithm_for, verify_raw

__all__ = ["ArchiveRun", "Archiver", "archive", "verify_bundles", "FORMAT"]

log = logging.getLogger("nswgw.archive")

FORMAT = "nswgw-archive/1"
MEMBERS = ("messages.jsonl", "deliveries.jsonl", "history.jsonl", "journal.jsonl", "signer.pem")
ACTIONS = "operator_actions.jsonl"
"""The member with the operator actions' records: written in every bundle, checked when its manifest lists it."""
DISCLOSURES = "disclosures.jsonl"
"""The member with the disclosure records of the archived messages (the evidence of their ``DISCLOSED`` entries):
written in every bundle, checked when its manifest lists it."""


@dataclass(frozen=True)
class ArchiveRun:
    """What one ``nswgw archive`` did (or, with ``dry_run``, would do)."""

    bundle: Path | None
    messages: int
    entries: int
    first_seq: int = 0
    last_seq: int = 0
    reused: bool = False
    """The bundle was already there (a previous run stopped before pruning): checked and pruned now."""


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":"), sort_keys=True).encode() + b"\n" for r in rows)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _retention(config: Config, document_type: str) -> float:
    settings = config.document_types.get(document_type)
    chosen = settings.retention if settings is not None and settings.retention is not None else None
    return (chosen or config.retention.default).total_seconds()


async def _segment(
    store: Store, config: Config, *, now: float, before: float | None
) -> tuple[JournalBase, list[JournalEntry], list[str]]:
    """The prefix of the journal to prune and the messages it belongs to (in first-entry order)."""
    base = await store.journal_base()
    shortest = min([_retention(config, t) for t in config.document_types] + [config.retention.default.total_seconds()])
    cutoff = now - shortest if before is None else min(now - shortest, before)
    archivable: set[str] = set()
    # the oldest finished ones: a bundle holds at most ``batch`` entries, so at most that many messages
    for mid, doc_type, received_at in await store.finished_messages(
        received_before=cutoff, limit=config.retention.batch
    ):
        if received_at < now - _retention(config, doc_type) and (before is None or received_at < before):
            archivable.add(mid)
    actions_before = now - config.retention.default.total_seconds()
    if before is not None:
        actions_before = min(actions_before, before)
    head = await store.journal_head()
    head_seq = head.seq if head is not None else 0
    entries: list[JournalEntry] = []
    after = base.seq
    limit = config.retention.batch
    while len(entries) < limit:
        page = await store.journal(after=after, limit=min(1000, limit - len(entries)))
        if not page:
            break
        stop = False
        for entry in page:
            taken = entry.at < actions_before if entry.kind == OPERATOR else entry.message_id in archivable
            if entry.seq >= head_seq or not taken:
                stop = True
                break
            entries.append(entry)
        if stop:
            break
        after = page[-1].seq
    # cut back before any message with an entry after the cut (its expected entries: ACCEPTED + one per
    # acknowledged delivery)
    expected: dict[str, int] = {}
    while entries:
        counts: dict[str, int] = {}
        for e in entries:
            if e.kind not in (OPERATOR, DISCLOSED):  # a disclosure's entry follows its ACCEPTED one in its commit
                counts[e.message_id] = counts.get(e.message_id, 0) + 1
        incomplete: str | None = None
        for mid in counts:
            if mid not in expected:
                record = await store.get(mid)
                delivered = (d for d in (record.deliveries if record else ()) if d.state is State.ACKNOWLEDGED)
                expected[mid] = 1 + sum(1 for _ in delivered)
            if counts[mid] < expected[mid]:
                incomplete = mid
                break
        if incomplete is None:
            break
        first = next(i for i, e in enumerate(entries) if e.message_id == incomplete)
        entries = entries[:first]
    order: list[str] = []
    for e in entries:
        if e.kind != OPERATOR and e.message_id not in order:
            order.append(e.message_id)
    return base, entries, order


def _bundle_name(first: int, last: int) -> str:
    return f"nswgw-archive-{first:012d}-{last:012d}.tar"


async def _members(store: Store, message_ids: Sequence[str]) -> tuple[dict[str, bytes], dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    received: list[float] = []
    for mid in message_ids:
        record = await store.get(mid)
        if record is None:
            continue
        payload = await store.message_payload(mid)
        body = record.to_dict()
        body.pop("deliveries")
        body.pop("history")
        body["acknowledgement"] = record.acknowledgement.to_dict()
        body["payload"] = _b64(payload)
        messages.append(body)
        received.append(record.message.received_at)
        for d in record.deliveries:
            deliveries.append(
                {
                    "message": mid,
                    "destination": d.destination,
                    "conversation": d.conversation,
                    "state": d.state.value,
                    "attempts": d.attempts,
                    "content_type": d.content_type,
                    "queued_at": d.queued_at,
                    "deadline": d.deadline,
                    "last_error": d.last_error,
                    "on_behalf_of": d.on_behalf_of,
                    "payload": _b64(d.payload),
                    "receipt": _b64(d.receipt),
                }
            )
        history.extend({"message": mid, **t.to_dict()} for t in record.history)
    data = {
        "messages.jsonl": _jsonl(messages),
        "deliveries.jsonl": _jsonl(deliveries),
        "history.jsonl": _jsonl(history),
    }
    summary = {
        "messages": len(messages),
        "deliveries": len(deliveries),
        "transitions": len(history),
        "received": {"first": min(received, default=None), "last": max(received, default=None)},
    }
    return data, summary


def _write_tar(path: Path, members: dict[str, bytes]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = int(time.time())
                info.mode = 0o444
                tar.addfile(info, io.BytesIO(data))
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_tar(path: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            if handle is not None:
                out[info.name] = handle.read()
    return out


async def archive(
    store: Store, config: Config, signer: Signer, *, now: float, before: float | None = None, dry_run: bool = False
) -> ArchiveRun:
    """Write one bundle of what is due and prune it from the store (see the module docstring)."""
    if config.retention.archive_dir is None and not dry_run:
        raise ConfigError("no archive directory configured", field="retention.archive_dir")
    base, entries, message_ids = await _segment(store, config, now=now, before=before)
    if not entries:
        return ArchiveRun(None, 0, 0)
    first, last = entries[0], entries[-1]
    directory = Path(config.retention.archive_dir or ".")
    path = directory / _bundle_name(first.seq, last.seq)
    if dry_run:
        return ArchiveRun(path, len(message_ids), len(entries), first.seq, last.seq)
    directory.mkdir(parents=True, exist_ok=True)
    reused = path.exists()
    if reused:
        # a previous run wrote it and stopped before pruning: prune what it holds, if it is sound
        problems = verify_bundles([path], trust=[signer.certificate])
        if problems:
            raise problems[0]
        manifest_bytes = _read_tar(path)["manifest.json"]
    else:
        members, summary = await _members(store, message_ids)
        members["journal.jsonl"] = _jsonl(e.to_dict() for e in entries)
        members[ACTIONS], summary["operator_actions"] = await _actions(store, entries)
        members[DISCLOSURES], summary["disclosures"] = await _disclosures(store, message_ids)
        members["signer.pem"] = signer.certificate.public_bytes(serialization.Encoding.PEM)
        manifest = {
            "format": FORMAT,
            "gateway_version": __version__,
            "created_at": now,
            **summary,
            "journal": {
                "entries": len(entries),
                "first_seq": first.seq,
                "last_seq": last.seq,
                "first_prev": first.prev,
                "last_hash": last.hash,
            },
            "previous_manifest_sha256": base.manifest_sha256 or None,
            "members": {name: _sha(members[name]) for name in (*MEMBERS, ACTIONS, DISCLOSURES)},
            "signature": {"member": "manifest.sig", "algorithm": default_algorithm_for(signer.certificate).uri},
        }
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
        signature = signer.sign(manifest_bytes, default_algorithm_for(signer.certificate))
        members["manifest.json"] = manifest_bytes
        members["manifest.sig"] = base64.b64encode(signature) + b"\n"
        _write_tar(path, members)
    pruned = await store.prune_archived(message_ids, base=JournalBase(last.seq, last.hash, _sha(manifest_bytes)))
    return ArchiveRun(path, pruned, len(entries), first.seq, last.seq, reused)


async def _actions(store: Store, entries: Sequence[JournalEntry]) -> tuple[bytes, int]:
    """The :data:`ACTIONS` member of the ``OPERATOR`` entries among ``entries`` (in journal order), and how many."""
    ids = [e.message_id for e in entries if e.kind == OPERATOR]
    held: dict[str, bytes] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        held.update((a.id, a.record) for a in await store.operator_actions(ids=chunk, limit=len(chunk)))
    rows = [{"id": i, "record": _b64(held[i])} for i in ids if i in held]
    return _jsonl(rows), len(rows)


async def _disclosures(store: Store, message_ids: Sequence[str]) -> tuple[bytes, int]:
    """The :data:`DISCLOSURES` member of the archived messages' disclosures, and how many."""
    rows = []
    for mid in message_ids:
        for held in reversed(await store.disclosures(DisclosureQuery(message=mid, limit=1000))):
            d = held.disclosure
            rows.append({"message": d.message_id, "destination": d.destination, "record": _b64(d.record())})
    return _jsonl(rows), len(rows)


@dataclass
class _Bundle:
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    problems: list[NswError] = field(default_factory=list)


def _tampered(path: Path, member: str, detail: str) -> ArchiveTampered:
    return ArchiveTampered(f"{path.name}: {member}: {detail}", field=member, details={"bundle": str(path)})


def _check_one(path: Path, trust: Sequence[x509.Certificate]) -> _Bundle:
    try:
        members = _read_tar(path)
    except (OSError, tarfile.TarError) as exc:
        bundle = _Bundle(path, {}, "")
        bundle.problems.append(_tampered(path, path.name, f"not a readable bundle: {exc}"))
        return bundle
    raw = members.get("manifest.json")
    try:
        manifest = json.loads(raw) if raw is not None else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        bundle = _Bundle(path, {}, "")
        bundle.problems.append(_tampered(path, "manifest.json", "missing or not an archive manifest"))
        return bundle
    assert raw is not None
    bundle = _Bundle(path, manifest, _sha(raw))
    problems = bundle.problems
    # the signature, by the certificate in the bundle, which must be a trusted one
    try:
        certificate = x509.load_pem_x509_certificate(members["signer.pem"])
        signature = base64.b64decode(members["manifest.sig"], validate=False)
    except (KeyError, ValueError) as exc:
        problems.append(ArchiveSignatureInvalid(f"{path.name}: signer.pem or manifest.sig unusable: {exc}"))
        certificate = None
    if certificate is not None:
        der = certificate.public_bytes(serialization.Encoding.DER)
        if not any(t.public_bytes(serialization.Encoding.DER) == der for t in trust):
            problems.append(
                ArchiveSignatureInvalid(
                    f"{path.name}: signed by {certificate.subject.rfc4514_string()}, not a trusted certificate",
                    field="signer.pem",
                )
            )
        elif not verify_raw(certificate, signature, raw, default_algorithm_for(certificate)):
            problems.append(
                ArchiveSignatureInvalid(
                    f"{path.name}: manifest.json does not match its signature", field="manifest.sig"
                )
            )
    # every member against its digest, nothing extra
    listed_raw = manifest.get("members")
    listed: dict[str, Any] = listed_raw if isinstance(listed_raw, dict) else {}
    expected = (*MEMBERS, *(name for name in (ACTIONS, DISCLOSURES) if name in listed))
    for name in expected:
        data = members.get(name)
        if data is None:
            problems.append(_tampered(path, name, "missing"))
        elif listed.get(name) != _sha(data):
            problems.append(_tampered(path, name, "differs from its manifest digest"))
    for name in sorted(set(members) - set(expected) - {"manifest.json", "manifest.sig"}):
        problems.append(_tampered(path, name, "not listed in the manifest"))
    # the journal segment and the evidence it names
    try:
        entries = JournalEntry.from_jsonl(members.get("journal.jsonl", b""))
        messages = [json.loads(line) for line in members.get("messages.jsonl", b"").splitlines() if line.strip()]
        deliveries = [json.loads(line) for line in members.get("deliveries.jsonl", b"").splitlines() if line.strip()]
        records = {
            str(r["id"]): base64.b64decode(r["record"])
            for r in (json.loads(line) for line in members.get(ACTIONS, b"").splitlines() if line.strip())
        }
        disclosed = {
            (str(r["message"]), str(r["destination"])): base64.b64decode(r["record"])
            for r in (json.loads(line) for line in members.get(DISCLOSURES, b"").splitlines() if line.strip())
        }
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(_tampered(path, "journal.jsonl", f"unreadable: {exc}"))
        return bundle
    journal = manifest.get("journal") or {}
    start = (int(journal.get("first_seq", 1)) - 1, str(journal.get("first_prev", GENESIS)))
    report = verify_chain(entries, start=start)
    for p in report.problems:
        problems.append(_tampered(path, f"journal.jsonl#{p.seq}", p.problem))
    if report.entries != journal.get("entries") or report.head_hash != journal.get("last_hash"):
        problems.append(_tampered(path, "journal.jsonl", "does not end at the manifest's last_seq / last_hash"))
    payloads = {m.get("id"): m.get("payload") for m in messages}
    sent = {(d.get("message"), d.get("destination")): d for d in deliveries}
    for e in entries:
        if e.kind == ACCEPTED:
            held = payloads.get(e.message_id)
            evidence = None if held is None else base64.b64decode(held)
            member = "messages.jsonl"
        elif e.kind == OPERATOR:
            evidence = records.get(e.message_id)
            member = ACTIONS
        elif e.kind == DISCLOSED:
            evidence = disclosed.get((e.message_id, str(e.destination)))
            member = DISCLOSURES
        else:
            d = sent.get((e.message_id, e.destination))
            evidence = None
            if d is not None and d.get("payload") is not None:
                evidence = base64.b64decode(d["payload"]) + base64.b64decode(d.get("receipt") or "")
            member = "deliveries.jsonl"
        if evidence is None:
            problems.append(_tampered(path, f"{member}#{e.seq}", f"evidence of entry {e.seq} ({e.message_id}) missing"))
        elif payload_digest(evidence) != e.digest:
            problems.append(
                _tampered(
                    path, f"{member}#{e.seq}", f"evidence of entry {e.seq} ({e.message_id}) is not what was logged"
                )
            )
    return bundle


def verify_bundles(paths: Sequence[Path], *, trust: Sequence[x509.Certificate]) -> list[NswError]:
    """Every problem of the bundles (empty: all verify): signature and trust, member digests, each journal
    segment's chain and evidence, and, in ``first_seq`` order, that each bundle follows the one before (its first
    ``prev`` is that one's last ``hash``, its ``previous_manifest_sha256`` that one's manifest digest)."""
    bundles = [_check_one(Path(p), trust) for p in paths]
    problems: list[NswError] = [p for b in bundles for p in b.problems]
    ordered = sorted((b for b in bundles if b.manifest), key=lambda b: int(b.manifest["journal"]["first_seq"]))
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        ej, lj = earlier.manifest["journal"], later.manifest["journal"]
        if lj["first_seq"] != ej["last_seq"] + 1 or lj["first_prev"] != ej["last_hash"]:
            problems.append(
                _tampered(
                    later.path, "manifest.json", f"does not follow {earlier.path.name} (journal segments do not link)"
                )
            )
        elif later.manifest.get("previous_manifest_sha256") != earlier.manifest_sha256:
            problems.append(
                _tampered(later.path, "manifest.json", f"names another previous manifest than {earlier.path.name}'s")
            )
    first = ordered[0].manifest["journal"] if ordered else None
    if first is not None and int(first["first_seq"]) == 1 and first["first_prev"] != GENESIS:
        problems.append(_tampered(ordered[0].path, "manifest.json", "the first segment does not start at genesis"))
    return problems


class Archiver:
    """``nswgw serve``'s own archiving (``[retention] interval``): every interval, bundles until nothing is due,
    each logged ``archived PATH: N message(s), journal entries A..B``. A failed round is logged and retried at
    the next interval."""

    def __init__(self, store: Store, config: Config, signer: Signer, *, now: Callable[[], float]) -> None:
        assert config.retention.interval is not None
        self.store, self.config, self.signer = store, config, signer
        self.interval = config.retention.interval.total_seconds()
        self._now = now
        self._rounds = Periodic("archive", self.interval, self.round, log=log, failure="archiving failed")

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def round(self) -> list[ArchiveRun]:
        runs: list[ArchiveRun] = []
        while (run := await archive(self.store, self.config, self.signer, now=self._now())).bundle is not None:
            log.info(
                "archived %s: %d message(s), journal entries %d..%d",
                run.bundle,
                run.messages,
                run.first_seq,
                run.last_seq,
            )
            runs.append(run)
        return runs
