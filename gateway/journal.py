"""The tamper-evident message log: a hash chain over every accepted and every delivered message.

Each :class:`JournalEntry` carries the SHA-256 of the previous entry's hash
and its own canonical content, so editing, inserting or removing any entry
(other than cutting the newest ones off the end) breaks the chain at that
point, which :func:`verify_chain` reports. The entries are appended by the
store in the same transaction as the state change they record (accepting a
message, its receipt being verified), so the log and the store never
disagree. ``nswgw log verify`` runs :func:`verify_chain` over a store.

Where they are chained depends on the store. SQLite, with one writer, chains
them in that transaction. PostgreSQL, shared by several nodes, by default
commits them unchained in that transaction, without the journal lock, and one
sealer at a time (any node, under the lock) chains them into the one chain
moments later, exactly once each, in commit order
(:mod:`gateway.store.pg_journal`). So the nodes do not commit one at a time,
and the chain, its anchors, timestamps, archive bundles and evidence packages
are the same. Every read of the journal through the store chains first, so
:func:`verify_chain` sees every entry committed before the read. Until it is
chained (about 50 ms), an entry is protected by the database alone.
``[store] journal = "inline"`` chains in the transaction on PostgreSQL too
(docs/journal.md).

Cutting entries off the *end* is only detectable against a head recorded
elsewhere: a running gateway appends its head to an **anchor file**
(``[journal] anchor``, one JSON line per :class:`Anchor`, fsynced) every
``anchor_interval`` seconds and when it stops; :func:`check_anchors` reports an
anchored entry that is gone (``truncated``) or different (``anchor-mismatch``).
Place the file on another volume or host than the store, so that restoring or
truncating the database does not take the anchor with it.

Each entry also names the SHA-256 of its evidence (the accepted payload; the
delivered payload and the receipt; an operator's action record):
:func:`check_evidence` compares what the store holds now with it, which catches
a stored payload or record replaced behind the chain's back.

Every delivery that carries only some data elements of a message (a subscription's, a destination's
``fields``) is a ``DISCLOSED`` entry after the message's ``ACCEPTED`` one, in the same transaction, naming the
message and the recipient destination; its evidence is the :class:`~gateway.disclosures.Disclosure` record the
store keeps (``disclosures`` table).

Every operator action (a dead-letter replay, a configuration reload, refused
ones included) is an ``OPERATOR`` entry whose evidence is the
:class:`OperatorAction` record the store keeps next to it (``operator_actions``
table), written in the same transaction. The entry's ``message_id`` is the
action's own id (``op-<32 hex>``), never a message's: one action may name many
messages, and the messages' own entries stay theirs; the messages, deliveries or
configuration sections it acted on are its record's ``targets``. Its
``destination`` is the one destination all its targets share, if any.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from signing.xml import Spliced, payload_sha256

__all__ = [
    "GENESIS",
    "Anchor",
    "append_anchor",
    "check_anchors",
    "check_evidence",
    "read_anchors",
    "JournalEntry",
    "JournalProblem",
    "JournalReport",
    "OperatorAction",
    "entry_hash",
    "head_status",
    "payload_digest",
    "verify_chain",
]

GENESIS = "0" * 64
"""The ``prev`` hash of the first entry."""

ACCEPTED = "ACCEPTED"
DELIVERED = "DELIVERED"
OPERATOR = "OPERATOR"
DISCLOSED = "DISCLOSED"


def payload_digest(data: bytes | Spliced) -> str:
    """The SHA-256 hex digest recorded for a payload."""
    return payload_sha256(data).hex()


def entry_hash(prev: str, seq: int, at: float, kind: str, message_id: str, destination: str | None, digest: str) -> str:
    """The hash of an entry: SHA-256 over the previous hash and the entry's canonical JSON."""
    body = json.dumps([seq, repr(float(at)), kind, message_id, destination, digest], separators=(",", ":"))
    return hashlib.sha256(prev.encode("ascii") + b"\n" + body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JournalEntry:
    """One appended record."""

    seq: int
    at: float
    kind: str
    """``ACCEPTED`` (stored and acknowledged to its sender), ``DELIVERED`` (receipt verified), ``OPERATOR`` (an
    operator's action) or ``DISCLOSED`` (some data elements of the message queued for ``destination``:
    :mod:`gateway.disclosures`)."""
    message_id: str
    """The gateway id of the message; for ``OPERATOR``, the action's id."""
    destination: str | None
    digest: str
    """SHA-256 of the payload accepted or delivered, or of the operator action's record."""
    prev: str
    hash: str

    @classmethod
    def after(
        cls,
        prev_seq: int,
        prev_hash: str,
        *,
        at: float,
        kind: str,
        message_id: str,
        destination: str | None,
        digest: str,
    ) -> JournalEntry:
        seq = prev_seq + 1
        return cls(
            seq,
            at,
            kind,
            message_id,
            destination,
            digest,
            prev_hash,
            entry_hash(prev_hash, seq, at, kind, message_id, destination, digest),
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as the JSON object an evidence package or an archive bundle carries (one a line)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "kind": self.kind,
            "message": self.message_id,
            "destination": self.destination,
            "digest": self.digest,
            "prev": self.prev,
            "hash": self.hash,
        }

    @classmethod
    def from_jsonl(cls, data: bytes) -> list[JournalEntry]:
        """The entries of JSON lines written from :meth:`to_dict` (blank lines skipped); a line that is not such
        an object raises ``ValueError``, ``KeyError`` or ``TypeError``, which the caller names as its own error."""
        return [
            cls(
                int(r["seq"]),
                float(r["at"]),
                r["kind"],
                r["message"],
                r["destination"],
                r["digest"],
                r["prev"],
                r["hash"],
            )
            for r in (json.loads(line) for line in data.splitlines() if line.strip())
        ]


@dataclass(frozen=True)
class OperatorAction:
    """What an operator did, the evidence of an ``OPERATOR`` journal entry: the entry's digest is the SHA-256 of
    :meth:`record`, the canonical JSON the store keeps."""

    id: str
    """``op-`` and 32 hex digits: the entry's ``message_id``."""
    operator: str
    """Who: the ``[operators.NAME]`` name, ``cli:<OS user>`` for the command line, ``signal:SIGHUP``."""
    action: str
    """``replay`` or ``reload``."""
    at: float
    targets: tuple[dict[str, str], ...] = ()
    """What it acted on: ``{"message": <gateway id>, "destination": ...}`` per delivery, ``{"section": ...}`` per
    configuration section changed (or named by a refused reload)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """How it went (``{"outcome": "applied" | "refused", "code": ..., ...}``) and its parameters."""

    @classmethod
    def new(
        cls,
        operator: str,
        action: str,
        *,
        at: float,
        targets: Sequence[dict[str, str]] = (),
        detail: dict[str, Any] | None = None,
    ) -> OperatorAction:
        """An action with a fresh id."""
        return cls(f"op-{uuid.uuid4().hex}", operator, action, at, tuple(targets), dict(detail or {}))

    @property
    def destination(self) -> str | None:
        """The destination every target names, when there is exactly one."""
        names = {t.get("destination") for t in self.targets}
        return next(iter(names)) if len(names) == 1 else None

    def record(self) -> bytes:
        """The canonical JSON (sorted keys, no spaces, UTF-8) stored and digested."""
        body = {
            "id": self.id,
            "operator": self.operator,
            "action": self.action,
            "at": self.at,
            "targets": list(self.targets),
            "detail": self.detail,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_record(cls, data: bytes) -> OperatorAction:
        """The action of a stored record; ``ValueError`` when it is not one."""
        try:
            body = json.loads(data)
            return cls(
                str(body["id"]),
                str(body["operator"]),
                str(body["action"]),
                float(body["at"]),
                tuple({str(k): str(v) for k, v in t.items()} for t in body["targets"]),
                dict(body["detail"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an operator action record: {exc}") from exc


@dataclass(frozen=True)
class JournalProblem:
    seq: int
    problem: str
    """``edited`` (the entry does not hash to its recorded hash), ``removed`` (a gap), ``broken-link``,
    ``evidence-replaced`` / ``evidence-missing`` (:func:`check_evidence`), ``truncated`` / ``anchor-mismatch``
    (:func:`check_anchors`), or ``store-damaged``, each with what was found."""

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


@dataclass(frozen=True)
class JournalReport:
    entries: int
    head_seq: int
    head_hash: str
    problems: tuple[JournalProblem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(entries: Iterable[JournalEntry], *, start: tuple[int, str] = (0, GENESIS)) -> JournalReport:
    """Walk the chain in ``seq`` order and report every place it is broken. ``start`` is the ``(seq, hash)`` the
    first entry follows: the genesis, or the last entry before them (pruned into an archive, or verified on an
    earlier page)."""
    problems: list[JournalProblem] = []
    count = 0
    prev_seq, prev_hash = start
    for entry in entries:
        count += 1
        if entry.seq != prev_seq + 1:
            problems.append(JournalProblem(prev_seq + 1, f"removed (next entry present is {entry.seq})"))
        elif entry.prev != prev_hash:
            problems.append(JournalProblem(entry.seq, "broken-link (prev does not match the previous entry's hash)"))
        expected = entry_hash(
            entry.prev, entry.seq, entry.at, entry.kind, entry.message_id, entry.destination, entry.digest
        )
        if expected != entry.hash:
            problems.append(JournalProblem(entry.seq, "edited (content does not match its hash)"))
        prev_seq, prev_hash = entry.seq, entry.hash
    return JournalReport(count, prev_seq, prev_hash, tuple(problems))


def head_status(head: JournalEntry | None) -> str:
    """``ok`` when the newest entry (``None``: an empty journal) hashes to its recorded hash, else ``failed: ...``
    (the cheap check of readiness; :func:`verify_chain` walks the whole chain)."""
    if head is None:
        return "ok"
    expected = entry_hash(head.prev, head.seq, head.at, head.kind, head.message_id, head.destination, head.digest)
    return "ok" if expected == head.hash else f"failed: the journal head (entry {head.seq}) does not match its hash"


def check_evidence(entries: Iterable[JournalEntry], digests: Mapping[int, str | None]) -> list[JournalProblem]:
    """Compare each entry's recorded digest with ``digests[seq]``, the SHA-256 of the evidence the store holds
    now for it (``None``: the row is gone)."""
    problems: list[JournalProblem] = []
    for entry in entries:
        held = digests.get(entry.seq)
        what = (
            "accepted payload"
            if entry.kind == ACCEPTED
            else "operator action record"
            if entry.kind == OPERATOR
            else f"disclosure to {entry.destination}"
            if entry.kind == DISCLOSED
            else f"delivery to {entry.destination}"
        )
        if held is None:
            problems.append(JournalProblem(entry.seq, f"evidence-missing ({what} of {entry.message_id} is gone)"))
        elif held != entry.digest:
            problems.append(
                JournalProblem(entry.seq, f"evidence-replaced ({what} of {entry.message_id} is not what was logged)")
            )
    return problems


@dataclass(frozen=True)
class Anchor:
    """A journal head recorded outside the store."""

    seq: int
    hash: str
    at: float
    """When it was recorded (gateway time, seconds since the epoch)."""

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at}, separators=(",", ":"))


def read_anchors(path: str | os.PathLike[str]) -> list[Anchor]:
    """The anchors in ``path`` in file order (none when the file does not exist yet). A line that is not an
    anchor is a :class:`~gateway.errors.ConfigError` naming the file and line, except a last line cut short by a
    crash while it was written, which is ignored."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"journal anchor file {file} cannot be read: {exc}", field="journal.anchor") from exc
    anchors: list[Anchor] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            anchors.append(Anchor(int(item["seq"]), str(item["hash"]), float(item["at"])))
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines) and not line.endswith("}"):
                break  # the last write was cut short: nothing after it was ever anchored
            raise ConfigError(
                f"journal anchor file {file}, line {number}, is not an anchor: {exc}", field="journal.anchor"
            ) from exc
    return anchors


def append_anchor(path: str | os.PathLike[str], anchor: Anchor) -> None:
    """Append ``anchor`` to ``path`` as one line and fsync it (the file and, when it is new, its directory)."""
    file = Path(path)
    new = not file.exists()
    with open(file, "a", encoding="utf-8") as out:
        out.write(anchor.to_json() + "\n")
        out.flush()
        os.fsync(out.fileno())
    if new:
        fd = os.open(file.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_anchors(
    anchors: Iterable[Anchor], entries: Mapping[int, JournalEntry], *, head_seq: int, base_seq: int = 0
) -> list[JournalProblem]:
    """Each anchor must still be in the journal with its hash: an anchored seq beyond ``head_seq`` means entries
    were cut off the end; a different hash, that the chain was rewritten. Anchors at or before ``base_seq`` (the
    last entry pruned into an archive) are not checked here. ``entries`` holds at least the anchored seqs."""
    problems: list[JournalProblem] = []
    newest: Anchor | None = None
    for anchor in anchors:
        if anchor.seq <= base_seq:
            continue
        if anchor.seq > head_seq:
            if newest is None or anchor.seq > newest.seq:
                newest = anchor
            continue
        entry = entries.get(anchor.seq)
        if entry is None:
            problems.append(JournalProblem(anchor.seq, "anchor-mismatch (the anchored entry is missing)"))
        elif entry.hash != anchor.hash:
            problems.append(JournalProblem(anchor.seq, "anchor-mismatch (the entry differs from its anchored hash)"))
    if newest is not None:
        problems.append(
            JournalProblem(
                head_seq + 1,
                f"truncated (entries {head_seq + 1}..{newest.seq} were anchored and are gone; head is {head_seq})",
            )
        )
    return problems
