"""The small ports the broker core is built against, with their default implementations.

* :class:`Verifier`: checks what a sender submitted and returns **what was
  verified** (downstream code reads only :attr:`VerifiedMessage.content`).
  :class:`NullVerifier` (verification off: pass-through, used by the
  benchmark's baseline), :class:`WellFormedVerifier` (hardened parse only, no
  signature) and :class:`DocumentVerifier`, the adapter onto
  ``signing.verify.verify_document(data, policy) -> VerifyResult``.
* :class:`Signer`: signs what the gateway sends. :class:`NullSigner`
  (signing off) and :class:`DocumentSigner`, the adapter onto
  ``signing.sign.sign_document(data, signer, profile) -> bytes``.
* :class:`Mapper`: converts between registered formats.
  :class:`IdentityMapper` (same format in and out).
* :class:`ReceiptVerifier`: decides whether a receiver's receipt
  acknowledges the delivered message. :class:`MessageIdReceiptVerifier`
  checks that it names the message id that was sent.

Wiring the signing layer, once it exists, is a few lines::

    from signing.verify import verify_document
    from signing.sign import sign_document
    verifier = DocumentVerifier(verify_document, policies={"MOIT": moit_policy, ...})
    signer = DocumentSigner(sign_document, key_signer, profile)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gateway.errors import ConfigError, ReceiptInvalid
from gateway.model import PartyId
from signing.xml import parse_xml, serialize

__all__ = [
    "VerifiedMessage",
    "Verifier",
    "NullVerifier",
    "WellFormedVerifier",
    "DocumentVerifier",
    "Signer",
    "NullSigner",
    "DocumentSigner",
    "Mapper",
    "IdentityMapper",
    "Receipt",
    "ReceiptVerifier",
    "MessageIdReceiptVerifier",
]


@dataclass(frozen=True)
class VerifiedMessage:
    """What verification vouches for."""

    content: bytes
    """The verified document (for a signed one: the signed element, serialized). Process only this."""
    sender: PartyId
    certificate: Any | None = None
    """The signer's certificate (``cryptography.x509.Certificate``) when a signature was verified."""


@runtime_checkable
class Verifier(Protocol):
    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        """Return what was verified, or raise a :class:`~gateway.errors.ClientError` (XML_*, SIG_*, CERT_*)."""
        ...


class NullVerifier:
    """Verification switched off: the bytes pass through unchecked (benchmark baseline, trusted test rigs)."""

    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        return VerifiedMessage(content=raw, sender=sender)


class WellFormedVerifier:
    """No signature check, but the document must pass the hardened parser (``XML_*`` errors otherwise)."""

    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        parse_xml(raw)
        return VerifiedMessage(content=raw, sender=sender)


class DocumentVerifier:
    """Adapter onto the signing layer: ``verify_document(data, policy)`` with the sender's policy."""

    def __init__(self, verify_document: Callable[[bytes, Any], Any], policies: Mapping[str, Any]) -> None:
        self._verify_document = verify_document
        self._policies = dict(policies)

    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        policy = self._policies.get(sender)
        if policy is None:
            raise ConfigError(f"no trust policy configured for party {sender}", field=f"parties.{sender}.trust")
        result = self._verify_document(raw, policy)
        return VerifiedMessage(content=serialize(result.element), sender=sender, certificate=result.certificate)


@runtime_checkable
class Signer(Protocol):
    def sign(self, raw: bytes) -> bytes:
        """The signed document, or :class:`~gateway.errors.SignerError`."""
        ...


class NullSigner:
    """Signing switched off: the bytes go out as they are."""

    def sign(self, raw: bytes) -> bytes:
        return raw


class DocumentSigner:
    """Adapter onto the signing layer: ``sign_document(data, signer, profile)``."""

    def __init__(self, sign_document: Callable[[bytes, Any, Any], bytes], key_signer: Any, profile: Any) -> None:
        self._sign_document = sign_document
        self._key_signer = key_signer
        self._profile = profile

    def sign(self, raw: bytes) -> bytes:
        return self._sign_document(raw, self._key_signer, self._profile)


@runtime_checkable
class Mapper(Protocol):
    def map(self, raw: bytes, source_format: str, target_format: str) -> bytes:
        """``raw`` converted from ``source_format`` to ``target_format``; ``FORMAT_UNKNOWN`` / ``VALIDATION_FAILED``."""
        ...


class IdentityMapper:
    """No conversion: only ``source == target`` (or target ``None``-like ``"same"``) is accepted."""

    def map(self, raw: bytes, source_format: str, target_format: str) -> bytes:
        if target_format not in (source_format, "same"):
            from gateway.errors import UnknownFormat

            raise UnknownFormat(
                f"no mapping from {source_format} to {target_format} (only the identity mapper is configured)",
                field="format",
            )
        return raw


@dataclass(frozen=True)
class Receipt:
    """A receiver's answer to a delivery."""

    message_id: str | None
    """The message id the receipt acknowledges, as the receiver states it."""
    raw: bytes
    status: int | None = None
    duplicate: bool = False
    """The receiver says it had already received this message id."""


@runtime_checkable
class ReceiptVerifier(Protocol):
    def verify(self, receipt: Receipt, message_id: str, destination: str) -> bytes:
        """Return the receipt bytes to keep, or raise :class:`~gateway.errors.ReceiptInvalid`."""
        ...


class MessageIdReceiptVerifier:
    """Accepts a receipt that names the delivered message id."""

    def verify(self, receipt: Receipt, message_id: str, destination: str) -> bytes:
        if receipt.message_id != message_id:
            raise ReceiptInvalid(
                f"receipt from {destination} acknowledges {receipt.message_id!r}, not {message_id!r}",
                field="receipt.message_id",
            )
        return receipt.raw
