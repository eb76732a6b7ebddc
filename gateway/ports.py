"""The small ports the broker core is built against, with their default implementations.

* :class:`Verifier`: checks what a sender submitted and returns **what was
  verified** (downstream code reads only :attr:`VerifiedMessage.content`).
  :class:`NullVerifier` (verification off: pass-through, used by the
  benchmark's baseline), :class:`WellFormedVerifier` (hardened parse only, no
  signature) and :class:`DocumentVerifier`, the adapter onto
  ``signing.verify.verify_document(data, trust=, policy=) -> VerifyResult``.
* :class:`Signer`: signs what the gateway sends, per destination. :class:`NullSigner`
  (signing off) and :class:`DocumentSigner`, the adapter onto
  ``signing.sign.sign_document(data, signer, profile) -> bytes``.
* :class:`Mapper`: converts between registered formats.
  :class:`IdentityMapper` (same format in and out).
* :class:`ReceiptVerifier`: decides whether a receiver's receipt
  acknowledges the delivered message. :class:`MessageIdReceiptVerifier`
  checks that it names the message id that was sent.

* :class:`RegistryMapper`: ``mappings.registry`` behind :class:`Mapper`.
* :class:`SignedReceiptVerifier`: signed ``<Receipt>`` documents (:func:`receipt_document`).

:mod:`gateway.security` builds all of them from the configuration.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from lxml import etree

from gateway.errors import ConfigError, NswError, ReceiptInvalid
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
    "SignedReceiptVerifier",
    "RegistryMapper",
    "RECEIPT_NS",
    "receipt_document",
    "payload_digest",
]


@dataclass(frozen=True)
class VerifiedMessage:
    """What verification vouches for."""

    content: bytes
    """The verified document (for a signed one: the signed element, serialized). Process only this."""
    sender: PartyId
    certificate: Any | None = None
    """The signer's certificate (``cryptography.x509.Certificate``) when a signature was verified."""
    signed: bytes | None = None
    """The verified document with its signature (the evidence the store keeps); None when nothing was signed."""


@runtime_checkable
class Verifier(Protocol):
    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        """Return what was verified, or raise a :class:`~gateway.errors.ClientError` (XML_*, SIG_*, CERT_*).
        A verifier may also take a keyword ``format`` (the submission's format); the broker passes it then."""
        ...


class NullVerifier:
    """Verification switched off: the bytes pass through unchecked (benchmark baseline, trusted test rigs)."""

    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        return VerifiedMessage(content=raw, sender=sender)


class WellFormedVerifier:
    """No signature check, but an XML document must pass the hardened parser (``XML_*`` errors otherwise).
    A submission in a registered non-XML format (``json``) passes through: the mapper parses and validates it."""

    def verify(self, raw: bytes, sender: PartyId, *, format: str = "xml") -> VerifiedMessage:
        if format not in ("xml", "same"):
            from mappings.registry import get

            if not get(format).media_type.endswith("xml"):
                return VerifiedMessage(content=raw, sender=sender)
        parse_xml(raw)
        return VerifiedMessage(content=raw, sender=sender)


class DocumentVerifier:
    """Adapter onto the signing layer: ``verify_document(raw, trust=, policy=)`` with the sender's trust and policy.

    :attr:`VerifiedMessage.content` is the verified element (the whole document: policies require the
    root to be signed) with the verified ``ds:Signature`` removed, ready to be mapped and re-signed;
    :attr:`VerifiedMessage.signed` is the verified element with its signature (kept as evidence).
    """

    def __init__(
        self, parties: Mapping[str, tuple[Any, Any]], verify_document: Callable[..., Any] | None = None
    ) -> None:
        if verify_document is None:
            from signing.verify import verify_document as default

            verify_document = default
        self._verify_document = verify_document
        self._parties = dict(parties)

    def verify(self, raw: bytes, sender: PartyId) -> VerifiedMessage:
        entry = self._parties.get(sender)
        if entry is None:
            raise ConfigError(f"no trust configured for party {sender}", field=f"parties.{sender}.trust")
        trust, policy = entry
        try:
            result = self._verify_document(raw, trust=trust, policy=policy)
        except NswError as exc:
            if exc.field is None:  # the trust layer's CERT_* name no field: it is the signer's certificate
                exc.field = "ds:KeyInfo/ds:X509Data/ds:X509Certificate"
            raise
        signed = serialize(result.element)
        signature = result.signature
        parent = signature.getparent()
        parent.remove(signature)
        if policy.placement == "system-signature" and len(parent) == 0 and parent.getparent() is not None:
            parent.getparent().remove(parent)
        return VerifiedMessage(
            content=serialize(result.element), sender=sender, certificate=result.certificate, signed=signed
        )


@runtime_checkable
class Signer(Protocol):
    def sign(self, raw: bytes, destination: str) -> bytes:
        """``raw`` signed for ``destination``, or :class:`~gateway.errors.SignerError`."""
        ...

    def profile_for(self, destination: str) -> Hashable:
        """Destinations with equal profiles get the same signed bytes (signed once on fan-out)."""
        ...


class NullSigner:
    """Signing switched off: the bytes go out as they are."""

    def sign(self, raw: bytes, destination: str = "") -> bytes:
        return raw

    def profile_for(self, destination: str) -> Hashable:
        return None


class DocumentSigner:
    """Adapter onto the signing layer: ``sign_document(data, key_signer, profile)`` with each destination's profile.

    ``profiles`` maps destination names to a ``SigningProfile``, or ``None`` (delivered unsigned).
    """

    def __init__(
        self,
        key_signer: Any,
        profiles: Mapping[str, Any],
        sign_document: Callable[[bytes, Any, Any], bytes] | None = None,
    ) -> None:
        if sign_document is None:
            from signing.sign import sign_document as default

            sign_document = default
        self._sign_document = sign_document
        self._key_signer = key_signer
        self._profiles = dict(profiles)

    def profile_for(self, destination: str) -> Hashable:
        return self._profiles.get(destination)

    def sign(self, raw: bytes, destination: str = "") -> bytes:
        profile = self._profiles.get(destination)
        if profile is None:
            return raw
        return self._sign_document(raw, self._key_signer, profile)


@runtime_checkable
class Mapper(Protocol):
    def map(self, raw: bytes, source_format: str, target_format: str) -> bytes:
        """``raw`` converted from ``source_format`` to ``target_format``; ``FORMAT_UNKNOWN`` / ``VALIDATION_FAILED``."""
        ...


class RegistryMapper:
    """Maps with :mod:`mappings.registry`: source format → harmonized ``TradeMessage`` (validated by the
    harmonized rules: ``VALIDATION_FAILED`` with every issue) → target format. Identity when the formats
    are equal (or the target is ``same``), but a message in a registered format is still validated
    (read and checked against the harmonized rules) before it goes on unchanged."""

    def map(self, raw: bytes, source_format: str, target_format: str) -> bytes:
        from gateway.errors import UnknownFormat, ValidationFailed
        from mappings import rules
        from mappings.registry import get

        if source_format == "xml":  # generic XML: not in the registry, passed through as submitted
            if target_format in ("xml", "same"):
                return raw
        try:
            source = get(source_format)
        except UnknownFormat as exc:
            raise UnknownFormat(exc.message, field="X-Format", details=exc.details) from None
        if target_format in (source_format, "same"):
            # A procedure the format does not model yet (MESSAGE_TYPE_UNKNOWN: a VNSW envelope of one of
            # the ~250 procedures without a mapping module) still passes through as submitted; every
            # other issue (schema, code lists, Form D rules) refuses it.
            issues = [i for i in source.validate(raw) if i.code != "MESSAGE_TYPE_UNKNOWN"]
            if issues:
                raise ValidationFailed(issues)
            return raw
        target = get(target_format)
        message = source.parse(raw)
        issues = rules.validate(message)
        if issues:
            raise ValidationFailed(issues)
        return target.emit(message)


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
    def verify(self, receipt: Receipt, message_id: str, destination: str, *, payload: bytes = b"") -> bytes:
        """Return the receipt bytes to keep, or raise :class:`~gateway.errors.ReceiptInvalid`.
        ``payload``: the exact bytes delivered (a signed receipt is bound to their digest)."""
        ...


class MessageIdReceiptVerifier:
    """Accepts a receipt that names the delivered message id."""

    def verify(self, receipt: Receipt, message_id: str, destination: str, *, payload: bytes = b"") -> bytes:
        if receipt.message_id != message_id:
            raise ReceiptInvalid(
                f"receipt from {destination} acknowledges {receipt.message_id!r}, not {message_id!r}",
                field="receipt.message_id",
            )
        return receipt.raw


RECEIPT_NS = "urn:nsw-gateway:receipt:1"
"""Namespace of the signed delivery receipt."""
_R = "{%s}" % RECEIPT_NS


def payload_digest(payload: bytes) -> str:
    """Base64 SHA-256 of delivered bytes, as a signed receipt states it."""
    return base64.b64encode(hashlib.sha256(payload).digest()).decode("ascii")


def receipt_document(message_id: str, payload: bytes, *, duplicate: bool = False) -> bytes:
    """The (unsigned) receipt a receiver returns for ``payload`` delivered as ``message_id``; sign it with
    ``signing.sign.sign_document`` and answer it as the response body (``Content-Type: application/xml``)::

        <Receipt xmlns="urn:nsw-gateway:receipt:1">
          <MessageId>...</MessageId><PayloadDigest Algorithm="...#sha256">base64</PayloadDigest>
          <Duplicate>false</Duplicate>
        </Receipt>
    """
    root = etree.Element(_R + "Receipt", nsmap={None: RECEIPT_NS})
    etree.SubElement(root, _R + "MessageId").text = message_id
    etree.SubElement(
        root, _R + "PayloadDigest", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"
    ).text = payload_digest(payload)
    etree.SubElement(root, _R + "Duplicate").text = "true" if duplicate else "false"
    return serialize(root)


class SignedReceiptVerifier:
    """A receipt is a ``<Receipt>`` signed by a certificate the destination's trust store accepts, naming
    the delivered message id and the SHA-256 of the delivered bytes. Destinations not in ``trust`` fall
    back to ``fallback`` (message id only). Every failure is ``PARTNER_RECEIPT_INVALID`` (retried)."""

    def __init__(
        self,
        trust: Mapping[str, tuple[Any, Any]],
        fallback: ReceiptVerifier | None = None,
        verify_document: Callable[..., Any] | None = None,
    ) -> None:
        if verify_document is None:
            from signing.verify import verify_document as default

            verify_document = default
        self._verify_document = verify_document
        self._trust = dict(trust)
        self._fallback = fallback or MessageIdReceiptVerifier()
        self.verified: Counter[str] = Counter()
        """Signed receipts verified, per destination."""

    def signed(self, destination: str) -> bool:
        return destination in self._trust

    def verify(self, receipt: Receipt, message_id: str, destination: str, *, payload: bytes = b"") -> bytes:
        entry = self._trust.get(destination)
        if entry is None:
            return self._fallback.verify(receipt, message_id, destination, payload=payload)
        trust, policy = entry
        from gateway.errors import ClientError

        try:
            result = self._verify_document(receipt.raw, trust=trust, policy=policy)
        except ClientError as exc:  # XML_*, SIG_*, CERT_* of the receiver's receipt
            raise ReceiptInvalid(
                f"receipt from {destination} does not verify: {exc}", field="receipt", details={"cause": exc.code}
            ) from exc
        root = result.element
        if root.tag != _R + "Receipt":
            raise ReceiptInvalid(f"receipt from {destination} is a {root.tag}, not a Receipt", field="receipt")
        said = root.findtext(_R + "MessageId")
        if said != message_id:
            raise ReceiptInvalid(
                f"signed receipt from {destination} acknowledges {said!r}, not {message_id!r}",
                field="receipt.MessageId",
            )
        if root.findtext(_R + "PayloadDigest") != payload_digest(payload):
            raise ReceiptInvalid(
                f"signed receipt from {destination} is for other content than was delivered",
                field="receipt.PayloadDigest",
            )
        self.verified[destination] += 1
        return receipt.raw
