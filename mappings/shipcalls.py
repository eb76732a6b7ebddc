"""What a harmonized message says about a ship call: a declaration (or an amendment) and the part of it each agency
sees, or an agency's decision on one (:func:`ship_call_facts`).

The part an agency sees is :func:`~mappings.projection.project` of the message with the agency's ``fields``
(the whole message without them). Two versions of a call give an agency the same part when the digests of the
parts (:func:`part_digest`) are equal; what only tells versions apart (the routing envelope, the document
header, the call's own ``reference`` and ``amends``) is left out of the digest, so an amendment reaches only the
agencies whose data it changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from gateway.shipcalls import ShipCallFacts
from mappings.model import TradeMessage
from mappings.projection import project

__all__ = ["AMENDED", "part_digest", "ship_call_facts"]

AMENDED = "02"
"""The envelope function of an amendment under the call's own reference (the VNSW ``KHAI_SUA``)."""


def part_digest(msg: TradeMessage, fields: tuple[str, ...] | None) -> str:
    """SHA-256 (hex) of the part of ``msg`` an agency with ``fields`` sees, without what only names the version."""
    part = msg if fields is None else project(msg, fields)
    call = part.ship_call
    if call is not None:
        call = call.model_copy(update={"reference": None, "amends": None})
    bare = part.model_copy(update={"envelope": None, "document": None, "ship_call": call})
    data = bare.model_dump_json(exclude_none=True, exclude_defaults=True).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def ship_call_facts(msg: TradeMessage, parts: Mapping[str, tuple[str, ...] | None]) -> ShipCallFacts | None:
    """What ``msg`` says about a ship call, with the digest of each agency's part (``parts``: destination →
    its ``fields``); ``None`` for a message about no ship call, and for an authority's order about the ship that
    carries ship-call data beside its ``permit`` (a port clearance, port entry permit, shifting order or transit
    permission of the maritime administration): that is a document of its own, not a version of the call."""
    call, decision = msg.ship_call, msg.ship_call_decision
    if call is not None and msg.permit is None:
        return ShipCallFacts(
            kind="call",
            reference=call.reference or None,
            amends=call.amends,
            amended=msg.envelope is not None and msg.envelope.function == AMENDED,
            digests={name: part_digest(msg, fields) for name, fields in parts.items()},
        )
    if decision is not None:
        return ShipCallFacts(
            kind="decision",
            reference=decision.call or None,
            answer=decision.answer.value if decision.answer is not None else None,
            reasons=decision.reasons,
            conditions=decision.conditions,
        )
    return None
