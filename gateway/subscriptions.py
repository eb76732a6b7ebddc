"""Agency subscriptions: who else receives a message, and which of its data elements (data minimisation).

An agency outside a procedure (market surveillance, the police, the border guard) is a ``[subscriptions.NAME]``
of the configuration (:class:`~gateway.config.SubscriptionSettings`): a configured destination (its endpoint,
format, adapter, signing and receipts), the legal basis it receives under, the document types it may receive,
filters, and the harmonized ``fields`` it may see. After normal routing (:class:`gateway.routing.Router`), a
message that a subscription matches is also delivered to the subscription's destination, projected to its fields
(intersected with the destination's own ``fields`` when it has them: :func:`allowed`), through the same durable,
signed and retrying delivery path as every other delivery.

Matching (:func:`plan`), per subscription in the order of the configuration; the first that matches a
destination wins it (one delivery per destination and message):

* ``document_types``: the message's declared type is one of them (``*``: any);
* ``senders``: the submitting party is one of them (empty: any);
* ``hs_chapters``: some goods item's HS code starts with one of these two-digit chapters (empty: any; a message
  with no HS code matches no chapter);
* ``ports``: some place of the message is one of these, by UN/LOCODE or native code or name, compared without
  case (:func:`places`: the port of discharge, each goods item's port of entry, the permit's border gates, a ship
  call's port of call; empty: any).

A subscription whose destination the message is already routed to adds nothing (that destination receives what
its route gives it). A document that cannot be read into the harmonized model (pass-through XML, a procedure
without a mapping) matches no subscription: it cannot be cut to fields. A subscription never refuses a submission
that routing accepted: when the subscriber's format cannot write its projection (a strict native format missing
elements it requires), that subscriber gets nothing of this message, which says so in the ``MAPPED`` step of its
history (:meth:`Plan.note`; logged on ``nswgw.subscriptions``).

Every delivery that carries a projection (a subscription's, or a destination configured with ``fields``) is a
:class:`~gateway.disclosures.Disclosure` (:meth:`Plan.disclosures`), recorded with the message.

A subscription change (``POST /v1/admin/reload``, SIGHUP) applies from the next submission; deliveries already
queued keep the bytes projected when their message was accepted.

Everything here runs inside :meth:`gateway.broker.Broker._process` with the configuration and the mapper only,
and returns frozen data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.config import Config, SubscriptionSettings
from gateway.disclosures import Disclosure
from gateway.errors import ClientError
from gateway.model import Delivery, SubmissionEnvelope
from mappings.model import TradeMessage
from mappings.projection import present
from signing.xml import payload_sha256

__all__ = ["Plan", "allowed", "matches", "places", "plan"]

log = logging.getLogger("nswgw.subscriptions")

Projector = Callable[[TradeMessage, str, tuple[str, ...]], bytes]
"""``project(message, target_format, fields)``: the harmonized message written in ``target_format`` with only
``fields`` (:meth:`gateway.ports.Mapper.write`)."""


def allowed(subscribed: Sequence[str], destination: Sequence[str] | None) -> tuple[str, ...]:
    """The paths of ``subscribed`` that ``destination`` (a destination's own ``fields``; None: everything) also
    lets through: a path under one of the destination's, or one of the destination's under a wider subscribed
    path."""
    if destination is None:
        return tuple(dict.fromkeys(subscribed))

    def under(path: str, wider: str) -> bool:
        return path == wider or path.startswith(wider + ".")

    kept = [p for p in subscribed if any(under(p, d) for d in destination)]
    kept += [d for d in destination if any(under(d, p) and d != p for p in subscribed)]
    return tuple(dict.fromkeys(kept))


def _split(text: str) -> list[str]:
    for sep in ";|/":
        text = text.replace(sep, ",")
    return [part.strip() for part in text.split(",") if part.strip()]


def places(msg: TradeMessage) -> frozenset[str]:
    """The ports and border gates a message names (codes and names, upper-cased): the port of discharge, each goods
    item's port of entry, the permit's border gates (a list separated by ``,``, ``;``, ``|`` or ``/``) and a ship
    call's port of call."""
    found: list[str | None] = []
    transport = msg.transport
    if transport is not None and transport.port_of_discharge is not None:
        found += [transport.port_of_discharge.code, transport.port_of_discharge.name]
    for item in msg.goods:
        if item.destination_port is not None:
            found += [item.destination_port.code, item.destination_port.name]
    if msg.permit is not None and msg.permit.border_gates:
        found += _split(msg.permit.border_gates)
    if msg.ship_call is not None and msg.ship_call.voyage is not None:
        found.append(msg.ship_call.voyage.port_of_call)
    return frozenset(p.strip().upper() for p in found if p and p.strip())


def _chapters(msg: TradeMessage) -> frozenset[str]:
    return frozenset(item.hs_code[:2] for item in msg.goods if item.hs_code and len(item.hs_code) >= 2)


def matches(
    subscription: SubscriptionSettings, envelope: SubmissionEnvelope, harmonized: Callable[[], TradeMessage | None]
) -> TradeMessage | None:
    """The harmonized message when ``subscription`` takes ``envelope``'s message, else None. ``harmonized`` reads
    the message (once, by the caller's cache) only when the envelope alone does not already rule it out."""
    if "*" not in subscription.document_types and envelope.document_type not in subscription.document_types:
        return None
    if subscription.senders and envelope.sender not in subscription.senders:
        return None
    msg = harmonized()
    if msg is None:
        return None
    if subscription.hs_chapters and not (_chapters(msg) & set(subscription.hs_chapters)):
        return None
    if subscription.ports and not (places(msg) & {p.upper() for p in subscription.ports}):
        return None
    return msg


@dataclass(frozen=True)
class _Recipient:
    destination: str
    subscription: str | None
    legal_basis: str | None
    fields: tuple[str, ...]
    disclosed: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What subscriptions and projecting destinations add to one routed message."""

    destinations: tuple[str, ...] = ()
    """The subscribers' destinations, after the routed ones (none of them routed already)."""
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The fields each subscriber's destination receives (instead of the destination's own ``fields``)."""
    recipients: tuple[_Recipient, ...] = ()
    bodies: Mapping[tuple[str, tuple[str, ...] | None], bytes] = field(default_factory=dict)
    """The subscribers' projections already written, by ``(target format, fields)``: the broker maps each once."""
    skipped: tuple[tuple[str, str], ...] = ()
    """``(subscription, error code)`` of each subscriber whose format could not write its projection."""

    def note(self) -> str | None:
        """What the message's history says of :attr:`skipped` (None: nothing skipped)."""
        if not self.skipped:
            return None
        said = ", ".join(f"{name} ({code})" for name, code in self.skipped)
        return f"not delivered to subscription {said}: its format cannot carry these fields of this document"

    def fields_for(self, destination: str, configured: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """The fields ``destination`` receives: a subscription's, else its ``configured`` ones (None: all)."""
        return self.fields.get(destination, configured)

    def disclosures(self, deliveries: Iterable[Delivery]) -> tuple[Disclosure, ...]:
        """One :class:`~gateway.disclosures.Disclosure` per delivery of ``deliveries`` that carries a projection,
        with the SHA-256 of the bytes it delivers."""
        by_destination = {d.destination: d for d in deliveries}
        out = []
        for r in self.recipients:
            delivery = by_destination.get(r.destination)
            if delivery is None:
                continue
            out.append(
                Disclosure(
                    message_id=delivery.message_id,
                    destination=r.destination,
                    subscription=r.subscription,
                    legal_basis=r.legal_basis,
                    fields=r.fields,
                    disclosed=r.disclosed,
                    sha256=payload_sha256(delivery.body).hex(),
                    at=delivery.queued_at,
                    sender=delivery.sender,
                    document_type=delivery.document_type,
                )
            )
        return tuple(out)


NOTHING = Plan()
"""The plan of a message no subscription takes and that goes to no destination with ``fields``."""


def plan(
    config: Config,
    envelope: SubmissionEnvelope,
    routed: Sequence[str],
    harmonized: Callable[[], TradeMessage | None],
    project: Projector,
) -> Plan:
    """The subscribers of ``envelope``'s message (routed to ``routed``) and every projected delivery's
    disclosure. ``harmonized`` reads the message into the harmonized model (None when it cannot be); it is called
    at most once, and only when a subscription or a destination with ``fields`` needs it. ``project`` writes each
    subscriber's projection (a subscriber whose format refuses it is :attr:`Plan.skipped`)."""
    cache: list[TradeMessage | None] = []

    def read() -> TradeMessage | None:
        if not cache:
            cache.append(harmonized())
        return cache[0]

    recipients: list[_Recipient] = []
    for name in routed:
        dest = config.destinations[name]
        if dest.fields is not None:
            msg = read()
            disclosed = present(msg, dest.fields) if msg is not None else ()
            recipients.append(_Recipient(name, None, dest.legal_basis, dest.fields, disclosed))
    taken = set(routed)
    added: list[str] = []
    fields: dict[str, tuple[str, ...]] = {}
    bodies: dict[tuple[str, tuple[str, ...] | None], bytes] = {}
    skipped: list[tuple[str, str]] = []
    for sub_name, sub in config.subscriptions.items():
        if sub.destination in taken:
            continue
        msg = matches(sub, envelope, read)
        if msg is None:
            continue
        paths = allowed(sub.fields, config.destinations[sub.destination].fields)
        if not paths:
            continue  # the destination lets through none of the subscribed elements
        target = config.destinations[sub.destination].format
        target = envelope.format if target == "same" else target
        if (target, paths) not in bodies:
            try:
                bodies[target, paths] = project(msg, target, paths)
            except (ClientError, ValueError) as exc:  # a model the projection leaves invalid too
                log.warning("subscription %s: %s cannot carry %s of this document: %s", sub_name, target, paths, exc)
                skipped.append((sub_name, exc.code if isinstance(exc, ClientError) else "VALIDATION_FAILED"))
                continue
        taken.add(sub.destination)
        added.append(sub.destination)
        fields[sub.destination] = paths
        recipients.append(_Recipient(sub.destination, sub_name, sub.legal_basis, paths, present(msg, paths)))
    if not recipients and not skipped:
        return NOTHING
    return Plan(tuple(added), fields, tuple(recipients), bodies, tuple(skipped))
