"""A deliberately broken reference peer: the kit's own test subject.

:class:`BrokenPeer` is an aiohttp server on 127.0.0.1 implementing a profile's
endpoint correctly, unless told to misbehave: each entry of ``defects`` switches
on one defect, and each defect must be caught by the case meant for it (see
:data:`DEFECTS`, defect -> the case id that catches it). With no defect the peer
passes the whole profile.

``vnsw-ministry``: the SOAP 1.1 ``receiveRequest`` endpoint on ``/vnsw/soap`` (function-99 / function-00
answers built with ``adapters.vnsw_soap.envelope``, signatures in ``<SystemSignature>``) and the status
search ``GET /v1/messages?reference=``.

``asw-formd`` (:class:`BrokenAs4Peer`): the gateway's own ``As4Receiver`` with defects injected around it
(a forgetful duplicate store, a lax trust store, rewritten receipts). For the kit as receiver it delivers e-Form Ds
to the kit (:meth:`BrokenAs4Peer.deliver`), keeps each certificate's status from the kit's notifications (the
gateway's own rules, ``gateway.store.base``) and shows it to the issuer at ``GET /v1/certificates/{country}/{number}``;
its lifecycle defects ignore a receipt notification or a utilization, drop a rejection's reason, refuse
verification requests or accept notifications about certificates it never carried. As the kit's receiver it keeps
the kit's e-Form Ds too: an amendment before its original is CO_UNKNOWN, unless ``accept-early-amendments``.

``asw-acdd``: the ``rest-intermediary`` peer taking ACDD XML (``X-Format: acdd``), validated by the ``acdd``
mapping; its defects take a declaration missing a parameter, a bad HS code, a bad UN/LOCODE or a rejection
without a reason as valid, or refuse cancellations.

``rest-intermediary``: ``POST /v1/messages``, ``GET /v1/messages/{id}``,
``GET /v1/messages?reference=`` with bearer tokens, signature verification
against a :class:`~conformance.pki.KitPki`, e-Form D validation through the
mappings registry and an in-memory store.

Run one by hand: ``python -m conformance.broken_peer --pki DIR --defect accept-tampered``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from adapters.vnsw_soap.envelope import VnswHeader, ack_envelope, error_envelope, read_header
from adapters.vnsw_soap.inbound import read_soap_request, soap_fault, soap_response
from conformance.pki import KIT_SIGNER, KitPki
from gateway.errors import (
    ERROR_CODES,
    DelegationMissing,
    DocumentTypeMismatch,
    DuplicateContent,
    IdentityMismatch,
    MessageNotFound,
    NotAuthenticated,
    NotAuthorized,
    NswError,
    RequestInvalid,
    ValidationFailed,
    ValidationIssue,
    XmlTooLarge,
)
from gateway.ports import content_digest
from gateway.wire import iso_utc
from mappings import registry
from signing.identity import SignerIdentity
from signing.policy import VerifyPolicy
from signing.revocation import CrlChecker
from signing.trust import TrustStore
from signing.verify import verify_document
from signing.xml import ParserLimits, parse_xml, serialize

__all__ = ["BrokenPeer", "BrokenAs4Peer", "PeerParty", "DEFECTS", "AS4_DEFECTS"]

DEFECTS: Mapping[str, Mapping[str, str]] = {
    "rest-intermediary": {
        "ack-schema-violations": "NSW-REST-TA02",
        "accept-tampered": "NSW-REST-TA03",
        "accept-untrusted": "NSW-REST-TA04",
        "accept-expired": "NSW-REST-TA05",
        "accept-revoked": "NSW-REST-TA06",
        "accept-wrong-usage": "NSW-REST-TA07",
        "process-duplicates": "NSW-REST-TA08",
        "accept-xxe": "NSW-REST-TA09",
        "accept-entity-expansion": "NSW-REST-TA10",
        "crash-on-oversize": "NSW-REST-TA11",
        "allow-impersonation": "NSW-REST-TA12",
        "ignore-delegation": "NSW-REST-TA13",
        "accept-any-token": "NSW-REST-TA14",
        "leak-status": "NSW-REST-TA15",
        "ignore-document-types": "NSW-REST-TA16",
        "accept-replays": "NSW-REST-TA17",
        "accept-mislabelled": "NSW-REST-TA18",
        "accept-any-signer": "NSW-REST-TA19",
    },
    "vnsw-ministry": {
        "ack-missing-header": "NSW-VNSW-TA02",
        "accept-tampered": "NSW-VNSW-TA03",
        "accept-untrusted": "NSW-VNSW-TA04",
        "accept-expired": "NSW-VNSW-TA05",
        "accept-revoked": "NSW-VNSW-TA06",
        "process-duplicates": "NSW-VNSW-TA07",
        "accept-xxe": "NSW-VNSW-TA08",
        "accept-entity-expansion": "NSW-VNSW-TA09",
        "crash-on-oversize": "NSW-VNSW-TA10",
        "allow-impersonation": "NSW-VNSW-TA11",
        "ack-non-soap": "NSW-VNSW-TA12",
        "identity-fallback": "NSW-VNSW-TA13",
        "identity-only": "NSW-VNSW-TA13",
        "accept-any-signer": "NSW-VNSW-TA14",
    },
    "asw-formd": {
        "unsigned-receipts": "NSW-AS4-TA01",
        "receipt-for-another-message": "NSW-AS4-TA01",
        "accept-untrusted": "NSW-AS4-TA04",
        "accept-revoked": "NSW-AS4-TA06",
        "process-duplicates": "NSW-AS4-TA07",
        "accept-xxe": "NSW-AS4-TA08",
        "accept-any-signer": "NSW-AS4-TA09",
        "accept-early-amendments": "NSW-AS4-TA10",
        "ignore-receipt-notices": "NSW-AS4-RX03",
        "ignore-utilizations": "NSW-AS4-RX04",
        "drop-rejection-reasons": "NSW-AS4-RX05",
        "refuse-verification-requests": "NSW-AS4-RX06",
        "accept-unknown-certificates": "NSW-AS4-RX07",
    },
    "asw-acdd": {
        "ignore-missing-parameters": "NSW-ACDD-TA02",
        "accept-any-hs-code": "NSW-ACDD-TA03",
        "accept-any-locode": "NSW-ACDD-TA04",
        "refuse-cancellations": "NSW-ACDD-TA05",
        "accept-responses-without-reason": "NSW-ACDD-TA06",
    },
}
"""Per profile: each defect the peer can switch on, and the case that must catch it."""

_ACDD_CANCELLATION = "{urn:nsw-gateway:asean:acdd:1}DeclarationCancellation"


def _missing_element(issue: ValidationIssue) -> bool:
    return issue.code == "SCHEMA_INVALID" and any(
        s in issue.message for s in ("Missing child", "is not expected", "is required but missing")
    )


_IGNORED_ISSUES: Mapping[str, Callable[[ValidationIssue], bool]] = {
    "ignore-missing-parameters": _missing_element,
    "accept-any-hs-code": lambda i: i.code == "SCHEMA_INVALID" and "ClassificationCode': [facet" in i.message,
    "accept-any-locode": lambda i: i.code == "LOCODE_INVALID",
    "accept-responses-without-reason": lambda i: i.code == "ACDD_RESPONSE_REASON_REQUIRED",
}
"""``asw-acdd`` defects that take a message with such an issue as valid."""

_IGNORED_CODES = {
    "accept-tampered": "SIG_DIGEST_MISMATCH",
    "accept-untrusted": "CERT_UNTRUSTED",
    "accept-expired": "CERT_EXPIRED",
    "accept-revoked": "CERT_REVOKED",
    "accept-wrong-usage": "CERT_KEY_USAGE",
}
_DS = "{http://www.w3.org/2000/09/xmldsig#}Signature"


def _unsigned(root: Any) -> Any:
    """``root`` without its enveloped signatures (what the signature covers)."""
    for sig in root.findall(_DS):
        root.remove(sig)
    return root


_VNSW_IDENTITIES = ("identity", "ministryCode", "organizationCode")
_FORM_D_ROOT = "{urn:nsw-gateway:atiga:e-form-d:1}CertificateOfOrigin"


@dataclass(frozen=True)
class PeerParty:
    """A party the peer knows."""

    token: str
    document_types: tuple[str, ...] = ("*",)
    on_behalf_of: tuple[str, ...] = ()


@dataclass
class _Stored:
    ack: dict[str, Any]
    sender: str
    reference: str | None
    history: list[dict[str, Any]] = field(default_factory=list)


class BrokenPeer:
    """``async with BrokenPeer(profile, defects, pki=..., parties=...) as peer: peer.url``."""

    def __init__(
        self,
        profile: str = "rest-intermediary",
        defects: Iterable[str] = (),
        *,
        pki: KitPki,
        parties: Mapping[str, PeerParty],
        max_message_bytes: int = 1024 * 1024,
        port: int = 0,
        form_d_types: Iterable[str] = ("eco.form_d",),
    ) -> None:
        known = DEFECTS.get(profile)
        if known is None or profile == "asw-formd":
            raise ValueError(
                f"BrokenPeer implements rest-intermediary, vnsw-ministry and asw-acdd, not {profile!r} "
                "(asw-formd: BrokenAs4Peer)"
            )
        self.defects = frozenset(defects)
        unknown = self.defects - set(known)
        if unknown:
            raise ValueError(f"unknown defects {sorted(unknown)} for {profile} (known: {', '.join(known)})")
        self.profile = profile
        self.pki = pki
        self.parties = dict(parties)
        self.max_message_bytes = max_message_bytes
        self.port = port
        self.form_d_types = frozenset(form_d_types)
        """The document types whose documents are e-Form Ds: an e-Form D declared as any other is refused."""
        self.trust = TrustStore(
            "peer",
            anchors=(pki.pki.root_cert,),
            revocation=CrlChecker.from_files([pki.pki.crl_path, pki.pki.root_crl_path]),
            signers=None if "accept-any-signer" in self.defects else SignerIdentity.subject(CN=KIT_SIGNER),
            any_signer="accept-any-signer" in self.defects,
        )
        self.limits = ParserLimits(max_bytes=max_message_bytes)
        self._messages: dict[str, _Stored] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_content: dict[tuple[str, str], str] = {}
        """(sender, digest of the signed content) of accepted submissions -> their gateway id."""
        self.processed: list[str] = []
        """Message ids in the order they were processed (a duplicate processed twice appears twice)."""
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------------------------------ HTTP

    def _error(self, exc: NswError, **extra: Any) -> web.Response:
        return web.json_response({"error": exc.to_dict(), **extra}, status=exc.http_status)

    def _party(self, request: web.Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            if "accept-any-token" in self.defects and self.parties:
                return next(iter(self.parties))
            raise NotAuthenticated("an Authorization: Bearer <token> header is required", field="Authorization")
        for name, party in self.parties.items():
            if party.token == token.strip():
                return name
        if "accept-any-token" in self.defects and self.parties:
            return next(iter(self.parties))
        raise NotAuthenticated("the token matches no configured party", field="Authorization")

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        party = self._party(request)
        h = request.headers
        raw = await request.content.read(self.max_message_bytes + 1)
        if len(raw) > self.max_message_bytes:
            if "crash-on-oversize" in self.defects:
                assert request.transport is not None
                request.transport.abort()  # the process "crashed": the connection drops without an answer
                return web.Response(status=500)
            raise XmlTooLarge(f"request body exceeds {self.max_message_bytes} bytes", field="body")
        sender = h.get("X-Sender", party)
        if sender != party and "allow-impersonation" not in self.defects:
            raise NotAuthorized(f"{party} cannot submit as {sender}", field="X-Sender")
        settings = self.parties[party]
        enterprise = h.get("X-On-Behalf-Of")
        if enterprise and enterprise not in settings.on_behalf_of and "ignore-delegation" not in self.defects:
            raise DelegationMissing(f"{party} is not delegated by {enterprise}", field="X-On-Behalf-Of")
        if settings.on_behalf_of and not enterprise:
            raise DelegationMissing(
                f"{party} is an intermediary: name the enterprise it submits for", field="X-On-Behalf-Of"
            )
        doc_type = h.get("X-Document-Type", "")
        if (
            "*" not in settings.document_types
            and doc_type not in settings.document_types
            and "ignore-document-types" not in self.defects
        ):
            raise NotAuthorized(f"{party} may not submit {doc_type}", field="X-Document-Type")
        mid = h.get("X-Message-Id", "")
        if not mid:
            raise RequestInvalid("X-Message-Id is required", field="X-Message-Id")
        key = (sender, mid)
        if key in self._by_key and "process-duplicates" not in self.defects:
            stored = self._messages[self._by_key[key]]
            error = stored.ack.get("error")
            status = ERROR_CODES[error["code"]].http_status if error else 200
            return web.json_response(stored.ack, status=status, headers={"X-Duplicate": "true"})
        gid = (
            uuid.uuid5(uuid.NAMESPACE_URL, f"{sender}/{mid}").hex
            if "process-duplicates" not in self.defects
            else uuid.uuid4().hex
        )
        ack: dict[str, Any] = {
            "id": gid,
            "sender": sender,
            "message_id": mid,
            "state": "QUEUED",
            "received_at": iso_utc(time.time()),
            "destinations": ["sink"],
        }
        try:
            self._check(raw, h.get("X-Format", "xml"), doc_type)
        except NswError as exc:
            ack.update(state="REJECTED", error=exc.to_dict())
            self._store(key, gid, ack, sender, h.get("X-Reference"))
            return self._error(exc, ack=ack)
        try:
            digest = (sender, content_digest(_unsigned(parse_xml(raw, limits=self.limits))))
        except NswError:  # taken without parsing (the accept-xxe and accept-entity-expansion defects)
            digest = (sender, raw.hex())
        if digest in self._by_content and "accept-replays" not in self.defects:
            original = self._messages[self._by_content[digest]].ack
            return self._error(
                DuplicateContent(
                    f"already submitted as {original['message_id']!r}",
                    field="body",
                    details={"original": {k: original[k] for k in ("id", "message_id", "state")}},
                )
            )
        self._by_content.setdefault(digest, gid)
        self._store(key, gid, ack, sender, h.get("X-Reference"))
        self.processed.append(mid)
        return web.json_response(ack, status=202, headers={"Location": f"/v1/messages/{gid}"})

    def _store(self, key: tuple[str, str], gid: str, ack: dict[str, Any], sender: str, reference: str | None) -> None:
        self._by_key[key] = gid
        self._messages[gid] = _Stored(ack, sender, reference, [{"state": ack["state"], "at": ack["received_at"]}])

    def _check(self, raw: bytes, fmt: str, doc_type: str) -> None:
        head = raw[:4096]
        if b"<!DOCTYPE" in head:
            if b"SYSTEM" in head and "accept-xxe" in self.defects:
                return
            if b"SYSTEM" not in head and "accept-entity-expansion" in self.defects:
                return
        root = parse_xml(raw, limits=self.limits)
        try:
            verify_document(root, trust=self.trust)
        except NswError as exc:
            if not any(exc.code == code and defect in self.defects for defect, code in _IGNORED_CODES.items()):
                raise
        for sig in root.findall(_DS):
            root.remove(sig)
        if root.tag == _FORM_D_ROOT and doc_type not in self.form_d_types and "accept-mislabelled" not in self.defects:
            raise DocumentTypeMismatch(f"declared {doc_type}, but the content is an e-Form D", field="X-Document-Type")
        if root.tag == _ACDD_CANCELLATION and "refuse-cancellations" in self.defects:
            raise NotAuthorized(f"{doc_type} is not taken", field="X-Document-Type")
        if fmt != "xml" and "ack-schema-violations" not in self.defects:
            issues = [
                i
                for i in registry.get(fmt).validate(serialize(root))
                if not any(d in self.defects and ignored(i) for d, ignored in _IGNORED_ISSUES.items())
            ]
            if issues:
                raise ValidationFailed(issues)

    # ------------------------------------------------------------------------------------------ VNSW SOAP

    def _lenient_header(self, root: Any) -> VnswHeader:
        def text(path: str) -> str:
            return (root.findtext(path) or "").strip()

        return VnswHeader(
            text("Header/Reference/messageId"),
            text("Header/Subject/documentType"),
            text("Header/Subject/type"),
            text("Header/Subject/function"),
            text("Header/Subject/reference"),
            {name: text(f"Header/From/{name}") for name in _VNSW_IDENTITIES},
        )

    def _vnsw_identities(self, party: str, header: VnswHeader) -> None:
        """Each From identity is the party's own (``allow-impersonation``: an Envelope naming another known party
        is taken as that party's; ``identity-only``: From/identity alone is checked; ``identity-fallback``: an
        unknown From/identity is taken from From/ministryCode)."""
        claims = {name: header.sender.get(name, "") for name in _VNSW_IDENTITIES}
        if "allow-impersonation" in self.defects and claims["identity"] in set(self.parties) - {party}:
            return
        if "identity-fallback" in self.defects and claims["identity"] not in self.parties:
            claims["identity"] = claims["ministryCode"]
        for name in ("identity",) if "identity-only" in self.defects else _VNSW_IDENTITIES:
            if claims[name] != party:
                raise IdentityMismatch(
                    f"{party} cannot submit as {claims[name]!r}", field=f"/Envelope/Header/From/{name}"
                )

    async def _vnsw(self, request: web.Request) -> web.StreamResponse:
        party = self._party(request)
        raw = await request.content.read(self.max_message_bytes + 1)
        if len(raw) > self.max_message_bytes:
            if "crash-on-oversize" in self.defects:
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            raise XmlTooLarge(f"request body exceeds {self.max_message_bytes} bytes", field="body")
        try:
            payload = read_soap_request(raw).encode("utf-8")
        except NswError as exc:
            if "ack-non-soap" not in self.defects:
                return web.Response(body=soap_fault(exc), status=500, content_type="text/xml", charset="utf-8")
            payload = raw
        header: VnswHeader | None = None
        try:
            if b"<!DOCTYPE" in payload[:4096]:
                system = b"SYSTEM" in payload[:4096]
                if ("accept-xxe" in self.defects and system) or (
                    "accept-entity-expansion" in self.defects and not system
                ):
                    lenient = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
                    header = self._lenient_header(etree.fromstring(payload, lenient))
                    return self._vnsw_answer(ack_envelope(header))
            root = parse_xml(payload, limits=self.limits)
            try:
                header = read_header(root)
            except RequestInvalid:
                if "ack-missing-header" not in self.defects:
                    header = None
                    raise
                header = self._lenient_header(root)
            self._vnsw_identities(party, header)
            key = (party, header.message_id)
            if key in self._by_key and "process-duplicates" not in self.defects:
                return self._vnsw_answer(self._messages[self._by_key[key]].ack["answer"].encode("utf-8"))
            try:
                verify_document(root, trust=self.trust, policy=VerifyPolicy.vnsw_legacy())
            except NswError as exc:
                if not any(exc.code == code and defect in self.defects for defect, code in _IGNORED_CODES.items()):
                    raise
        except NswError as exc:
            return self._vnsw_answer(error_envelope(header, [exc]))
        answer = ack_envelope(header)
        gid = uuid.uuid4().hex
        self._store(
            key,
            gid,
            {
                "id": gid,
                "sender": party,
                "message_id": header.message_id,
                "state": "QUEUED",
                "received_at": iso_utc(time.time()),
                "answer": answer.decode("utf-8"),
            },
            party,
            header.reference,
        )
        self.processed.append(header.message_id)
        return self._vnsw_answer(answer)

    def _vnsw_answer(self, answer: bytes) -> web.Response:
        return web.Response(body=soap_response(answer), content_type="text/xml", charset="utf-8")

    async def _get(self, request: web.Request) -> web.Response:
        party = self._party(request)
        stored = self._messages.get(request.match_info["id"])
        if stored is None or (stored.sender != party and "leak-status" not in self.defects):
            raise MessageNotFound(f"no message {request.match_info['id']}", field="id")
        return web.json_response({**stored.ack, "history": stored.history})

    async def _search(self, request: web.Request) -> web.Response:
        party = self._party(request)
        ref = request.query.get("reference")
        found = [
            {**s.ack, "history": s.history}
            for s in self._messages.values()
            if (s.sender == party or "leak-status" in self.defects) and (ref is None or s.reference == ref)
        ]
        return web.json_response({"messages": found})

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except NswError as exc:
            return self._error(exc)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> BrokenPeer:
        app = web.Application(middlewares=[self._errors], client_max_size=self.max_message_bytes * 2 + 1024)
        app.router.add_post("/v1/messages", self._submit)
        app.router.add_post("/vnsw/soap", self._vnsw)
        app.router.add_get("/v1/messages", self._search)
        app.router.add_get("/v1/messages/{id}", self._get)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> BrokenPeer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _serve(args: argparse.Namespace) -> None:  # pragma: no cover - manual use
    from conformance.pki import open_pki

    parties = {args.party: PeerParty(args.token, (args.document_type,))}
    if args.other_party:
        parties[args.other_party] = PeerParty(args.other_token or "other-token")
    async with BrokenPeer(
        args.profile,
        args.defect,
        pki=open_pki(args.pki),
        parties=parties,
        max_message_bytes=args.max_bytes,
        port=args.port,
    ) as peer:
        print(f"broken peer ({', '.join(sorted(peer.defects)) or 'no defect'}) on {peer.url}", flush=True)
        await asyncio.Event().wait()


def main() -> None:  # pragma: no cover - manual use
    p = argparse.ArgumentParser(prog="python -m conformance.broken_peer")
    p.add_argument("--profile", default="rest-intermediary")
    p.add_argument("--defect", action="append", default=[])
    p.add_argument("--pki", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--party", default="CONFORMANCE")
    p.add_argument("--token", default="kit-token")
    p.add_argument("--document-type", default="eco.form_d")
    p.add_argument("--other-party", default="OTHER")
    p.add_argument("--other-token", default="other-token")
    p.add_argument("--max-bytes", type=int, default=1024 * 1024)
    asyncio.run(_serve(p.parse_args()))


if __name__ == "__main__":  # pragma: no cover
    main()


# ---------------------------------------------------------------------------------------------- asw-formd

AS4_DEFECTS: Mapping[str, str] = DEFECTS["asw-formd"]
"""``asw-formd`` defects of :class:`BrokenAs4Peer` and the case that catches each."""


class _ForgetfulStore:
    """A duplicate store that never remembers (the ``process-duplicates`` defect)."""

    async def receipt_for(self, partner: str, message_id: str) -> bytes | None:
        return None

    async def remember(self, partner: str, message_id: str, receipt: bytes) -> bytes:
        return receipt  # kept nowhere: the next resend is processed again


class _ForgingStore:
    """A duplicate store whose receipts the peer may replace (the ``receipt-for-another-message`` defect answers
    every resend with the receipt it forged for the first transmission)."""

    def __init__(self) -> None:
        self.receipts: dict[tuple[str, str], bytes] = {}

    async def receipt_for(self, partner: str, message_id: str) -> bytes | None:
        return self.receipts.get((partner, message_id))

    async def remember(self, partner: str, message_id: str, receipt: bytes) -> bytes:
        return self.receipts.setdefault((partner, message_id), receipt)


_NOTICE_TYPE = "/CertificateNotification/Notification/TypeCode"


@dataclass
class _Certificate:
    """An e-Form D the AS4 peer delivered: its status and history, as ``GET /v1/certificates/...`` shows them."""

    issuing_country: str
    number: str
    issuer: str
    status: str = "issued"
    history: list[dict[str, Any]] = field(default_factory=list)

    def step(self, event: str, party: str, detail: Mapping[str, str] | None = None) -> None:
        from gateway.store.base import certificate_status

        moved = certificate_status(event, self.status) if event != "issued" else "issued"
        if moved is not None:
            self.status = moved
        self.history.append({"status": event, "at": iso_utc(time.time()), "party": party, "detail": dict(detail or {})})

    def to_dict(self) -> dict[str, Any]:
        return {
            "issuing_country": self.issuing_country,
            "number": self.number,
            "issuer": self.issuer,
            "status": self.status,
            "history": self.history,
        }


class BrokenAs4Peer:
    """An AS4 receiver for the kit's party (``adapters.as4.As4Receiver`` underneath) with switchable defects.

    ``party_id`` receives from ``kit_party`` under the Service/Action given (and its certificate notifications
    under ``notification_action``), signs its signals with ``pki``'s ``party_id`` certificate and trusts the kit's
    PKI (with its CRL) unless a defect says otherwise. The e-Form Ds it :meth:`deliver` s are issued by ``issuer``,
    who reads their status with ``issuer_token``.
    """

    def __init__(
        self,
        defects: Iterable[str] = (),
        *,
        pki: KitPki,
        kit_party: str = "conformance-asw",
        party_id: str = "nsw-gateway",
        service: str = "urn:asean:asw:e-form-d",
        action: str = "SubmitFormD",
        notification_action: str = "NotifyFormD",
        path: str = "/as4",
        issuer: str = "MOIT",
        issuer_token: str = "issuer-token",
    ) -> None:
        from adapters.as4 import As4Partner, As4Receiver, PartyConfig, PMode, ReceptionAwareness
        from signing.keys import SoftwareSigner
        from signing.revocation import NoRevocationCheck
        from signing.xenc import SoftwareDecrypter

        self.defects = frozenset(defects)
        unknown = self.defects - set(AS4_DEFECTS)
        if unknown:
            raise ValueError(f"unknown defects {sorted(unknown)} for asw-formd (known: {', '.join(AS4_DEFECTS)})")
        ours, kit = pki.pki.party(party_id), pki.pki.party("conformance")
        if not isinstance(ours.key, rsa.RSAPrivateKey):
            raise ValueError(
                f"the AS4 peer decrypts with {party_id!r}'s key, a {type(ours.key).__name__}: RSA-OAEP key transport "
                "needs RSA (prepare the kit's PKI with key type rsa2048 or rsa3072)"
            )
        anchors = (
            (pki.pki.root_cert, pki.intruder.root_cert) if "accept-untrusted" in self.defects else (pki.pki.root_cert,)
        )
        intermediates = (pki.pki.issuing_cert, pki.intruder.issuing_cert)
        revocation = (
            NoRevocationCheck()
            if "accept-revoked" in self.defects
            else CrlChecker.from_files([pki.pki.crl_path, pki.pki.root_crl_path])
        )
        trust = TrustStore(
            kit_party,
            anchors=anchors,
            intermediates=intermediates,
            revocation=revocation,
            signers=None if "accept-any-signer" in self.defects else SignerIdentity.subject(CN=KIT_SIGNER),
            any_signer="accept-any-signer" in self.defects,
        )
        unregistered = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
        pmode = PMode(
            id=f"{party_id}-{kit_party}",
            initiator=PartyConfig(party_id=party_id, party_id_type=unregistered),
            responder=PartyConfig(party_id=kit_party, party_id_type=unregistered),
            service=service,
            action=action,
        )
        notices = pmode.model_copy(update={"id": f"{party_id}-{kit_party}-notices", "action": notification_action})
        self._signer = SoftwareSigner(ours.key, ours.cert, [pki.pki.issuing_cert])
        self._forging = _ForgingStore()
        self.receiver = As4Receiver(
            party_id=party_id,
            partners={kit_party: [As4Partner(pmode, trust, kit.cert), As4Partner(notices, trust, kit.cert)]},
            signer=self._signer,
            decrypter=SoftwareDecrypter(ours.key, ours.cert),
            store=_ForgetfulStore() if "process-duplicates" in self.defects else self._forging,
            sink=self._sink,
        )
        self.path = path
        self.processed: list[str] = []
        self._last: Any = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.kit_party, self.notification_action = kit_party, notification_action
        self.issuer, self.issuer_token = issuer, issuer_token
        self.certificates: dict[tuple[str, str], _Certificate] = {}
        """The e-Form Ds the peer delivered, by (issuing country, number)."""
        self._outbound = PMode(
            id=f"{party_id}-{kit_party}-out",
            initiator=PartyConfig(party_id=party_id, party_id_type=unregistered),
            responder=PartyConfig(party_id=kit_party, party_id_type=unregistered),
            service=service,
            action=action,
            reception_awareness=ReceptionAwareness(attempts=1, initial_wait=0.01, max_wait=0.05),
        )
        self._kit_trust = TrustStore(
            kit_party,
            anchors=(pki.pki.root_cert,),
            intermediates=(pki.pki.issuing_cert,),
            signers=SignerIdentity.of(kit.cert),
        )
        self._kit_cert = kit.cert

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _sink(self, received: Any) -> None:
        if received.user_message.action == self.notification_action:
            self._notice(received)  # a refusal is answered with a signed error signal, nothing processed
        else:
            self._issue(received)
        self.processed.append(received.user_message.message_id)
        self._last = received

    def _issue(self, received: Any) -> None:
        """Keep the kit's e-Form D as issued by the kit; an amendment needs its original (the gateway's rules),
        unless the ``accept-early-amendments`` defect is on."""
        from gateway.store.base import certificate_refusal

        for payload in received.payloads.values():
            act = registry.get("form-d").certificate(payload)
            if act is None:
                continue
            known = self.certificates.get((act.issuing_country, act.number))
            if act.issues:
                if known is None:
                    certificate = _Certificate(act.issuing_country, act.number, self.kit_party)
                    self.certificates[(act.issuing_country, act.number)] = certificate
                    certificate.step("issued", self.kit_party)
                continue
            if known is None and "accept-early-amendments" in self.defects:
                continue
            refusal = certificate_refusal(act, self.kit_party, known.issuer if known is not None else None)
            if refusal is not None:
                raise refusal
            assert known is not None
            known.step(act.action, self.kit_party, act.detail)

    def _notice(self, received: Any) -> None:
        """Apply the kit's certificate notification (the gateway's rules: ``certificate_refusal`` and
        ``certificate_status``), unless a lifecycle defect says otherwise."""
        from gateway.store.base import certificate_refusal

        formd = registry.get("form-d")
        payloads = list(received.payloads.values())
        if len(payloads) != 1:
            raise RequestInvalid(f"expected one payload, got {len(payloads)}", field="eb:PayloadInfo")
        issues = formd.validate(payloads[0])
        if issues:
            raise ValidationFailed(issues)
        act = formd.certificate(payloads[0])
        if act is None or act.issues:
            raise RequestInvalid("the payload is no certificate notification", field="eb:PayloadInfo")
        known = self.certificates.get((act.issuing_country, act.number))
        if known is None and "accept-unknown-certificates" in self.defects:
            return  # receipted, and nothing to record it in
        # every certificate the peer carries went to the kit, the one party answering for it
        kit = frozenset({self.kit_party})
        refusal = certificate_refusal(
            replace(act, answers_for=kit), self.kit_party, known.issuer if known is not None else None, kit
        )
        if refusal is not None:
            raise refusal
        assert known is not None
        if act.action == "verification_request" and "refuse-verification-requests" in self.defects:
            raise RequestInvalid("verification requests are not taken", field=_NOTICE_TYPE)
        if (act.action == "received" and "ignore-receipt-notices" in self.defects) or (
            act.action == "utilized" and "ignore-utilizations" in self.defects
        ):
            return
        detail = dict(act.detail)
        if act.action == "rejected" and "drop-rejection-reasons" in self.defects:
            detail = {k: v for k, v in detail.items() if k not in ("reason_code", "reason")}
        known.step(act.action, self.kit_party, detail)

    async def deliver(self, url: str, numbers: Iterable[str], *, attempts: int = 500) -> None:
        """Deliver an e-Form D numbered each of ``numbers`` (the kit's sample, issued by ``issuer``) to the kit
        listening at ``url`` over AS4, one after the other, each until the kit receipts it (a 503 is followed by
        a resend with the same MessageId); each is ``issued``, then ``delivered`` once receipted."""
        from adapters.as4 import As4Adapter
        from conformance.profiles.rest import CERTIFICATE_NUMBER, sample_document
        from gateway.errors import PartnerUnavailable
        from gateway.ports import OutboundMessage

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(min(seconds, 0.05))

        adapter = As4Adapter(
            url,
            timeout=10,
            options={
                "pmode": self._outbound,
                "signer": self._signer,
                "trust": self._kit_trust,
                "encryption_certificate": self._kit_cert,
                "sleep": sleep,
            },
        )
        formd = registry.get("form-d")
        async with adapter:
            for number in numbers:
                body = sample_document().replace(CERTIFICATE_NUMBER, f"<ID>{number}</ID>".encode())
                act = formd.certificate(body)
                assert act is not None and act.issues, "the kit's sample is no e-Form D"
                certificate = _Certificate(act.issuing_country, act.number, self.issuer)
                self.certificates[(act.issuing_country, act.number)] = certificate
                certificate.step("issued", self.issuer)
                message = OutboundMessage(f"peer-{uuid.uuid4().hex}", body, self.issuer, "eco.form_d", number)
                for _ in range(attempts):
                    try:
                        await adapter.deliver(message)
                        break
                    except PartnerUnavailable:  # as the gateway's delivery engine does: the same message again
                        await asyncio.sleep(0.02)
                else:
                    raise PartnerUnavailable(f"the kit did not receipt {number} in {attempts} attempts", field="url")
                certificate.step("delivered", self.kit_party)

    async def _certificate(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.issuer_token:
            error: NswError = NotAuthenticated("the issuer's bearer token is required", field="Authorization")
            return web.json_response({"error": error.to_dict()}, status=error.http_status)
        found = self.certificates.get((request.match_info["country"], request.match_info["number"]))
        if found is None:
            error = MessageNotFound("no such certificate of origin", field="number")
            return web.json_response({"error": error.to_dict()}, status=error.http_status)
        return web.json_response(found.to_dict())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if "accept-xxe" in self.defects:
            body = await request.read()
            if b"<!DOCTYPE" in body:
                return web.Response(status=202, text="accepted")
        self._last = None
        response = await self.receiver.handle(request)
        if self._last is None or response.status != 200 or not isinstance(response.body, bytes):
            return response
        if "receipt-for-another-message" in self.defects:
            import dataclasses

            from adapters.as4 import build_receipt

            other = dataclasses.replace(self._last.user_message, message_id=f"{uuid.uuid4().hex}@another")
            receipt = build_receipt(
                dataclasses.replace(self._last, user_message=other), self._signer, domain="broken-peer"
            )
            last = self._last.user_message
            self._forging.receipts[(last.sender.party_id, last.message_id)] = receipt  # consistent on retry
            return web.Response(body=receipt, status=200, headers={"Content-Type": response.headers["Content-Type"]})
        if "unsigned-receipts" in self.defects:
            root = parse_xml(response.body)
            for security in root.iter(
                "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}Security"
            ):
                parent = security.getparent()
                if parent is not None:
                    parent.remove(security)
            return web.Response(
                body=serialize(root), status=200, headers={"Content-Type": response.headers["Content-Type"]}
            )
        return response

    async def __aenter__(self) -> BrokenAs4Peer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(self.path, self._handle)
        app.router.add_get("/v1/certificates/{country}/{number}", self._certificate)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


# ------------------------------------------------------------------------------------- a broken sending party

SENDER_DEFECTS: Mapping[str, str] = {
    "no-message-id": "NSW-REST-RX01",
    "new-id-on-retry": "NSW-REST-RX02",
    "accept-wrong-receipt": "NSW-REST-RX03",
}
"""Defects of :class:`BrokenSender` (a party delivering to the kit as receiver) and the case that catches each."""


class BrokenSender:
    """A party that delivers ``count`` messages, one after the other, to the kit listening as receiver.

    Correct behaviour: ``X-Message-Id`` and ``X-Document-Type`` on every POST; resend the same message with the
    same id after a 5xx or a receipt that does not name it, until acknowledged (at most ``attempts`` times).
    Defects: ``no-message-id`` (the first message has none), ``new-id-on-retry`` (a fresh id after a 5xx),
    ``accept-wrong-receipt`` (any 2xx counts as acknowledged).
    """

    def __init__(
        self,
        url: str,
        defects: Iterable[str] = (),
        *,
        body: bytes,
        count: int = 3,
        attempts: int = 20,
        pause: float = 0.05,
    ) -> None:
        self.defects = frozenset(defects)
        unknown = self.defects - set(SENDER_DEFECTS)
        if unknown:
            raise ValueError(f"unknown sender defects {sorted(unknown)} (known: {', '.join(SENDER_DEFECTS)})")
        self.url, self.body, self.count, self.attempts, self.pause = url, body, count, attempts, pause
        self.acknowledged: list[str] = []

    async def run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as client:
            for n in range(self.count):
                mid = f"sender-{uuid.uuid4().hex}"
                for _ in range(self.attempts):
                    headers = {"X-Document-Type": "eco.form_d", "Content-Type": "application/xml"}
                    if not (n == 0 and "no-message-id" in self.defects):
                        headers["X-Message-Id"] = mid
                    try:
                        async with client.post(self.url, data=self.body, headers=headers) as r:
                            status, data = r.status, await r.read()
                    except aiohttp.ClientError:
                        status, data = 599, b""
                    if 200 <= status < 300:
                        if "accept-wrong-receipt" in self.defects or n == 0 and "no-message-id" in self.defects:
                            break
                        try:
                            import json

                            if json.loads(data).get("message_id") == mid:
                                break
                        except (ValueError, AttributeError):
                            pass
                    elif status >= 500 and "new-id-on-retry" in self.defects:
                        mid = f"sender-{uuid.uuid4().hex}"
                    await asyncio.sleep(self.pause)
                self.acknowledged.append(mid)
