"""Policy as versioned, effective-dated reference data: the lists the ministries publish (goods prohibited for
import, goods requiring inspection) and the version of each in force at a submission's time.

* A list (:class:`ReferenceVersion`) has a ``name`` (``import-prohibited.moit``), an owner party (the ministry),
  a ``purpose`` (:data:`PURPOSES`) and versions numbered 1, 2, 3... by the store, each effective from an instant,
  with its entries (HS code prefixes, each with an optional note), the SHA-256 of its content, who published it
  and how (``message``: a signed ``reference.list`` document of its owner; ``operator``: the operator API or
  ``nswgw reference load``).
* The version in force at an instant ``t`` is, of the versions effective at or before ``t`` (compared to the
  microsecond), the one effective latest (of two effective at the same instant, the later version). A version
  published with a future ``effective_from`` changes nothing until that instant.
* A ``reference.list`` message's version is stored by :meth:`Store.accept` in the transaction that accepts the
  message (:func:`message_version`): an acknowledged publication has its version, whatever happens next. The
  store numbers the versions of a list one after the other across every node, and refuses in that transaction a
  version whose owner is not the list's owner so far (:func:`ownership_refusal`).
* :class:`ReferenceData` keeps every version in memory, reloaded when the store holds a newer one
  (:meth:`Store.reference_head`, asked before each submission is processed): a version published through any node
  of the store (or by ``nswgw reference load``) is used by every node from its next submission, without restart.
* Each version stored while a node runs is announced once across the store's nodes (``reference_list_published``):
  by the node that stored it, right after storing, or, for one stored by a process with no event bus of its own
  (``nswgw reference load``), by the first node whose reload finds it; the nodes agree through the store's
  adapter state (namespace :data:`ANNOUNCED`, :meth:`Store.state_add`).
* Validation (:meth:`ReferenceData.check`): a goods item whose HS code starts with an entry of a ``prohibited``
  list in force at the submission's ``received_at`` is refused with the issue ``GOODS_PROHIBITED`` naming the goods
  item's path and the list's name and version; an ``inspection`` list in force flags the goods items it matches in
  the ``MAPPED`` step of the message's history (the destinations are unchanged). Either way the message's history
  names the list versions it was validated under.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gateway.clock import Clock
from gateway.errors import (
    NswError,
    ReferenceListInvalid,
    ReferenceListNotOwner,
    StoreContended,
    ValidationFailed,
    ValidationIssue,
)
from gateway.events import Event, EventBus
from gateway.journal import JournalEntry, OperatorAction
from gateway.model import State

if TYPE_CHECKING:
    from gateway.model import Message, SubmissionEnvelope
    from gateway.store.base import Store

__all__ = [
    "PURPOSES",
    "REFERENCE_LIST_DOCUMENT_TYPE",
    "ANNOUNCED",
    "Purpose",
    "ReferenceEntry",
    "ReferenceDraft",
    "ReferenceVersion",
    "ReferenceOutcome",
    "References",
    "ReferenceData",
    "NullReferences",
    "iso",
    "micros",
    "in_force",
    "message_version",
    "numbering_refusal",
    "ownership_refusal",
    "publish_by_operator",
]

log = logging.getLogger("nswgw.reference")

Purpose = Literal["prohibited", "inspection"]
PURPOSES: tuple[Purpose, ...] = ("prohibited", "inspection")
"""What a list does: ``prohibited`` refuses the goods it names (``GOODS_PROHIBITED``), ``inspection`` flags them."""

REFERENCE_LIST_DOCUMENT_TYPE = "reference.list"
"""The document type under which an owner publishes a version of its list (see docs/reference-lists.md)."""


ANNOUNCED = "reference-announced"
"""The adapter-state namespace in which a node claims the announcement of a version (key: the version's ``seq``)."""

ANNOUNCED_TTL = 30 * 86400.0
"""How long a claim is kept (seconds): far longer than any node goes without reloading a version it has not seen."""


NUMBERING_ATTEMPTS = 10
"""How often :func:`publish_by_operator` numbers a version again after another publication took its number."""


def micros(at: float) -> int:
    """``at`` (seconds since the epoch) in whole microseconds: the resolution effective dates are compared at."""
    return round(at * 1_000_000)


def iso(at: float) -> str:
    """``at`` as ISO 8601 UTC to the microsecond."""
    return datetime.fromtimestamp(micros(at) / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ReferenceEntry:
    """One entry of a list: an HS code prefix (2 to 10 digits) and an optional note."""

    code: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "note": self.note}


@dataclass(frozen=True)
class ReferenceDraft:
    """A version as its publisher states it, before the store numbers it."""

    name: str
    owner: str
    purpose: Purpose
    effective_from: float
    """Seconds since the epoch (UTC)."""
    entries: tuple[ReferenceEntry, ...]

    def digest(self) -> str:
        """The SHA-256 (hex) of the canonical JSON of the content (name, owner, purpose, effective instant to the
        microsecond, entries in order)."""
        body = {
            "name": self.name,
            "owner": self.owner,
            "purpose": self.purpose,
            "effective_from_us": micros(self.effective_from),
            "entries": [e.to_dict() for e in self.entries],
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class ReferenceVersion:
    """One stored version of a list."""

    name: str
    version: int
    owner: str
    purpose: Purpose
    effective_from: float
    entries: tuple[ReferenceEntry, ...]
    digest: str
    publisher: str
    """The owner party (``via="message"``) or the operator (``[operators.NAME]``, ``cli:<OS user>``)."""
    via: Literal["message", "operator"]
    message: str | None
    """The gateway id of the ``reference.list`` message (``via="message"``), or of the operator action."""
    published_at: float
    seq: int = 0
    """The store's order of publication (assigned by the store)."""

    @property
    def label(self) -> str:
        """``name vN``: how validation results name the version."""
        return f"{self.name} v{self.version}"

    def numbered(self, version: int, seq: int) -> ReferenceVersion:
        """This version as the store numbered it."""
        return replace(self, version=version, seq=seq)

    def matching(self, hs_code: str) -> ReferenceEntry | None:
        """The first entry whose prefix ``hs_code`` starts with."""
        return next((e for e in self.entries if hs_code.startswith(e.code)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "owner": self.owner,
            "purpose": self.purpose,
            "effective_from": iso(self.effective_from),
            "entries": [e.to_dict() for e in self.entries],
            "digest": self.digest,
            "publisher": self.publisher,
            "via": self.via,
            "message": self.message,
            "published_at": iso(self.published_at),
        }

    @classmethod
    def of(
        cls,
        draft: ReferenceDraft,
        *,
        publisher: str,
        via: Literal["message", "operator"],
        message: str | None,
        published_at: float,
    ) -> ReferenceVersion:
        """The version of ``draft`` before the store numbers it (``version`` 0)."""
        return cls(
            draft.name,
            0,
            draft.owner,
            draft.purpose,
            draft.effective_from,
            draft.entries,
            draft.digest(),
            publisher,
            via,
            message,
            published_at,
        )


@dataclass(frozen=True)
class ReferenceOutcome:
    """What the lists in force said of a submission: the versions consulted and the inspection flags."""

    used: tuple[str, ...] = ()
    """Labels (``name vN``) of every list version in force and consulted."""
    flags: tuple[str, ...] = ()
    """``path: list vN`` per goods item an inspection list matched."""

    def detail(self) -> str | None:
        """The text of the ``MAPPED`` step naming them, or None when no list was in force."""
        if not self.used:
            return None
        text = "reference lists: " + ", ".join(self.used)
        if self.flags:
            text += "; inspection required: " + ", ".join(self.flags)
        return text


def in_force(versions: Iterable[ReferenceVersion], at: float) -> ReferenceVersion | None:
    """Of ``versions`` (of one list), the one in force at ``at``: effective latest at or before ``at`` (to the
    microsecond; of two effective at the same instant, the later version)."""
    t = micros(at)
    best: ReferenceVersion | None = None
    for v in versions:
        if micros(v.effective_from) <= t and (
            best is None or (micros(v.effective_from), v.version) > (micros(best.effective_from), best.version)
        ):
            best = v
    return best


class References(Protocol):
    """What intake asks of the reference data (:class:`ReferenceData`; :class:`NullReferences` without)."""

    async def refresh(self) -> None:
        """Reload the versions when the store holds newer ones."""

    def publication(self, content: bytes, envelope: SubmissionEnvelope) -> ReferenceDraft | None:
        """The version a verified ``reference.list`` document of its owner publishes (None: another document).
        Raises ``REFERENCE_LIST_INVALID`` naming the element, ``REFERENCE_LIST_NOT_OWNER`` naming ``Owner``."""

    def check(self, content: bytes, format: str, *, at: float) -> ReferenceOutcome:
        """Validate the goods of ``content`` against the lists in force at ``at``; raises ``VALIDATION_FAILED``
        (issues ``GOODS_PROHIBITED``)."""

    async def accepted(self, message: str) -> None:
        """Reload and announce the version the accepted message ``message`` (gateway id) published, which
        :meth:`Store.accept` stored with it."""


def _goods(content: bytes, format: str) -> list[tuple[str, str]]:
    """``(path, hs_code)`` of each goods item of ``content`` read in its registered format; none for generic XML
    or a document the format cannot read (that is reported by the mapping, not here)."""
    if format in ("xml", "same"):
        return []
    from mappings.registry import get

    try:
        message = get(format).read(content)
    except NswError:  # an unreadable document, or an unknown format: refused by the mapping with its own code
        return []
    return [(f"goods[{i}].hs_code", g.hs_code) for i, g in enumerate(message.goods) if g.hs_code]


@dataclass
class ReferenceData:
    """Every stored version, in memory, and the checks made with them (see the module docstring)."""

    store: Store
    events: EventBus
    clock: Clock
    versions: dict[str, tuple[ReferenceVersion, ...]] = field(default_factory=dict)
    """Each list's versions, by name, oldest first."""
    head: int = -1
    """The highest ``seq`` loaded (-1: nothing loaded yet)."""

    async def refresh(self) -> None:
        """Reload when the store holds a newer version; announce each version that appeared since the last load
        and no node announced yet (none on the first load: those were stored before this node ran)."""
        head = await self.store.reference_head()
        if head == self.head:
            return
        loaded: dict[str, list[ReferenceVersion]] = {}
        for v in await self.store.reference_versions():
            loaded.setdefault(v.name, []).append(v)
        previous, self.head = self.head, head
        self.versions = {name: tuple(vs) for name, vs in loaded.items()}
        if previous < 0:
            return
        for v in sorted((v for vs in loaded.values() for v in vs if v.seq > previous), key=lambda v: v.seq):
            await self._announce_once(v)

    def in_force(self, name: str, at: float) -> ReferenceVersion | None:
        """The version of ``name`` in force at ``at``, if any."""
        return in_force(self.versions.get(name, ()), at)

    def publication(self, content: bytes, envelope: SubmissionEnvelope) -> ReferenceDraft | None:
        if envelope.document_type != REFERENCE_LIST_DOCUMENT_TYPE:
            return None
        from mappings.reference import read_reference_list

        draft = read_reference_list(content)
        if draft.owner != envelope.sender:
            raise ReferenceListNotOwner(
                f"{envelope.sender} cannot publish {draft.name}: its owner is {draft.owner}",
                field="ReferenceList/Owner",
                details={"list": draft.name, "owner": draft.owner, "sender": envelope.sender},
            )
        known = self.versions.get(draft.name)
        if known and known[-1].owner != draft.owner:
            raise ReferenceListNotOwner(
                f"{draft.name} is owned by {known[-1].owner}",
                field="ReferenceList/Owner",
                details={"list": draft.name, "owner": known[-1].owner, "sender": envelope.sender},
            )
        return draft

    def check(self, content: bytes, format: str, *, at: float) -> ReferenceOutcome:
        lists = [v for v in (self.in_force(name, at) for name in sorted(self.versions)) if v is not None]
        if not lists:
            return ReferenceOutcome()
        goods = _goods(content, format)
        if not goods:
            return ReferenceOutcome()
        issues: list[ValidationIssue] = []
        flags: list[str] = []
        for path, hs_code in goods:
            for v in lists:
                entry = v.matching(hs_code)
                if entry is None:
                    continue
                note = f" ({entry.note})" if entry.note else ""
                if v.purpose == "prohibited":
                    issues.append(
                        ValidationIssue(
                            path,
                            "GOODS_PROHIBITED",
                            f"HS {hs_code} is on {v.label} (prefix {entry.code}{note}, in force from "
                            f"{iso(v.effective_from)}, digest {v.digest[:16]})",
                        )
                    )
                else:
                    flags.append(f"{path}: {v.label}")
        used = tuple(v.label for v in lists)
        if issues:
            raise ValidationFailed(issues, details={"reference_lists": list(used)})
        return ReferenceOutcome(used, tuple(flags))

    async def accepted(self, message: str) -> None:
        await self.refresh()
        for vs in self.versions.values():
            for v in vs:
                if v.via == "message" and v.message == message:
                    await self._announce_once(v)

    async def announce(self, stored: ReferenceVersion) -> None:
        """Reload and publish ``reference_list_published`` for a version just stored (unless a node did)."""
        await self.refresh()
        await self._announce_once(stored)

    async def _announce_once(self, stored: ReferenceVersion) -> None:
        """Publish ``reference_list_published`` for ``stored`` if this node is the first to claim it."""
        now = self.clock.now()
        if not await self.store.state_add(
            ANNOUNCED, str(stored.seq), stored.digest.encode(), expires_at=now + ANNOUNCED_TTL, now=now
        ):
            return
        self.events.publish(
            Event(
                "reference_list_published",
                stored.published_at,
                {
                    "list": stored.name,
                    "version": stored.version,
                    "owner": stored.owner,
                    "purpose": stored.purpose,
                    "effective_from": iso(stored.effective_from),
                    "digest": stored.digest,
                    "publisher": stored.publisher,
                    "via": stored.via,
                    "message": stored.message,
                    "entries": len(stored.entries),
                },
            )
        )
        log.info(
            "%s published by %s (%s), effective from %s",
            stored.label,
            stored.publisher,
            stored.via,
            iso(stored.effective_from),
        )


class NullReferences:
    """No reference data: nothing is published through intake and nothing is checked."""

    async def refresh(self) -> None:
        return None

    def publication(self, content: bytes, envelope: SubmissionEnvelope) -> ReferenceDraft | None:
        return None

    def check(self, content: bytes, format: str, *, at: float) -> ReferenceOutcome:
        return ReferenceOutcome()

    async def accepted(self, message: str) -> None:
        return None


def message_version(drafts: Iterable[ReferenceDraft], message: Message) -> ReferenceVersion | None:
    """The version an accepted ``message`` publishes (the draft :meth:`References.publication` read from it,
    published by its sender at its acceptance), for :meth:`Store.accept` to store with it; None for any other
    message, and for a refused one."""
    draft = next(iter(drafts), None)
    if draft is None or message.state is State.REJECTED:
        return None
    return ReferenceVersion.of(
        draft,
        publisher=message.envelope.sender,
        via="message",
        message=message.id,
        published_at=message.history[-1].at,
    )


def ownership_refusal(version: ReferenceVersion, owner: str | None) -> ReferenceListNotOwner | None:
    """Why the store refuses ``version`` of a list whose versions so far are owned by ``owner`` (None: a new
    list): another owner (``REFERENCE_LIST_NOT_OWNER``, ``ReferenceList/Owner``). Checked in the transaction
    that numbers the version, so that of two owners publishing a new list at once only the first has it."""
    if owner is None or owner == version.owner:
        return None
    return ReferenceListNotOwner(
        f"{version.name} is owned by {owner}, not {version.owner}",
        field="ReferenceList/Owner",
        details={"list": version.name, "owner": owner},
    )


def numbering_refusal(version: ReferenceVersion, number: int) -> StoreContended | None:
    """Why the store refuses ``version`` when its list's next number is ``number``: a version that states its
    number (``version.version`` above 0, as an operator's does, its record naming it) and another publication
    took that number first (``STORE_CONTENDED``: read the list again and renumber)."""
    if version.version in (0, number):
        return None
    return StoreContended(
        f"{version.name} v{version.version} was published by another operator or node first; the next is v{number}",
        field="version",
        details={"list": version.name, "version": version.version, "next": number},
    )


async def publish_by_operator(
    store: Store,
    draft: ReferenceDraft,
    *,
    operator: str,
    at: float,
    parties: Iterable[str],
) -> tuple[ReferenceVersion, JournalEntry]:
    """Store ``draft`` as the next version of its list, published by ``operator``, and record the
    ``reference-publish`` action (an ``OPERATOR`` journal entry naming the list, its version and digest) with it
    as its evidence, in one transaction (:meth:`Store.record_operator_action` with ``reference``). Refused
    before anything is written: an owner that is no configured party (``REFERENCE_LIST_INVALID``,
    ``ReferenceList/Owner``) or other than the list's owner so far (``REFERENCE_LIST_NOT_OWNER``). Returns the
    stored version and the journal entry.

    The record names the version's number, so the number is chosen first and the store refuses it if another
    publication took it meanwhile (``STORE_CONTENDED``): then the list is read again and the next number tried,
    up to :data:`NUMBERING_ATTEMPTS` times."""
    if draft.owner not in set(parties):
        raise ReferenceListInvalid(f"owner {draft.owner!r} is no configured party", field="ReferenceList/Owner")
    for attempt in range(1, NUMBERING_ATTEMPTS + 1):
        known = await store.reference_versions(draft.name)
        if known and known[-1].owner != draft.owner:
            raise ReferenceListNotOwner(
                f"{draft.name} is owned by {known[-1].owner}, not {draft.owner}",
                field="ReferenceList/Owner",
                details={"list": draft.name, "owner": known[-1].owner},
            )
        action_id = f"op-{uuid.uuid4().hex}"
        version = ReferenceVersion.of(
            draft, publisher=operator, via="operator", message=action_id, published_at=at
        ).numbered(max((v.version for v in known), default=0) + 1, 0)
        action = OperatorAction(
            action_id,
            operator,
            "reference-publish",
            at,
            ({"list": version.name, "version": str(version.version)},),
            {
                "outcome": "applied",
                "owner": version.owner,
                "purpose": version.purpose,
                "effective_from": iso(version.effective_from),
                "digest": version.digest,
                "entries": len(version.entries),
            },
        )
        try:
            entry = await store.record_operator_action(action, reference=version)
        except StoreContended:
            if attempt == NUMBERING_ATTEMPTS:
                raise
            continue  # another publication took the number: read the list again
        stored = next(v for v in await store.reference_versions(draft.name) if v.message == action_id)
        return stored, entry
    raise AssertionError("unreachable: the last attempt returns or raises")
