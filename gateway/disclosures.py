"""Disclosures: the record of each delivery that carried only some data elements of a message.

A delivery carries a projection (:mod:`mappings.projection`) when it goes to a subscriber
(``[subscriptions.NAME]``, :mod:`gateway.subscriptions`) or to a destination configured with ``fields``. Each such
delivery is a :class:`Disclosure`: which message, to whom, under which subscription and legal basis, the fields
configured, the fields the message actually carried among them (what was disclosed), the SHA-256 of the delivered
bytes, and when.

The store writes it in the transaction that accepts the message (:meth:`gateway.store.base.Store.accept`,
``disclosures=``), with a ``DISCLOSED`` journal entry per disclosure whose digest is the SHA-256 of
:meth:`Disclosure.record` (the canonical JSON the store keeps): ``nswgw log verify`` finds a record edited behind
the chain's back (``evidence-replaced``). The operator API lists them at ``GET /v1/admin/disclosures``
(:mod:`gateway.disclosures_api`) and the console at ``/console/disclosures``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.journal import DISCLOSED

__all__ = ["DISCLOSED", "Disclosure", "DisclosureQuery", "StoredDisclosure"]


@dataclass(frozen=True)
class Disclosure:
    """Some data elements of one message delivered to one destination."""

    message_id: str
    """The gateway id of the message."""
    destination: str
    """The recipient: the subscription's destination, or the destination configured with ``fields``."""
    subscription: str | None
    """The ``[subscriptions.NAME]`` the delivery was made for; None for a destination's own ``fields``."""
    legal_basis: str | None
    """The legal basis configured for the subscription (or the destination's ``legal_basis``); None when a
    destination with ``fields`` states none."""
    fields: tuple[str, ...]
    """The harmonized paths the recipient may see (a subscription's intersected with its destination's)."""
    disclosed: tuple[str, ...]
    """Those of :attr:`fields` the message carried a value for: what the recipient actually received."""
    sha256: str
    """SHA-256 (hex) of the delivered bytes (as mapped and signed; the ``PayloadDigest`` of a signed receipt)."""
    at: float
    """When the delivery was queued (the acceptance of the message)."""
    sender: str = ""
    document_type: str = ""

    def record(self) -> bytes:
        """The canonical JSON (sorted keys, no spaces, UTF-8) the store keeps and the journal digests."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message_id,
            "destination": self.destination,
            "subscription": self.subscription,
            "legal_basis": self.legal_basis,
            "fields": list(self.fields),
            "disclosed": list(self.disclosed),
            "sha256": self.sha256,
            "at": self.at,
            "sender": self.sender,
            "document_type": self.document_type,
        }

    @classmethod
    def from_record(cls, data: bytes) -> Disclosure:
        """The disclosure of a stored record; ``ValueError`` when it is not one."""
        try:
            body = json.loads(data)
            return cls(
                message_id=str(body["message"]),
                destination=str(body["destination"]),
                subscription=None if body["subscription"] is None else str(body["subscription"]),
                legal_basis=None if body["legal_basis"] is None else str(body["legal_basis"]),
                fields=tuple(str(f) for f in body["fields"]),
                disclosed=tuple(str(f) for f in body["disclosed"]),
                sha256=str(body["sha256"]),
                at=float(body["at"]),
                sender=str(body.get("sender", "")),
                document_type=str(body.get("document_type", "")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a disclosure record: {exc}") from exc


@dataclass(frozen=True)
class DisclosureQuery:
    """A page of :meth:`gateway.store.base.Store.disclosures`: newest first (then by seq, descending)."""

    destination: str | None = None
    subscription: str | None = None
    message: str | None = None
    since: float | None = None
    until: float | None = None
    after: tuple[float, int] | None = None
    """The ``(at, seq)`` of the last disclosure of the previous page: this page starts after it."""
    limit: int = 100


@dataclass(frozen=True)
class StoredDisclosure:
    """A disclosure as the store holds it: its row order and its journal entry."""

    seq: int
    disclosure: Disclosure
    journal_seq: int | None
    """The seq of its ``DISCLOSED`` journal entry (None once the entry was pruned into an archive)."""
