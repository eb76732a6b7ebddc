"""The small ports the broker core is built against, with their default implementations.

* :class:`Verifier`: checks what a sender submitted and returns **what was
  verified** (downstream code reads only :attr:`VerifiedMessage.content`).
  :class:`NullVerifier` (verification off: pass-through, used by the
  benchmark's baseline), :class:`WellFormedVerifier` (hardened parse only, no
  signature) and :class:`DocumentVerifier`, the adapter onto
  ``signing.verify.verify_document(data, trust=, policy=) -> VerifyResult``.
* :class:`DeliverySigner`: signs what the gateway sends, per destination. :class:`NullSigner`
  (signing off) and :class:`DocumentSigner`, the adapter onto
  ``signing.sign.sign_document(data, signer, profile) -> bytes`` (and ``sign_tree`` for a verified tree).
* :class:`Mapper`: converts between registered formats.
  :class:`IdentityMapper` (same format in and out).
* :class:`ReceiptVerifier`: decides whether a receiver's receipt
  acknowledges the delivered message. :class:`MessageIdReceiptVerifier`
  checks that it names the message id that was sent.

* :class:`RegistryMapper`: ``mappings.registry`` behind :class:`Mapper`.
* :class:`SignedReceiptVerifier`: signed ``<Receipt>`` documents (:func:`receipt_document`).

:mod:`gateway.security` builds all of them from the configuration.

The adapter contract is a port too: :class:`Adapter` (outbound, one ``deliver()``), :class:`InboundEndpoint`
(routes and/or a background task, handed an :class:`Intake`), and the alias/entry-point registry that finds
them by name (:func:`resolve_adapter`, :func:`resolve_inbound`). The core declares them; ``adapters/``
implements them.

What an adapter or endpoint must remember beyond one call (what it sent, what it received) is gateway state:
:class:`AdapterState`, namespaced key/value records with a time-to-live, kept by the gateway's store
(:class:`StoreAdapterState`: SQLite or PostgreSQL, shared by every node) and handed to each adapter and endpoint
by the composition root; :class:`MemoryAdapterState` when one is built in code without a gateway.
"""

from __future__ import annotations

import abc
import base64
import difflib
import hashlib
import importlib
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from lxml import etree
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import config_error
from gateway.errors import (
    ConfigError,
    NswError,
    PartnerUnavailable,
    ReceiptInvalid,
    SignatureLocationInvalid,
    UnknownFormat,
)
from gateway.model import CertificateAct, DocumentKind, PartyId
from gateway.registry import RegistryAct
from signing.xml import (
    DEFAULT_LIMITS,
    ParserLimits,
    Spliced,
    TakenText,
    ascii_only,
    parse_xml,
    serialize,
    serialize_spliced,
)

if TYPE_CHECKING:
    from gateway.broker import Submission
    from gateway.config import Config
    from gateway.model import SubmissionEnvelope
    from gateway.store.base import Store
    from mappings.model import TradeMessage

__all__ = [
    "VerifiedMessage",
    "Verifier",
    "NullVerifier",
    "WellFormedVerifier",
    "DocumentVerifier",
    "DeliverySigner",
    "NullSigner",
    "DocumentSigner",
    "Mapper",
    "IdentityClaim",
    "IdentityMapper",
    "Receipt",
    "ReceiptVerifier",
    "MessageIdReceiptVerifier",
    "SignedReceiptVerifier",
    "RegistryMapper",
    "xml_kind",
    "xml_texts",
    "RECEIPT_NS",
    "receipt_document",
    "payload_digest",
    "content_digest",
    "OutboundMessage",
    "public_endpoint",
    "without_credentials",
    "AdapterState",
    "StoreAdapterState",
    "MemoryAdapterState",
    "Adapter",
    "SubmitFunction",
    "Intake",
    "InboundEndpoint",
    "NoOptions",
    "validate_options",
    "ENTRY_POINT_GROUP",
    "INBOUND_ENTRY_POINT_GROUP",
    "BUILTIN_ADAPTERS",
    "BUILTIN_INBOUND",
    "adapter_names",
    "resolve_adapter",
    "resolve_inbound",
    "did_you_mean",
]


@dataclass(frozen=True)
class VerifiedMessage:
    """What verification vouches for."""

    content: bytes
    """The verified document (for a signed one: the signed element, serialized). Process only this."""
    sender: PartyId
    certificate: Any | None = None
    """The signer's certificate (``cryptography.x509.Certificate``) when a signature was verified."""
    signed: bytes | Spliced | None = None
    """The verified document with its signature (the evidence the store keeps); None when nothing was signed."""
    digest: str | None = None
    """For a signed document: :func:`content_digest` of the signed element without its signature, the key of
    duplicate detection by content (a replay under another message id); None when nothing was signed."""
    tree: etree._Element | None = field(default=None, repr=False, compare=False)
    """:attr:`content` parsed, when the verifier has it: the root of a document whose serialization is exactly
    :attr:`content` (its one element, no processing instruction beside it), which a signer may sign in place
    (:meth:`DeliverySigner.sign_tree`) instead of parsing :attr:`content` again. None otherwise."""
    ascii: bool = False
    """Whether :attr:`tree` holds ASCII characters only (:func:`signing.xml.ascii_only`)."""
    taken: TakenText | None = field(default=None, repr=False, compare=False)
    """The document's large text (a base64 attachment), held once for every output of the document: when set,
    :attr:`content` holds its marker in place of it (``Spliced.of(content, taken)`` is the content whole) and
    :attr:`signed` is a :class:`~signing.xml.Spliced`. Checks and mappings read the content so, the text standing
    as a valid base64 token; signers and the store put the text back in (:meth:`DeliverySigner.sign_spliced`)."""


@dataclass(frozen=True)
class IdentityClaim:
    """One sender identity a document claims (:meth:`Mapper.identities`)."""

    format: str
    """The format whose element it is (the key of the party's ``identities`` table)."""
    name: str
    """The element's name in that format (``identity``, ``ministryCode``...)."""
    value: str
    """What the document claims (``""``: the element is empty or missing)."""
    path: str
    """Where it stands in the document (``/Envelope/Header/From/identity``)."""


@runtime_checkable
class Verifier(Protocol):
    def verify(self, raw: bytes, sender: PartyId, *, format: str = "xml") -> VerifiedMessage:
        """Return what was verified, or raise a :class:`~gateway.errors.ClientError` (XML_*, SIG_*, CERT_*).
        ``format`` is the submission's format (``xml``, or a registered format such as ``json``)."""
        ...


class NullVerifier:
    """Verification switched off: the bytes pass through unchecked (benchmark baseline, trusted test rigs)."""

    def verify(self, raw: bytes, sender: PartyId, *, format: str = "xml") -> VerifiedMessage:
        return VerifiedMessage(content=raw, sender=sender)


class WellFormedVerifier:
    """No signature check, but an XML document must pass the hardened parser under ``limits``
    (``gateway.max_message_bytes``; ``XML_*`` errors otherwise). A submission in a registered non-XML format
    (``json``) passes through: the mapper parses and validates it."""

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits

    def verify(self, raw: bytes, sender: PartyId, *, format: str = "xml") -> VerifiedMessage:
        if format not in ("xml", "same"):
            from mappings.registry import get

            if not get(format).media_type.endswith("xml"):
                return VerifiedMessage(content=raw, sender=sender)
        parse_xml(raw, limits=self._limits)
        return VerifiedMessage(content=raw, sender=sender)


class DocumentVerifier:
    """Adapter onto the signing layer: ``verify_document(raw, trust=, policy=)`` with the sender's trust and policy.

    :attr:`VerifiedMessage.content` is the verified element (the whole document: policies require the
    root to be signed) with the verified ``ds:Signature`` removed, ready to be mapped and re-signed;
    :attr:`VerifiedMessage.signed` is the verified element with its signature (kept as evidence).
    The document is parsed once, under ``limits`` (``gateway.max_message_bytes``). A large text (a base64
    attachment, :func:`signing.xml.take_text`) is taken out of the tree for the signature check and stays out
    (:attr:`VerifiedMessage.taken`): the evidence is a :class:`~signing.xml.Spliced`, the digest is made around it
    and the content holds its marker, so that every later output of the document holds the one text; no tree is
    handed on then; otherwise the tree is (:attr:`VerifiedMessage.tree`).
    """

    def __init__(
        self,
        parties: Mapping[str, tuple[Any, Any]],
        verify_document: Callable[..., Any] | None = None,
        *,
        limits: ParserLimits = DEFAULT_LIMITS,
    ) -> None:
        if verify_document is None:
            from signing.verify import verify_document as default

            verify_document = default
        self._verify_document = verify_document
        self._parties = dict(parties)
        self._limits = limits

    def verify(self, raw: bytes, sender: PartyId, *, format: str = "xml") -> VerifiedMessage:
        entry = self._parties.get(sender)
        if entry is None:
            raise ConfigError(f"no trust configured for party {sender}", field=f"parties.{sender}.trust")
        trust, policy = entry
        root = parse_xml(raw, limits=self._limits)
        plain = ascii_only(raw, root)
        del raw  # from here on the tree is the document; a caller that handed over its only reference frees it
        try:
            result = self._verify_document(root, trust=trust, policy=policy, leave_out=True)
        except NswError as exc:
            if exc.field is None:  # the trust layer's CERT_* name no field: it is the signer's certificate
                exc.field = "ds:KeyInfo/ds:X509Data/ds:X509Certificate"
            raise
        element, signature = result.element, result.signature
        # A large text is held once, outside the tree, for every output made of the document: no whole copies of it.
        taken = result.taken
        signed = serialize_spliced(element, ascii=plain, taken=taken)
        parent = signature.getparent()
        if parent is None:  # verify_document refuses a signature that envelops nothing (SIG_LOCATION_INVALID)
            raise SignatureLocationInvalid("the signature has no parent element", field="ds:Signature")
        parent.remove(signature)
        holder = parent.getparent()
        if policy.placement == "system-signature" and len(parent) == 0 and holder is not None:
            holder.remove(parent)
        digest = content_digest(element, taken=taken)
        whole = taken is None or taken.text is None
        content = serialize(element, ascii=plain)
        # A tree without its large text is no use to a signer: it signs the content, which it parses again.
        alone = element.getparent() is None and element.getprevious() is None and element.getnext() is None
        return VerifiedMessage(
            content=content,
            sender=sender,
            certificate=result.certificate,
            signed=signed,
            digest=digest,
            tree=element if alone and whole else None,
            ascii=plain,
            taken=None if whole else taken,
        )


def content_digest(element: etree._Element, *, taken: TakenText | None = None) -> str:
    """``sha256:<hex>`` of the exclusive canonical form (C14N without comments) of a verified element.

    Every serialization of the same signed content that still verifies (attribute order, quoting, namespace
    declarations, empty-element form, character references, anything outside the signed element, the unsigned
    ``KeyInfo``, a re-encoded or, for ECDSA, a mirrored ``SignatureValue``, a fresh signature over the same
    content) has the same canonical form, hence the same digest. ``taken``: the text :func:`signing.xml.take_text`
    took out of the element's tree, hashed in its place."""
    from signing.algorithms import C14N_EXCLUSIVE, SHA256_DIGEST, canonical_digest

    return "sha256:" + canonical_digest(element, C14N_EXCLUSIVE, SHA256_DIGEST, taken=taken).hex()


@runtime_checkable
class DeliverySigner(Protocol):
    def sign(self, raw: bytes, destination: str) -> bytes:
        """``raw`` signed for ``destination``, or :class:`~gateway.errors.SignerError`."""
        ...

    def sign_tree(self, tree: etree._Element, destination: str, *, ascii: bool = False) -> bytes:
        """The bytes :meth:`sign` gives for the serialization of ``tree`` (a :attr:`VerifiedMessage.tree`, whose
        document it may change), made from the tree itself; ``ascii`` as :attr:`VerifiedMessage.ascii`."""
        ...

    def sign_spliced(self, raw: bytes, destination: str, taken: TakenText) -> bytes | Spliced:
        """What :meth:`sign` gives for ``raw`` with ``taken``'s text in place of its marker (a content or mapping of
        a :attr:`VerifiedMessage` with :attr:`~VerifiedMessage.taken`), holding the text once (a
        :class:`~signing.xml.Spliced`) where it can."""
        ...

    def profile_for(self, destination: str) -> Hashable:
        """Destinations with equal profiles get the same signed bytes (signed once on fan-out); ``None`` for a
        destination whose payloads go out as they are (unsigned)."""
        ...


def _spliced(raw: bytes, taken: TakenText) -> bytes | Spliced:
    """``raw`` with ``taken``'s text in place of its marker: held once where it stands once, else made whole."""
    try:
        return Spliced.of(raw, taken)
    except ValueError:
        return _whole(raw, taken)


def _whole(raw: bytes, taken: TakenText) -> bytes:
    """``raw`` with ``taken``'s text in place of every marker (one whole copy of it per marker)."""
    assert taken.text is not None  # a VerifiedMessage's taken keeps its text
    return raw.replace(taken.marker.encode("ascii"), taken.text.encode("ascii"))


class NullSigner:
    """Signing switched off: the bytes go out as they are."""

    def sign(self, raw: bytes, destination: str = "") -> bytes:
        return raw

    def sign_spliced(self, raw: bytes, destination: str, taken: TakenText) -> bytes | Spliced:
        return _spliced(raw, taken)

    def sign_tree(self, tree: etree._Element, destination: str = "", *, ascii: bool = False) -> bytes:
        return serialize(tree, ascii=ascii)

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
        held = [raw]
        del raw  # a caller that handed over its only reference lets the signing layer free it once parsed
        return self._sign_document(held.pop(), self._key_signer, profile)

    def sign_spliced(self, raw: bytes, destination: str, taken: TakenText) -> bytes | Spliced:
        from signing.sign import sign_element

        profile = self._profiles.get(destination)
        if profile is None:
            return _spliced(raw, taken)
        if raw.count(taken.marker.encode("ascii")) != 1:  # no text or a copied one: signed as it is, or whole
            return self.sign(_whole(raw, taken), destination)
        root = parse_xml(raw)
        here = taken.rebind(root)
        if here is None:  # the text is not an element's text here: signed whole
            return self.sign(_whole(raw, taken), destination)
        plain = ascii_only(raw, root)
        del raw
        sign_element(root, self._key_signer, profile, taken=here)
        return serialize_spliced(root.getroottree(), ascii=plain, taken=here)

    def sign_tree(self, tree: etree._Element, destination: str = "", *, ascii: bool = False) -> bytes:
        from signing.sign import sign_tree

        profile = self._profiles.get(destination)
        if profile is None:
            return serialize(tree, ascii=ascii)
        return sign_tree(tree, self._key_signer, profile, ascii=ascii, spent=True)


@runtime_checkable
class Mapper(Protocol):
    def map(
        self, raw: bytes, source_format: str, target_format: str, *, fields: tuple[str, ...] | None = None
    ) -> bytes:
        """``raw`` converted from ``source_format`` to ``target_format``; ``FORMAT_UNKNOWN`` / ``VALIDATION_FAILED``.
        With ``fields``, only those harmonized data elements (:func:`mappings.projection.project`), even when the
        formats are the same; a document that is not in a mapped format cannot be projected (``FORMAT_UNKNOWN``)."""
        ...

    def media_type(self, format: str) -> str:
        """The media type of a document in ``format`` (``same``/``xml``: ``application/xml``)."""
        ...

    def reference(self, raw: bytes, format: str) -> tuple[str, str] | None:
        """The dossier reference a document in ``format`` names (a VNSW envelope's ``Header/Subject/reference``)
        and the path of the element that holds it; ``None`` when it names none."""
        ...

    def identities(self, raw: bytes, format: str) -> list[IdentityClaim]:
        """Each sender identity a document in ``format`` claims (a VNSW envelope's ``From/identity``,
        ``From/ministryCode``, ``From/organizationCode``); empty when it claims none. Pass-through XML (``xml``,
        ``same``) claims what a registered format reads in it (a VNSW envelope submitted as ``xml``)."""
        ...

    def kind(self, raw: bytes, format: str) -> DocumentKind:
        """What a document in ``format`` is by its content: the root element of pass-through XML (``xml``), the
        VNSW message of a ``vnsw`` envelope, the document code of a Form D, SPS or JSON message (each format's
        :meth:`mappings.registry.MessageFormat.kind`). Raises what reading it raises (``XML_*``,
        ``VALIDATION_FAILED``, ``FORMAT_UNKNOWN``)."""
        ...

    def enterprises(self, raw: bytes, format: str, *, paths: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The identifiers of the enterprises a document in ``format`` is submitted for (declarant, registrant,
        exporter: :func:`mappings.registry.named_enterprises`); for pass-through XML, the texts of the elements
        at ``paths`` (local names below the root, ``/``-separated). Raises what reading it raises."""
        ...

    def certificate(self, raw: bytes, format: str) -> CertificateAct | None:
        """What a document in ``format`` does to a certificate of origin (issues, amends or cancels it, notifies
        about it: :meth:`mappings.registry.MessageFormat.certificate`), or ``None`` when it is about none
        (pass-through XML is about none). Reading errors are :meth:`map`'s to raise (``FORMAT_UNKNOWN`` here)."""
        ...

    def issued(self, raw: bytes, format: str) -> RegistryAct | None:
        """What a document in ``format`` does to the registry of issued documents (:mod:`gateway.registry`): a
        document issued, amended or cancelled (:meth:`mappings.registry.MessageFormat.issued`), or, as
        pass-through XML, a ``registry.utilization`` report (:func:`mappings.issued.read_utilization`;
        ``VALIDATION_FAILED`` when it does not validate); ``None`` when it is neither."""
        ...

    def harmonized(self, raw: bytes, format: str) -> TradeMessage | None:
        """The harmonized message of a document in ``format``, read and valid under the harmonized rules (what
        :meth:`map` with ``fields`` projects); ``None`` when it cannot be read into the model (pass-through XML, a
        procedure without a mapping, an invalid document: :meth:`map` reports why). Subscriptions filter on it."""
        ...

    def write(self, message: TradeMessage, target_format: str, fields: tuple[str, ...]) -> bytes:
        """A message :meth:`harmonized` returned, with only ``fields``, written in ``target_format`` (a registered
        format): what :meth:`map` with ``fields`` gives, without reading the document again. Raises what writing
        it raises (``VALIDATION_FAILED`` when the format requires an element the fields leave out)."""
        ...


class RegistryMapper:
    """Maps with :mod:`mappings.registry`: source format → harmonized ``TradeMessage`` (validated by the
    harmonized rules: ``VALIDATION_FAILED`` with every issue) → target format. Identity when the formats
    are equal (or the target is ``same``), but a message in a registered format is still validated
    (read and checked against the harmonized rules) before it goes on unchanged."""

    def media_type(self, format: str) -> str:
        if format in ("same", "xml"):
            return "application/xml"
        from mappings.registry import get

        return get(format).media_type

    def reference(self, raw: bytes, format: str) -> tuple[str, str] | None:
        from mappings.registry import get

        if format in ("same", "xml"):
            return None
        try:
            return get(format).reference(raw)
        except UnknownFormat:
            return None  # refused by map() with the closest registered names

    def identities(self, raw: bytes, format: str) -> list[IdentityClaim]:
        from mappings.registry import formats, get

        if format in ("same", "xml"):
            for fmt in formats():
                claims = fmt.identities(raw) if fmt.identity_fields else []
                if claims:
                    return [IdentityClaim(fmt.name, *claim) for claim in claims]
            return []
        try:
            return [IdentityClaim(format, *claim) for claim in get(format).identities(raw)]
        except UnknownFormat:
            return []  # refused by map() with the closest registered names

    def kind(self, raw: bytes, format: str) -> DocumentKind:
        from mappings.registry import get

        if format in ("same", "xml"):
            return xml_kind(raw)
        try:
            return get(format).kind(raw)
        except UnknownFormat as exc:
            raise UnknownFormat(exc.message, field="X-Format", details=exc.details) from None

    def enterprises(self, raw: bytes, format: str, *, paths: tuple[str, ...] = ()) -> tuple[str, ...]:
        from mappings.registry import get

        if format in ("same", "xml"):
            return xml_texts(raw, paths)
        try:
            return get(format).enterprises(raw)
        except UnknownFormat as exc:
            raise UnknownFormat(exc.message, field="X-Format", details=exc.details) from None

    def certificate(self, raw: bytes, format: str) -> CertificateAct | None:
        from mappings.registry import get

        if format in ("same", "xml"):
            return None
        try:
            return get(format).certificate(raw)
        except UnknownFormat as exc:
            raise UnknownFormat(exc.message, field="X-Format", details=exc.details) from None

    def issued(self, raw: bytes, format: str) -> RegistryAct | None:
        from mappings.registry import get

        if format in ("same", "xml"):
            from mappings.issued import read_utilization

            return read_utilization(raw)
        try:
            return get(format).issued(raw)
        except UnknownFormat as exc:
            raise UnknownFormat(exc.message, field="X-Format", details=exc.details) from None

    def map(
        self, raw: bytes, source_format: str, target_format: str, *, fields: tuple[str, ...] | None = None
    ) -> bytes:
        from gateway.errors import UnknownFormat, ValidationFailed
        from mappings import rules
        from mappings.registry import get

        if fields is not None and source_format in ("xml", "same"):
            raise UnknownFormat(
                "only some data elements of this document may be delivered, and a pass-through XML document cannot"
                " be cut to them: submit it in a mapped format",
                field="X-Format",
            )
        if source_format == "xml" and target_format in ("xml", "same"):  # generic XML: passed through as submitted
            return raw
        try:
            source = get(source_format)
        except UnknownFormat as exc:
            raise UnknownFormat(exc.message, field="X-Format", details=exc.details) from None
        if fields is not None:
            from mappings.projection import project

            message = source.read(raw)
            issues = rules.validate(message)
            if issues:
                raise ValidationFailed(issues)
            target = source if target_format == "same" else get(target_format)
            return target.emit(project(message, fields))
        if target_format in (source_format, "same"):
            # A procedure the format does not model yet (MESSAGE_TYPE_UNKNOWN: a VNSW envelope of one of
            # the ~250 procedures without a mapping module) still passes through as submitted; every
            # other issue (schema, code lists, Form D rules) refuses it.
            issues = [i for i in source.validate(raw) if i.code != "MESSAGE_TYPE_UNKNOWN"]
            if issues:
                raise ValidationFailed(issues)
            return raw
        target = get(target_format)
        message = source.read(raw)
        issues = rules.validate(message)
        if issues:
            raise ValidationFailed(issues)
        return target.emit(message)

    def harmonized(self, raw: bytes, format: str) -> TradeMessage | None:
        from gateway.errors import ClientError
        from mappings import rules
        from mappings.registry import get

        if format in ("same", "xml"):
            return None
        try:
            message = get(format).read(raw)
        except ClientError:
            return None
        return None if rules.validate(message) else message

    def write(self, message: TradeMessage, target_format: str, fields: tuple[str, ...]) -> bytes:
        from mappings.projection import project
        from mappings.registry import get

        return get(target_format).emit(project(message, fields))


def xml_kind(raw: bytes) -> DocumentKind:
    """The kind of pass-through XML: its root element, ``{namespace}LocalName``."""
    return DocumentKind(root=str(parse_xml(raw).tag))


def xml_texts(raw: bytes, paths: Iterable[str]) -> tuple[str, ...]:
    """The non-empty texts of the elements at ``paths`` (local names below the root, ``/``-separated, namespaces
    ignored) of an XML document, in order, without repeats."""
    root = parse_xml(raw)
    found: list[str] = []
    for path in paths:
        level = [root]
        for name in path.split("/"):
            level = [c for e in level for c in e if isinstance(c.tag, str) and etree.QName(c).localname == name]
        for element in level:
            text = (element.text or "").strip()
            if text and text not in found:
                found.append(text)
    return tuple(found)


class IdentityMapper:
    """No conversion: only ``source == target`` (or target ``None``-like ``"same"``) is accepted."""

    def media_type(self, format: str) -> str:
        return "application/xml"

    def reference(self, raw: bytes, format: str) -> tuple[str, str] | None:
        return None

    def identities(self, raw: bytes, format: str) -> list[IdentityClaim]:
        return []

    def kind(self, raw: bytes, format: str) -> DocumentKind:
        return xml_kind(raw)

    def enterprises(self, raw: bytes, format: str, *, paths: tuple[str, ...] = ()) -> tuple[str, ...]:
        return xml_texts(raw, paths)

    def certificate(self, raw: bytes, format: str) -> CertificateAct | None:
        return None

    def issued(self, raw: bytes, format: str) -> RegistryAct | None:
        return None

    def map(
        self, raw: bytes, source_format: str, target_format: str, *, fields: tuple[str, ...] | None = None
    ) -> bytes:
        if target_format not in (source_format, "same") or fields is not None:
            from gateway.errors import UnknownFormat

            raise UnknownFormat(
                f"no mapping from {source_format} to {target_format}"
                f"{' of some data elements' if fields is not None else ''} (only the identity mapper is configured)",
                field="format",
            )
        return raw

    def harmonized(self, raw: bytes, format: str) -> TradeMessage | None:
        return None

    def write(self, message: TradeMessage, target_format: str, fields: tuple[str, ...]) -> bytes:
        from gateway.errors import UnknownFormat

        raise UnknownFormat("only the identity mapper is configured: nothing can be written", field="format")


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

    def signed(self, destination: str) -> bool:
        """Whether ``destination``'s receipts carry a signature (checked off the event loop, it costs CPU)."""
        ...


class MessageIdReceiptVerifier:
    """Accepts a receipt that names the delivered message id."""

    def signed(self, destination: str) -> bool:
        return False

    def verify(self, receipt: Receipt, message_id: str, destination: str, *, payload: bytes = b"") -> bytes:
        if receipt.message_id != message_id:
            raise ReceiptInvalid(
                f"receipt from {destination} acknowledges {receipt.message_id!r}, not {message_id!r}",
                field="receipt.message_id",
            )
        return receipt.raw


RECEIPT_NS = "urn:nsw-gateway:receipt:1"
"""Namespace of the signed delivery receipt."""
_R = f"{{{RECEIPT_NS}}}"


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
            raise ReceiptInvalid(f"receipt from {destination} is a {root.tag!s}, not a Receipt", field="receipt")
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


# --------------------------------------------------------------------------- adapters
#
# An adapter moves bytes between the gateway and one kind of partner endpoint. Outbound, an
# :class:`Adapter` has one method, :meth:`Adapter.deliver` (send one message, return the receiver's
# :class:`Receipt`), and two class attributes: ``scheme`` (the name it is registered under) and
# ``recoverable`` (the exception types worth a retry: a timeout, a 503; everything else, a 4xx, a SOAP
# fault, a validation error, is final). Adapters translate their driver's exceptions at this boundary
# (``raise PartnerUnavailable(...) from exc``): nothing from aiohttp, zeep or a file system leaves an
# adapter untranslated.
#
# Inbound, an :class:`InboundEndpoint` is how one kind of party gets messages *into* the gateway:
# routes mounted on the gateway's aiohttp app (a SOAP endpoint, a polling API) and/or a background task
# (a watched directory). It receives an :class:`Intake` and calls ``intake.submit(party, envelope, raw)``,
# nothing else of the core.
#
# Built-ins are registered by alias in :data:`BUILTIN_ADAPTERS` / :data:`BUILTIN_INBOUND`; third-party
# ones through the entry-point groups ``nsw.adapters`` / ``nsw.inbound``. An unknown name is a
# :class:`~gateway.errors.ConfigError` that says "did you mean ...".


@dataclass(frozen=True)
class OutboundMessage:
    """One delivery as an adapter sees it. ``message_id`` is the same on every attempt."""

    message_id: str
    payload: bytes
    sender: str
    document_type: str
    conversation: str
    reference: str | None = None
    content_type: str = "application/xml"
    headers: Mapping[str, str] = field(default_factory=dict)
    on_behalf_of: str | None = None
    """The enterprise an intermediary (``sender``) submitted for: an adapter passes it on where its protocol
    has a place for it (each adapter's module says where), so the receiver sees who relayed what for whom."""


class NoOptions(BaseModel):
    """The options of an adapter or endpoint that has none: any key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def validate_options(
    model: type[BaseModel], options: BaseModel | Mapping[str, Any] | None, *, field: str, base: str | None = None
) -> BaseModel:
    """``options`` as an instance of ``model``: an instance as it is (validated at config load), a mapping
    validated with relative paths resolved against ``base`` (default: the current directory).

    :class:`~gateway.errors.ConfigError` listing every error, each named under ``field``."""
    if isinstance(options, model):
        return options
    if isinstance(options, BaseModel):
        raise ConfigError(f"must be {model.__name__}, not {type(options).__name__}", field=field)
    try:
        return model.model_validate({} if options is None else options, context={"base": base or os.getcwd()})
    except ValidationError as exc:
        raise config_error(exc, prefix=field) from None


def public_endpoint(connection: str) -> str:
    """A partner's connection string as errors, logs and the console show it: without what may be a credential
    (the user and password of a URL, its query string and fragment). Adapters name their partner by it in every
    error they raise, since those are stored in the history, logged and shown to operators."""
    parts = urlsplit(connection)
    if not parts.netloc:
        return urlunsplit((parts.scheme, "", parts.path, "", ""))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # an invalid port: shown without it
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def without_credentials(text: str, connection: str) -> str:
    """``text`` (a driver's description of a failure talking to ``connection``) with the connection shown as
    :func:`public_endpoint` shows it, its query string left out and any ``user:password@`` removed."""
    text = text.replace(connection, public_endpoint(connection))
    query = urlsplit(connection).query
    if query:
        text = text.replace(f"?{query}", "").replace(query, "")
    return re.sub(r"(//)[^/@\s'\"]*@", r"\1", text)


class AdapterState(abc.ABC):
    """Durable records of one adapter or inbound endpoint: its own namespace of ``key -> bytes`` records, each with
    a time-to-live, kept in the gateway's store.

    Every node of a gateway on one PostgreSQL database sees the same records, so a retry picked up by another
    node, or a duplicate arriving at another node, finds what the first node recorded; a SQLite gateway keeps
    them across restarts. Failures are the store's own errors (``STORE_UNAVAILABLE``, ``STORE_FULL``,
    ``STORE_CORRUPT``: retryable), nothing of the driver. A record past its time-to-live is absent: :meth:`get`
    does not return it, :meth:`add` replaces it, :meth:`purge` removes it. Times are the gateway's clock.
    """

    namespace: str
    """Whose records these are (``destination:TH``, ``inbound:asean``): two namespaces never see each other's."""

    @abc.abstractmethod
    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds unless a live record holds ``key``: whether this call
        stored it. Atomic across nodes: of concurrent adds of one key, exactly one returns True (what duplicate
        detection needs)."""

    @abc.abstractmethod
    async def put(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds, replacing what it held."""

    @abc.abstractmethod
    async def replace(self, key: str, expected: bytes | None, value: bytes, *, ttl: float) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds if the live record under ``key`` is still ``expected``
        (``None``: there is none): whether this call stored it. Atomic across nodes (a compare-and-set): a record
        read, changed and written back by :meth:`replace` loses no concurrent change, the loser reads again."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The live record under ``key``; None when there is none (never stored, deleted or expired)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the record under ``key`` (nothing when there is none)."""

    @abc.abstractmethod
    async def purge(self) -> int:
        """Remove the expired records of this namespace; how many."""


class StoreAdapterState(AdapterState):
    """:class:`AdapterState` in the gateway's store (the ``adapter_state`` table, both store kinds), expiry on
    ``now`` (the gateway's clock). Built by the composition root (:class:`gateway.api.Gateway`)."""

    def __init__(self, store: Store, namespace: str, *, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.namespace = namespace
        self._now = now

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        now = self._now()
        return await self.store.state_add(self.namespace, key, value, expires_at=now + ttl, now=now)

    async def put(self, key: str, value: bytes, *, ttl: float) -> None:
        await self.store.state_put(self.namespace, key, value, expires_at=self._now() + ttl)

    async def replace(self, key: str, expected: bytes | None, value: bytes, *, ttl: float) -> bool:
        now = self._now()
        if expected is None:
            return await self.store.state_add(self.namespace, key, value, expires_at=now + ttl, now=now)
        return await self.store.state_replace(self.namespace, key, expected, value, expires_at=now + ttl, now=now)

    async def get(self, key: str) -> bytes | None:
        return await self.store.state_get(self.namespace, key, now=self._now())

    async def delete(self, key: str) -> None:
        await self.store.state_delete(self.namespace, key)

    async def purge(self) -> int:
        return await self.store.state_purge(self.namespace, now=self._now())


class MemoryAdapterState(AdapterState):
    """:class:`AdapterState` in this process's memory: what an adapter or endpoint built in code without a gateway
    (a test, a partner simulator) gets. Lost with the object; one process only."""

    def __init__(self, namespace: str = "memory", *, now: Callable[[], float] = time.time) -> None:
        self.namespace = namespace
        self._now = now
        self._records: dict[str, tuple[bytes, float]] = {}

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        if await self.get(key) is not None:
            return False
        self._records[key] = (value, self._now() + ttl)
        return True

    async def put(self, key: str, value: bytes, *, ttl: float) -> None:
        self._records[key] = (value, self._now() + ttl)

    async def replace(self, key: str, expected: bytes | None, value: bytes, *, ttl: float) -> bool:
        if await self.get(key) != expected:
            return False
        self._records[key] = (value, self._now() + ttl)
        return True

    async def get(self, key: str) -> bytes | None:
        record = self._records.get(key)
        return None if record is None or record[1] <= self._now() else record[0]

    async def delete(self, key: str) -> None:
        self._records.pop(key, None)

    async def purge(self) -> int:
        now = self._now()
        expired = [key for key, (_, until) in self._records.items() if until <= now]
        for key in expired:
            del self._records[key]
        return len(expired)

    def __len__(self) -> int:
        return len(self._records)


class Adapter(abc.ABC):
    """Base of every outbound adapter. One instance per destination; it owns its connections."""

    scheme: ClassVar[str]
    recoverable: ClassVar[tuple[type[BaseException], ...]] = (PartnerUnavailable, ReceiptInvalid)
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The model of ``[destinations.NAME.options]`` (frozen, ``extra="forbid"``, a docstring per field),
    validated at config load; relative paths in it are relative to the configuration file."""

    options: BaseModel
    """The validated options (an instance of :attr:`Options`)."""

    state: AdapterState
    """This destination's durable records (namespace ``destination:NAME``), handed in by the composition root;
    a :class:`MemoryAdapterState` for an adapter built in code without one."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.options = validate_options(self.Options, options, field="options")
        self.state = state if state is not None else MemoryAdapterState()

    async def open(self) -> None:  # noqa: B027 - optional hook; an adapter without connections needs none
        """Acquire connections (called once before the first delivery)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release every connection."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def deliver(self, message: OutboundMessage) -> Receipt:
        """Send one message; return the receiver's receipt.

        Raise an exception in :attr:`recoverable` for a transient failure and
        :class:`~gateway.errors.PartnerRejected` for a final refusal.
        """


class SubmitFunction(Protocol):
    """``await submit(party, envelope, raw)``: the broker's intake (:meth:`gateway.broker.Broker.submit`)."""

    def __call__(self, party: PartyId, envelope: SubmissionEnvelope, raw: bytes) -> Awaitable[Submission]: ...


@dataclass(frozen=True)
class Intake:
    """What the gateway hands an inbound endpoint."""

    submit: SubmitFunction
    """The broker's intake: every entry point submits through it."""
    party_of: Callable[[web.Request], PartyId]
    """The party the API authenticated for a request."""
    store: Store
    """The gateway's store (read-only use: status, correlation)."""
    config: Config
    """The gateway's configuration."""
    refused: Callable[[NswError, str, str], None] = field(default=lambda error, party, endpoint: None)
    """``refused(error, party, endpoint)``: report a request the endpoint answered with ``error`` itself, before the
    broker stored anything (a malformed SOAP request, an identity the broker refused...): counted in
    ``nswgw_rejections_total`` and published as a ``rejected`` event. A rejection the broker stored is reported by
    the broker."""
    destination_state: Callable[[str], AdapterState] | None = None
    """``destination_state(NAME)``: the durable records of destination ``NAME``'s adapter (namespace
    ``destination:NAME``, on the gateway's clock), for an endpoint that serves what that adapter queued (AS4 pull:
    the partner's MPC). None: the gateway gives none (an endpoint needing it refuses to start)."""


class InboundEndpoint(abc.ABC):
    """Base of every inbound endpoint: :meth:`routes` to mount and/or :meth:`start`/:meth:`stop` a task."""

    scheme: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The model of ``[inbound.NAME.options]`` (frozen, ``extra="forbid"``, a docstring per field),
    validated at config load; relative paths in it are relative to the configuration file."""

    options: BaseModel
    """The validated options (an instance of :attr:`Options`)."""

    state: AdapterState
    """This endpoint's durable records (namespace ``inbound:NAME``), handed in by the composition root; a
    :class:`MemoryAdapterState` for an endpoint built in code without one."""

    def __init__(
        self,
        name: str,
        *,
        options: BaseModel | Mapping[str, Any] | None = None,
        state: AdapterState | None = None,
    ) -> None:
        self.name = name
        self.options = validate_options(self.Options, options, field=f"inbound.{name}.options")
        self.state = state if state is not None else MemoryAdapterState(f"inbound:{name}")

    @classmethod  # noqa: B027 - optional hook
    def check_config(cls, options: BaseModel, config: Config, *, field: str) -> None:
        """Called at config load with the validated :attr:`Options` (at ``field``) and the whole configuration:
        raise :class:`~gateway.errors.ConfigError` naming the option that contradicts the gateway's settings (a
        payload limit above ``gateway.max_message_bytes``). Default: nothing to check."""

    def routes(self, intake: Intake) -> list[web.AbstractRouteDef]:
        """aiohttp route definitions (``web.get(...)``, ``web.post(...)``) behind the API's authentication."""
        return []

    def public_paths(self) -> list[str]:
        """Paths of :meth:`routes` that authenticate their callers themselves (an AS4 partner by its
        WS-Security signature): the API's bearer-token check skips them. Default: none."""
        return []

    def refusal(self, request: web.Request, error: NswError) -> web.StreamResponse | None:
        """The answer, in this endpoint's own protocol, to a request for one of its :meth:`routes` that the
        gateway refused before the route saw it (a body over ``gateway.max_message_bytes``: ``XML_TOO_LARGE``);
        ``None`` for a request that is not this endpoint's, or to answer with the gateway's JSON error reply.
        Default: ``None``."""
        return None

    def openapi_paths(self) -> dict[str, Any]:
        """OpenAPI 3.1 path items describing every route of :meth:`routes` (``{"/path": {"post": {...}}}``),
        merged into the gateway's ``/openapi.json``. A ``schema`` may be a pydantic model class (turned into a
        component); :func:`gateway.openapi.error_responses` describes coded errors; operations of
        :meth:`public_paths` carry ``"security": []``. ``500``, ``401`` (unless public) and ``413`` (with a request
        body) are added by the gateway. Default: none (an endpoint without routes)."""
        return {}

    async def start(self, intake: Intake) -> None:  # noqa: B027 - optional hook; most endpoints only route
        """Start background work (called once the store is open)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background work; nothing in flight may be lost."""


ENTRY_POINT_GROUP = "nsw.adapters"
INBOUND_ENTRY_POINT_GROUP = "nsw.inbound"

BUILTIN_ADAPTERS: Mapping[str, str] = {
    "http": "adapters.http:HttpAdapter",
    "https": "adapters.http:HttpAdapter",
    "as4": "adapters.as4.adapter:As4Adapter",
    "vnsw-soap": "adapters.vnsw_soap.outbound:VnswSoapAdapter",
    "webhook": "adapters.rest:WebhookAdapter",
    "mailbox": "adapters.rest:MailboxAdapter",
    "filedrop": "adapters.filedrop:FileDropAdapter",
    "ippc-hub": "adapters.ippc.outbound:IppcHubAdapter",
}
"""Alias → ``module:Class`` of the outbound adapters shipped with the gateway."""

BUILTIN_INBOUND: Mapping[str, str] = {
    "vnsw-soap": "adapters.vnsw_soap.inbound:VnswSoapEndpoint",
    "filedrop": "adapters.filedrop:FileDropInbox",
    "poll": "adapters.rest:ResultsEndpoint",
    "as4": "adapters.as4.inbound:As4Endpoint",
    "ippc-hub": "adapters.ippc.inbound:IppcHubSource",
}
"""Alias → ``module:Class`` of the inbound endpoints shipped with the gateway."""

_T = TypeVar("_T")


def _registry(builtins: Mapping[str, str], group: str) -> dict[str, str]:
    names = dict(builtins)
    for ep in entry_points(group=group):
        names.setdefault(ep.name, ep.value)
    return names


def _resolve(name: str, registry: Mapping[str, str], base: type[_T], what: str, field: str) -> type[_T]:
    """Load the class registered as ``name``; CONFIG_INVALID naming ``field`` (with "did you mean") otherwise."""
    target = registry.get(name)
    if target is None:
        raise ConfigError(f"unknown {what} {name!r}{did_you_mean(name, registry, what)}", field=field)
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {name!r} ({target}) cannot be loaded: {exc}", field=field) from exc
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{what} {name!r} ({target}) is not an {base.__name__}", field=field)
    return cls


def did_you_mean(name: str, known: Iterable[str], what: str) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, else the list of known names."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known {what}s: {', '.join(names)}"


def adapter_names() -> list[str]:
    """Every adapter name that :func:`resolve_adapter` accepts."""
    return sorted(_registry(BUILTIN_ADAPTERS, ENTRY_POINT_GROUP))


def resolve_adapter(name: str, *, field: str = "adapter") -> type[Adapter]:
    """The adapter class registered as ``name``; :class:`ConfigError` naming ``field`` otherwise."""
    registry = _registry(BUILTIN_ADAPTERS, ENTRY_POINT_GROUP)
    return _resolve(name, registry, Adapter, "adapter", field)  # type: ignore[type-abstract]  # the base to check against


def resolve_inbound(name: str, *, field: str = "endpoint") -> type[InboundEndpoint]:
    """The inbound endpoint class registered as ``name``; :class:`ConfigError` naming ``field`` otherwise."""
    registry = _registry(BUILTIN_INBOUND, INBOUND_ENTRY_POINT_GROUP)
    return _resolve(name, registry, InboundEndpoint, "inbound endpoint", field)
