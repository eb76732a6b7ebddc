"""``nswgw demo``: the whole gateway on one machine, end to end, with a summary.

Starts, all on 127.0.0.1 and in a fresh temporary directory:

* a development PKI (``signing.dev.pki.init_dev_pki``; created once under the
  temporary directory's ``nswgw-demo-pki`` and reused): the gateway, MOIT,
  MARD and a customs broker with RSA-2048 keys, the receivers with P-256 keys;
* the gateway (embedded SQLite store, HTTP API, delivery workers) with
  ``verification = "signature"`` (per-party trust: MOIT pinned, MARD and the
  broker anchored at the dev root, each bound to its own certificate by ``signers``; MARD on the
  ``vnsw-legacy`` profile) and
  ``signing = "on"`` (its own PKCS#12 key);
* simulated ministries that submit over the HTTP API: MOIT issuing signed
  e-C/O Form D (``mappings`` ``form-d`` documents; every fifth an amendment in
  the same conversation), a customs broker (a data intermediary) registering
  animal consignments with MARD on behalf of importers, and MARD answering each
  registration with a signed VNSW quarantine-result envelope that references it;
  national customs (VNACCS) sending signed ACDDs (``mappings`` ``acdd`` documents) to the Thai customs;
* the e-Form D lifecycle, once every message above arrived (after the clock): the Thai Single Window (party
  ``TH-ASW``) notifies a few of the e-C/O TH received as received, then utilized against an import declaration,
  and rejects one with a reason (signed ``CertificateNotification`` documents routed back to MOIT's inbox); MOIT
  then reads each certificate's status and history at ``GET /v1/certificates/VN/{number}``;
* simulated receivers (real aiohttp servers): the ASEAN partners TH and ID,
  national customs, MARD's inbox and the Thai customs, which answers each ACDD with a signed Customs Response
  (one in three a query, the others accepted) that the gateway routes back to national customs. Each verifies
  the gateway's signature and answers with a receipt signed with its own key, which the gateway
  verifies. TH is down (503) for the first few seconds, so its messages are
  retried and arrive after it recovers. e-C/O fan out to the partner and customs.

It prints a progress bar and a table: delivered, retried, dead and p50/p99
end-to-end latency (submission → receipt) per destination, and how many
signatures were verified on each side, the ACDDs sent with the Customs Responses that came back, by status, and
MOIT's view of the certificates the Thai side notified about (:func:`lifecycle_lines`).
``nswgw demo`` then runs a ship call on a gateway of its own (:func:`gateway.dev.shipcall.ship_call_demo`: an agent
declares once, five agencies each receive their part, one refuses until an amendment) and prints what happened.

``nswgw demo --serve [--port PORT]`` (:func:`living_demo`) keeps the same topology running until SIGINT or
SIGTERM: the ministries send a steady trickle (1–3 messages a second), TH is down for 15 s of every minute,
every twentieth submission is an unsigned e-C/O (rejected ``SIG_MISSING``) and MARD's inbox refuses every seventh
registration it receives (a dead letter, which a replay delivers). The gateway has operator ``ops`` with a token
drawn afresh; the command prints it and a one-time link to the operator console.
Both modes set up the topology with :func:`demo_topology`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.api import Gateway
from gateway.config import Config, LogSettings, parse_config
from gateway.dev.shipcall import ship_call_demo
from gateway.errors import ConfigError, NswError
from gateway.model import State
from gateway.ports import SignedReceiptVerifier, receipt_document

__all__ = [
    "DemoResult",
    "LivingDemo",
    "Topology",
    "demo_pki",
    "demo_topology",
    "eco_form_d",
    "living_demo",
    "register",
    "run_demo",
]

TOKENS = {
    "MOIT": "demo-moit",
    "MARD": "demo-mard",
    "BROKER": "demo-broker",
    "CUSTOMS": "demo-customs",
    "TH-CUSTOMS": "demo-th-customs",
    "TH-ASW": "demo-th-asw",
}
OPERATOR_TOKEN = "demo-ops"
"""The token of the demo's operator ``ops`` (``nswgw demo --serve`` draws a random one instead)."""
MINISTRY_KEYS = ("nsw-gateway", "moit", "mard", "broker")
PARTNER_KEYS = {
    "TH": "th-asw",
    "ID": "id-asw",
    "CUSTOMS": "customs",
    "MARD": "mard-inbox",
    "TH-CUSTOMS": "th-asw",
    "MOIT-BOX": "moit",
}
ENTERPRISES = ("0300000001", "0300000002", "0300000003")
VN = dt.timezone(dt.timedelta(hours=7))


def demo_pki(directory: Path | None = None) -> Any:
    """The demo's development PKI: reused when it holds every key the demo needs, else (re)created."""
    from signing.dev.pki import DevPki, generate_key, init_dev_pki

    directory = directory or Path(tempfile.gettempdir()) / f"nswgw-demo-pki-{os.getuid()}"
    try:
        pki = DevPki.open(directory)
        if set(MINISTRY_KEYS) | set(PARTNER_KEYS.values()) <= set(pki.names):
            return pki
    except ConfigError:
        pass
    pki = init_dev_pki(directory, MINISTRY_KEYS, force=True)
    for name in sorted(set(PARTNER_KEYS.values()) - set(MINISTRY_KEYS)):  # partners may share a key
        pki.issue(name, key=generate_key("p256"))
    return pki


def _signer(pki: Any, name: str) -> Any:
    from signing.keys import SoftwareSigner

    p = pki.party(name)
    return SoftwareSigner(p.key, p.cert, [pki.issuing_cert])


def _form_d_template(items: int) -> bytes:
    from mappings.model import (
        Address,
        Amount,
        DocumentInfo,
        GoodsItem,
        Location,
        Measure,
        OriginCertificate,
        Parties,
        Party,
        Quantity,
        Signatory,
        TradeMessage,
        Transport,
        TransportLeg,
    )
    from mappings.registry import get

    goods = tuple(
        GoodsItem(
            sequence=i + 1,
            description=f"Frozen pangasius fillets, lot {i + 1}",
            hs_code="030462",
            package_count=100,
            package_type="CT",
            marks="N/M",
            quantities=(Quantity(value=Decimal("1000"), unit="KGM"),),
            gross_weight=Measure(value=Decimal("1100.5"), unit="KGM"),
            fob_value=Amount(value=Decimal("2500.00"), currency="USD"),
            origin_country="VN",
            origin_criterion="WO",
            invoice_number="INV-2026-001",
            invoice_date=dt.date(2026, 3, 1),
        )
        for i in range(items)
    )
    msg = TradeMessage(
        document=DocumentInfo(
            number="VN-XX-26-@@@@@", issue_date=dt.datetime(2026, 3, 5, 10, 0, tzinfo=VN), issuing_country="VN"
        ),
        parties=Parties(
            exporter=Party(
                name="Saigon Seafood JSC",
                identifier="0300000001",
                address=Address(line1="Ho Chi Minh City", country="VN"),
            ),
            consignee=Party(name="Bangkok Foods Co Ltd", address=Address(line1="Bangkok", country="TH")),
            issuing_authority=Party(name="Ministry of Industry and Trade"),
        ),
        transport=Transport(
            legs=(TransportLeg(mode="1", means="MV Mekong Star", journey="V26", departure_date=dt.date(2026, 3, 6)),),
            port_of_loading=Location(code="VNSGN", name="Ho Chi Minh City"),
            port_of_discharge=Location(code="THBKK", name="Bangkok"),
            export_country="VN",
            destination_country="TH",
        ),
        goods=goods,
        signatory=Signatory(
            name="Nguyen Van A",
            role="Director",
            place="Ho Chi Minh City",
            signed_at=dt.datetime(2026, 3, 5, 9, 0, tzinfo=VN),
        ),
        origin_certificate=OriginCertificate(third_country_invoicing=False),
    )
    return get("form-d").emit(msg)


_TEMPLATES: dict[int, bytes] = {}


def eco_form_d(n: int, partner: str, *, amendment: bool = False, size: int = 0) -> bytes:
    """An (unsigned) ATIGA e-C/O Form D in the ``form-d`` format, about ``size`` bytes once signed."""
    items = max(1, min(50, round((size - 5400) / 630) + 1)) if size else 1
    if items not in _TEMPLATES:
        _TEMPLATES[items] = _form_d_template(items)
    number = f"{n:05d}"[-5:]
    return (
        _TEMPLATES[items]
        .replace(b"VN-XX-26-@@@@@", f"VN-{partner}-26-{number}".encode())
        .replace(b"<ID>THBKK</ID>", b"<ID>THBKK</ID>" if partner == "TH" else b"<ID>IDJKT</ID>")
    )


def registration(n: int, enterprise: str = ENTERPRISES[0]) -> bytes:
    """A broker's animal consignment registration (pass-through XML) for ``enterprise``, unsigned."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><AnimalConsignmentRegistration Id="reg-{n}">'
        f"<Registrant><TaxCode>{enterprise}</TaxCode></Registrant>"
        f"<Species>Bos taurus</Species><Head>{10 + n}</Head><Origin>AU</Origin></AnimalConsignmentRegistration>"
    ).encode()


DOCUMENT_TYPES: dict[str, dict[str, Any]] = {
    "eco.form_d": {"name": "ATIGA e-Form D certificate of origin", "codes": ["861"]},
    "eco.form_d.amendment": {"name": "Amended ATIGA e-Form D", "codes": ["861"]},
    "sps.registration": {
        "name": "Animal consignment registration (pass-through XML)",
        "roots": ["AnimalConsignmentRegistration"],
        "enterprise_paths": ["Registrant/TaxCode"],
    },
    "sps.animal_quarantine_permit": {
        "name": "MARD animal quarantine result",
        "procedures": ["BNNPTNT0600011/12/05", "BNNPTNT0600011/12/06", "BNNPTNT0600011/12/07"],
    },
    "acdd.declaration": {
        "name": "ASEAN Customs Declaration Document",
        "codes": ["830"],
        "roots": ["{urn:nsw-gateway:asean:acdd:1}ExportDeclaration"],
    },
    "acdd.response": {
        "name": "Customs Response to an ACDD",
        "codes": ["961"],
        "roots": ["{urn:nsw-gateway:asean:acdd:1}CustomsResponse"],
    },
    "eco.form_d.notification": {
        "name": "e-Form D certificate notification (received, utilized, rejected)",
        "roots": ["{urn:nsw-gateway:atiga:e-form-d:1}CertificateNotification"],
    },
}
"""The demo's document types and how each is recognised from its content."""

REJECTION = ("ORIGIN-CRITERION", "Regional value content below 40%: preference refused.")
"""The Thai side's reason (code, text) for the one e-C/O it rejects."""


def lifecycle_numbers(n_eco: int, count: int = 4) -> list[str]:
    """The numbers of the e-C/O to TH the Thai side notifies about, of the first ``n_eco`` MOIT issues: at most
    ``count`` originals that no amendment follows. All but the last are received, then utilized; the last is
    rejected with :data:`REJECTION`."""
    chosen = [n for n in range(n_eco) if n % 2 == 0 and n % 5 in (0, 1, 2)][:count]
    return [f"VN-TH-26-{n:05d}" for n in chosen]


def certificate_notification(kind: str, number: str, **fields: str) -> bytes:
    """The Thai side's ``CertificateNotification`` (``mappings`` ``form-d``) of ``kind`` about MOIT's e-C/O
    ``number``; ``fields``: DeclarationID, DeclarationDate, ReasonCode, Reason, in the schema's order. Unsigned."""
    from xml.sax.saxutils import escape

    extra = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields.items())
    return (
        '<CertificateNotification xmlns="urn:nsw-gateway:atiga:e-form-d:1"><Notification>'
        f"<TypeCode>{kind}</TypeCode><CertificateID>{number}</CertificateID><IssuingCountryCode>VN"
        f"</IssuingCountryCode><NotifyingCountryCode>TH</NotifyingCountryCode>{extra}</Notification>"
        "</CertificateNotification>"
    ).encode()


def lifecycle_notices(numbers: list[str]) -> dict[str, list[tuple[str, bytes]]]:
    """Per e-C/O number, the Thai side's notifications about it in order, each with its ``X-Message-Id``."""
    out: dict[str, list[tuple[str, bytes]]] = {}
    for i, number in enumerate(numbers):
        if i == len(numbers) - 1:
            code, reason = REJECTION
            out[number] = [
                (f"CO-REJECTED-{number}", certificate_notification("rejected", number, ReasonCode=code, Reason=reason))
            ]
            continue
        used = certificate_notification(
            "utilized", number, DeclarationID=f"TH-IMP-26-{i:05d}", DeclarationDate="2026-03-09"
        )
        out[number] = [
            (f"CO-RECEIVED-{number}", certificate_notification("received", number)),
            (f"CO-UTILIZED-{number}", used),
        ]
    return out


ACDD_STATUSES = ("accepted", "query", "accepted")
"""The Thai customs' answer to the n-th ACDD: ``ACDD_STATUSES[n % 3]``."""


def acdd_declaration(n: int) -> bytes:
    """National customs' n-th ACDD to Thailand (``mappings`` ``acdd`` XML, declaration number 30512345nnnn)."""
    from mappings.acdd import AcddFormat, examples

    msg = examples()["ExportDeclaration"]
    assert msg.customs_declaration is not None
    number = msg.customs_declaration.model_copy(update={"number": f"30512345{n:04d}"})
    return AcddFormat().emit(msg.model_copy(update={"customs_declaration": number}))


def customs_response(n: int) -> bytes:
    """The Thai customs' Customs Response to the n-th ACDD, of status ``ACDD_STATUSES[n % 3]`` (a query asks
    for the invoice)."""
    from mappings.acdd import AcddFormat, examples
    from mappings.model import CustomsResponse, CustomsResponseStatus

    status = CustomsResponseStatus(ACDD_STATUSES[n % len(ACDD_STATUSES)])
    reason = None if status is CustomsResponseStatus.ACCEPTED else "Please send the invoice of item 1."
    response = CustomsResponse(declaration_number=f"30512345{n:04d}", status=status, reason=reason)
    return AcddFormat().emit(examples()["CustomsResponse"].model_copy(update={"customs_response": response}))


_PERMIT: list[bytes] = []


def permit(n: int, reference: str) -> bytes:
    """MARD's quarantine result (VNSW envelope, procedure BNNPTNT0600011, type 12, function 05), unsigned."""
    if not _PERMIT:
        from mappings.model import Decision, Endpoint, Envelope, Permit, TradeMessage
        from mappings.registry import get

        nsw = Endpoint(name="NSW", identity="NSW", country="VN", ministry="BTC", organization="TCHQ", unit="NSW")
        mard = Endpoint(
            name="BNNPTNT", identity="BNNPTNT", country="VN", ministry="BNNPTNT", organization="06", unit="BNNPTNT"
        )
        msg = TradeMessage(
            envelope=Envelope(
                message_id="00000000-0000-4000-8000-000000000000",
                version="01",
                sender=mard,
                recipient=nsw,
                procedure="BNNPTNT0600011",
                message_type="12",
                function="05",
                reference="BNNPTNT26000000000",
                reference_year=2026,
                previous_reference="BNNPTNT26000000000",
                previous_reference_year=2026,
                sent_at=dt.datetime(2026, 3, 5, 9, 15, 2, tzinfo=VN),
            ),
            permit=Permit(
                procedure_code="BNNPTNT0600011",
                application_number="BNNPTNT26000000000",
                decision=Decision.ACCEPTED,
                decision_date=dt.datetime(2026, 3, 5, 9, 14, 40, tzinfo=VN),
                reason="Ho so hop le",
            ),
        )
        _PERMIT.append(get("vnsw").emit(msg))
    return _PERMIT[0].replace(b"000000000000</messageId>", f"{n:012d}</messageId>".encode())


_PARTNER_PROCESS: dict[str, Any] = {}


def _partner_process_init(pki_dir: str) -> None:
    """In a partner process: the gateway's trust and each partner's receipt key, from the dev PKI on disk."""
    from signing.dev.pki import DevPki
    from signing.policy import VerifyPolicy
    from signing.trust import PinnedCertificate, TrustStore

    pki = DevPki.open(pki_dir)
    _PARTNER_PROCESS["trust"] = (
        TrustStore(party="nsw-gateway", pinned=(PinnedCertificate(pki.party("nsw-gateway").cert),)),
        VerifyPolicy(),
    )
    _PARTNER_PROCESS["signers"] = {name: _signer(pki, key) for name, key in PARTNER_KEYS.items()}


def _partner_crypto(
    partner: str, body: bytes, mid: str, duplicate: bool, verify: bool, sign: bool
) -> tuple[str | None, bytes | None]:
    """Verify the gateway's signature and sign the receipt (in a partner process). Returns (error code, receipt)."""
    from signing.sign import sign_document
    from signing.verify import verify_document

    if verify:
        trust, policy = _PARTNER_PROCESS["trust"]
        try:
            verify_document(body, trust=trust, policy=policy)
        except NswError as exc:
            return exc.code, None
    if not sign:
        return None, None
    return None, sign_document(receipt_document(mid, body, duplicate=duplicate), _PARTNER_PROCESS["signers"][partner])


class _Partner:
    """A simulated receiver: verifies the gateway's signature, deduplicates by message id, answers with a
    receipt (signed with its own key when ``receipt_signer`` is set, JSON otherwise).

    It answers 503 for ``down_for`` seconds from its start, and again for ``down_for`` seconds of every
    ``down_every`` when that is set; with ``reject_every``, it refuses (400) the first delivery of every such
    new message (a content check of its own), and accepts that message when it is sent again (a replay)."""

    def __init__(
        self,
        name: str,
        *,
        down_for: float = 0.0,
        down_every: float = 0.0,
        reject_every: int = 0,
        fail_first: int = 0,
        receipt_signer: Any = None,
        gateway_trust: Any = None,
    ) -> None:
        self.name = name
        self.fail_first = fail_first
        self.started = 0.0
        self.down_until = 0.0
        self.down_for = down_for
        self.down_every = down_every
        self.reject_every = reject_every
        self.rejected: set[str] = set()
        self._new = 0
        self.arrivals: dict[str, float] = {}
        self.requests = 0
        self.on_message: Any = None
        self.receipt_signer = receipt_signer
        self.gateway_trust = gateway_trust
        self.verified = 0
        self.verify_failures: Counter[str] = Counter()
        self.pool: Any = None
        """A process pool (``_partner_process_init``) doing the partner's crypto elsewhere, as a real partner would."""
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbox"

    def _down(self) -> bool:
        now = time.monotonic()
        if now < self.down_until:
            return True
        return bool(self.down_every) and (now - self.started) % self.down_every < self.down_for

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        if self._down() or self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="maintenance")
        mid = request.headers.get("X-Message-Id", "")
        if self.reject_every and mid not in self.arrivals and mid not in self.rejected:
            self._new += 1
            if self._new % self.reject_every == 0:
                self.rejected.add(mid)
                return web.json_response({"error": {"code": "CONTENT_REFUSED", "message": "head count"}}, status=400)
        if self.pool is not None:
            duplicate = mid in self.arrivals
            code, receipt_bytes = await asyncio.get_running_loop().run_in_executor(
                self.pool,
                _partner_crypto,
                self.name,
                body,
                mid,
                duplicate,
                self.gateway_trust is not None,
                self.receipt_signer is not None,
            )
            if code is not None:
                self.verify_failures[code] += 1
                return web.json_response({"error": {"code": code}}, status=400)
            if self.gateway_trust is not None:
                self.verified += 1
            if not duplicate and mid not in self.arrivals:
                self.arrivals[mid] = time.monotonic()
                if self.on_message is not None:
                    self.on_message(request.headers)
            if receipt_bytes is not None:
                return web.Response(body=receipt_bytes, content_type="application/xml", headers={"X-Receipt-For": mid})
            return web.json_response({"message_id": mid, "duplicate": duplicate})
        if self.gateway_trust is not None:
            from signing.verify import verify_document

            try:  # the partner's crypto runs off the event loop it shares with the gateway in this demo
                await asyncio.to_thread(
                    verify_document, body, trust=self.gateway_trust[0], policy=self.gateway_trust[1]
                )
                self.verified += 1
            except NswError as exc:
                self.verify_failures[exc.code] += 1
                return web.json_response({"error": exc.to_dict()}, status=400)
        duplicate = mid in self.arrivals
        if not duplicate:
            self.arrivals[mid] = time.monotonic()
            if self.on_message is not None:
                self.on_message(request.headers)
        if self.receipt_signer is not None:
            from signing.sign import sign_document

            receipt = await asyncio.to_thread(
                sign_document, receipt_document(mid, body, duplicate=duplicate), self.receipt_signer
            )
            return web.Response(body=receipt, content_type="application/xml", headers={"X-Receipt-For": mid})
        return web.json_response({"message_id": mid, "duplicate": duplicate})

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/inbox", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self.started = time.monotonic()
        self.down_until = self.started + self.down_for

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def demo_config(
    store_dir: Path,
    partners: dict[str, _Partner],
    *,
    pki: Any = None,
    verification: str = "signature",
    signing: str = "on",
    synchronous: str = "FULL",
    concurrency: int = 16,
    port: int = 0,
    operator_token: str = OPERATOR_TOKEN,
) -> Config:
    """The demo topology, with operator ``ops`` (``operator_token``) for the operator API and the console. With
    ``pki``: per-party trust, the gateway's key and signed receipts."""
    retry = {"max_attempts": 30, "ttl": 120.0, "initial": 0.2, "max_wait": 1.0, "jitter": 0.2}
    secure = pki is not None

    def anchored(key: str) -> dict[str, Any] | None:
        """The dev root for a party, whose signer is the dev PKI's certificate issued for ``key``."""
        if not secure:
            return None
        return {
            "anchors": [str(pki.root_cert_path)],
            "intermediates": [str(pki.issuing_cert_path)],
            "crls": [str(pki.crl_path), str(pki.root_crl_path)],
            "signers": [{"dn": pki.party(key).cert.subject.rfc4514_string()}],
        }

    def party(name: str, doc_types: list[str], fmt: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": name,
            "tokens": [TOKENS[extra.pop("token")]],
            "document_types": doc_types,
            "format": fmt,
            **extra,
        }
        if not secure:
            out.pop("trust", None)
            out.pop("verify", None)
        return out

    destinations = {}
    for name, p in partners.items():
        dest: dict[str, Any] = {
            "url": p.url,
            "concurrency": concurrency,
            "timeout": 10.0,
            "retry": retry,
            "breaker": {"failure_threshold": 5, "reset_timeout": 0.5},
            "format": {"TH": "form-d", "ID": "form-d", "TH-CUSTOMS": "acdd"}.get(name, "same"),
        }
        if secure and signing == "on":
            dest["receipt"] = "signed"
            dest["trust"] = {"pinned": [{"certificate": str(pki.party(PARTNER_KEYS[name]).cert_path)}]}
        if name == "TH":
            dest["party"] = "TH-ASW"  # the Thai Single Window notifies about the e-C/O delivered to TH
        destinations[name] = dest
    data: dict[str, Any] = {
        "gateway": {"port": port, "verification": verification, "signing": signing, "poll_interval": 0.1},
        "operators": {"ops": {"name": "Demo operator", "tokens": [operator_token]}},
        "store": {"url": f"sqlite:///{store_dir / 'gateway.db'}", "synchronous": synchronous},
        "journal": {"anchor": str(store_dir / "journal-anchor.jsonl")},
        "parties": {
            "MOIT": party(
                "Ministry of Industry and Trade",
                ["eco.form_d", "eco.form_d.amendment"],
                "form-d",
                token="MOIT",
                trust={"pinned": [{"certificate": str(pki.party("moit").cert_path)}]} if secure else None,
            ),
            "MARD": party(
                "Ministry of Agriculture and Rural Development",
                ["sps.animal_quarantine_permit"],
                "vnsw",
                token="MARD",
                trust=anchored("mard"),
                verify={"profile": "vnsw-legacy"},
                identities={"vnsw": {"identity": "BNNPTNT", "ministryCode": "BNNPTNT", "organizationCode": "06"}},
            ),
            "BROKER": party(
                "Customs broker (data intermediary)",
                ["sps.registration"],
                "xml",
                token="BROKER",
                trust=anchored("broker"),
                kind="intermediary",
                on_behalf_of=list(ENTERPRISES),
            ),
            "CUSTOMS": party(
                "General Department of Vietnam Customs (VNACCS): sends ACDDs",
                ["acdd.declaration"],
                "acdd",
                token="CUSTOMS",
                trust=anchored("customs"),
            ),
            "TH-CUSTOMS": party(
                "Thai Customs: answers ACDDs with Customs Responses",
                ["acdd.response"],
                "acdd",
                token="TH-CUSTOMS",
                trust=anchored("th-asw"),
            ),
            "TH-ASW": party(
                "Thai Single Window: notifies the issuer of the e-C/O received, utilized or rejected in Thailand",
                ["eco.form_d.notification"],
                "form-d",
                token="TH-ASW",
                trust=anchored("th-asw"),
            ),
        },
        "destinations": destinations,
        "routes": [
            {"document_type": "eco.form_d", "destination": "TH", "to": ["TH", "CUSTOMS"]},
            {"document_type": "eco.form_d", "destination": "ID", "to": ["ID", "CUSTOMS"]},
            {"document_type": "eco.form_d.amendment", "destination": "TH", "to": ["TH", "CUSTOMS"]},
            {"document_type": "eco.form_d.amendment", "destination": "ID", "to": ["ID", "CUSTOMS"]},
            {"document_type": "sps.registration", "to": ["MARD"]},
            {"document_type": "sps.animal_quarantine_permit", "to": ["CUSTOMS"]},
            {"document_type": "acdd.declaration", "sender": "CUSTOMS", "to": ["TH-CUSTOMS"]},
            {"document_type": "acdd.response", "sender": "TH-CUSTOMS", "to": ["CUSTOMS"]},
            {"document_type": "eco.form_d.notification", "sender": "TH-ASW", "to": ["MOIT-BOX"]},
        ],
        "document_types": DOCUMENT_TYPES,
    }
    for p in data["parties"].values():
        if p.get("trust") is None:
            p.pop("trust", None)
    if secure and signing == "on":
        data["signing"] = {"keys": [{"pkcs12": str(pki.party("nsw-gateway").p12_path), "password": "changeit"}]}
    return parse_config(data)


@dataclass
class DemoResult:
    messages: int
    elapsed: float
    deliveries: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    commits: tuple[int, int] = (0, 0)
    submissions_verified: int = 0
    """Submissions whose signature the gateway verified (0 with verification off)."""
    partner_verified: dict[str, int] = field(default_factory=dict)
    """Deliveries whose gateway signature each partner verified."""
    partner_verify_failures: dict[str, dict[str, int]] = field(default_factory=dict)
    receipts_verified: dict[str, int] = field(default_factory=dict)
    """Signed receipts the gateway verified, per destination."""
    acdd_declarations: int = 0
    """ACDDs national customs sent that reached the Thai customs."""
    customs_responses: dict[str, int] = field(default_factory=dict)
    """Customs Responses that reached national customs, by status."""
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    """MOIT's view of the e-C/O the Thai side notified about (:func:`lifecycle_notices`), by number: the gateway's
    answers to ``GET /v1/certificates/VN/{number}`` with MOIT's token, once the notifications reached MOIT."""

    @property
    def all_latencies(self) -> list[float]:
        return [v for vs in self.latencies.values() for v in vs]

    @property
    def throughput(self) -> float:
        return self.messages / self.elapsed if self.elapsed else 0.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def summary_table(result: DemoResult) -> str:
    rows = [("destination", "delivered", "retried", "dead", "p50", "p99")]
    for name in sorted(result.deliveries):
        lat = result.latencies.get(name, [])
        rows.append(
            (
                name,
                str(result.deliveries[name]),
                str(result.retries.get(name, 0)),
                str(result.dead.get(name, 0)),
                _ms(_pct(lat, 0.5)),
                _ms(_pct(lat, 0.99)),
            )
        )
    total = result.all_latencies
    rows.append(
        (
            "all",
            str(sum(result.deliveries.values())),
            str(sum(result.retries.values())),
            str(sum(result.dead.values())),
            _ms(_pct(total, 0.5)),
            _ms(_pct(total, 0.99)),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.last = total, enabled, -1

    def show(self, done: int) -> None:
        if not self.enabled or done == self.last:
            return
        self.last = done
        width = 40
        filled = int(width * done / self.total) if self.total else width
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} messages delivered to every destination"
        )
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


@dataclass
class Topology:
    """The demo's development PKI, its partners (listening on 127.0.0.1) and the gateway's configuration."""

    pki: Any
    partners: dict[str, _Partner]
    config: Config
    signers: dict[str, Any]
    """The ministries' keys (``moit``, ``mard``, ``broker``), national customs' (``customs``) and the Thai
    customs' (``th-asw``)."""


@contextlib.asynccontextmanager
async def demo_topology(
    *,
    verification: str = "signature",
    signing: str = "on",
    flaky_seconds: float = 3.0,
    flaky_every: float = 0.0,
    flaky_requests: int = 0,
    reject_every: int = 0,
    concurrency: int = 16,
    synchronous: str = "FULL",
    store_dir: Path | None = None,
    pki_dir: Path | None = None,
    partner_processes: int = 0,
    port: int = 0,
    operator_token: str = OPERATOR_TOKEN,
) -> AsyncIterator[Topology]:
    """The partners TH, ID, CUSTOMS, MARD's inbox and the Thai customs (TH-CUSTOMS) listening, and the configuration
    of a gateway for them (its
    store in ``store_dir``, else in a temporary directory removed afterwards). TH is the flaky one: down for
    ``flaky_seconds`` from the start (and of every ``flaky_every`` seconds when set), refusing its first
    ``flaky_requests``; MARD's inbox refuses the first delivery of every ``reject_every``-th registration.
    ``partner_processes``: the partners' crypto in that many separate processes instead of threads."""
    from signing.policy import VerifyPolicy
    from signing.trust import PinnedCertificate, TrustStore

    pki = await asyncio.to_thread(demo_pki, pki_dir)
    secure = verification == "signature" or signing == "on"
    gateway_trust = None
    if signing == "on":
        gateway_trust = (
            TrustStore(party="nsw-gateway", pinned=(PinnedCertificate(pki.party("nsw-gateway").cert),)),
            VerifyPolicy(),
        )

    def partner(name: str, **kw: Any) -> _Partner:
        return _Partner(
            name,
            receipt_signer=_signer(pki, PARTNER_KEYS[name]) if signing == "on" else None,
            gateway_trust=gateway_trust,
            **kw,
        )

    partners = {
        "TH": partner("TH", down_for=flaky_seconds, down_every=flaky_every, fail_first=flaky_requests),
        "ID": partner("ID"),
        "CUSTOMS": partner("CUSTOMS"),
        "MARD": partner("MARD", reject_every=reject_every),
        "TH-CUSTOMS": partner("TH-CUSTOMS"),
        "MOIT-BOX": partner("MOIT-BOX"),
    }
    pool = None
    if partner_processes and secure:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            partner_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_partner_process_init,
            initargs=(str(pki.directory),),
        )
        await asyncio.gather(
            *(asyncio.get_running_loop().run_in_executor(pool, time.sleep, 0.2) for _ in range(partner_processes))
        )  # start them before the clock
        for p in partners.values():
            p.pool = pool
    tmp = tempfile.TemporaryDirectory(prefix="nswgw-demo-") if store_dir is None else None
    directory = Path(tmp.name) if tmp is not None else store_dir
    assert directory is not None
    try:
        for p in partners.values():
            await p.start()
        config = demo_config(
            directory,
            partners,
            pki=pki if secure else None,
            verification=verification,
            signing=signing,
            synchronous=synchronous,
            concurrency=concurrency,
            port=port,
            operator_token=operator_token,
        )
        signers = {name: _signer(pki, name) for name in ("moit", "mard", "broker", "customs", "th-asw")}
        yield Topology(pki=pki, partners=partners, config=config, signers=signers)
    finally:
        for p in partners.values():
            await p.stop()
        if pool is not None:
            pool.shutdown()
        if tmp is not None:
            tmp.cleanup()


class _Ministries:
    """The simulated ministries submitting over the HTTP API of the gateway at ``url``; MARD answers each
    registration its inbox receives with a quarantine result (``permit_body(n)``: the n-th one, signed), and the
    Thai customs each ACDD of conversation ``ACDD-n`` it receives with a Customs Response ``ACDD-RESPONSE-n``
    referencing it, in its conversation (``response_body(n)``, signed)."""

    def __init__(
        self,
        partners: dict[str, _Partner],
        url: str,
        session: aiohttp.ClientSession,
        permit_body: Callable[[int], Awaitable[bytes]],
        concurrency: int,
        response_body: Callable[[int], Awaitable[bytes]],
    ) -> None:
        self.url, self.session, self.permit_body, self.response_body = url, session, permit_body, response_body
        self.semaphore = asyncio.Semaphore(concurrency * 2)
        self.submitted: dict[str, float] = {}
        """Accepted message id → when its submission began (monotonic)."""
        self.expected: dict[str, tuple[str, ...]] = {}
        """Accepted message id → its destinations."""
        self.refused: dict[str, dict[str, Any]] = {}
        """Submission (``X-Message-Id``) → the gateway's last answer, when it was not accepted."""
        self.replies: list[asyncio.Task[None]] = []
        self.accepted = 0
        self.permits = 0
        """Quarantine results MARD has issued (the next one is ``permit_body(permits)``)."""
        self.responses: dict[str, str] = {}
        """Accepted Customs Response (its gateway id) → its status."""
        partners["MARD"].on_message = self._mard_issues_permit
        partners["TH-CUSTOMS"].on_message = self._th_customs_answers

    async def send(
        self,
        party: str,
        mid: str,
        doc_type: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        attempts: int = 100,
    ) -> tuple[int, dict[str, Any]]:
        """Submit ``body``, again every 50 ms while it is not accepted, at most ``attempts`` times; the last answer."""
        h = {
            "Authorization": f"Bearer {TOKENS[party]}",
            "X-Message-Id": mid,
            "X-Document-Type": doc_type,
            "Content-Type": "application/xml",
            **(headers or {}),
        }
        status, ack = 0, {}
        async with self.semaphore:
            start = time.monotonic()
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(0.05)
                async with self.session.post(f"{self.url}/v1/messages", data=body, headers=h) as r:
                    status, ack = r.status, await r.json()
                if status in (200, 202):
                    break
        if status in (200, 202):
            self.accepted += 1
            self.submitted[ack["id"]] = start
            self.expected[ack["id"]] = tuple(ack["destinations"])
        else:
            self.refused[mid] = ack
        return status, ack

    def _mard_issues_permit(self, headers: Any) -> None:
        n, self.permits = self.permits, self.permits + 1
        self.replies.append(asyncio.create_task(self._permit(n, headers["X-Message-Id"])))

    async def _permit(self, n: int, reference: str) -> None:
        body = await self.permit_body(n)
        await self.send("MARD", f"PERMIT-{n}", "sps.animal_quarantine_permit", body, {"X-Reference": reference})

    def _th_customs_answers(self, headers: Any) -> None:
        conversation = headers["X-Conversation-Id"]  # ACDD-n, as national customs sent it
        n = int(conversation.rsplit("-", 1)[1])
        self.replies.append(asyncio.create_task(self._response(n, headers["X-Message-Id"], conversation)))

    async def _response(self, n: int, reference: str, conversation: str) -> None:
        body = await self.response_body(n)
        status, ack = await self.send(
            "TH-CUSTOMS",
            f"ACDD-RESPONSE-{n}",
            "acdd.response",
            body,
            {"X-Reference": reference, "X-Conversation-Id": conversation},
        )
        if status in (200, 202):
            self.responses[ack["id"]] = ACDD_STATUSES[n % len(ACDD_STATUSES)]

    async def close(self) -> None:
        for task in self.replies:
            task.cancel()
        await asyncio.gather(*self.replies, return_exceptions=True)


async def run_demo(
    *,
    messages: int = 300,
    size: int = 2048,
    verification: str = "signature",
    signing: str = "on",
    flaky_seconds: float = 3.0,
    flaky_requests: int = 0,
    progress: bool = True,
    concurrency: int = 16,
    synchronous: str = "FULL",
    store_dir: Path | None = None,
    pki_dir: Path | None = None,
    partner_processes: int = 0,
) -> DemoResult:
    """Push ``messages`` submissions through the demo topology and wait until every delivery is acknowledged.

    ``verification="signature"`` / ``signing="on"`` (the default) run the signing layer on both sides;
    ``"off"`` / ``"off"`` is the benchmark baseline (the same signed documents, passed through unchecked).
    ``partner_processes``: do the partners' crypto in that many separate processes (the benchmark), instead
    of threads of this process."""
    from signing.policy import SigningProfile
    from signing.sign import sign_document

    n_acdd = max(1, messages // 20)
    # built before the partners start, so that loading the ACDD schema does not eat into TH's time down
    declarations, answers = await asyncio.to_thread(
        lambda: ([acdd_declaration(n) for n in range(n_acdd)], [customs_response(n) for n in range(n_acdd)])
    )
    async with demo_topology(
        verification=verification,
        signing=signing,
        flaky_seconds=flaky_seconds,
        flaky_requests=flaky_requests,
        concurrency=concurrency,
        synchronous=synchronous,
        store_dir=store_dir,
        pki_dir=pki_dir,
        partner_processes=partner_processes,
    ) as topology:
        partners = topology.partners
        # The ministries sign before the clock starts: their cost is theirs, not the gateway's.
        moit, mard, broker, customs, th_customs = (
            topology.signers[n] for n in ("moit", "mard", "broker", "customs", "th-asw")
        )
        legacy = SigningProfile.vnsw_legacy()
        n_reg = max(1, messages // 10)
        n_eco = messages - 2 * n_reg - 2 * n_acdd

        def prepare() -> tuple[
            list[tuple[str, str, str, bytes, dict[str, str]]], list[bytes], list[bytes], dict[str, list[Notice]]
        ]:
            out = []
            for n in range(n_eco):
                amend = n % 5 == 4  # every fifth e-C/O amends the one issued just before it
                original = n - 1 if amend else n
                dest = "TH" if original % 2 == 0 else "ID"
                body = sign_document(eco_form_d(n, dest, amendment=amend, size=size), moit)
                out.append(
                    (
                        "MOIT",
                        f"ECO-{n}",
                        "eco.form_d.amendment" if amend else "eco.form_d",
                        body,
                        {"X-Destination": dest, "X-Conversation-Id": f"ECO-{original}"},
                    )
                )
            for n in range(n_reg):
                out.append(
                    (
                        "BROKER",
                        f"REG-{n}",
                        "sps.registration",
                        sign_document(registration(n, ENTERPRISES[n % len(ENTERPRISES)]), broker),
                        {"X-On-Behalf-Of": ENTERPRISES[n % len(ENTERPRISES)]},
                    )
                )
            for n in range(n_acdd):
                body = sign_document(declarations[n], customs)
                out.append(("CUSTOMS", f"ACDD-{n}", "acdd.declaration", body, {"X-Conversation-Id": f"ACDD-{n}"}))
            permits = [sign_document(permit(n, ""), mard, legacy) for n in range(n_reg)]
            responses = [sign_document(answer, th_customs) for answer in answers]
            notices = {
                number: [(mid, sign_document(body, th_customs)) for mid, body in steps]
                for number, steps in lifecycle_notices(lifecycle_numbers(n_eco)).items()
            }
            return out, permits, responses, notices

        jobs_data, permits, responses, notices = await asyncio.to_thread(prepare)

        async def permit_body(n: int) -> bytes:
            return permits[n % len(permits)]

        async def response_body(n: int) -> bytes:
            return responses[n % len(responses)]

        async with Gateway(topology.config) as gw, aiohttp.ClientSession() as session:
            ministries = _Ministries(partners, gw.url, session, permit_body, concurrency, response_body)
            expected, replies = ministries.expected, ministries.replies
            try:
                jobs = [ministries.send(*job) for job in jobs_data]
                started = time.monotonic()
                # TH is down from the first submission on (not from its own start)
                partners["TH"].down_until = started + flaky_seconds
                bar = _Progress(messages, progress)

                async def submit_all() -> None:
                    await asyncio.gather(*jobs)

                submitter = asyncio.create_task(submit_all())
                total = 0
                while True:
                    if ministries.refused:
                        mid, answer = next(iter(ministries.refused.items()))
                        raise RuntimeError(f"demo submission {mid} refused: {answer}")
                    arrived = {name: p.arrivals for name, p in partners.items()}
                    total = sum(1 for mid, dests in expected.items() if all(mid in arrived[d] for d in dests))
                    bar.show(total)
                    if (
                        submitter.done()
                        and len(replies) >= n_reg + n_acdd
                        and all(t.done() for t in replies)
                        and len(expected) >= messages
                        and total >= len(expected)
                    ):
                        break
                    if submitter.done() and submitter.exception() is not None:
                        raise submitter.exception()  # type: ignore[misc]
                    for t in replies:
                        if t.done() and t.exception() is not None:
                            raise t.exception()  # type: ignore[misc]
                    await asyncio.sleep(0.1)
                elapsed = time.monotonic() - started
                bar.end()
                await submitter
                main_messages = len(expected)
                # after the clock: the Thai side's notifications about e-C/O TH received, and MOIT's view of them
                certificates = await _lifecycle(ministries, partners["MOIT-BOX"], notices)
            finally:
                await ministries.close()
            result = DemoResult(
                messages=main_messages, elapsed=elapsed, commits=getattr(gw.store, "commit_stats", (0, 0))
            )
            result.certificates = certificates
            result.submissions_verified = ministries.accepted if verification == "signature" else 0
            result.acdd_declarations = len(partners["TH-CUSTOMS"].arrivals)
            result.customs_responses = dict(
                Counter(status for mid, status in ministries.responses.items() if mid in partners["CUSTOMS"].arrivals)
            )
            for name, p in partners.items():
                lat = [p.arrivals[mid] - ministries.submitted[mid] for mid, dests in expected.items() if name in dests]
                result.latencies[name] = lat
                result.deliveries[name] = len(lat)
                result.retries[name] = int(gw.metrics.value("nswgw_delivery_retries_total", destination=name))
                result.dead[name] = int(gw.metrics.value("nswgw_dead_letters_total", destination=name))
                result.partner_verified[name] = p.verified
                result.partner_verify_failures[name] = dict(p.verify_failures)
                receipts = gw.engine.workers[name].receipts
                result.receipts_verified[name] = (
                    receipts.verified[name] if isinstance(receipts, SignedReceiptVerifier) else 0
                )
            await _settled(gw, result)
        return result


@dataclass
class LivingDemo:
    """The demo's gateway running, and the topology and ministries around it."""

    gateway: Gateway
    topology: Topology
    ministries: _Ministries


@contextlib.asynccontextmanager
async def living_demo(
    *,
    port: int = 0,
    operator_token: str = OPERATOR_TOKEN,
    rate: tuple[float, float] = (1.0, 3.0),
    flaky_seconds: float = 15.0,
    flaky_every: float = 60.0,
    reject_every: int = 7,
    bad_every: int = 20,
    store_dir: Path | None = None,
    pki_dir: Path | None = None,
    seed: int | None = None,
) -> AsyncIterator[LivingDemo]:
    """The demo topology with its gateway (on ``port``) running while the context lasts, and the ministries
    sending a steady trickle (between ``rate[0]`` and ``rate[1]`` messages a second): MOIT's signed e-C/O to TH
    and ID (every fifth an amendment of the one before), the broker's registrations with MARD (every fourth
    message) and MARD's answers to them, national customs' ACDDs to the Thai customs (every tenth) and its
    Customs Responses; every ``bad_every``-th an unsigned e-C/O, which the gateway rejects with
    its code. TH is down for ``flaky_seconds`` of every ``flaky_every``; MARD's inbox refuses every
    ``reject_every``-th registration, which goes to the dead letters (a replay delivers it)."""
    from signing.policy import SigningProfile
    from signing.sign import sign_document

    async with demo_topology(
        flaky_seconds=flaky_seconds,
        flaky_every=flaky_every,
        reject_every=reject_every,
        concurrency=4,
        synchronous="NORMAL",
        store_dir=store_dir,
        pki_dir=pki_dir,
        port=port,
        operator_token=operator_token,
    ) as topology:
        legacy = SigningProfile.vnsw_legacy()

        async def permit_body(n: int) -> bytes:
            return await asyncio.to_thread(sign_document, permit(n, ""), topology.signers["mard"], legacy)

        async def response_body(n: int) -> bytes:
            return await asyncio.to_thread(sign_document, customs_response(n), topology.signers["th-asw"])

        async with Gateway(topology.config) as gw, aiohttp.ClientSession() as session:
            ministries = _Ministries(topology.partners, gw.url, session, permit_body, 4, response_body)
            trickle = asyncio.create_task(_trickle(topology, ministries, random.Random(seed), rate, bad_every))
            try:
                yield LivingDemo(gateway=gw, topology=topology, ministries=ministries)
            finally:
                trickle.cancel()
                await asyncio.gather(trickle, return_exceptions=True)
                await ministries.close()


async def _trickle(
    topology: Topology, ministries: _Ministries, rng: random.Random, rate: tuple[float, float], bad_every: int
) -> None:
    """Submit one message after another, ``1 / rate`` seconds apart (drawn from the range), until cancelled."""
    from signing.sign import sign_document

    n, ecos, conversation, dest = 0, 0, "", "TH"
    while True:
        n += 1
        try:
            if bad_every and n % bad_every == 0:  # not signed: rejected by the gateway, with its code
                await ministries.send(
                    "MOIT", f"ECO-{n}", "eco.form_d", eco_form_d(n, "TH"), {"X-Destination": "TH"}, attempts=1
                )
            elif n % 10 == 5:
                body = await asyncio.to_thread(sign_document, acdd_declaration(n), topology.signers["customs"])
                await ministries.send(
                    "CUSTOMS", f"ACDD-{n}", "acdd.declaration", body, {"X-Conversation-Id": f"ACDD-{n}"}, attempts=20
                )
            elif n % 4 == 0:
                enterprise = ENTERPRISES[n % len(ENTERPRISES)]
                body = await asyncio.to_thread(sign_document, registration(n, enterprise), topology.signers["broker"])
                await ministries.send(
                    "BROKER", f"REG-{n}", "sps.registration", body, {"X-On-Behalf-Of": enterprise}, attempts=20
                )
            else:
                ecos += 1
                amend = ecos % 5 == 0  # amends the e-C/O just before it, in its conversation, to its partner
                if not amend:
                    dest, conversation = ("TH" if ecos % 2 else "ID"), f"ECO-{n}"
                body = await asyncio.to_thread(sign_document, eco_form_d(n, dest), topology.signers["moit"])
                await ministries.send(
                    "MOIT",
                    f"ECO-{n}",
                    "eco.form_d.amendment" if amend else "eco.form_d",
                    body,
                    {"X-Destination": dest, "X-Conversation-Id": conversation},
                    attempts=20,
                )
        except aiohttp.ClientError as exc:  # the next submission tries again
            print(f"nswgw demo: submission {n} failed: {exc}", file=sys.stderr, flush=True)
        await asyncio.sleep(1 / rng.uniform(*rate))


Notice = tuple[str, bytes]
"""A notification of the Thai side: its ``X-Message-Id`` and its (signed) body."""


async def _lifecycle(
    ministries: _Ministries, issuer_inbox: _Partner, notices: dict[str, list[Notice]]
) -> dict[str, dict[str, Any]]:
    """The Thai side (party TH-ASW) sends its notifications about each e-C/O in ``notices``, in order per
    certificate; once every one reached MOIT's inbox, MOIT reads each certificate at
    ``GET /v1/certificates/VN/{number}``. Returns those answers, by number."""
    accepted: list[str] = []

    async def notify(steps: list[Notice]) -> None:
        for mid, body in steps:
            status, ack = await ministries.send("TH-ASW", mid, "eco.form_d.notification", body)
            if status not in (200, 202):
                raise RuntimeError(f"demo notification {mid} refused: {ack}")
            accepted.append(ack["id"])

    await asyncio.gather(*(notify(steps) for steps in notices.values()))
    for _ in range(600):
        if all(mid in issuer_inbox.arrivals for mid in accepted):
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("the Thai side's notifications did not reach MOIT's inbox within 30 s")
    views: dict[str, dict[str, Any]] = {}
    for number in notices:
        url = f"{ministries.url}/v1/certificates/VN/{number}"
        async with ministries.session.get(url, headers={"Authorization": f"Bearer {TOKENS['MOIT']}"}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"MOIT cannot read certificate {number}: HTTP {r.status} {body}")
        views[number] = body
    return views


def lifecycle_lines(result: DemoResult) -> list[str]:
    """What ``nswgw demo`` prints of the e-Form D lifecycle: the count per status, then one line per certificate
    with the status and what its last notification said, all from the gateway's answers in
    :attr:`DemoResult.certificates`."""
    counts = Counter(str(view["status"]) for view in result.certificates.values())
    said = ", ".join(f"{count} {status}" for status, count in counts.most_common())
    lines = [f"e-Form D lifecycle, as MOIT sees it (GET /v1/certificates/VN/...): {said or 'none'}"]
    for number, view in result.certificates.items():
        status = str(view["status"])
        steps = [e for e in view.get("history", []) if e.get("status") == status]
        detail = steps[-1].get("detail", {}) if steps else {}
        if status == "utilized":
            note = f"declaration {detail.get('declaration_number')} of {detail.get('declaration_date')}"
        elif status == "rejected":
            note = f"{detail.get('reason_code')}: {detail.get('reason')}"
        else:
            note = ""
        by = f" by {steps[-1].get('party')}" if steps else ""
        lines.append(f"  {number}  {status}{by}" + (f"  ({note})" if note else ""))
    return lines


async def _settled(gw: Gateway, result: DemoResult) -> None:
    """Wait until the store has recorded every receipt (a partner counts an arrival before its answer
    reaches the gateway)."""
    for _ in range(200):
        stats = await gw.store.stats()
        if all(s.counts.get(State.ACKNOWLEDGED, 0) == result.deliveries[s.destination] for s in stats):
            break
        await asyncio.sleep(0.05)
    for name, worker in gw.engine.workers.items():
        receipts = worker.receipts
        if isinstance(receipts, SignedReceiptVerifier):
            result.receipts_verified[name] = receipts.verified[name]


async def serve_demo(port: int) -> None:
    """``nswgw demo --serve``: :func:`living_demo` on ``port`` until SIGINT or SIGTERM, after printing a one-time
    console login link and the operator's token (drawn afresh)."""
    from gateway.commands import console_link

    token = secrets.token_urlsafe(18)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with living_demo(port=port, operator_token=token) as demo:
        _, link = await console_link(demo.gateway.config, "ops", demo.gateway.url, now=demo.gateway.clock.now)
        minutes = demo.gateway.config.gateway.console.login_link_ttl / 60
        print(
            f"gateway: {demo.gateway.url} (simulated MOIT, MARD, a customs broker and national customs sending "
            "1-3 messages/s; the Thai customs answers ACDDs)"
        )
        print(f"console: {link}")
        print(f"  (one-time login link, valid {minutes:g} min; then log in on {demo.gateway.url}/console/login)")
        print(f"operator ops, token: {token}")
        print("TH is down 15 s of every minute; MARD's inbox refuses every 7th registration (a dead letter)")
        print("Ctrl-C to stop", flush=True)
        await stop.wait()


def cmd_demo(args: Any) -> int:
    if args.serve:
        from gateway.logs import configure_logging

        configure_logging(LogSettings(level="ERROR", format="text"))
        asyncio.run(serve_demo(args.port))
        return 0
    print(
        f"nswgw demo: {args.messages} messages; simulated MOIT, MARD, a customs broker and national customs; "
        f"partners TH (down for {args.flaky:.0f}s), ID, national customs, MARD's inbox and the Thai customs "
        "(answering ACDDs), the Thai Single Window notifying MOIT of e-C/O utilized or rejected, all on 127.0.0.1; "
        "development PKI, "
        f"signatures verified and made on both sides",
        flush=True,
    )
    from gateway.logs import configure_logging

    with contextlib.ExitStack() as stack:
        if args.log_file is not None:  # every event of the run as JSON lines, for grep and jq
            stream = stack.enter_context(open(args.log_file, "w", encoding="utf-8"))
            configure_logging(LogSettings(level="INFO", format="json"), stream=stream)
        else:  # the progress bar and the table; only errors in between
            configure_logging(LogSettings(level="ERROR", format="text"))
        result = asyncio.run(run_demo(messages=args.messages, flaky_seconds=args.flaky, progress=not args.quiet))
    configure_logging(LogSettings(level="ERROR", format="text"))  # the ship call runs on a gateway of its own
    ship_call = asyncio.run(ship_call_demo())
    print(summary_table(result))
    print(
        f"{result.messages} messages end to end in {result.elapsed:.1f} s ({result.throughput:.0f} msg/s); "
        f"store: {result.commits[1]} writes in {result.commits[0]} commits"
    )
    responses = ", ".join(f"{count} {status}" for status, count in sorted(result.customs_responses.items()))
    print(
        f"ACDD: {result.acdd_declarations} declarations from national customs to the Thai customs; "
        f"{sum(result.customs_responses.values())} Customs Responses back to national customs ({responses or 'none'})"
    )
    print("\n".join(lifecycle_lines(result)))
    print("\n".join(ship_call))
    print(
        f"signatures: {result.submissions_verified} submissions verified by the gateway; "
        f"{sum(result.partner_verified.values())} gateway signatures verified by the partners; "
        f"{sum(result.receipts_verified.values())} signed receipts verified by the gateway"
    )
    if args.log_file is not None:
        print(f"gateway log (JSON lines): {args.log_file}")
    return 0


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run the gateway end to end with simulated ministries and partners")
    demo.add_argument("--messages", type=int, default=300, help="submissions to push through (default 300)")
    demo.add_argument("--flaky", type=float, default=3.0, help="seconds the TH partner is down at the start")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument(
        "--log-file", type=Path, help="write the gateway's log there as JSON lines (default: errors only, on stderr)"
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep the demo running (a steady trickle of messages) and print the operator console's login link",
    )
    demo.add_argument("--port", type=int, default=8080, help="with --serve: the gateway's port (default 8080)")
    demo.set_defaults(handler=cmd_demo)
