"""Ship calls: one declaration by a shipping agent, every agency its part, one decision (docs/ship-calls.md).

A shipping agent (an intermediary, delegated by the shipowner) declares a ship call once: a message with
``ship_call`` data, whose ``ship_call.reference`` names the call. The routes send it to the agencies (port
authority, border guard, health, customs, quarantine), each a destination with its ``fields`` (its part,
projected from the harmonized model, in its own format). What the gateway keeps about the call
(:class:`ShipCallRecord`, written by :meth:`Store.accept <gateway.store.base.Store.accept>` in the transaction
that accepts the message: :class:`ShipCallAct`):

* its **versions**: the declaration, then each amendment (``ship_call.amends`` naming the current version,
  ``ship_call.reference`` its own new reference), from the call's agent only;
* per **agency** (destination): the digest of the part it last received (:func:`mappings.shipcalls.part_digest`),
  the version that part came with, and its answer. An amendment is delivered only to the agencies whose part
  changed; their earlier answers no longer count, the others' stand;
* its **overall status** by the rule of its procedure (``[ship_calls.PROCEDURE]``, chosen by ``X-Procedure``):
  ``SUBMITTED`` until an agency answers, ``PENDING_AGENCIES`` while a required one has not agreed, the procedure's
  ``refused`` status once a required agency refused, its ``granted`` status (``conditional`` when one agreed with
  conditions) once every required one agreed;
* its **history**: one event per version and per answer, with the status it left.

An agency answers with a message with ``ship_call_decision`` data naming the version it decides on
(``ship_call_decision.call``). Refused, with nothing stored: a decision about a call the gateway does not hold
(``SHIP_CALL_UNKNOWN``), from a party that answers for none of the call's agencies (``SHIP_CALL_NOT_PARTY``), or
about a version older than the part the agency last received (``SHIP_CALL_SUPERSEDED``).

Every change of the overall status is notified to the agent: a JSON delivery (:func:`notification`) to each
destination the agent answers for (``destinations.NAME.party``, else the one named like it), queued in the same
transaction, in the call's conversation so that the agent receives the statuses in order.

Concurrency: :meth:`ShipCalls.admit` plans the change from the record as read, and the store applies it only if
the record is still at the revision read (compare-and-set: ``STORE_CONTENDED`` otherwise, nothing written); the
broker then plans again from the new record. Two agencies answering at once both count, and an amendment and a
decision at the same time are applied one after the other, whichever order they commit in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from gateway.errors import ShipCallDuplicate, ShipCallInvalid, ShipCallNotParty, ShipCallSuperseded, ShipCallUnknown
from gateway.model import Delivery, Message

if TYPE_CHECKING:
    from gateway.config import Config, ShipCallSettings
    from mappings.model import TradeMessage

__all__ = [
    "PENDING",
    "SUBMITTED",
    "AgencyPart",
    "ShipCallAct",
    "ShipCallEvent",
    "ShipCallFacts",
    "ShipCallRecord",
    "ShipCallVersion",
    "ShipCalls",
    "notification",
    "overall_status",
    "ship_call_facts",
]

SUBMITTED = "SUBMITTED"
"""The status of a call no agency has answered yet (for its current parts)."""
PENDING = "PENDING_AGENCIES"
"""The status of a call some agency answered while a required one has not agreed yet."""
ACCEPTED, CONDITIONS, REFUSED = "accepted", "accepted_with_conditions", "refused"
ANSWERS = (ACCEPTED, CONDITIONS, REFUSED)
NOTIFICATION_TYPE = "application/json"


@dataclass(frozen=True)
class ShipCallFacts:
    """What a document says about a ship call (:meth:`gateway.ports.Mapper.ship_call`)."""

    kind: Literal["call", "decision"]
    reference: str | None
    """A declaration's own reference (``ship_call.reference``), or the version a decision is about."""
    amends: str | None = None
    """For an amendment: the reference of the version it amends (``ship_call.amends``)."""
    amended: bool = False
    """An amendment under the call's own reference (a VNSW envelope of function ``02``)."""
    digests: Mapping[str, str] = field(default_factory=dict)
    """Per routed destination: the digest of its part of a declaration."""
    answer: str | None = None
    """A decision's answer: one of :data:`ANSWERS`."""
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgencyPart:
    """One agency of a call: the part it received last and its answer for it."""

    agency: str
    """The destination it receives at."""
    party: str
    """The party that answers for it."""
    required: bool
    digest: str
    version: int
    """The version of the call its current part came with."""
    answer: str | None = None
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    answered_version: int | None = None
    answered_at: float | None = None
    answer_message: str | None = None


@dataclass(frozen=True)
class ShipCallVersion:
    reference: str
    version: int
    message: str
    """The gateway id of the message that declared it."""
    at: float


@dataclass(frozen=True)
class ShipCallEvent:
    """One step of a call's history."""

    seq: int
    at: float
    kind: Literal["submitted", "amended", "answered"]
    status: str
    """The overall status after it."""
    message: str
    party: str
    version: int
    agency: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShipCallRecord:
    """A ship call as the gateway keeps it."""

    reference: str
    """The call's reference: that of its first version."""
    procedure: str
    agent: str
    """The party that declared it (the only one that may amend it)."""
    on_behalf_of: str | None
    status: str
    version: int
    current: str
    """The reference of the current version."""
    revision: int
    """Incremented by every change (the compare-and-set of :class:`ShipCallAct`)."""
    updated_at: float
    agencies: tuple[AgencyPart, ...] = ()
    versions: tuple[ShipCallVersion, ...] = ()
    events: tuple[ShipCallEvent, ...] = ()

    def version_of(self, reference: str, *, message: str | None = None) -> int | None:
        """The version a decision about ``reference`` answers: the one delivered as gateway message ``message``
        (the decision's ``X-Reference``) if that is a version of the call, else the latest version of that
        reference (a VNSW amendment keeps the call's reference)."""
        found = [v.version for v in self.versions if v.reference == reference]
        by_message = [v.version for v in self.versions if message is not None and v.message == message]
        if by_message:
            return by_message[0]
        return max(found) if found else None

    def involves(self, party: str) -> bool:
        """Whether ``party`` may read the call: its agent or a party answering for one of its agencies."""
        return party == self.agent or any(a.party == party for a in self.agencies)

    def to_dict(self) -> dict[str, Any]:
        """The view of ``GET /v1/ship-calls/{reference}``."""
        from gateway.wire import iso_utc

        numbers = {v.version: v.reference for v in self.versions}
        return {
            "reference": self.reference,
            "procedure": self.procedure,
            "agent": self.agent,
            "on_behalf_of": self.on_behalf_of,
            "status": self.status,
            "version": self.current,
            "updated_at": iso_utc(self.updated_at),
            "agencies": [
                {
                    "agency": a.agency,
                    "party": a.party,
                    "required": a.required,
                    "part_version": numbers.get(a.version),
                    "answer": a.answer,
                    "reasons": list(a.reasons),
                    "conditions": list(a.conditions),
                    "answered_at": iso_utc(a.answered_at) if a.answered_at is not None else None,
                }
                for a in self.agencies
            ],
            "versions": [{"reference": v.reference, "message": v.message, "at": iso_utc(v.at)} for v in self.versions],
            "history": [
                {
                    "at": iso_utc(e.at),
                    "event": e.kind,
                    "status": e.status,
                    "version": numbers.get(e.version),
                    "party": e.party,
                    "agency": e.agency,
                    "message": e.message,
                    **({"detail": dict(e.detail)} if e.detail else {}),
                }
                for e in self.events
            ],
        }


@dataclass(frozen=True)
class ShipCallAct:
    """What an accepted message does to a ship call: :attr:`record` is the call after it, written by
    :meth:`Store.accept <gateway.store.base.Store.accept>` in the message's transaction if the stored call is
    still at revision :attr:`expected` (``None``: no call of that reference exists yet), else ``STORE_CONTENDED``
    and nothing is written."""

    record: ShipCallRecord
    """The call after the act (``revision`` already incremented; ``versions`` and ``events`` only the new ones)."""
    expected: int | None


def ship_call_facts(msg: TradeMessage | None, parts: Mapping[str, tuple[str, ...] | None]) -> ShipCallFacts | None:
    """What the harmonized message ``msg`` says about a ship call (:func:`mappings.shipcalls.ship_call_facts`:
    ``parts`` maps each routed destination to the ``fields`` it sees); ``None`` for any other message."""
    if msg is None or (msg.ship_call is None and msg.ship_call_decision is None):
        return None
    from mappings.shipcalls import ship_call_facts as read

    return read(msg, parts)


def _rule(config: Config, record: ShipCallRecord) -> ShipCallSettings:
    """The rule of ``record``'s procedure; ``SHIP_CALL_INVALID`` once a reload removed it."""
    settings = config.ship_calls.get(record.procedure)
    if settings is None:
        raise ShipCallInvalid(
            f"ship call {record.reference} was declared under procedure {record.procedure}, which [ship_calls] no"
            " longer has",
            field="X-Procedure",
            details={"procedure": record.procedure, "known": sorted(config.ship_calls)},
        )
    return settings


def overall_status(settings: ShipCallSettings, agencies: Sequence[AgencyPart]) -> str:
    """The overall status of a call with these agencies by its procedure's rule."""
    answers = {a.agency: a.answer for a in agencies}
    required = [answers.get(name) for name in settings.required]
    if REFUSED in required:
        return settings.refused
    if all(a in (ACCEPTED, CONDITIONS) for a in required):
        if CONDITIONS in required and settings.conditional is not None:
            return settings.conditional
        return settings.granted
    if any(a is not None for a in answers.values()):
        return PENDING
    return SUBMITTED


def notification(record: ShipCallRecord, previous: str | None, event: ShipCallEvent) -> bytes:
    """The status notification the agent receives when ``record``'s status changed from ``previous``."""
    from gateway.wire import iso_utc

    body = {
        "ship_call": record.reference,
        "version": record.current,
        "status": record.status,
        "previous_status": previous,
        "sequence": event.seq,
        "at": iso_utc(event.at),
        "event": event.kind,
        "agency": event.agency,
        "agencies": {a.agency: a.answer for a in record.agencies},
        **({"detail": dict(event.detail)} if event.detail else {}),
    }
    return json.dumps(body, indent=2, sort_keys=True).encode("utf-8") + b"\n"


class ShipCalls:
    """Plans what a submission does to its ship call (:meth:`admit`), from the record as stored."""

    def parts(self, config: Config, destinations: Sequence[str]) -> dict[str, tuple[str, ...] | None]:
        """Each routed destination's ``fields``: the parts whose digests a declaration carries."""
        return {name: config.destinations[name].fields for name in destinations}

    def admit(
        self,
        config: Config,
        facts: ShipCallFacts,
        record: ShipCallRecord | None,
        message: Message,
        deliveries: Sequence[Delivery],
        *,
        at: float,
    ) -> tuple[list[Delivery], ShipCallAct | None]:
        """The deliveries ``message`` keeps (an amendment: those to the agencies whose part changed, each in the
        call's conversation) plus the agent's status notification if the status changes, and the act to record;
        ``None`` for a resubmission of a message the call already holds. Raises the ``SHIP_CALL_*`` refusals."""
        if record is not None and any(e.message == message.id for e in record.events):
            return list(deliveries), None  # the same message again: the store answers with the original
        if facts.kind == "call":
            return self._declaration(config, facts, record, message, deliveries, at=at)
        return self._decision(config, facts, record, message, deliveries, at=at)

    def _declaration(
        self,
        config: Config,
        facts: ShipCallFacts,
        record: ShipCallRecord | None,
        message: Message,
        deliveries: Sequence[Delivery],
        *,
        at: float,
    ) -> tuple[list[Delivery], ShipCallAct | None]:
        env = message.envelope
        if not facts.reference:
            raise ShipCallInvalid("a ship call names its reference", field="ship_call.reference")
        amends = facts.amends or (facts.reference if facts.amended else None)
        if amends is None:
            if record is not None:
                raise ShipCallDuplicate(
                    f"ship call {facts.reference} is already declared (by {record.agent}): amend it",
                    field="ship_call.reference",
                    details={"reference": facts.reference},
                )
            procedure = env.procedure
            settings = config.ship_calls.get(procedure) if procedure is not None else None
            if procedure is None or settings is None:
                raise ShipCallInvalid(
                    "a ship call is declared under a procedure of [ship_calls] (X-Procedure): "
                    + ", ".join(sorted(config.ship_calls)),
                    field="X-Procedure",
                    details={"procedure": procedure, "known": sorted(config.ship_calls)},
                )
            first = tuple(
                AgencyPart(
                    agency=d.destination,
                    party=config.destinations[d.destination].party or d.destination,
                    required=d.destination in settings.required,
                    digest=facts.digests[d.destination],
                    version=1,
                )
                for d in deliveries
                if d.destination in facts.digests
            )
            status = overall_status(settings, first)
            event = ShipCallEvent(1, at, "submitted", status, message.id, env.sender, 1)
            new = ShipCallRecord(
                reference=facts.reference,
                procedure=procedure,
                agent=env.sender,
                on_behalf_of=env.on_behalf_of,
                status=status,
                version=1,
                current=facts.reference,
                revision=1,
                updated_at=at,
                agencies=first,
                versions=(ShipCallVersion(facts.reference, 1, message.id, at),),
                events=(event,),
            )
            kept = [replace(d, conversation=new.reference) if d.destination in facts.digests else d for d in deliveries]
            return self._notified(config, kept, new, None, event, message, at), ShipCallAct(new, None)
        if record is None:
            raise ShipCallUnknown(
                f"the gateway holds no ship call {amends} to amend",
                field="ship_call.amends",
                details={"reference": amends},
            )
        if env.sender != record.agent:
            raise ShipCallNotParty(
                f"ship call {record.reference} was declared by {record.agent}: only its agent amends it",
                field="ship_call.amends",
                details={"reference": record.reference, "agent": record.agent},
            )
        if amends != record.current:
            raise ShipCallSuperseded(
                f"{amends} is not the current version of ship call {record.reference} ({record.current}):"
                " amend that one",
                field="ship_call.amends",
                details={"reference": record.reference, "current": record.current},
            )
        if facts.amends is not None and record.version_of(facts.reference) is not None:
            raise ShipCallDuplicate(
                f"ship call {record.reference} already has a version {facts.reference}: give the amendment its own"
                " reference",
                field="ship_call.reference",
                details={"reference": facts.reference},
            )
        settings = _rule(config, record)
        version = record.version + 1
        known = {a.agency: a for a in record.agencies}
        routed = {d.destination: d for d in deliveries if d.destination in facts.digests}
        others = [d for d in deliveries if d.destination not in facts.digests]  # subscribers: not agencies
        parts: dict[str, AgencyPart] = {}
        changed: list[str] = []
        for name in routed:
            digest = facts.digests[name]
            old = known.get(name)
            if old is None or old.digest != digest:
                changed.append(name)
                party = config.destinations[name].party or name
                parts[name] = AgencyPart(name, party, name in settings.required, digest, version)
        if not changed:
            raise ShipCallInvalid(
                f"this amendment of ship call {record.reference} changes nothing any of its agencies receives",
                field="ship_call",
                details={"reference": record.reference, "current": record.current},
            )
        agencies = [parts.pop(a.agency, a) for a in record.agencies] + list(parts.values())
        status = overall_status(settings, agencies)
        event = ShipCallEvent(
            len(record.events) + 1,
            at,
            "amended",
            status,
            message.id,
            env.sender,
            version,
            detail={"delivered_to": changed},
        )
        new = replace(
            record,
            status=status,
            version=version,
            current=facts.reference,
            revision=record.revision + 1,
            updated_at=at,
            agencies=tuple(agencies),
            versions=(ShipCallVersion(facts.reference, version, message.id, at),),
            events=(event,),
        )
        kept = [replace(routed[name], conversation=record.reference) for name in changed] + others
        return self._notified(config, kept, new, record.status, event, message, at), ShipCallAct(new, record.revision)

    def _decision(
        self,
        config: Config,
        facts: ShipCallFacts,
        record: ShipCallRecord | None,
        message: Message,
        deliveries: Sequence[Delivery],
        *,
        at: float,
    ) -> tuple[list[Delivery], ShipCallAct | None]:
        sender = message.envelope.sender
        if facts.answer not in ANSWERS:
            raise ShipCallInvalid("a decision on a ship call gives its answer", field="ship_call_decision.answer")
        if not facts.reference:
            raise ShipCallInvalid("a decision names the ship call it is about", field="ship_call_decision.call")
        answered = message.envelope.reference
        version = record.version_of(facts.reference, message=answered) if record is not None else None
        if record is None or version is None:
            raise ShipCallUnknown(
                f"the gateway holds no ship call {facts.reference}",
                field="ship_call_decision.call",
                details={"reference": facts.reference},
            )
        mine = [a for a in record.agencies if a.party == sender]
        if not mine:
            raise ShipCallNotParty(
                f"{sender} answers for none of the agencies of ship call {record.reference}"
                f" ({', '.join(a.agency for a in record.agencies)})",
                field="ship_call_decision.call",
                details={"reference": record.reference, "agencies": [a.agency for a in record.agencies]},
            )
        stale = [a for a in mine if version < a.version]
        if stale:
            numbers = {v.version: v.reference for v in record.versions}
            raise ShipCallSuperseded(
                f"{facts.reference} is superseded for {stale[0].agency}: its part of ship call {record.reference}"
                f" changed with {numbers.get(stale[0].version)}; decide on that version",
                field="ship_call_decision.call",
                details={"reference": record.reference, "current": numbers.get(stale[0].version)},
            )
        deciding = {a.agency for a in mine}
        agencies = tuple(
            replace(
                a,
                answer=facts.answer,
                reasons=facts.reasons,
                conditions=facts.conditions,
                answered_version=version,
                answered_at=at,
                answer_message=message.id,
            )
            if a.agency in deciding
            else a
            for a in record.agencies
        )
        status = overall_status(_rule(config, record), agencies)
        detail: dict[str, Any] = {"answer": facts.answer}
        if facts.reasons:
            detail["reasons"] = list(facts.reasons)
        if facts.conditions:
            detail["conditions"] = list(facts.conditions)
        event = ShipCallEvent(
            len(record.events) + 1,
            at,
            "answered",
            status,
            message.id,
            sender,
            version,
            agency=",".join(sorted(deciding)),
            detail=detail,
        )
        new = replace(
            record,
            status=status,
            revision=record.revision + 1,
            updated_at=at,
            agencies=agencies,
            versions=(),
            events=(event,),
        )
        kept = self._notified(config, list(deliveries), new, record.status, event, message, at)
        return kept, ShipCallAct(new, record.revision)

    def _notified(
        self,
        config: Config,
        deliveries: list[Delivery],
        record: ShipCallRecord,
        previous: str | None,
        event: ShipCallEvent,
        message: Message,
        at: float,
    ) -> list[Delivery]:
        """``deliveries`` with the agent's status notification, if the status changed (a delivery already routed
        to an agent's destination becomes the notification)."""
        if record.status == previous:
            return deliveries
        body = notification(record, previous, event)
        agent = [name for name, dest in config.destinations.items() if (dest.party or name) == record.agent]
        kept = [d for d in deliveries if d.destination not in agent]
        for name in agent:
            delivery = Delivery.create(
                message, name, body, content_type=NOTIFICATION_TYPE, at=at, ttl=config.destinations[name].retry.ttl
            )
            kept.append(replace(delivery, conversation=record.reference))
        return kept
