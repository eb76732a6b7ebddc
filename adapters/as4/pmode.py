"""PMode-style configuration of one AS4 partner agreement (ebMS 3.0 core, appendix D).

Frozen pydantic models, one per partner and direction. Key material is not
here: our signing key is a :class:`~signing.keys.Signer`, our decryption key a
:class:`~signing.xenc.Decrypter`, the partner's trust a
:class:`~signing.trust.TrustStore` and its encryption certificate an
``x509.Certificate``; they are separate pieces of configuration handed to the
adapter and the receiver.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adapters.as4.ebms import DEFAULT_MPC, INITIATOR, RESPONDER
from signing.algorithms import RSA_SHA256
from signing.wss import WssPolicy
from signing.xenc import AES128_GCM

__all__ = [
    "PartyConfig",
    "PropertyConfig",
    "SecurityConfig",
    "ReceptionAwareness",
    "PMode",
    "Collaboration",
    "ASW_COLLABORATIONS",
]


class PartyConfig(BaseModel):
    """One side of the agreement as it appears in eb:PartyInfo."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    party_id: str = Field(min_length=1, description="The eb:PartyId value (e.g. the partner's Single Window id).")
    party_id_type: str | None = Field(None, description="The eb:PartyId/@type URI, when the agreement uses one.")
    role: str = Field(INITIATOR, description="The eb:Role URI of this side.")


class PropertyConfig(BaseModel):
    """A fixed eb:MessageProperties/eb:Property sent with every user message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Property name.")
    value: str = Field(description="Property value.")
    type: str | None = Field(None, description="Property @type, if any.")


class SecurityConfig(BaseModel):
    """PMode[1].Security: what we produce and what we require from the partner."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signature_method: str = Field(
        RSA_SHA256.uri, description="Our SignatureMethod URI (RSA-SHA256 per the AS4 profiles)."
    )
    encrypt: bool = Field(
        True, description="Encrypt every payload for the partner (AES-128-GCM, RSA-OAEP key transport)."
    )
    encryption_algorithm: str = Field(AES128_GCM, description="Content encryption algorithm URI.")
    require_encryption: bool = Field(True, description="Reject partner payloads that arrive unencrypted (ENC_MISSING).")
    verify: WssPolicy = Field(WssPolicy(), description="What the partner's signatures must cover and may use.")


class ReceptionAwareness(BaseModel):
    """PMode[1].ReceptionAwareness: resend the same MessageId until a receipt arrives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(5, ge=1, description="Transmissions of one MessageId before giving up (the first included).")
    max_seconds: float = Field(600.0, gt=0, description="Give up retrying once this much time has passed.")
    initial_wait: float = Field(
        1.0, ge=0, description="First wait between transmissions, in seconds (exponential, jittered)."
    )
    max_wait: float = Field(60.0, ge=0, description="Longest wait between transmissions, in seconds.")


class Collaboration(BaseModel):
    """The eb:Service and eb:Action one document type travels under in an agreement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(min_length=1, description="eb:Service value.")
    service_type: str | None = Field(None, description="eb:Service/@type.")
    action: str = Field(min_length=1, description="eb:Action value.")


ASW_COLLABORATIONS: dict[str, Collaboration] = {
    "acdd.declaration": Collaboration(service="urn:asean:asw:acdd", action="SubmitACDD"),
    "acdd.response": Collaboration(service="urn:asean:asw:acdd", action="SubmitCustomsResponse"),
}
"""Default eb:Service/eb:Action per gateway document type, after the conventions the ASW agreements use for the
e-Form D (``urn:asean:asw:e-form-d``, ``SubmitFormD``): the ACDD and its Customs Response under a service of their
own, so that a partner exchanging both with us tells them apart by eb:Action. A PMode's ``documents`` overrides
them per partner."""


class PMode(BaseModel):
    """One-Way agreement with one partner (Push or Pull): who, where, what and how securely."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="PMode id (sent as AgreementRef/@pmode when ``send_pmode_id``).")
    agreement: str | None = Field(None, description="eb:AgreementRef value.")
    agreement_type: str | None = Field(None, description="eb:AgreementRef/@type.")
    send_pmode_id: bool = Field(False, description="Send AgreementRef/@pmode with our PMode id.")
    initiator: PartyConfig = Field(description="Us, the sender of user messages.")
    responder: PartyConfig = Field(description="The partner, receiver of user messages (role: responder).")
    endpoint: str | None = Field(
        None, description="The partner's AS4 endpoint URL (http:// or https://); None: the adapter's connection string."
    )
    service: str = Field(min_length=1, description="eb:Service value.")
    service_type: str | None = Field(None, description="eb:Service/@type.")
    action: str = Field(min_length=1, description="eb:Action value.")
    mpc: str | None = Field(None, description=f"Message partition channel (None: the default MPC {DEFAULT_MPC}).")
    mep_binding: Literal["push", "pull"] = Field(
        "push",
        description="PMode.MEPbinding: 'push', the sender posts each user message to the receiver's endpoint; "
        "'pull', the receiver fetches them with signed eb:PullRequests on ``mpc``. On a destination (we send): "
        "messages wait on the MPC for the partner's PullRequests at the as4 endpoint naming the destination in "
        "``pull_destination``. On an as4 endpoint's partner (we receive): the endpoint polls the partner's "
        "``endpoint`` (then required).",
    )
    properties: tuple[PropertyConfig, ...] = Field((), description="Fixed message properties sent with every message.")
    property_types: dict[str, str] = Field(
        default_factory=dict,
        description="@type of per-message properties passed as OutboundMessage headers 'AS4-Property-<name>'.",
    )
    compress: bool = Field(
        True, description="gzip payloads (AS4 compression feature, CompressionType application/gzip)."
    )
    max_payload_bytes: int | None = Field(
        None,
        gt=0,
        description="Largest accepted (decompressed) payload, in bytes. Unset: the receiver's limit (on the gateway's"
        " as4 endpoint its gateway.max_message_bytes, which a larger value may not exceed: refused at load).",
    )
    receipt_required: bool = Field(True, description="A signed non-repudiation receipt must come back (AS4: always).")
    duplicate_detection: bool = Field(
        True, description="Receiver side: answer a repeated MessageId with the original receipt."
    )
    message_id_domain: str = Field(
        "nsw-gateway", description="Right-hand side of generated ebMS MessageIds (local@domain)."
    )
    security: SecurityConfig = Field(SecurityConfig(), description="Signing, encryption and verification settings.")
    reception_awareness: ReceptionAwareness = Field(ReceptionAwareness(), description="Retries of one MessageId.")
    documents: dict[str, Collaboration] = Field(
        default_factory=dict,
        description="Gateway document type -> the eb:Service/eb:Action it travels under with this partner (over"
        " ASW_COLLABORATIONS, the defaults for the ACDD and its Customs Response); any other type travels under"
        " ``service``/``action``. Both ways: what we send of that type carries them, and a message of the partner"
        " carrying them is taken as that type.",
    )

    def collaborations(self) -> dict[str, Collaboration]:
        """Document type -> eb:Service/eb:Action, the ASW defaults overridden by ``documents``."""
        return {**ASW_COLLABORATIONS, **self.documents}

    def for_document(self, document_type: str) -> PMode:
        """This agreement with the eb:Service/eb:Action of ``document_type`` (itself for a type not mapped)."""
        c = self.collaborations().get(document_type)
        if c is None:
            return self
        return self.model_copy(update={"service": c.service, "service_type": c.service_type, "action": c.action})

    def variants(self) -> list[tuple[str | None, PMode]]:
        """Every agreement a partner's message may arrive under: this one (document type None: by its Action),
        then one per mapped document type with its eb:Service/eb:Action."""
        out: list[tuple[str | None, PMode]] = [(None, self)]
        out += [(t, self.for_document(t)) for t in self.collaborations()]
        return out

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the AS4 endpoint must be an http:// or https:// URL")
        return value

    @field_validator("responder")
    @classmethod
    def _responder_role(cls, value: PartyConfig) -> PartyConfig:
        if value.role == INITIATOR:
            return value.model_copy(update={"role": RESPONDER})
        return value
