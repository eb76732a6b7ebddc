"""The store interface: durable messages, per-destination outboxes, the journal.

Everything the broker keeps goes through :class:`Store`. Implementations
(:class:`~gateway.store.sqlite.SqliteStore`, :class:`~gateway.store.postgres.PostgresStore`) must give

* **durable acceptance**: :meth:`Store.accept` returns only after the message,
  its intake history, its deliveries and its journal entry are committed;
* **deduplication** by ``(sender, message_id)`` through a unique constraint:
  a second ``accept`` returns the original acknowledgement and stores nothing;
  likewise by ``(sender, content_digest)`` (unique where the digest is set), so
  a replay of the same signed content under another message id is refused in
  the same atomic insert;
* **leased claiming**: :meth:`Store.claim` hands each due delivery to one
  worker for a lease; a worker that dies simply lets the lease run out (a
  PostgreSQL store does this with ``SELECT ... FOR UPDATE SKIP LOCKED``).
  Leases run by the store's clock: the ``now`` its one node passes (SQLite),
  or the database's (PostgreSQL: nodes' clocks may disagree), while next
  attempts and deadlines are in the gateway's ``now``;
* **per-conversation order**: a delivery is only claimable when every earlier
  delivery (lower ``seq``) of the same conversation to the same destination
  is ``ACKNOWLEDGED`` (or, with ``on_dead="skip"``, ``DEAD``); one that reaches
  its time-to-live behind a ``DEAD`` one (``on_dead="hold"``) dies with
  ``CONVERSATION_BLOCKED`` naming it;
* **compare-and-set** on every state change (:meth:`Store.record`): the row
  must still be in the state the worker claimed and leased to that worker.

Only domain objects cross this interface (no SQL, rows, cursors or driver
exceptions); timestamps are float seconds since the epoch (UTC).
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.disclosures import Disclosure, DisclosureQuery, StoredDisclosure
from gateway.errors import CertificateNotifierMismatch, CertificateUnknown, ConversationBlocked
from gateway.journal import JournalEntry, OperatorAction
from gateway.model import (
    CertificateAct,
    Delivery,
    Excerpt,
    Message,
    State,
    SubmissionAck,
    Transition,
    overall_state,
)
from gateway.reference import ReferenceEntry, ReferenceVersion
from gateway.registry import RegistryAct, RegistryDocument, RegistryQuery
from gateway.shipcalls import ShipCallAct, ShipCallRecord
from signing.xml import Spliced

__all__ = [
    "Store",
    "JournalBase",
    "StoredTimestamp",
    "MessageRecord",
    "MessageQuery",
    "DestinationStats",
    "DestinationOutcomes",
    "DestinationFlow",
    "FLOW_SAMPLE",
    "FlowStats",
    "PENDING_STATES",
    "ProcedureStats",
    "SenderFlow",
    "destination_flows",
    "percentile",
    "procedure_stats",
    "sender_flows",
    "OnDead",
    "RecordedAction",
    "blocked_by",
    "CertificateEvent",
    "CertificateRecord",
    "CertificateQuery",
    "CertificateSummary",
    "certificate_query_sql",
    "certificate_status",
    "certificate_refusal",
    "NOTIFIER_ACTS",
    "reference_row",
    "reference_values",
    "reference_entries_json",
]

OnDead = Literal["hold", "skip"]
"""Whether a ``DEAD`` delivery still blocks the later ones of its conversation (``hold``) or not (``skip``)."""


def blocked_by(head: str, delivery: Delivery, detail: str) -> ConversationBlocked:
    """The error of ``delivery`` expiring behind the dead delivery of message ``head`` (both stores)."""
    return ConversationBlocked(
        f"{detail}, held behind dead message {head} of conversation {delivery.conversation}",
        field=delivery.destination,
        details={"head": head, "conversation": delivery.conversation},
    )


_STATUS_OF: dict[str, str | None] = {
    "issued": "issued",
    "amended": "amended",
    "cancelled": "cancelled",
    "received": "received",
    "utilized": "utilized",
    "rejected": "rejected",
    "verification_request": None,
    "verification_answer": None,
}
_ISSUER_ACTS = frozenset({"issued", "amended", "cancelled", "verification_answer"})
NOTIFIER_ACTS = frozenset({"received", "utilized", "rejected", "verification_request"})
"""The importing side's acts: accepted only from a party answering for a destination the certificate went to."""


def certificate_status(event: str, current: str | None) -> str | None:
    """The status a certificate of origin in status ``current`` moves to on ``event`` (a
    :class:`~gateway.model.CertificateAct` action, or ``delivered``: a receipt of a delivery of the message that
    issued or amended it), both stores: ``delivered`` only from ``issued`` or ``amended`` (a later notification
    is not undone by a late receipt); a verification request or answer leaves the status as it is. ``None``: no
    change."""
    if event == "delivered":
        return "delivered" if current in ("issued", "amended") else None
    return _STATUS_OF[event]


def certificate_refusal(
    act: CertificateAct, sender: str, issuer: str | None, delivered_to: frozenset[str] = frozenset()
) -> CertificateUnknown | CertificateNotifierMismatch | None:
    """Why the store refuses ``act`` from ``sender`` on a certificate issued by ``issuer`` (``None``: the gateway
    carried none) and routed to the destinations ``delivered_to`` (by the messages that issued or amended it),
    both stores: a certificate it did not carry (any act but an issue); an amendment, a cancellation or a
    verification answer from a party that did not issue it; a number issued again by another party; an importing
    side's notification from a party answering for none of ``delivered_to`` (``act.answers_for``). ``None`` when
    ``act`` is accepted."""
    said = f"{act.issuing_country} {act.number}"
    details = {"issuing_country": act.issuing_country, "number": act.number}
    if issuer is None and not act.issues:
        return CertificateUnknown(
            f"the gateway carried no certificate of origin {said}: {act.action} refused",
            field=act.path,
            details=details,
        )
    if issuer is not None and issuer != sender and act.action in _ISSUER_ACTS:
        return CertificateUnknown(
            f"{sender} did not issue the certificate of origin {said}: {act.action} refused",
            field=act.path,
            details=details,
        )
    if issuer is not None and act.action in NOTIFIER_ACTS and not delivered_to & act.answers_for:
        return CertificateNotifierMismatch(
            f"the certificate of origin {said} was not delivered to {sender}"
            f" (delivered to {', '.join(sorted(delivered_to)) or 'no destination'}): {act.action} refused",
            field=act.path,
            details={**details, "delivered_to": sorted(delivered_to)},
        )
    return None


def certificate_query_sql(query: CertificateQuery, mark: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The ``SELECT`` of :meth:`Store.certificates` and its parameters, both stores (``mark(n)``: the n-th
    placeholder, ``?`` or ``$n``)."""
    clauses: list[str] = []
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return mark(len(params))

    if query.issuing_country is not None:
        clauses.append(f"c.issuing_country = {bind(query.issuing_country)}")
    if query.status is not None:
        clauses.append(f"c.status = {bind(query.status)}")
    if query.party is not None:
        clauses.append(
            f"(c.issuer = {bind(query.party)} OR EXISTS (SELECT 1 FROM certificate_events AS e WHERE"
            f" e.issuing_country = c.issuing_country AND e.number = c.number AND e.party = {bind(query.party)}))"
        )
    if query.after is not None:
        at, country, number = query.after
        clauses.append(f"(c.updated_at, c.issuing_country, c.number) < ({bind(at)}, {bind(country)}, {bind(number)})")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (
        "SELECT c.issuing_country, c.number, c.issuer, c.status, c.updated_at FROM certificates AS c"
        f"{where} ORDER BY c.updated_at DESC, c.issuing_country DESC, c.number DESC LIMIT {bind(query.limit)}"
    )
    return sql, params


@dataclass(frozen=True)
class CertificateEvent:
    """One step of a certificate of origin's history."""

    status: str
    """The act (:data:`~gateway.model.CERTIFICATE_ACTIONS`) or ``delivered``."""
    at: float
    message: str
    """The gateway id of the message that carried the act (of the delivered message, for ``delivered``)."""
    party: str
    """The party that sent the act, or the destination that acknowledged the delivery."""
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CertificateRecord:
    """A certificate of origin the gateway carried: who issued it, its status and its history, oldest first."""

    issuing_country: str
    number: str
    issuer: str
    status: str
    history: tuple[CertificateEvent, ...]

    @property
    def messages(self) -> tuple[str, ...]:
        """The gateway ids of the messages that carried its acts, in order, without repeats."""
        return tuple(dict.fromkeys(e.message for e in self.history))


@dataclass(frozen=True)
class CertificateSummary:
    """One certificate of origin of an operator's list: who issued it, its status and when that last moved."""

    issuing_country: str
    number: str
    issuer: str
    status: str
    updated_at: float


@dataclass(frozen=True)
class CertificateQuery:
    """An operator's search over the certificates of origin the gateway carried. ``None`` fields do not filter."""

    issuing_country: str | None = None
    status: str | None = None
    party: str | None = None
    """Certificates this party issued or took part in (sent a notification about, or, as a destination,
    receipted)."""
    after: tuple[float, str, str] | None = None
    """``(updated_at, issuing_country, number)`` of the last certificate of the previous page: only those after
    it in the order of the answer (latest status change first, then by country and number, descending)."""
    limit: int = 100


@dataclass(frozen=True)
class MessageRecord:
    """A stored message with its deliveries, as ``GET /v1/messages/{id}`` shows it."""

    message: Message
    deliveries: tuple[Delivery, ...]
    acknowledgement: SubmissionAck
    replies: tuple[str, ...] = ()
    """Gateway ids of messages whose reference is this message (results travelling back)."""

    @property
    def state(self) -> State:
        return overall_state(self.message.state, (d.state for d in self.deliveries))

    @property
    def history(self) -> tuple[Transition, ...]:
        steps = list(self.message.history)
        for d in self.deliveries:
            steps.extend(d.history)
        return tuple(sorted(steps, key=lambda t: t.at))

    def to_dict(self) -> dict[str, Any]:
        env = self.message.envelope
        return {
            "id": self.message.id,
            "sender": env.sender,
            "on_behalf_of": env.on_behalf_of or self.acknowledgement.on_behalf_of,
            "message_id": env.message_id,
            "document_type": env.document_type,
            "conversation_id": env.conversation,
            "reference": env.reference,
            "state": self.state.value,
            "received_at": self.message.received_at,
            "error": self.message.error,
            "deliveries": [
                {
                    "destination": d.destination,
                    "state": d.state.value,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "content_type": d.content_type,
                    "queued_at": d.queued_at,
                    "next_attempt_at": d.next_attempt_at,
                    "deadline": d.deadline,
                }
                for d in self.deliveries
            ],
            "replies": list(self.replies),
            "history": [t.to_dict() for t in self.history],
        }


@dataclass(frozen=True)
class MessageQuery:
    """A search over messages (``GET /v1/messages?...``). ``None`` fields do not filter."""

    sender: str | None = None
    document_type: str | None = None
    state: State | None = None
    conversation: str | None = None
    reference: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    destination: str | None = None
    """Messages with a delivery to this destination."""
    code: str | None = None
    """Messages whose error (a rejection) or any of whose deliveries' last error has this code."""
    after: tuple[float, str] | None = None
    """``(received_at, id)`` of the last message of the previous page: only messages after it in the order of
    the answer (newest first, then by id) match, so pages neither repeat nor skip messages that arrived at the
    same instant."""


@dataclass(frozen=True)
class DestinationStats:
    destination: str
    counts: dict[State, int]
    oldest: dict[State, float] = field(default_factory=dict)
    """Per state, the earliest ``queued_at`` of the destination's deliveries in it (``/metrics``: the age of the
    oldest pending delivery)."""

    @property
    def pending(self) -> int:
        """The backlog: deliveries in :data:`PENDING_STATES`."""
        return sum(self.counts.get(s, 0) for s in PENDING_STATES)

    @property
    def oldest_pending(self) -> float | None:
        """The earliest ``queued_at`` of the backlog."""
        return min((self.oldest[s] for s in PENDING_STATES if s in self.oldest), default=None)


PENDING_STATES = (State.QUEUED, State.DELIVERED, State.FAILED)
"""The delivery states of a destination's backlog: neither acknowledged nor dead."""

FLOW_SAMPLE = 20_000
"""At most this many latencies (the newest) per latency list of :class:`FlowStats` and :class:`ProcedureStats`:
percentiles of a busier window are those of its newest part; every count stays exact."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q ≤ 1) of ascending ``values``; ``None`` when there are none."""
    if not values:
        return None
    rank = max(1, min(len(values), math.ceil(q * len(values))))
    return values[rank - 1]


@dataclass(frozen=True)
class SenderFlow:
    """What one sender submitted in a window (messages by ``received_at``)."""

    sender: str
    submitted: int
    """Every submission stored, rejected ones included."""
    rejected: dict[str, int]
    """Rejected submissions by error code."""
    latencies: tuple[float, ...]
    """Ascending seconds from submission to final receipt (the last delivery's verified receipt) of the
    submissions whose every delivery is acknowledged (at most :data:`FLOW_SAMPLE`, the newest)."""

    @property
    def rejection_rate(self) -> float:
        return sum(self.rejected.values()) / self.submitted if self.submitted else 0.0


@dataclass(frozen=True)
class DestinationFlow:
    """What happened to one destination's deliveries in a window (steps by the time they happened)."""

    destination: str
    acknowledged: int
    """Deliveries whose receipt was verified in the window."""
    failed: int
    """Failed attempts in the window."""
    dead: int
    """Deliveries that went to the dead letters in the window."""
    latencies: tuple[float, ...]
    """Ascending seconds from queued to verified receipt of the deliveries acknowledged in the window (at most
    :data:`FLOW_SAMPLE`, the newest)."""

    @property
    def failure_rate(self) -> float:
        """Failed attempts and dead deliveries among every outcome of the window."""
        outcomes = self.acknowledged + self.failed + self.dead
        return (self.failed + self.dead) / outcomes if outcomes else 0.0


@dataclass(frozen=True)
class FlowStats:
    """The traffic of ``[since, until)``: per sender and per destination that had any, by name."""

    since: float
    until: float
    senders: tuple[SenderFlow, ...]
    destinations: tuple[DestinationFlow, ...]


@dataclass(frozen=True)
class ProcedureStats:
    """The submissions of one document type and procedure received in one bucket of time."""

    document_type: str
    procedure: str | None
    """The envelope's procedure (VNSW), when it named one."""
    start: float
    """The bucket's start (a multiple of the bucket length since the epoch)."""
    submitted: int
    rejected: int
    latencies: tuple[float, ...]
    """Ascending seconds from submission to final receipt of those whose every delivery is acknowledged (at most
    :data:`FLOW_SAMPLE` over the whole answer, the newest)."""


def sender_flows(
    counts: Sequence[tuple[str, str | None, int]], finished: Sequence[tuple[str, float]]
) -> tuple[SenderFlow, ...]:
    """Sender flows from ``(sender, rejection code or None, count)`` rows and ``(sender, latency)`` rows."""
    submitted: dict[str, int] = {}
    rejected: dict[str, dict[str, int]] = {}
    for sender, code, n in counts:
        submitted[sender] = submitted.get(sender, 0) + n
        codes = rejected.setdefault(sender, {})
        if code is not None:
            codes[code] = codes.get(code, 0) + n
    latencies: dict[str, list[float]] = {}
    for sender, seconds in finished:
        latencies.setdefault(sender, []).append(seconds)
    return tuple(
        SenderFlow(name, submitted[name], rejected[name], tuple(sorted(latencies.get(name, ()))))
        for name in sorted(submitted)
    )


def destination_flows(
    counts: Sequence[tuple[str, str, int]], acknowledged: Sequence[tuple[str, float]]
) -> tuple[DestinationFlow, ...]:
    """Destination flows from ``(destination, to_state, count)`` rows and ``(destination, latency)`` rows."""
    steps: dict[str, dict[str, int]] = {}
    for destination, state, n in counts:
        steps.setdefault(destination, {})[state] = n
    latencies: dict[str, list[float]] = {}
    for destination, seconds in acknowledged:
        latencies.setdefault(destination, []).append(seconds)
    return tuple(
        DestinationFlow(
            name,
            steps[name].get(State.ACKNOWLEDGED.value, 0),
            steps[name].get(State.FAILED.value, 0),
            steps[name].get(State.DEAD.value, 0),
            tuple(sorted(latencies.get(name, ()))),
        )
        for name in sorted(steps)
    )


def procedure_stats(
    counts: Sequence[tuple[str, str | None, int, int, int]],
    finished: Sequence[tuple[str, str | None, int, float]],
    bucket: float,
) -> list[ProcedureStats]:
    """Procedure stats from ``(document type, procedure, bucket number, submitted, rejected)`` rows and
    ``(document type, procedure, bucket number, latency)`` rows, by document type, procedure and time."""
    latencies: dict[tuple[str, str | None, int], list[float]] = {}
    for document_type, procedure, number, seconds in finished:
        latencies.setdefault((document_type, procedure, int(number)), []).append(seconds)
    out = [
        ProcedureStats(
            document_type,
            procedure,
            int(number) * bucket,
            submitted,
            rejected,
            tuple(sorted(latencies.get((document_type, procedure, int(number)), ()))),
        )
        for document_type, procedure, number, submitted, rejected in counts
    ]
    return sorted(out, key=lambda p: (p.document_type, p.procedure or "", p.start))


@dataclass(frozen=True)
class DestinationOutcomes:
    """The last outcomes of a destination's delivery attempts, from the history the store keeps."""

    destination: str
    last_success: float | None
    """When a delivery's receipt was last verified (``ACKNOWLEDGED``)."""
    last_failure: Transition | None
    """The last failed attempt (``FAILED``, with its code and message) or ``None``."""


@dataclass(frozen=True)
class JournalBase:
    """The last journal entry pruned into an archive bundle: the remaining entries chain on from ``hash``."""

    seq: int
    hash: str
    manifest_sha256: str
    """SHA-256 of the manifest of the bundle that holds entry ``seq`` (``""``: nothing archived yet)."""


@dataclass(frozen=True)
class StoredTimestamp:
    """An RFC 3161 token over journal entry ``seq`` as the store holds it (verify with
    :func:`gateway.timestamps.verify_timestamp_token` before relying on it)."""

    seq: int
    entry_hash: str
    token: bytes
    gen_time: float
    """The token's genTime, seconds since the epoch."""
    tsa_serial: str


@dataclass(frozen=True)
class RecordedAction:
    """An operator action as the store holds it."""

    id: str
    record: bytes
    """The stored record, byte for byte (what its ``OPERATOR`` entry digests; parse it with
    :meth:`~gateway.journal.OperatorAction.from_record`)."""
    seq: int | None
    """Its journal entry (``None``: the entry is gone, which ``nswgw log verify`` reports)."""


def reference_entries_json(version: ReferenceVersion) -> str:
    """The entries of ``version`` as the store keeps them (canonical JSON)."""
    return json.dumps([e.to_dict() for e in version.entries], sort_keys=True, separators=(",", ":"))


def reference_row(row: Sequence[Any]) -> ReferenceVersion:
    """A version from its row: ``seq, name, version, owner, purpose, effective_from, entries, digest, publisher,
    via, message, published_at``."""
    entries = tuple(ReferenceEntry(e["code"], e.get("note", "")) for e in json.loads(row[6]))
    return ReferenceVersion(
        name=row[1],
        version=int(row[2]),
        owner=row[3],
        purpose=row[4],
        effective_from=float(row[5]),
        entries=entries,
        digest=row[7],
        publisher=row[8],
        via=row[9],
        message=row[10],
        published_at=float(row[11]),
        seq=int(row[0]),
    )


def reference_values(version: ReferenceVersion, number: int) -> tuple[Any, ...]:
    """The values a store inserts for ``version`` numbered ``number``, in the order of :func:`reference_row`'s
    columns after ``seq`` (the store assigns it): ``name, version, owner, purpose, effective_from, entries,
    digest, publisher, via, message, published_at``."""
    return (
        version.name,
        number,
        version.owner,
        version.purpose,
        version.effective_from,
        reference_entries_json(version),
        version.digest,
        version.publisher,
        version.via,
        version.message,
        version.published_at,
    )


class Store(abc.ABC):
    """Durable storage of the broker. Every method is safe to call concurrently from one event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create the schema if needed and start the store."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and release every connection and thread."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on_work(self, callback: Callable[[tuple[str, ...]], None]) -> None:  # noqa: B027 - optional hook, no-op
        """Have ``callback(destinations)`` called when another node queues work (multi-node stores wake
        idle workers this way, e.g. PostgreSQL LISTEN/NOTIFY). Single-node stores never call it."""

    @abc.abstractmethod
    async def recover(self, *, now: float) -> int:
        """Called once at start by the only node of a single-node store: release the leases of a
        previous, crashed run. Returns how many. Multi-node stores let leases expire instead."""

    @abc.abstractmethod
    async def accept(
        self,
        message: Message,
        payload: bytes | Spliced | Excerpt,
        deliveries: Sequence[Delivery],
        ack: SubmissionAck,
        *,
        certificate: CertificateAct | None = None,
        registry: RegistryAct | None = None,
        reference: ReferenceVersion | None = None,
        disclosures: Sequence[Disclosure] = (),
        ship_call: ShipCallAct | None = None,
    ) -> tuple[SubmissionAck, bool]:
        """Store a message, its intake history, its deliveries and an ``ACCEPTED`` journal entry, atomically.

        ``certificate`` is what an accepted message does to a certificate of origin: recorded (the certificate,
        its new status, one history event) in the same transaction, or refused by :func:`certificate_refusal`
        (raised; nothing at all is stored). A refused message (``REJECTED``) records no act.

        ``registry`` is what an accepted message does to the registry of issued documents
        (:mod:`gateway.registry`): a document indexed, amended or cancelled, or a utilization's draws, in the same
        transaction, or refused by :func:`gateway.registry.issued_refusal` / :func:`gateway.registry.plan_draws`
        (raised; nothing at all is stored). A refused message records no act.

        ``reference`` is the policy-list version an accepted ``reference.list`` message publishes
        (:func:`gateway.reference.message_version`): stored in the same transaction as :meth:`reference_add`
        stores one (numbered next across every node), or refused by :func:`gateway.reference.ownership_refusal`
        (raised; nothing at all is stored). A refused message stores no version.

        ``disclosures`` are the deliveries of an accepted message that carry only some of its data elements
        (:mod:`gateway.disclosures`): each record is stored with a ``DISCLOSED`` journal entry after the
        ``ACCEPTED`` one (its digest: the SHA-256 of :meth:`~gateway.disclosures.Disclosure.record`), in the same
        transaction; listed by :meth:`disclosures`.

        ``ship_call`` is what an accepted message does to a ship call (:class:`~gateway.shipcalls.ShipCallAct`): the
        call's new state, versions and history written in the same transaction if the call is still at the
        revision the act was planned from, else ``STORE_CONTENDED`` (raised; nothing at all is stored).

        ``payload`` is the evidence: the whole verified document of an accepted message (a
        :class:`~signing.xml.Spliced` one written part by part, as each delivery's :attr:`~Delivery.body`), or the
        :class:`~gateway.model.Excerpt` of a refused one (its prefix in ``payload``, the size and SHA-256 of the
        whole in ``payload_size`` and ``payload_sha256``; both NULL for a whole payload).

        Returns ``(ack, True)``, or ``(original_ack, False)`` when ``(sender, message_id)`` is already
        stored, or when ``message.content_digest`` is set and ``(sender, content_digest)`` is (a content
        duplicate: ``original_ack.id`` is then not ``message.id``); in either case nothing is written and
        nothing is delivered again.
        """

    @abc.abstractmethod
    async def claim(
        self, destination: str, *, owner: str, limit: int, now: float, lease: float, on_dead: OnDead = "hold"
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries of ``destination`` to ``owner``, oldest first,
        at most one per conversation (its head: the first one not ``ACKNOWLEDGED``, nor ``DEAD`` with
        ``on_dead="skip"``). Returned with an empty history."""

    @abc.abstractmethod
    async def record(self, delivery: Delivery, *, owner: str | None, now: float) -> None:
        """Persist the transitions in ``delivery.history`` and release its lease.

        Compare-and-set: the stored row must be in ``delivery.history[0].from_state`` and leased to
        ``owner`` (unleased when ``owner`` is None), else :class:`~gateway.errors.InvalidTransition`.
        Reaching ``ACKNOWLEDGED`` appends a ``DELIVERED`` journal entry in the same transaction, and a
        ``delivered`` event to the certificate of origin the message issued or amended, if any.
        """

    @abc.abstractmethod
    async def expire(
        self, destination: str, *, now: float, code: str, detail: str, on_dead: OnDead = "hold"
    ) -> list[Delivery]:
        """Move unleased ``QUEUED`` deliveries of ``destination`` past their deadline to ``DEAD``: with error
        ``code``, or, for one held behind a ``DEAD`` earlier delivery of its conversation (``on_dead="hold"``),
        with :class:`~gateway.errors.ConversationBlocked` whose ``details.head`` is the earliest such one's
        message id. Returns the deliveries it moved, as stored (``last_error`` names each one's code)."""

    @abc.abstractmethod
    async def waiting_behind(self, delivery: Delivery) -> int:
        """How many later deliveries of ``delivery``'s conversation to its destination are neither
        ``ACKNOWLEDGED`` nor ``DEAD`` (what a dead head holds up)."""

    @abc.abstractmethod
    async def get(self, message_id: str) -> MessageRecord | None:
        """A message by gateway id, with its deliveries and replies."""

    @abc.abstractmethod
    async def registry_find(self, query: RegistryQuery) -> list[RegistryDocument]:
        """The indexed documents matching ``query``, newest first, at most ``query.limit``, with their lines."""

    @abc.abstractmethod
    async def registry_document(
        self, doc_type: str, number: str
    ) -> tuple[RegistryDocument, list[tuple[str, int, str, str, float]]] | None:
        """One indexed document with its lines and its draws (``(declaration, line, quantity, message, at)``,
        oldest first); ``None`` when none of that type and number is indexed."""

    @abc.abstractmethod
    async def registry_candidates(self, holder: str, hs_codes: Sequence[str]) -> list[list[RegistryDocument]]:
        """Per HS code, the documents held by ``holder`` with a line for it or a heading of it (each lookup by the
        index on holder and HS code)."""

    @abc.abstractmethod
    async def ship_call(self, reference: str) -> ShipCallRecord | None:
        """The ship call of which ``reference`` is a version, with its agencies, versions and history; ``None``
        when the gateway holds none."""

    @abc.abstractmethod
    async def certificate(self, issuing_country: str, number: str) -> CertificateRecord | None:
        """A certificate of origin the gateway carried, with its history; ``None`` when it carried none."""

    @abc.abstractmethod
    async def certificates(self, query: CertificateQuery) -> list[CertificateSummary]:
        """The certificates of origin matching ``query``, latest status change first (then by issuing country
        and number, descending), at most ``query.limit``."""

    @abc.abstractmethod
    async def search(self, query: MessageQuery) -> list[MessageRecord]:
        """Messages matching ``query``, newest first."""

    @abc.abstractmethod
    async def dead_letters(
        self, *, destination: str | None = None, message_id: str | None = None, limit: int = 1000
    ) -> list[Delivery]:
        """Deliveries in the dead-letter queue, oldest first."""

    @abc.abstractmethod
    async def journal(self, *, after: int = 0, limit: int = 10_000) -> list[JournalEntry]:
        """Journal entries with ``seq > after``, in order."""

    @abc.abstractmethod
    async def journal_head(self) -> JournalEntry | None:
        """The newest journal entry (``None``: the journal is empty)."""

    @abc.abstractmethod
    async def journal_base(self) -> JournalBase:
        """The last pruned journal entry, or ``(0, GENESIS, "")`` when nothing was pruned."""

    @abc.abstractmethod
    async def timestamp_add(self, stamp: StoredTimestamp) -> None:
        """Store one verified timestamp token over the journal head."""

    @abc.abstractmethod
    async def timestamps(self, *, since_seq: int = 0) -> list[StoredTimestamp]:
        """The stored timestamp tokens over entries ``seq >= since_seq``, oldest first."""

    @abc.abstractmethod
    async def finished_messages(self, *, received_before: float, limit: int) -> list[tuple[str, str, float]]:
        """``(id, document_type, received_at)`` of messages received before ``received_before`` with no delivery
        but ``ACKNOWLEDGED`` or ``DEAD`` (and unleased), oldest first: what archiving may take."""

    @abc.abstractmethod
    async def message_payload(self, message_id: str) -> bytes | None:
        """The evidence stored for a message (its payload, or the excerpt of a refused one)."""

    @abc.abstractmethod
    async def prune_archived(self, message_ids: Sequence[str], *, base: JournalBase) -> int:
        """In one transaction: delete the messages, their deliveries and transitions, every journal entry up to
        ``base.seq`` with the operator actions of its ``OPERATOR`` entries, and record ``base``. Returns how many
        messages were deleted."""

    @abc.abstractmethod
    async def evidence_digests(self, entries: Sequence[JournalEntry]) -> dict[int, str | None]:
        """For each entry (by ``seq``): the SHA-256 hex of the evidence the store holds now for it, computed as
        the journal did (an ``ACCEPTED`` entry: the message's payload; a ``DELIVERED`` one: the delivery's payload
        followed by its receipt; an ``OPERATOR`` one: the action's stored record), or ``None`` when that row is
        gone."""

    @abc.abstractmethod
    async def record_operator_action(
        self,
        action: OperatorAction,
        *,
        replays: Sequence[Delivery] = (),
        reference: ReferenceVersion | None = None,
    ) -> JournalEntry:
        """Store ``action``'s record and append its ``OPERATOR`` journal entry, in one transaction with
        ``replays``: dead deliveries brought back (:meth:`~gateway.model.Delivery.replay`), each recorded as
        :meth:`record` does unleased. Returns the entry. When a replay's compare-and-set fails
        (:class:`~gateway.errors.InvalidTransition`: another replay took it first), nothing is written.

        ``reference`` is the policy-list version the action publishes, numbered as the action's record names it:
        stored in the same transaction as :meth:`reference_add` stores one, or refused (nothing is written) by
        :func:`gateway.reference.ownership_refusal`, or by :func:`gateway.reference.numbering_refusal` when
        another publication took that number first (``STORE_CONTENDED``)."""

    @abc.abstractmethod
    async def operator_actions(
        self,
        *,
        operator: str | None = None,
        since: float | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[RecordedAction]:
        """Stored operator actions, newest first: by ``operator``, at or after ``since``, among ``ids``; at most
        ``limit`` (1 to 1000)."""

    @abc.abstractmethod
    async def integrity(self) -> str:
        """A full check of the database's own structures (slow: reads everything): ``"ok"`` or ``"failed: ..."``;
        never raises for a store fault."""

    @abc.abstractmethod
    async def health(self) -> dict[str, str]:
        """Readiness checks, by name, each ``"ok"`` or ``"failed: <reason>"``; never raises for a store fault.

        ``write`` (a write through the writers, rolled back: nothing stays), ``integrity`` (the database is
        sound), ``journal`` (the journal head is readable and hashes to itself), and what else the store can
        check (SQLite: ``free_space`` on the file's file system)."""

    @abc.abstractmethod
    async def stats(self) -> list[DestinationStats]:
        """Delivery counts per destination and state (for /metrics and /readyz)."""

    @abc.abstractmethod
    async def flows(self, since: float, until: float) -> FlowStats:
        """The traffic of ``[since, until)``: per sender, its submissions (by ``received_at``), rejections by code
        and latencies to final receipt; per destination, the receipts verified, attempts failed and deliveries
        dead in the window (by the step's time) and latencies from queued to receipt. Index range scans over the
        window (``messages`` by ``received_at``, ``transitions`` by the partial index of outcome steps), two index
        lookups per queued submission (its deliveries, its transitions) up to :data:`FLOW_SAMPLE` of them; every
        count is exact, percentiles are computed in Python over the newest :data:`FLOW_SAMPLE` latencies."""

    @abc.abstractmethod
    async def procedure_stats(self, since: float, until: float, *, bucket: float = 86400.0) -> list[ProcedureStats]:
        """Per document type, procedure and ``bucket`` seconds of ``[since, until)`` that had submissions: their
        count, rejections and latencies to final receipt (the same bounds as :meth:`flows`)."""

    @abc.abstractmethod
    async def outcomes(self, destinations: Sequence[str]) -> list[DestinationOutcomes]:
        """For each of ``destinations`` that has any, the last verified receipt and the last failed attempt in the
        deliveries' histories (``GET /v1/admin/partners``; two index lookups per destination)."""

    # ---------------------------------------------------------------- adapter state
    #
    # The records behind :class:`gateway.ports.AdapterState` (table ``adapter_state``, primary key
    # ``(namespace, key)``): written through the store's writer, read like everything else, faults translated
    # as for every other method. A record whose ``expires_at`` is not after ``now`` is absent.

    @abc.abstractmethod
    async def state_add(self, namespace: str, key: str, value: bytes, *, expires_at: float, now: float) -> bool:
        """Insert the record unless a live one holds ``(namespace, key)`` (an expired one is replaced): whether
        it was written. Atomic across every node of the store."""

    @abc.abstractmethod
    async def state_put(self, namespace: str, key: str, value: bytes, *, expires_at: float) -> None:
        """Insert or replace the record of ``(namespace, key)``."""

    @abc.abstractmethod
    async def state_replace(
        self, namespace: str, key: str, expected: bytes, value: bytes, *, expires_at: float, now: float
    ) -> bool:
        """Replace the live record of ``(namespace, key)`` whose value is ``expected``: whether it was (not when
        it is gone, expired or holds another value). Atomic across every node of the store."""

    @abc.abstractmethod
    async def state_get(self, namespace: str, key: str, *, now: float) -> bytes | None:
        """The value of the live record of ``(namespace, key)``, if any."""

    @abc.abstractmethod
    async def state_delete(self, namespace: str, key: str) -> None:
        """Remove the record of ``(namespace, key)``, if any."""

    @abc.abstractmethod
    async def state_purge(self, namespace: str, *, now: float) -> int:
        """Remove the expired records of ``namespace``; how many."""

    # ---------------------------------------------------------------- reference lists
    #
    # The versions of the policy lists (:mod:`gateway.reference`, table ``reference_versions``), numbered per list
    # by the store: a version is never changed once written.

    @abc.abstractmethod
    async def reference_add(self, version: ReferenceVersion) -> ReferenceVersion:
        """Store ``version`` as the next version of its list (1 for a new one), atomically across every node:
        the stored version, with its number and ``seq``. A version whose owner is not the list's owner so far is
        refused in that transaction (:func:`gateway.reference.ownership_refusal`, raised; nothing is stored)."""

    @abc.abstractmethod
    async def reference_versions(self, name: str | None = None) -> list[ReferenceVersion]:
        """Every version of the list ``name`` (None: of every list), in order of publication."""

    @abc.abstractmethod
    async def reference_head(self) -> int:
        """The ``seq`` of the version published last (0: none): a cheap test for a newer version."""

    @abc.abstractmethod
    async def disclosures(self, query: DisclosureQuery) -> list[StoredDisclosure]:
        """The disclosures :meth:`accept` recorded that ``query`` selects, newest first (then by ``seq``,
        descending), each with the seq of its ``DISCLOSED`` journal entry."""
