"""Rig for the conformance kit's tests: the kit's PKI, our gateway configured for it, the broken peer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from conformance.broken_peer import BrokenPeer, PeerParty
from conformance.pki import KIT_SIGNER, KitPki
from conformance.settings import KitSettings
from gateway.config import Config, parse_config

KIT_TOKEN = "kit-token"
OTHER_TOKEN = "other-token"
MAX_BYTES = 64 * 1024
DELEGATED = "ENT-0300000001"
UNDELEGATED = "ENT-0999999999"
FORM_D_TYPE = {"codes": ["861"]}
"""How the gateway recognises the kit's e-Form Ds (``[document_types."eco.form_d"]``)."""


def kit_settings(pki: KitPki, **rest: Any) -> KitSettings:
    return KitSettings(
        party="CONFORMANCE",
        token=KIT_TOKEN,
        other_party="OTHER",
        other_token=OTHER_TOKEN,
        pki=pki.directory,
        max_message_bytes=MAX_BYTES,
        rest={"enterprise": DELEGATED, "undelegated_enterprise": UNDELEGATED, **rest},
    )


class Sink:
    """The destination our gateway delivers the kit's accepted messages to (answers a JSON receipt)."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbox"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        mid = request.headers.get("X-Message-Id", "")
        self.received.append(mid)
        return web.json_response({"message_id": mid, "duplicate": False})

    async def __aenter__(self) -> Sink:
        app = web.Application()
        app.router.add_post("/inbox", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _kit_trust(pki: KitPki) -> dict[str, Any]:
    """Trust in the kit's party: the kit PKI's root, both CRLs, and the kit's signing certificate by CN."""
    return {
        "anchors": [str(pki.pki.root_cert_path)],
        "crls": [str(pki.pki.crl_path), str(pki.pki.root_crl_path)],
        "signers": [{"subject": {"CN": KIT_SIGNER}}],
    }


def _gateway_and_store(tmp_path: Path, verification: str) -> dict[str, Any]:
    """The ``gateway`` and ``store`` sections every conformance gateway shares (SQLite in ``tmp_path``)."""
    return {
        "gateway": {
            "port": 0,
            "poll_interval": 0.05,
            "verification": verification,
            "signing": "off",
            "max_message_bytes": MAX_BYTES,
        },
        "store": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "synchronous": "NORMAL"},
    }


def gateway_config(
    tmp_path: Path, pki: KitPki, sink_url: str, *, sink_format: str = "json", omit_parties: tuple[str, ...] = ()
) -> Config:
    """Our gateway, configured as an operator onboarding the kit's party would configure it.

    ``omit_parties``: leave these parties out, as an operator who has not prepared the gateway for the kit yet.
    """
    trust = _kit_trust(pki)
    other_trust = {**trust, "signers": [{"subject": {"CN": "other"}}]}
    data: dict[str, Any] = {
        **_gateway_and_store(tmp_path, "signature"),
        "parties": {
            "CONFORMANCE": {
                "tokens": [KIT_TOKEN],
                "document_types": ["eco.form_d", "sps.registration"],
                "format": "form-d",
                "kind": "intermediary",
                "on_behalf_of": [DELEGATED],
                "trust": trust,
            },
            "OTHER": {
                "tokens": [OTHER_TOKEN],
                "document_types": ["eco.form_d"],
                "format": "form-d",
                "trust": other_trust,
            },
        },
        "destinations": {
            "SINK": {
                "url": sink_url,
                "timeout": 5.0,
                "format": sink_format,
                "retry": {"max_attempts": 3, "ttl": 30.0, "initial": 0.01, "max_wait": 0.05, "jitter": 0.0},
            }
        },
        "routes": [{"document_type": "*", "to": ["SINK"]}],
        "document_types": {
            "eco.form_d": FORM_D_TYPE,
            "sps.registration": {"procedures": ["BNNPTNT0600011/10/01"]},
        },
    }
    for name in omit_parties:
        del data["parties"][name]
    return parse_config(data)


def broken_peer(pki: KitPki, *defects: str, profile: str = "rest-intermediary") -> BrokenPeer:
    parties = {
        "CONFORMANCE": PeerParty(KIT_TOKEN, ("eco.form_d", "sps.registration"), (DELEGATED,)),
        "OTHER": PeerParty(OTHER_TOKEN, ("eco.form_d",)),
    }
    return BrokenPeer(profile, defects, pki=pki, parties=parties, max_message_bytes=MAX_BYTES)


def vnsw_gateway_config(tmp_path: Path, pki: KitPki, sink_url: str, *, sink_format: str = "json") -> Config:
    """Our gateway with the VNSW SOAP inbound endpoint; the kit's party signs in <SystemSignature>."""
    trust = _kit_trust(pki)
    other_trust = {**trust, "signers": [{"subject": {"CN": "other"}}]}
    data: dict[str, Any] = {
        **_gateway_and_store(tmp_path, "signature"),
        "parties": {
            "CONFORMANCE": {
                "tokens": [KIT_TOKEN],
                "document_types": ["BNNPTNT0600011"],
                "format": "vnsw",
                "trust": trust,
                "verify": {"profile": "vnsw-legacy"},
            },
            "OTHER": {
                "tokens": [OTHER_TOKEN],
                "document_types": ["BNNPTNT0600011"],
                "format": "vnsw",
                "trust": other_trust,
                "verify": {"profile": "vnsw-legacy"},
            },
        },
        "destinations": {
            "SINK": {
                "url": sink_url,
                "timeout": 5.0,
                "format": sink_format,
                "retry": {"max_attempts": 3, "ttl": 30.0, "initial": 0.01, "max_wait": 0.05, "jitter": 0.0},
            }
        },
        "routes": [{"document_type": "*", "to": ["SINK"]}],
        "inbound": {"vnsw": {"endpoint": "vnsw-soap"}},
        "document_types": {"BNNPTNT0600011": {"procedures": ["BNNPTNT0600011"]}},
    }
    return parse_config(data)


def as4_receiver(
    pki: KitPki,
    *,
    kit_party: str = "conformance-asw",
    party_id: str = "nsw-gateway",
    service: str = "urn:asean:asw:e-form-d",
    action: str = "SubmitFormD",
) -> Any:
    """Our gateway's AS4 receiver (adapters.as4.As4Receiver) for the kit's party, trusting the kit's PKI and CRL."""
    from adapters.as4 import As4Partner, As4Receiver, PartyConfig, PMode
    from signing.identity import SignerIdentity
    from signing.keys import SoftwareSigner
    from signing.revocation import CrlChecker
    from signing.trust import TrustStore
    from signing.xenc import SoftwareDecrypter

    ours = pki.pki.party(party_id)
    kit = pki.pki.party("conformance")
    unregistered = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
    pmode = PMode(
        id=f"{party_id}-{kit_party}",
        initiator=PartyConfig(party_id=party_id, party_id_type=unregistered),
        responder=PartyConfig(party_id=kit_party, party_id_type=unregistered),
        service=service,
        action=action,
    )
    trust = TrustStore(
        kit_party,
        anchors=(pki.pki.root_cert,),
        intermediates=(pki.pki.issuing_cert,),
        revocation=CrlChecker.from_files([pki.pki.crl_path, pki.pki.root_crl_path]),
        signers=SignerIdentity.subject(CN=KIT_SIGNER),
    )
    return As4Receiver(
        party_id=party_id,
        partners={kit_party: As4Partner(pmode, trust, kit.cert)},
        signer=SoftwareSigner(ours.key, ours.cert, [pki.pki.issuing_cert]),
        decrypter=SoftwareDecrypter(ours.key, ours.cert),
    )


class Served:
    """An aiohttp app on 127.0.0.1 (free port); ``url`` is its base URL."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Served:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _kit_as4_trust(pki: KitPki) -> dict[str, Any]:
    """Trust in the kit's party over AS4: the kit PKI's root and issuing CA, both CRLs, and the kit's signing
    certificate by its DN."""
    return {
        "anchors": [str(pki.pki.root_cert_path)],
        "intermediates": [str(pki.pki.issuing_cert_path)],
        "crls": [str(pki.pki.crl_path), str(pki.pki.root_crl_path)],
        "signers": [{"dn": pki.pki.party(KIT_SIGNER).cert.subject.rfc4514_string()}],
    }


def _as4_endpoint(
    pki: KitPki, party_id: str, kit_party_id: str, pmode: dict[str, Any], document_types: dict[str, str]
) -> dict[str, Any]:
    """The options of our AS4 endpoint ``party_id`` (signing with the kit PKI's ``party_id`` key) taking the kit's
    party ``kit_party_id`` as the gateway party CONFORMANCE under ``pmode``."""
    ours = pki.pki.party(party_id)
    return {
        "party_id": party_id,
        "signer": {"key": str(ours.key_path), "cert": str(ours.cert_path)},
        "partners": {
            kit_party_id: {
                "party": "CONFORMANCE",
                "pmode": pmode,
                "trust": _kit_as4_trust(pki),
                "document_types": document_types,
            }
        },
    }


def as4_gateway_config(
    tmp_path: Path,
    pki: KitPki,
    sink_url: str,
    *,
    sink_format: str = "json",
    kit_party_id: str = "conformance-asw",
    party_id: str = "nsw-gateway",
    service: str = "urn:asean:asw:e-form-d",
    action: str = "SubmitFormD",
) -> Config:
    """Our gateway with the AS4 inbound endpoint (``[inbound.asean] endpoint = "as4"``, plain TOML values).

    The kit's party (eb:PartyId ``kit_party_id``) submits as the gateway party CONFORMANCE; the gateway trusts the
    kit's PKI for it (root anchor, issuing CA, both CRLs: the conformance PKI's prerequisite for TA04-TA06), signs
    receipts and decrypts with the kit PKI's ``party_id`` key, and routes accepted e-Form Ds to ``sink_url``.
    """
    pmode = {
        "id": f"{party_id}-{kit_party_id}-formd",
        "service": service,
        "action": action,
        "initiator": {"party_id": party_id},
        "responder": {"party_id": kit_party_id},
    }
    inbound = _as4_endpoint(pki, party_id, kit_party_id, pmode, {action: "eco.form_d"})
    data: dict[str, Any] = {
        # the AS4 endpoint checks the WS-Security signature; the payload itself is not signed
        **_gateway_and_store(tmp_path, "well-formed"),
        "parties": {
            "CONFORMANCE": {"tokens": [KIT_TOKEN], "document_types": ["eco.form_d"], "format": "form-d"},
        },
        "destinations": {
            "SINK": {
                "url": sink_url,
                "timeout": 5.0,
                "format": sink_format,
                "retry": {"max_attempts": 3, "ttl": 30.0, "initial": 0.01, "max_wait": 0.05, "jitter": 0.0},
            }
        },
        "routes": [{"document_type": "eco.form_d", "sender": "CONFORMANCE", "to": ["SINK"]}],
        "document_types": {"eco.form_d": FORM_D_TYPE},
        "inbound": {"asean": {"endpoint": "as4", "options": inbound}},
    }
    return parse_config(data)


ISSUER_TOKEN = "issuer-token"
"""The token of MOIT, the issuer of the e-Form Ds our gateway delivers to the kit (settings 'as4.issuer_token')."""
NOTICE_ROOT = "{urn:nsw-gateway:atiga:e-form-d:1}CertificateNotification"


def as4_lifecycle_gateway_config(
    tmp_path: Path,
    pki: KitPki,
    kit_url: str,
    issuer_url: str,
    *,
    kit_party_id: str = "conformance-asw",
    party_id: str = "nsw-gateway",
    service: str = "urn:asean:asw:e-form-d",
    notification_action: str = "NotifyFormD",
) -> Config:
    """Our gateway delivering MOIT's e-Form Ds to the kit as the importing partner (destination KIT, AS4 to
    ``kit_url``) and taking the kit's certificate notifications at its AS4 endpoint (eb:Action
    ``notification_action`` → ``eco.form_d.notification``), routed back to MOIT's inbox ``issuer_url``.

    MOIT (token :data:`ISSUER_TOKEN`) submits unsigned e-Form Ds over the REST API (``verification =
    "well-formed"``); the AS4 endpoint and the AS4 destination sign, encrypt and verify with the kit PKI's
    ``party_id`` key, trusting the kit's certificate for the kit's party."""
    ours, kit = pki.pki.party(party_id), pki.pki.party(KIT_SIGNER)
    trust = _kit_as4_trust(pki)
    signer = {"key": str(ours.key_path), "cert": str(ours.cert_path)}
    unregistered = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"  # as the kit names both sides
    sides = {
        "initiator": {"party_id": party_id, "party_id_type": unregistered},
        "responder": {"party_id": kit_party_id, "party_id_type": unregistered},
    }
    retry = {"max_attempts": 200, "ttl": 60.0, "initial": 0.01, "max_wait": 0.05, "jitter": 0.0}
    pmode = {"id": f"{party_id}-{kit_party_id}-formd-notices", "service": service, "action": notification_action}
    inbound = _as4_endpoint(
        pki, party_id, kit_party_id, {**pmode, **sides}, {notification_action: "eco.form_d.notification"}
    )
    data: dict[str, Any] = {
        **_gateway_and_store(tmp_path, "well-formed"),
        "parties": {
            "MOIT": {"tokens": [ISSUER_TOKEN], "document_types": ["eco.form_d"], "format": "form-d"},
            "CONFORMANCE": {
                "tokens": [KIT_TOKEN],
                "document_types": ["eco.form_d.notification"],
                "format": "form-d",
            },
        },
        "destinations": {
            "KIT": {
                "adapter": "as4",
                "url": kit_url,
                "party": "CONFORMANCE",  # the kit notifies about the e-Form Ds delivered to it
                "timeout": 5.0,
                "format": "same",
                "retry": retry,
                "options": {
                    "pmode": {
                        "id": f"{party_id}-{kit_party_id}-formd",
                        "service": service,
                        "action": "SubmitFormD",
                        **sides,
                        "reception_awareness": {"attempts": 1, "initial_wait": 0.01, "max_wait": 0.05},
                    },
                    "signer": signer,
                    "trust": trust,
                    "encryption_certificate": str(kit.cert_path),
                },
            },
            "MOIT-BOX": {"url": issuer_url, "timeout": 5.0, "format": "same", "retry": retry},
        },
        "routes": [
            {"document_type": "eco.form_d", "sender": "MOIT", "to": ["KIT"]},
            {"document_type": "eco.form_d.notification", "sender": "CONFORMANCE", "to": ["MOIT-BOX"]},
        ],
        "document_types": {"eco.form_d": FORM_D_TYPE, "eco.form_d.notification": {"roots": [NOTICE_ROOT]}},
        "inbound": {"asean": {"endpoint": "as4", "options": inbound}},
    }
    return parse_config(data)


ACDD_ROOT = "{urn:nsw-gateway:asean:acdd:1}"
ACDD_TYPES: dict[str, dict[str, Any]] = {
    "acdd.declaration": {"codes": ["830"], "roots": [ACDD_ROOT + "ExportDeclaration"]},
    "acdd.response": {"codes": ["961"], "roots": [ACDD_ROOT + "CustomsResponse"]},
    "acdd.cancellation": {"roots": [ACDD_ROOT + "DeclarationCancellation"]},
}
"""How the gateway recognises each ACDD message (as gateway/examples/gateway.toml declares them)."""
CUSTOMS_TOKEN = "customs-token"


def acdd_gateway_config(
    tmp_path: Path, pki: KitPki, sink_url: str, *, kit_url: str = "http://127.0.0.1:9/inbox", party_format: str = "acdd"
) -> Config:
    """Our gateway exchanging ACDDs with the kit as the partner customs (party CONFORMANCE, signed ACDD XML).

    The kit's ACDDs, cancellations and Customs Responses go to national customs (``sink_url``, harmonized JSON);
    national customs (party CUSTOMS, signing with the kit's certificate) answers with Customs Responses routed to
    the kit's listener (``kit_url``, ACDD XML). ``party_format = "xml"`` makes a party that checks only the root
    of what the kit sends, not the ACDD schema or its rules.
    """
    trust = _kit_trust(pki)
    retry = {"max_attempts": 20, "ttl": 30.0, "initial": 0.01, "max_wait": 0.05, "jitter": 0.0}
    data: dict[str, Any] = {
        **_gateway_and_store(tmp_path, "signature"),
        "parties": {
            "CONFORMANCE": {
                "tokens": [KIT_TOKEN],
                "document_types": list(ACDD_TYPES),
                "format": party_format,
                "trust": trust,
            },
            "CUSTOMS": {
                "tokens": [CUSTOMS_TOKEN],
                "document_types": list(ACDD_TYPES),
                "format": "acdd",
                "trust": trust,
            },
        },
        "destinations": {
            "SINK": {
                "url": sink_url,
                "timeout": 5.0,
                "format": "json" if party_format == "acdd" else "same",
                "retry": retry,
            },
            "KIT": {"url": kit_url, "timeout": 5.0, "format": "acdd", "retry": retry},
        },
        "routes": [
            {"document_type": "acdd.response", "sender": "CUSTOMS", "to": ["KIT"]},
            {"document_type": "*", "sender": "CONFORMANCE", "to": ["SINK"]},
        ],
        "document_types": ACDD_TYPES,
    }
    return parse_config(data)
