"""The gateway's one error tree.

Every error raised by the gateway, its adapters, the signing layer and the
mappings is an :class:`NswError`. Each concrete class carries

* ``code``: a stable, documented string (``SIG_DIGEST_MISMATCH``); clients and
  tests match on it, never on the message;
* ``origin``: who is at fault: the submitting ``client``, a ``partner`` we
  deliver to, the ``gateway`` itself, or the ``signer`` (key material, HSM);
* ``http_status``: the status the HTTP API answers with;
* ``incident_id``: a fresh id per raised error, echoed in the reply and the
  log so that an operator can find one incident among millions;
* ``field``: the element, attribute, path or configuration key at fault,
  when there is one.

Bad-input errors (everything under :class:`ClientError`, including XML,
validation and signature failures) also subclass :class:`ValueError`.

The table of codes is generated from the classes themselves:
``python -m gateway.errors`` prints it as Markdown (docs/errors.md).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ScaffoldError",
    "ScaffoldXsdUnreadable",
    "ScaffoldIncludeOutside",
    "ScaffoldRootMissing",
    "StoreError",
    "StoreUnavailable",
    "StoreContended",
    "StoreFull",
    "StoreCorrupt",
    "UnknownDestination",
    "StoreSchemaOutdated",
    "JournalBroken",
    "TimestampInvalid",
    "TimestampUnavailable",
    "TimestampOverdue",
    "ReferenceListInvalid",
    "ReferenceListNotOwner",
    "ReferenceListUnknown",
    "ArchiveTampered",
    "ArchiveSignatureInvalid",
    "EvidenceInvalid",
    "Origin",
    "NswError",
    "ClientError",
    "XmlError",
    "XmlMalformed",
    "XmlDtdForbidden",
    "XmlEntityForbidden",
    "XmlTooLarge",
    "XmlTooDeep",
    "UnknownFormat",
    "ValidationIssue",
    "ValidationFailed",
    "SignatureError",
    "SignatureMissing",
    "SignatureMalformed",
    "MultipleSignatures",
    "SignatureLocationInvalid",
    "DigestMismatch",
    "SignatureValueInvalid",
    "ReferenceNotFound",
    "DuplicateId",
    "ExternalReference",
    "ReferenceCountInvalid",
    "TransformForbidden",
    "AlgorithmForbidden",
    "HmacForbidden",
    "WeakAlgorithm",
    "SignatureWrapping",
    "CertificateError",
    "CertificateMissing",
    "CertificateMalformed",
    "CertificateUntrusted",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateIdentityMismatch",
    "CertificateKeyUsage",
    "CertificatePathLength",
    "CertificateNameConstraints",
    "CertificateCriticalExtension",
    "CertificateKeyWeak",
    "CertificateRevoked",
    "RevocationUnavailable",
    "CertificateRotatedOut",
    "SignerError",
    "KeyLoadFailed",
    "SigningFailed",
    "HsmPinIncorrect",
    "HsmPinMissing",
    "ConfigError",
    "GatewayError",
    "LibraryMismatch",
    "IntakeWorkerLost",
    "PartnerError",
    "PartnerUnavailable",
    "PartnerRejected",
    "ConversationBlocked",
    "RequestInvalid",
    "NotAuthenticated",
    "CredentialsMalformed",
    "NotAuthorized",
    "CsrfInvalid",
    "MessageNotFound",
    "NoRoute",
    "ReloadRefused",
    "InvalidTransition",
    "ReceiptInvalid",
    "EncryptionMissing",
    "DecryptionFailed",
    "DelegationMissing",
    "DelegationMismatch",
    "DocumentTypeMismatch",
    "IdentityMismatch",
    "DuplicateContent",
    "CertificateUnknown",
    "CertificateNotifierMismatch",
    "ShipCallUnknown",
    "ShipCallNotParty",
    "ShipCallSuperseded",
    "ShipCallDuplicate",
    "ShipCallInvalid",
    "PathNotFound",
    "MethodNotAllowed",
    "RequestMalformed",
    "RequestTimeout",
    "TooManyConnections",
    "SignalLimitExceeded",
    "RegistryRefusal",
    "RegistryNotCovered",
    "RegistryQuantityExceeded",
    "RegistryDocumentUnknown",
    "RegistryDocumentCancelled",
    "RegistryDocumentExpired",
    "RegistryDeclarationConflict",
    "RegistryNotIssuer",
    "ERROR_CODES",
    "error_table_markdown",
]


class Origin(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() of values already in logs and docs
    """Who is at fault for an error."""

    CLIENT = "client"
    PARTNER = "partner"
    GATEWAY = "gateway"
    SIGNER = "signer"


ERROR_CODES: dict[str, type[NswError]] = {}
"""Every concrete error code, mapped to its class (filled as classes are defined)."""


class NswError(Exception):
    """Base of every gateway error. Never raised itself."""

    code: ClassVar[str] = "NSW_ERROR"
    origin: Origin = Origin.GATEWAY
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    retry_after: ClassVar[int | None] = None
    """Seconds a client should wait before resending (the ``Retry-After`` of the answer), when it should."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:
            return
        if code in ERROR_CODES and ERROR_CODES[code] is not cls:
            raise TypeError(f"error code {code} defined twice: {ERROR_CODES[code].__name__} and {cls.__name__}")
        ERROR_CODES[code] = cls

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        origin: Origin | None = None,
        incident_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if origin is not None:
            self.origin = origin
        self.incident_id = incident_id or uuid.uuid4().hex[:16]
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field else ""
        return f"[{self.code}]{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of an error reply (and of a log record)."""
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "origin": self.origin.value,
            "incident_id": self.incident_id,
        }
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body


# --------------------------------------------------------------------------- client


class ClientError(NswError, ValueError):
    """The submitted input is wrong. Never retried."""

    origin = Origin.CLIENT
    http_status = 400


class XmlError(ClientError):
    """The XML could not be accepted by the hardened parser."""


class XmlMalformed(XmlError):
    """The bytes are not well-formed XML (or use an undeclared entity or prefix)."""

    code = "XML_MALFORMED"


class XmlDtdForbidden(XmlError):
    """A document type declaration (internal subset or external DTD) is present."""

    code = "XML_DTD_FORBIDDEN"


class XmlEntityForbidden(XmlError):
    """An entity reference or declaration is present."""

    code = "XML_ENTITY_FORBIDDEN"


class XmlTooLarge(XmlError):
    """The document exceeds the configured size limit."""

    code = "XML_TOO_LARGE"
    http_status = 413


class XmlTooDeep(XmlError):
    """Elements nest deeper than the configured limit."""

    code = "XML_TOO_DEEP"


class UnknownFormat(ClientError):
    """A message format, document type or mapping name that is not registered ("did you mean ...")."""

    code = "FORMAT_UNKNOWN"


class ScaffoldError(ClientError):
    """``nswgw procedure scaffold`` refused its XSD input; ``field`` names the file or element."""


class ScaffoldXsdUnreadable(ScaffoldError):
    """A given (or included) XSD cannot be read, is not well-formed XML or is not an ``xs:schema``."""

    code = "SCAFFOLD_XSD_UNREADABLE"


class ScaffoldIncludeOutside(ScaffoldError):
    """An ``xs:include``/``xs:import`` points outside the directories of the given XSDs (or at the network)."""

    code = "SCAFFOLD_INCLUDE_OUTSIDE"


class ScaffoldRootMissing(ScaffoldError):
    """The root element is not declared globally in the XSDs (or none was named and several could be)."""

    code = "SCAFFOLD_ROOT_MISSING"


@dataclass(frozen=True)
class ValidationIssue:
    """One violation found by validation: where, which rule, and why."""

    path: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: [{self.code}] {self.message}"


class ValidationFailed(ClientError):
    """A message failed schema or business-rule validation; ``issues`` lists every violation."""

    code = "VALIDATION_FAILED"
    http_status = 422

    def __init__(self, issues: Iterable[ValidationIssue], **kwargs: Any) -> None:
        self.issues: tuple[ValidationIssue, ...] = tuple(issues)
        first = self.issues[0] if self.issues else None
        message = f"{len(self.issues)} validation error(s)" + (f"; first: {first}" if first else "")
        kwargs.setdefault("field", first.path if first else None)
        super().__init__(message, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["issues"] = [i.to_dict() for i in self.issues]
        return body


# --------------------------------------------------------------------------- signatures


class SignatureError(ClientError):
    """An XML signature is absent, malformed, forged, or not acceptable under the policy."""

    http_status = 403


class SignatureMissing(SignatureError):
    """No ds:Signature where the policy requires one."""

    code = "SIG_MISSING"


class SignatureMalformed(SignatureError):
    """The ds:Signature is structurally invalid (missing SignedInfo, bad base64, ...)."""

    code = "SIG_MALFORMED"


class MultipleSignatures(SignatureError):
    """More ds:Signature elements than the policy allows."""

    code = "SIG_MULTIPLE"


class SignatureLocationInvalid(SignatureError):
    """The ds:Signature is not where the profile places it (enveloped in the signed element)."""

    code = "SIG_LOCATION_INVALID"


class DigestMismatch(SignatureError):
    """The signed content was altered after signing: a reference digest does not match."""

    code = "SIG_DIGEST_MISMATCH"


class SignatureValueInvalid(SignatureError):
    """SignedInfo was altered, or the SignatureValue was not made by the certificate's key."""

    code = "SIG_SIGNATURE_INVALID"


class ReferenceNotFound(SignatureError):
    """A Reference URI points to an id that no element carries."""

    code = "SIG_REFERENCE_NOT_FOUND"


class DuplicateId(SignatureError):
    """Two elements carry the id a Reference points to (signature wrapping)."""

    code = "SIG_DUPLICATE_ID"


class ExternalReference(SignatureError):
    """A Reference URI points outside the document (URL, file, XPointer)."""

    code = "SIG_EXTERNAL_REFERENCE"


class ReferenceCountInvalid(SignatureError):
    """SignedInfo carries a different number of References than the profile requires."""

    code = "SIG_REFERENCE_COUNT"


class TransformForbidden(SignatureError):
    """A Reference uses a transform outside the allow-list (XSLT, XPath, ...)."""

    code = "SIG_TRANSFORM_FORBIDDEN"


class AlgorithmForbidden(SignatureError):
    """A canonicalization, signature or digest algorithm outside the allow-list."""

    code = "SIG_ALGORITHM_FORBIDDEN"


class HmacForbidden(SignatureError):
    """An HMAC SignatureMethod: shared-secret signatures prove nothing about the sender."""

    code = "SIG_HMAC_FORBIDDEN"


class WeakAlgorithm(SignatureError):
    """SHA-1 (digest or signature) where the party's profile does not allow it."""

    code = "SIG_WEAK_ALGORITHM"


class SignatureWrapping(SignatureError):
    """The signed element is not the element that will be processed."""

    code = "SIG_WRAPPING"


# --------------------------------------------------------------------------- certificates


class CertificateError(SignatureError):
    """The signer's certificate is not acceptable for this party."""


class CertificateMissing(CertificateError):
    """No X509Certificate in KeyInfo, and no single pinned certificate to fall back on."""

    code = "CERT_MISSING"


class CertificateMalformed(CertificateError):
    """A certificate, CRL or OCSP response could not be decoded."""

    code = "CERT_MALFORMED"


class CertificateUntrusted(CertificateError):
    """The certificate is not pinned for the party and does not chain to its trust anchors."""

    code = "CERT_UNTRUSTED"


class CertificateExpired(CertificateError):
    """The certificate (or one in its chain) is past its notAfter."""

    code = "CERT_EXPIRED"


class CertificateNotYetValid(CertificateError):
    """The certificate (or one in its chain) is before its notBefore."""

    code = "CERT_NOT_YET_VALID"


class CertificateIdentityMismatch(CertificateError):
    """The certificate chains to one of the party's trust anchors but is not one of the party's signers (its
    ``signers`` rules): another ministry's, enterprise's or partner's certificate of the same CA."""

    code = "CERT_IDENTITY_MISMATCH"


class CertificateKeyUsage(CertificateError):
    """The certificate's keyUsage/extendedKeyUsage does not allow signing documents."""

    code = "CERT_KEY_USAGE"


class CertificatePathLength(CertificateError):
    """The path holds more CA certificates below a CA than its basicConstraints pathLenConstraint allows."""

    code = "CERT_PATH_LENGTH"


class CertificateNameConstraints(CertificateError):
    """A certificate's names fall outside a CA's nameConstraints (permitted or excluded subtrees)."""

    code = "CERT_NAME_CONSTRAINTS"


class CertificateCriticalExtension(CertificateError):
    """A certificate on the path carries a critical extension the gateway does not process (RFC 5280 4.2)."""

    code = "CERT_CRITICAL_EXTENSION"


class CertificateKeyWeak(CertificateError):
    """A certificate on the path has a weak key or algorithm: RSA under 2048 bits, a curve not P-256/384/521, SHA-1."""

    code = "CERT_KEY_WEAK"


class CertificateRevoked(CertificateError):
    """The certificate is revoked (CRL or OCSP)."""

    code = "CERT_REVOKED"


class RevocationUnavailable(CertificateError):
    """Revocation status could not be established and the policy is hard-fail."""

    code = "CERT_REVOCATION_UNAVAILABLE"


class CertificateRotatedOut(CertificateError):
    """A pinned certificate whose overlap window after key rotation has ended."""

    code = "CERT_ROTATED_OUT"


# --------------------------------------------------------------------------- signer


class SignerError(NswError):
    """Our own key material or signing device failed."""

    origin = Origin.SIGNER


class KeyLoadFailed(SignerError):
    """A private key could not be loaded (wrong password, bad PEM/PKCS#12)."""

    code = "KEY_LOAD_FAILED"


class SigningFailed(SignerError):
    """The signing operation itself failed."""

    code = "SIGNING_FAILED"


class HsmPinIncorrect(KeyLoadFailed):
    """The PKCS#11 token refused the configured PIN (wrong, locked or expired); ``field`` names the key's source."""

    code = "HSM_PIN_INCORRECT"


class HsmPinMissing(KeyLoadFailed):
    """No PIN for a PKCS#11 key: its ``pin_env`` variable is unset or empty, or its ``pin_file`` is empty."""

    code = "HSM_PIN_MISSING"


# --------------------------------------------------------------------------- gateway


class GatewayError(NswError):
    """A fault of the gateway itself."""

    code = "GATEWAY_INTERNAL"


class ConfigError(GatewayError, ValueError):
    """The configuration is invalid; ``field`` names the bad key."""

    code = "CONFIG_INVALID"


class LibraryMismatch(GatewayError):
    """lxml and xmlsec are linked against different libxml2 versions."""

    code = "LIBXML2_MISMATCH"


class IntakeWorkerLost(GatewayError):
    """The intake worker process running a submission (``[gateway] intake_processes``) died before it answered:
    nothing of that submission was stored, and the process is replaced. Resending it is safe."""

    code = "INTAKE_WORKER_LOST"
    http_status = 503
    retryable = True
    retry_after = 1


# --------------------------------------------------------------------------- partners


class PartnerError(NswError):
    """A partner (ministry, ASEAN state, intermediary) we deliver to failed."""

    origin = Origin.PARTNER
    http_status = 502


class PartnerUnavailable(PartnerError):
    """The partner could not be reached or answered with a transient failure. Retried."""

    code = "PARTNER_UNAVAILABLE"
    retryable = True


class PartnerRejected(PartnerError):
    """The partner refused the message (SOAP fault, 4xx, ebMS error). Never retried."""

    code = "PARTNER_REJECTED"


class ConversationBlocked(PartnerError):
    """Time-to-live ran out while held behind a dead earlier message of the conversation (``details.head``).

    ``details.head`` is that message's gateway id (``conversation_on_dead = "hold"``): replay it, then this one.
    """

    code = "CONVERSATION_BLOCKED"


# --------------------------------------------------------------------------- broker (gateway/ core)


class RequestInvalid(ClientError):
    """A submission's envelope (header, query parameter, message id) is missing or malformed."""

    code = "REQUEST_INVALID"


class NotAuthenticated(ClientError):
    """No credentials, or credentials that match no configured party."""

    code = "AUTH_REQUIRED"
    http_status = 401


class CredentialsMalformed(NotAuthenticated):
    """The Authorization header is not a well-formed credential (bytes not UTF-8, a token not visible ASCII)."""

    code = "AUTH_MALFORMED"
    http_status = 401


class NotAuthorized(ClientError):
    """The party may not do this: submit as another party, send this document type, read another's message."""

    code = "AUTH_FORBIDDEN"
    http_status = 403


class CsrfInvalid(ClientError):
    """A console form was posted without its session's CSRF token (or without a session): nothing was done."""

    code = "CSRF_INVALID"
    http_status = 403


class MessageNotFound(ClientError):
    """No message with this id is visible to the party."""

    code = "MESSAGE_NOT_FOUND"
    http_status = 404


class UnknownDestination(ClientError):
    """``X-Destination`` names no configured destination (and no route matches it by name)."""

    code = "DESTINATION_UNKNOWN"
    http_status = 422


class NoRoute(ClientError):
    """No configured route matches the message's document type, sender and destination."""

    code = "ROUTE_NOT_FOUND"
    http_status = 422


class ReloadRefused(ClientError):
    """A configuration reload (``POST /v1/admin/reload``, SIGHUP) changes keys that only a restart applies (the
    store, the listener, TLS, destinations...); ``details.keys`` names them. The running configuration is kept."""

    code = "RELOAD_REFUSED"
    http_status = 409


class InvalidTransition(GatewayError):
    """A message or delivery was asked to move to a state its state machine does not allow."""

    code = "STATE_TRANSITION_INVALID"


class ReceiptInvalid(PartnerError):
    """The partner answered, but its receipt is missing or does not acknowledge this message. Retried."""

    code = "PARTNER_RECEIPT_INVALID"
    retryable = True


class EncryptionMissing(ClientError):
    """A part the party's profile requires encrypted (an AS4 payload) arrived in clear."""

    code = "ENC_MISSING"
    http_status = 403


class DecryptionFailed(ClientError):
    """An encrypted part could not be decrypted with our key (another recipient, altered ciphertext, bad key
    transport)."""

    code = "ENC_DECRYPTION_FAILED"
    http_status = 403


class DelegationMissing(NotAuthorized):
    """An intermediary submitted on behalf of an enterprise it is not delegated for (or named none)."""

    code = "AUTH_DELEGATION_MISSING"
    http_status = 403


class DelegationMismatch(NotAuthorized):
    """An intermediary's ``X-On-Behalf-Of`` is not an enterprise the document names (or it names none).
    The enterprises a document names are its declarant (applicant, registrant) and exporter identifiers."""

    code = "DELEGATION_MISMATCH"
    http_status = 403


class DocumentTypeMismatch(ClientError):
    """The content is not of the declared document type (``X-Document-Type``, or the type an endpoint derives).
    Judged by the type's ``[document_types.NAME]`` rule; a type the configuration does not declare is refused
    too. ``details.content`` says what the content is."""

    code = "DOCUMENT_TYPE_MISMATCH"
    http_status = 422


class DuplicateContent(ClientError):
    """A replay: this sender's signed document was already accepted under another message id.

    ``details.original`` names that message (``id``, ``message_id``, ``state``). Nothing is stored or queued."""

    code = "DUPLICATE_CONTENT"
    http_status = 409


class CertificateUnknown(ClientError):
    """An amendment, cancellation or notification names a certificate of origin the gateway did not carry.

    For an amendment, a cancellation or a verification answer: one the sender did not issue. ``field`` names the
    element that names it, ``details`` its ``issuing_country`` and ``number``. Nothing is stored or queued."""

    code = "CO_UNKNOWN"
    http_status = 422


class CertificateNotifierMismatch(NotAuthorized):
    """An importing side's notification (received, utilized, rejected, verification request) about a certificate
    of origin the gateway did not deliver to the sender: only the party answering for a destination the
    certificate was routed to (``destinations.NAME.party``) notifies about it. ``field`` names the element that
    names the certificate, ``details`` its ``issuing_country``, ``number`` and the ``delivered_to``
    destinations. Nothing is stored or queued."""

    code = "CO_NOTIFIER_MISMATCH"
    http_status = 403


class ShipCallUnknown(ClientError):
    """A ship call the gateway does not hold: an amendment (``ship_call.amends``) or a decision
    (``ship_call_decision.call``) names no version of any call, or ``GET /v1/ship-calls/{reference}`` names one the
    caller may not read. ``details.reference`` names it. Nothing is stored or queued."""

    code = "SHIP_CALL_UNKNOWN"
    http_status = 404


class ShipCallNotParty(NotAuthorized):
    """A decision on a ship call from a party that answers for none of the call's agencies (the destinations it
    was routed to: ``destinations.NAME.party``), or an amendment from another party than the call's agent.
    ``details`` names the call and its agencies or agent. Nothing is stored or queued."""

    code = "SHIP_CALL_NOT_PARTY"
    http_status = 403


class ShipCallSuperseded(ClientError):
    """A decision about a version of a ship call older than the part the agency last received (an amendment
    changed it: decide on that one), or an amendment of a version that is no longer the current one.
    ``details.current`` names the version to use. Nothing is stored or queued."""

    code = "SHIP_CALL_SUPERSEDED"
    http_status = 409


class ShipCallDuplicate(ClientError):
    """A ship call declared again under a reference the gateway already holds (amend it instead), or an amendment
    whose own reference is already a version of the call. Nothing is stored or queued."""

    code = "SHIP_CALL_DUPLICATE"
    http_status = 409


class ShipCallInvalid(ClientError):
    """A ship-call document the gateway cannot act on: a declaration without its reference or not under a
    procedure of ``[ship_calls]`` (``X-Procedure``), an amendment that changes nothing any agency receives
    (``ship_call``), a decision without the call or the answer. ``field`` names what is missing. Nothing is stored
    or queued."""

    code = "SHIP_CALL_INVALID"
    http_status = 422


class IdentityMismatch(NotAuthorized):
    """An identity the message claims is not the authenticated party's (``field`` names the element).

    A VNSW ``From/identity``, ``From/ministryCode`` or ``From/organizationCode`` other than the party's
    configured ``identities.vnsw``; an AS4 message signed by a certificate that is not the claimed partner's."""

    code = "IDENTITY_MISMATCH"
    http_status = 403


# --------------------------------------------------------------------------- HTTP API


class PathNotFound(ClientError):
    """No endpoint is served at this path (the OpenAPI document at ``/openapi.json`` lists every path)."""

    code = "PATH_NOT_FOUND"
    http_status = 404


class MethodNotAllowed(ClientError):
    """The path is served, but not with this HTTP method; ``details.allow`` and the ``Allow`` header list them."""

    code = "METHOD_NOT_ALLOWED"
    http_status = 405

    def __init__(self, message: str, *, allow: Iterable[str], **kwargs: Any) -> None:
        self.allow: tuple[str, ...] = tuple(allow)
        kwargs.setdefault("field", "method")
        super().__init__(message, details={"allow": list(self.allow)}, **kwargs)


class RequestMalformed(ClientError):
    """The request is not well-formed HTTP/1.1 (a control character in a header, an over-long line).

    Refused by the HTTP parser before routing; the connection is closed."""

    code = "REQUEST_MALFORMED"


class RequestTimeout(ClientError):
    """The client did not send the whole request body within ``gateway.body_timeout``; the connection is closed."""

    code = "REQUEST_TIMEOUT"
    http_status = 408


class TooManyConnections(ClientError):
    """The client's address already holds ``gateway.max_connections_per_client`` open connections.

    The new connection is answered before any request is read, and closed."""

    code = "CONNECTION_LIMIT"
    http_status = 429


class SignalLimitExceeded(ClientError):
    """A refused AS4 message beyond the endpoint's ``error_signals`` bound: answered unsigned with HTTP 429.

    Signing an error signal spends our private key; a client address (or all of them together) that sends more
    refused messages than the bound allows gets this coded answer instead, ``details.refused`` naming the code
    the message was refused with."""

    code = "AS4_SIGNAL_LIMIT"
    http_status = 429


# --------------------------------------------------------------------------- stores


class StoreError(GatewayError):
    """The store failed: nothing of the operation was written (a submission refused with one was not accepted)."""


class StoreUnavailable(StoreError):
    """The store's database cannot be reached or dropped the connection (network, restart, failover). Retried."""

    code = "STORE_UNAVAILABLE"
    http_status = 503
    retryable = True
    retry_after = 5


class StoreContended(StoreError):
    """A record other nodes kept changing could not be updated (a compare-and-set lost every attempt): nothing was
    changed. Retried."""

    code = "STORE_CONTENDED"
    http_status = 503
    retryable = True
    retry_after = 1


class StoreFull(StoreError):
    """The store's disk (or database) is full: nothing was stored; resend after ``Retry-After``. Retried."""

    code = "STORE_FULL"
    http_status = 507
    retryable = True
    retry_after = 30


class StoreCorrupt(StoreError):
    """The store's database file is damaged (malformed page, not a database): nothing was stored. Retried once
    an operator has restored the file."""

    code = "STORE_CORRUPT"
    http_status = 503
    retryable = True
    retry_after = 60


class StoreSchemaOutdated(StoreError):
    """The store's schema version is not the one this gateway needs; run ``nswgw db upgrade``."""

    code = "STORE_SCHEMA_OUTDATED"
    http_status = 503


class JournalBroken(StoreError):
    """The message log does not verify (an entry edited, removed or cut off the end, or stored evidence replaced):
    the gateway refuses to start on it; ``nswgw log verify`` lists every problem."""

    code = "JOURNAL_BROKEN"
    http_status = 503


class ArchiveTampered(GatewayError):
    """An archive bundle does not verify (a member, its journal segment or a payload); ``field`` names it.

    A member differs from its manifest digest, is missing or is not listed; the journal segment is broken or
    does not follow the previous bundle; or a payload differs from its journal entry (``member#seq``)."""

    code = "ARCHIVE_TAMPERED"


class ArchiveSignatureInvalid(GatewayError):
    """An archive bundle's manifest signature does not verify, or its signer is not the trusted certificate.

    The trusted certificate is ``--trust``, else the gateway's own signing certificate."""

    code = "ARCHIVE_SIGNATURE_INVALID"


class EvidenceInvalid(GatewayError):
    """An evidence bundle does not verify offline; ``field`` names the part (or ``META-INF/...``) that fails.

    A part differs from its manifest digest, is missing or unlisted; the manifest signature or a signature in a
    part does not verify under the given anchors; or the journal chain or an entry's evidence does not match."""

    code = "EVIDENCE_INVALID"
    http_status = 422


class TimestampInvalid(GatewayError):
    """An RFC 3161 timestamp token does not verify; ``field`` names the journal seq (or the token part) at fault.

    The TSA refused the request, the token's CMS signature or message-digest attribute does not verify, its
    messageImprint or nonce is not ours, or the TSA certificate does not chain to the configured anchors or lacks
    the critical ``timeStamping`` extended key usage."""

    code = "TIMESTAMP_INVALID"
    http_status = 502


class TimestampUnavailable(GatewayError):
    """The timestamping authority cannot be reached or answered with an HTTP error; retried with backoff."""

    code = "TIMESTAMP_UNAVAILABLE"
    http_status = 503
    retryable = True
    retry_after = 30


class TimestampOverdue(GatewayError):
    """The journal head has had no trusted timestamp for longer than ``journal.timestamp.grace`` and the operator
    configured intake to stop then (``stop_intake_after_grace``); resend after ``Retry-After``."""

    code = "TIMESTAMP_OVERDUE"
    http_status = 503
    retryable = True
    retry_after = 60


class ReferenceListInvalid(ClientError):
    """A reference list document (or operator request) is not a valid version of a list; ``field`` names the
    element (``ReferenceList/EffectiveFrom``, ``ReferenceList/Entry[2]/Code``)."""

    code = "REFERENCE_LIST_INVALID"
    http_status = 422


class ReferenceListNotOwner(ClientError):
    """A party other than a list's owner tried to publish a version of it (``field``: ``ReferenceList/Owner``)."""

    code = "REFERENCE_LIST_NOT_OWNER"
    http_status = 403


class ReferenceListUnknown(ClientError):
    """No reference list of that name is stored."""

    code = "REFERENCE_LIST_UNKNOWN"
    http_status = 404


class RegistryRefusal(ClientError):
    """A submission refused by the registry of issued documents (:mod:`gateway.registry`): nothing is stored or
    queued. Never raised itself."""

    http_status = 409


class RegistryNotCovered(RegistryRefusal):
    """A goods line is covered by no valid document of the registry (no document for its HS code and enterprise,
    expired, cancelled, quantity exhausted, another unit); ``field`` names the line (``goods[2].hs_code``)."""

    code = "REGISTRY_NOT_COVERED"


class RegistryQuantityExceeded(RegistryRefusal):
    """A utilization line draws more than the document's remaining quantity; ``details`` has the ``remaining``
    and ``requested`` quantities and the ``unit``."""

    code = "REGISTRY_QUANTITY_EXCEEDED"


class RegistryDocumentUnknown(RegistryRefusal):
    """No indexed document of that type and number (visible to the party, on a read); ``field`` names where it is
    named."""

    code = "REGISTRY_DOCUMENT_UNKNOWN"
    http_status = 404


class RegistryDocumentCancelled(RegistryRefusal):
    """A utilization names a document that was cancelled (or superseded by an amendment)."""

    code = "REGISTRY_DOCUMENT_CANCELLED"


class RegistryDocumentExpired(RegistryRefusal):
    """A utilization names a document whose validity ended before the declaration (or has not yet begun)."""

    code = "REGISTRY_DOCUMENT_EXPIRED"


class RegistryDeclarationConflict(RegistryRefusal):
    """A declaration reference already drew on the document line with another quantity (the same quantity again is
    accepted and draws nothing more)."""

    code = "REGISTRY_DECLARATION_CONFLICT"


class RegistryNotIssuer(RegistryRefusal):
    """An amendment or cancellation of an indexed document from a party that did not issue it, or the number of a
    document another party issued."""

    code = "REGISTRY_NOT_ISSUER"
    http_status = 403


def error_table_markdown() -> str:
    """The documented table of every error code (docs/errors.md)."""
    rows = ["| code | class | origin | HTTP | retried | meaning |", "|---|---|---|---|---|---|"]
    for code, cls in sorted(ERROR_CODES.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        origin = cls.origin.value if isinstance(cls.origin, Origin) else str(cls.origin)
        retryable = "yes" if cls.retryable else "no"
        rows.append(f"| `{code}` | `{cls.__name__}` | {origin} | {cls.http_status} | {retryable} | {doc} |")
    return "\n".join(rows) + "\n"


ERRORS_DOC_HEADER = (
    "# Error codes\n\nGenerated from gateway/errors.py by `python -m gateway.errors --write docs/errors.md`; "
    "tests/gateway/test_gateway_errors_and_compat.py fails when this table is stale.\n\n"
)


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        with open(sys.argv[2], "w", encoding="utf-8") as fh:
            fh.write(ERRORS_DOC_HEADER + error_table_markdown())
    else:
        print(error_table_markdown(), end="")
