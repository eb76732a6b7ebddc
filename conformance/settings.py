"""What the kit needs to know about the party under test: credentials, certificates, limits.

A TOML file (``nswgw conformance run --settings kit.toml``), validated into the
frozen :class:`KitSettings`; unknown keys are errors naming the key. The
certificates come from a development PKI prepared by
``nswgw conformance pki DIR`` (:func:`conformance.pki.prepare_pki`): the party
under test trusts that PKI's root CA (and reads its CRL) for the kit's party, bound to the kit's certificates
(``signers``: subject CN ``conformance``, the kit's ``signer``), not to every certificate of that CA.
Example::

    party = "CONFORMANCE"
    token = "kit-token"
    other_party = "MOIT"
    other_token = "moit-token"
    pki = "./conformance-pki"

    [vnsw]
    endpoint = "/vnsw/receiveRequest"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import config_error
from gateway.errors import ConfigError

__all__ = [
    "RestSettings",
    "VnswSettings",
    "As4Settings",
    "AcddSettings",
    "KitSettings",
    "RunOptions",
    "load_settings",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class RestSettings(_Frozen):
    document_type: str = "eco.form_d"
    """Document type the kit submits (the kit's party must be allowed to send it)."""
    format: str = "form-d"
    """``X-Format`` of the submissions (the sample document is an ATIGA e-Form D)."""
    forbidden_document_type: str | None = "sps.animal_quarantine_permit"
    """A document type the kit's party is *not* allowed to submit (None: skip that check's second half)."""
    mislabelled_document_type: str | None = "sps.registration"
    """A document type the kit's party *is* allowed to submit whose documents are not e-Form Ds: the kit declares
    its e-Form D as this type and expects a refusal (None: that case is unmet)."""
    enterprise_header: str = "X-On-Behalf-Of"
    """Header naming the enterprise an intermediary submits for."""
    enterprise: str | None = None
    """The enterprise the kit submits for, when the kit's party is an intermediary (sent in ``enterprise_header``,
    and named as the exporter, ``Exporter/ID``, of every e-Form D the kit sends)."""
    undelegated_enterprise: str | None = None
    """An enterprise that has not delegated the kit's party (None: the delegation case is unmet)."""
    receiver_path: str = "/inbox"
    """As receiver: the path the party posts to."""


class VnswSettings(_Frozen):
    endpoint: str = "/vnsw/soap"
    """Path of the party's SOAP receiveRequest endpoint, relative to the target URL."""
    document_type: str = "BNNPTNT0600011"
    """VNSW documentType of the sample envelope."""
    soap_action: str = "receiveRequest"
    """SOAPAction header of the requests."""
    receiver_path: str = "/vnsw/soap"
    """As receiver: the path the party posts its envelopes to."""


class As4Settings(_Frozen):
    endpoint: str = "/as4"
    """Path of the party's AS4 endpoint, relative to the target URL."""
    kit_party_id: str = "conformance-asw"
    """The eb:PartyId the kit sends as (the party must trust the kit's PKI for it)."""
    party_id: str = "nsw-gateway"
    """The eb:PartyId of the party under test (eb:To)."""
    party_certificate: Path | None = None
    """The party's encryption/signing certificate (PEM); None: taken from the kit's PKI by ``party_id``."""
    service: str = "urn:asean:asw:e-form-d"
    """eb:Service of the user messages."""
    action: str = "SubmitFormD"
    """eb:Action of the user messages."""
    receiver_path: str = "/as4"
    """As receiver: the path the party posts to."""
    notification_action: str = "NotifyFormD"
    """eb:Action of the kit's certificate notifications (receipt, utilization, rejection, verification request)
    about the e-Form Ds the party delivered to the kit (same eb:Service)."""
    notifying_country: str = Field("TH", pattern=r"^[A-Z]{2}$")
    """The importing country the kit notifies as (``NotifyingCountryCode``)."""
    issuer_token: str | None = None
    """As receiver: the API bearer token of the party that issued the e-Form Ds the party delivers to the kit; the
    lifecycle cases read each certificate's status with it at ``GET /v1/certificates/{country}/{number}`` of the
    target (None: those cases are unmet)."""


class AcddSettings(_Frozen):
    declaration_type: str = "acdd.declaration"
    """Document type of the ACDD (export declaration) the kit submits."""
    cancellation_type: str = "acdd.cancellation"
    """Document type of the kit's cancellations."""
    response_type: str = "acdd.response"
    """Document type of a Customs Response (the kit submits one; as receiver, the party delivers one)."""
    format: str = "acdd"
    """``X-Format`` of the kit's submissions (``mappings/schemas/acdd/ACDD.md``)."""
    receiver_path: str = "/inbox"
    """As receiver: the path the party delivers its Customs Responses to."""


class KitSettings(_Frozen):
    party: str = "CONFORMANCE"
    """The party the kit acts as at the target."""
    token: str = ""
    """The kit's API bearer token at the target."""
    other_party: str | None = None
    """Another party configured at the target (for the cross-party cases)."""
    other_token: str | None = None
    """That party's bearer token."""
    pki: Path | None = None
    """Directory of the PKI prepared by ``nswgw conformance pki`` (certificates of every kind)."""
    signer: str = "conformance"
    """Name of the kit's valid signing certificate in that PKI."""
    max_message_bytes: int = Field(16 * 1024 * 1024, gt=0)
    """The target's announced size limit: the oversize case sends one byte more."""
    rest: RestSettings = RestSettings()
    vnsw: VnswSettings = VnswSettings()
    as4: As4Settings = As4Settings()
    acdd: AcddSettings = AcddSettings()


class RunOptions(_Frozen):
    target: str = ""
    """Base URL of the party's endpoint (sender role), e.g. ``http://127.0.0.1:8080``."""
    role: Literal["sender", "receiver"] = "sender"
    """The kit's role: ``sender`` sends to the target; ``receiver`` listens and waits for the party."""
    settings: KitSettings = KitSettings()
    listen_host: str = "127.0.0.1"
    """As receiver: address to listen on."""
    listen_port: int = Field(0, ge=0, le=65535)
    """As receiver: port to listen on (0: any free port, printed at start)."""
    wait: float = Field(60.0, gt=0)
    """As receiver: how long to wait for each expected message from the party."""
    case_timeout: float = Field(120.0, gt=0)
    """A case still running after this many seconds is an ERROR (hung party)."""
    request_timeout: float = Field(30.0, gt=0)
    """Timeout of one HTTP request."""

    def url(self, path: str) -> str:
        return self.target.rstrip("/") + "/" + path.lstrip("/")


def load_settings(path: str | Path | None, **overrides: object) -> KitSettings:
    """Read a settings TOML file (None: defaults), apply top-level overrides, validate."""
    data: dict[str, object] = {}
    base = Path(".")
    if path is not None:
        p = Path(path)
        base = p.parent
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {p}: {exc.strerror or exc}", field=str(p)) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p} is not valid TOML: {exc}", field=str(p)) from exc
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = KitSettings.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc) from None
    if settings.pki is not None and not settings.pki.is_absolute():
        settings = settings.model_copy(update={"pki": (base / settings.pki).resolve()})
    return settings
