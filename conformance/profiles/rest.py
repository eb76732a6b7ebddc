"""Profile ``rest-intermediary``: the gateway's REST API as a ministry system or data intermediary uses it.

The kit (as sender) submits to ``POST /v1/messages`` with its bearer token and
reads back with ``GET /v1/messages/{id}`` and ``GET /v1/messages?reference=``.
Submissions are ATIGA e-Form D documents (``conformance/data/form_d.xml``)
signed with the kit's certificates (``nswgw conformance pki``); each case uses
fresh message ids, its own ``X-Reference`` and its own document (a fresh certificate number).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

import aiohttp

from conformance.listener import Incoming, Listener, listening, require_target
from conformance.model import Severity
from conformance.pki import ANOTHER_PARTNER, EXPIRED, REVOKED, WRONG_USAGE, KitPki, open_pki
from conformance.registry import case, profile
from conformance.runner import PREPARING, TRANSPORT_ERRORS, CaseContext, HttpReply, unreachable
from conformance.settings import RunOptions
from gateway.errors import NswError
from signing.keys import Signer
from signing.sign import sign_document
from signing.xml import ParserLimits, parse_xml

__all__ = ["REST", "RestSession", "sample_document", "SCHEMA_VIOLATION_PATHS", "XXE", "BILLION_LAUGHS"]


def sample_document() -> bytes:
    """The valid e-Form D every case starts from (a copy of tests/vectors/mappings/formd/form_d_two_items.xml)."""
    return resources.files("conformance").joinpath("data/form_d.xml").read_bytes()


SCHEMA_VIOLATION = (b"<ExportCountryCode>VN</ExportCountryCode>", b"<ExportCountryCode>VIETNAM</ExportCountryCode>")
"""The schema violation sent: a three-letter-plus country code where ISO 3166 alpha-2 is required."""
SCHEMA_VIOLATION_PATHS = ("/*/*[1]/*[4]", "ExportCountryCode", "export_country")
"""An issue path naming the violating element: the XPath the gateway reports, or one naming the element/field."""
TAMPER = (b"Minh Phu Seafood JSC", b"Minh Phu Seafood LLC")
CERTIFICATE_NUMBER = b"<ID>VN-SG-24-00001</ID>"
"""The sample's certificate number (``Certificate/ID``), replaced by a fresh one in each document sent."""
EXPORTER_ID = b"<ID>0300000001</ID>"
"""The sample's exporter (``Exporter/ID``), replaced by the enterprise the kit submits for."""

XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE CertificateOfOrigin [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<CertificateOfOrigin xmlns="urn:nsw-gateway:atiga:e-form-d:1"><Certificate><ID>&xxe;</ID></Certificate>'
    b"</CertificateOfOrigin>\n"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b']>\n<CertificateOfOrigin xmlns="urn:nsw-gateway:atiga:e-form-d:1"><Certificate><ID>&lol9;</ID>'
    b"</Certificate></CertificateOfOrigin>\n"
)


@dataclass
class RestSession:
    """What the REST cases share: options, credentials, certificates and the sample document."""

    options: RunOptions
    pki: KitPki | None
    listener: Listener | None = None
    """As receiver: where the party delivers."""
    seen: set[str] = field(default_factory=set)
    """As receiver: message ids a case already took (each case takes a fresh message)."""

    @property
    def settings(self) -> Any:
        return self.options.settings

    def signer(self, kind: str = "valid") -> Signer:
        if self.pki is None:
            raise _unmet(
                "no PKI configured (settings 'pki'); run 'nswgw conformance pki DIR' and make the party "
                "trust DIR/root-ca.pem and DIR/crl.pem for the kit's party"
            )
        if kind == "valid":
            return self.pki.signer(self.settings.signer)
        if kind == "intruder":
            return self.pki.intruder_signer()
        kinds = {"expired": EXPIRED, "revoked": REVOKED, "wrong-usage": WRONG_USAGE, "another-party": ANOTHER_PARTNER}
        return self.pki.signer(kinds[kind])

    def document(self, kind: str = "valid") -> bytes:
        """The sample e-Form D with a fresh certificate number: each signed document is a new one, so a party
        that refuses replayed content (NSW-REST-TA17) takes every case's document as its own. Its exporter is
        the enterprise the kit submits for (settings 'rest.enterprise'), when there is one."""
        doc = sample_document().replace(
            CERTIFICATE_NUMBER, b"<ID>VN-SG-" + uuid.uuid4().hex[:16].upper().encode() + b"</ID>", 1
        )
        enterprise = self.settings.rest.enterprise
        if enterprise:  # the document names the enterprise the kit submits for, as its exporter
            doc = doc.replace(EXPORTER_ID, b"<ID>" + escape(enterprise).encode() + b"</ID>", 1)
        if kind == "schema-violation":
            doc = doc.replace(*SCHEMA_VIOLATION)
        return doc

    def signed(self, kind: str = "valid", *, signer: str = "valid") -> bytes:
        return sign_document(self.document(kind), self.signer(signer))

    def headers(
        self, message_id: str, *, token: str | None = None, reference: str | None = None, **extra: str
    ) -> dict[str, str]:
        rest = self.settings.rest
        h = {
            "Authorization": f"Bearer {token if token is not None else self.settings.token}",
            "X-Message-Id": message_id,
            "X-Document-Type": rest.document_type,
            "X-Format": rest.format,
            "Content-Type": "application/xml",
        }
        if reference:
            h["X-Reference"] = reference
        if rest.enterprise:
            h[rest.enterprise_header] = rest.enterprise
        h.update({k.replace("_", "-"): v for k, v in extra.items()})
        return h

    async def submit(
        self, ctx: CaseContext, body: bytes, *, message_id: str | None = None, note: str = "", **headers: Any
    ) -> HttpReply:
        return await ctx.http.post(
            self.options.url("/v1/messages"), body, self.headers(message_id or new_id(), **headers), note=note
        )


def _unmet(reason: str) -> Exception:
    from conformance.runner import PrerequisiteUnmet

    return PrerequisiteUnmet(reason)


def new_id(prefix: str = "conf") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@asynccontextmanager
async def _session(options: RunOptions) -> AsyncIterator[RestSession]:
    s = options.settings
    require_target(options, token=True)
    pki = open_pki(s.pki) if s.pki is not None else None
    async with listening(options, s.rest.receiver_path) as listener:
        yield RestSession(options, pki, listener)


REST = profile(
    "rest-intermediary",
    "REST API (POST /v1/messages) of the gateway",
    session=_session,
    description="Ministry systems and licensed data intermediaries submitting over the REST API.",
)


def _ack(reply: HttpReply) -> Mapping[str, Any]:
    data = reply.json()
    return data if isinstance(data, dict) else {}


def _check_rejected(ctx: CaseContext, reply: HttpReply, *codes: str, statuses: tuple[int, ...] = ()) -> None:
    ctx.expect_code(reply.error_code, *codes, what=f"HTTP {reply.status}")
    if statuses:
        ctx.check(reply.status in statuses, f"expected HTTP {' or '.join(map(str, statuses))}, got {reply.status}")


# ----------------------------------------------------------------------------------------------- cases


@case("NSW-REST-TA00", REST, preflight=True)
async def preflight(ctx: CaseContext) -> None:
    """The target is reachable and accepts the kit's tokens (run first: every other case needs it).

    Prerequisite: a target URL (--target) and the kit's token (settings 'token').
    Predicate: GET /v1/messages?reference=<fresh> with the kit's token is answered by the party, neither 404
    (no REST API at the target) nor 401 (token unknown); with 'other_party' and 'other_token' set, the other
    party's token is accepted too. When this fails, the other cases are NOT_RUN.
    """
    s: RestSession = ctx.session
    url = s.options.url(f"/v1/messages?reference={new_id('preflight')}")
    tokens = [(s.settings.party, s.settings.token, "token")]
    if s.settings.other_party and s.settings.other_token:
        tokens.append((s.settings.other_party, s.settings.other_token, "other_token"))
    for party, token, setting in tokens:
        try:
            reply = await ctx.http.get(url, {"Authorization": f"Bearer {token}"}, note=f"preflight: {party}'s token")
        except TRANSPORT_ERRORS as exc:
            ctx.fail(unreachable(s.options.target, exc))
        ctx.check(
            reply.status != 404,
            f"the target answers HTTP 404 on GET /v1/messages: it serves no gateway REST API there; "
            f"correct --target (the gateway's base URL). {PREPARING}",
        )
        ctx.check(
            reply.status != 401 and reply.error_code != "AUTH_REQUIRED",
            f"the gateway does not accept the kit's token for party {party} (settings '{setting}'): add "
            f"[parties.{party}] tokens = [\"<settings '{setting}'>\"] (with its document_types and trust); {PREPARING}",
        )


@case("NSW-REST-TA01", REST)
async def valid_submission(ctx: CaseContext) -> None:
    """A valid signed submission is accepted with an acknowledgement.

    Prerequisite: the kit's party may submit the document type, and the party trusts the kit's PKI.
    Predicate: HTTP 202 with a JSON acknowledgement naming the submitted message id, a gateway id and a
    state that is not REJECTED, with no error.
    """
    s: RestSession = ctx.session
    mid = new_id()
    reply = await s.submit(ctx, s.signed(), message_id=mid)
    ack = _ack(reply)
    ctx.observe(reply.error_code)
    ctx.check(reply.status == 202, f"expected HTTP 202, got {reply.status}")
    ctx.check(ack.get("message_id") == mid, f"the ack names message id {ack.get('message_id')!r}, not {mid!r}")
    ctx.check(ack.get("id"), "the ack carries no gateway id")
    ctx.check(
        ack.get("state") not in (None, "REJECTED") and not ack.get("error"),
        f"the ack's state is {ack.get('state')!r} with error {ack.get('error')!r}",
    )


@case("NSW-REST-TA02", REST)
async def schema_violation(ctx: CaseContext) -> None:
    """A schema violation is rejected with VALIDATION_FAILED naming the violating element.

    Prerequisite: as NSW-REST-TA01; the document type is validated against the e-Form D schema.
    Predicate: HTTP 422 with error code VALIDATION_FAILED and an issue whose path names the
    ExportCountryCode element (the value "VIETNAM" is not ISO 3166 alpha-2).
    """
    s: RestSession = ctx.session
    reply = await s.submit(ctx, s.signed("schema-violation"), note="ExportCountryCode = VIETNAM")
    _check_rejected(ctx, reply, "VALIDATION_FAILED", statuses=(422,))
    error = _ack(reply).get("error") or {}
    paths = [str(i.get("path", "")) for i in error.get("issues", []) if isinstance(i, dict)]
    paths.append(str(error.get("field") or ""))
    ctx.check(
        any(p == SCHEMA_VIOLATION_PATHS[0] or any(n in p for n in SCHEMA_VIOLATION_PATHS[1:]) for p in paths),
        f"no issue path names the violating element (paths: {paths})",
    )


@case("NSW-REST-TA03", REST)
async def tampered_signature(ctx: CaseContext) -> None:
    """A document altered after signing is rejected with SIG_DIGEST_MISMATCH.

    Prerequisite: the party verifies signatures of the kit's party against the kit's PKI.
    Predicate: the exporter's name is changed after signing; the party answers SIG_DIGEST_MISMATCH (HTTP 403).
    """
    s: RestSession = ctx.session
    body = s.signed().replace(*TAMPER)
    reply = await s.submit(ctx, body, note="exporter name altered after signing")
    _check_rejected(ctx, reply, "SIG_DIGEST_MISMATCH", statuses=(403,))


async def _cert_case(ctx: CaseContext, signer: str, code: str, note: str) -> None:
    s: RestSession = ctx.session
    reply = await s.submit(ctx, s.signed(signer=signer), note=note)
    _check_rejected(ctx, reply, code, statuses=(403,))


@case("NSW-REST-TA04", REST)
async def wrong_certificate(ctx: CaseContext) -> None:
    """A signature by a certificate of another CA (same subject) is rejected with CERT_UNTRUSTED.

    Prerequisite: the party trusts only the kit's PKI for the kit's party.
    Predicate: the document signed by the impostor certificate is answered CERT_UNTRUSTED (HTTP 403).
    """
    await _cert_case(ctx, "intruder", "CERT_UNTRUSTED", "signed by an impostor certificate (other root CA)")


@case("NSW-REST-TA05", REST)
async def expired_certificate(ctx: CaseContext) -> None:
    """A signature by an expired certificate is rejected with CERT_EXPIRED.

    Prerequisite: the party trusts the kit's PKI; the kit holds a certificate expired a year ago.
    Predicate: the document signed with it is answered CERT_EXPIRED (HTTP 403).
    """
    await _cert_case(ctx, "expired", "CERT_EXPIRED", "signed by an expired certificate")


@case("NSW-REST-TA06", REST)
async def revoked_certificate(ctx: CaseContext) -> None:
    """A signature by a revoked certificate is rejected with CERT_REVOKED.

    Prerequisite: the party trusts the kit's PKI and reads its CRL (crl.pem lists the revoked certificate).
    Predicate: the document signed with the revoked certificate is answered CERT_REVOKED (HTTP 403).
    """
    await _cert_case(ctx, "revoked", "CERT_REVOKED", "signed by a revoked certificate")


@case("NSW-REST-TA07", REST)
async def wrong_key_usage(ctx: CaseContext) -> None:
    """A signature by a certificate not fit for signing is rejected with CERT_KEY_USAGE.

    Prerequisite: the party trusts the kit's PKI; the kit holds a keyEncipherment/serverAuth-only certificate.
    Predicate: the document signed with it is answered CERT_KEY_USAGE (HTTP 403).
    """
    await _cert_case(ctx, "wrong-usage", "CERT_KEY_USAGE", "signed by a keyEncipherment-only certificate")


@case("NSW-REST-TA08", REST)
async def duplicate_submission(ctx: CaseContext) -> None:
    """A resubmission with the same message id gets the original acknowledgement and is not processed twice.

    Prerequisite: as NSW-REST-TA01; the party offers search by reference (GET /v1/messages?reference=).
    Predicate: the second submission is answered 2xx with the first acknowledgement (same gateway id and
    receive time), and a search by the submission's reference finds exactly one message.
    """
    s: RestSession = ctx.session
    mid, ref = new_id(), new_id("ref")
    body = s.signed()
    first = await s.submit(ctx, body, message_id=mid, reference=ref, note="original")
    ctx.require(first.status == 202, f"the original submission was not accepted (HTTP {first.status})")
    second = await s.submit(ctx, body, message_id=mid, reference=ref, note="resent with the same message id")
    a, b = _ack(first), _ack(second)
    ctx.check(second.status in (200, 202), f"the duplicate was answered HTTP {second.status}")
    ctx.check(
        a.get("id") == b.get("id") and a.get("received_at") == b.get("received_at"),
        f"the duplicate got a new acknowledgement ({b.get('id')!r} at {b.get('received_at')!r}, "
        f"original {a.get('id')!r} at {a.get('received_at')!r})",
    )
    found = await ctx.http.get(s.options.url(f"/v1/messages?reference={ref}"), s.headers(mid))
    messages = (found.json() or {}).get("messages") if isinstance(found.json(), dict) else None
    ctx.check(
        isinstance(messages, list) and len(messages) == 1,
        f"a search by reference finds {len(messages) if isinstance(messages, list) else 'no list of'} "
        "message(s), not exactly one",
    )


@case("NSW-REST-TA09", REST)
async def xxe(ctx: CaseContext) -> None:
    """A document with an external entity (XXE) is rejected with XML_DTD_FORBIDDEN.

    Prerequisite: as NSW-REST-TA01.
    Predicate: a DOCTYPE declaring SYSTEM "file:///etc/passwd" is answered XML_DTD_FORBIDDEN (HTTP 400) and
    the reply does not contain the file's content.
    """
    s: RestSession = ctx.session
    reply = await s.submit(ctx, XXE, note="XXE: external entity file:///etc/passwd")
    _check_rejected(ctx, reply, "XML_DTD_FORBIDDEN", statuses=(400,))
    ctx.check(b"root:" not in reply.body, "the reply contains /etc/passwd content")


@case("NSW-REST-TA10", REST)
async def billion_laughs(ctx: CaseContext) -> None:
    """A document with nested internal entities (billion laughs) is rejected with XML_DTD_FORBIDDEN.

    Prerequisite: as NSW-REST-TA01.
    Predicate: the entity-expansion document is answered XML_DTD_FORBIDDEN (HTTP 400).
    """
    s: RestSession = ctx.session
    reply = await s.submit(ctx, BILLION_LAUGHS, note="billion laughs: 10^9 expansions")
    _check_rejected(ctx, reply, "XML_DTD_FORBIDDEN", statuses=(400,))


@case("NSW-REST-TA11", REST)
async def oversized(ctx: CaseContext) -> None:
    """A submission larger than the announced limit is refused cleanly with XML_TOO_LARGE.

    Prerequisite: the party's size limit is known to the kit (settings 'max_message_bytes').
    Predicate: a body one byte over the limit is answered HTTP 413 with error code XML_TOO_LARGE (not a
    dropped connection or a 5xx), and the party then still accepts a valid submission.
    """
    s: RestSession = ctx.session
    limit = s.settings.max_message_bytes
    head, tail = b"<CertificateOfOrigin><Padding>", b"</Padding></CertificateOfOrigin>"
    body = head + b"x" * (limit + 1 - len(head) - len(tail)) + tail
    try:
        reply = await s.submit(ctx, body, note=f"{len(body)} bytes, limit {limit}")
    except aiohttp.ClientError as exc:
        ctx.fail(f"the party dropped the connection instead of answering 413 ({type(exc).__name__}: {exc})")
    _check_rejected(ctx, reply, "XML_TOO_LARGE", statuses=(413,))
    try:
        after = await s.submit(ctx, s.signed(), note="a valid submission after the oversized one")
    except aiohttp.ClientError as exc:
        ctx.fail(f"the party is unreachable after the oversized submission ({type(exc).__name__}: {exc})")
    ctx.check(after.status == 202, f"a valid submission after the oversized one was answered HTTP {after.status}")


@case("NSW-REST-TA12", REST)
async def impersonation(ctx: CaseContext) -> None:
    """Submitting as another party is refused with AUTH_FORBIDDEN.

    Prerequisite: another party is configured at the target (settings 'other_party').
    Predicate: a valid submission with the kit's token and X-Sender naming the other party is answered
    AUTH_FORBIDDEN (HTTP 403).
    """
    s: RestSession = ctx.session
    other = s.settings.other_party
    ctx.require(other, "no other party configured (settings 'other_party')")
    reply = await s.submit(ctx, s.signed(), X_Sender=other, note=f"X-Sender: {other}")
    _check_rejected(ctx, reply, "AUTH_FORBIDDEN", statuses=(403,))


@case("NSW-REST-TA13", REST)
async def undelegated_enterprise(ctx: CaseContext) -> None:
    """Submitting on behalf of an enterprise that has not delegated the kit's party is refused.

    Prerequisite: an enterprise id that has not delegated the kit's party is known (settings
    'rest.undelegated_enterprise').
    Predicate: a valid submission with X-On-Behalf-Of naming that enterprise is answered AUTH_DELEGATION_MISSING
    (or AUTH_FORBIDDEN), HTTP 403.
    """
    s: RestSession = ctx.session
    rest = s.settings.rest
    ctx.require(
        rest.undelegated_enterprise, "no undelegated enterprise configured (settings 'rest.undelegated_enterprise')"
    )
    reply = await s.submit(
        ctx,
        s.signed(),
        note=f"{rest.enterprise_header}: {rest.undelegated_enterprise}",
        **{rest.enterprise_header.replace("-", "_"): rest.undelegated_enterprise},
    )
    _check_rejected(ctx, reply, "AUTH_DELEGATION_MISSING", "AUTH_FORBIDDEN", statuses=(403,))


@case("NSW-REST-TA14", REST)
async def no_credentials(ctx: CaseContext) -> None:
    """Requests without a valid bearer token are refused with AUTH_REQUIRED.

    Prerequisite: none beyond a reachable target.
    Predicate: a submission without Authorization and one with an unknown token are both answered
    AUTH_REQUIRED (HTTP 401).
    """
    s: RestSession = ctx.session
    headers = s.headers(new_id())
    del headers["Authorization"]
    reply = await ctx.http.post(s.options.url("/v1/messages"), s.signed(), headers, note="no Authorization header")
    _check_rejected(ctx, reply, "AUTH_REQUIRED", statuses=(401,))
    reply = await s.submit(ctx, s.signed(), token=f"not-a-token-{uuid.uuid4().hex}", note="unknown token")
    _check_rejected(ctx, reply, "AUTH_REQUIRED", statuses=(401,))


@case("NSW-REST-TA15", REST)
async def status_owner_only(ctx: CaseContext) -> None:
    """A message's status is readable by its sender only.

    Prerequisite: another party with a token is configured (settings 'other_party', 'other_token').
    Predicate: the sender reads its message (HTTP 200, same id); the other party's GET is answered
    MESSAGE_NOT_FOUND or AUTH_FORBIDDEN, and its search by the message's reference finds nothing.
    """
    s: RestSession = ctx.session
    token = s.settings.other_token
    ctx.require(s.settings.other_party and token, "no other party with a token configured")
    mid, ref = new_id(), new_id("ref")
    first = await s.submit(ctx, s.signed(), message_id=mid, reference=ref)
    ctx.require(first.status == 202, f"the submission was not accepted (HTTP {first.status})")
    gid = _ack(first).get("id")
    own = await ctx.http.get(s.options.url(f"/v1/messages/{gid}"), s.headers(mid), note="as the sender")
    ctx.check(
        own.status == 200 and _ack(own).get("id") == gid, f"the sender cannot read its message (HTTP {own.status})"
    )
    other = await ctx.http.get(
        s.options.url(f"/v1/messages/{gid}"), s.headers(mid, token=token), note="as another party"
    )
    _check_rejected(ctx, other, "MESSAGE_NOT_FOUND", "AUTH_FORBIDDEN", statuses=(403, 404))
    found = await ctx.http.get(
        s.options.url(f"/v1/messages?reference={ref}"), s.headers(mid, token=token), note="search as another party"
    )
    data = found.json()
    messages = data.get("messages") if isinstance(data, dict) else None
    ctx.check(
        found.status in (200, 403, 404) and not messages,
        f"another party's search finds {len(messages) if isinstance(messages, list) else '?'} message(s)",
    )


@case("NSW-REST-TA16", REST, severity=Severity.MUST)
async def document_type_not_allowed(ctx: CaseContext) -> None:
    """A document type the party is not configured for is refused with AUTH_FORBIDDEN.

    Prerequisite: a document type the kit's party may not send is known (settings 'rest.forbidden_document_type').
    Predicate: a valid signed submission declaring that type is answered AUTH_FORBIDDEN (HTTP 403).
    """
    s: RestSession = ctx.session
    forbidden = s.settings.rest.forbidden_document_type
    ctx.require(forbidden, "no forbidden document type configured")
    reply = await s.submit(ctx, s.signed(), X_Document_Type=forbidden, note=f"X-Document-Type: {forbidden}")
    _check_rejected(ctx, reply, "AUTH_FORBIDDEN", statuses=(403,))


@case("NSW-REST-TA17", REST)
async def replayed_document(ctx: CaseContext) -> None:
    """A replayed signed document under a new message id is refused as a duplicate.

    Prerequisite: as NSW-REST-TA01; the party offers search by reference (GET /v1/messages?reference=).
    Predicate: the signed document accepted once, submitted again byte for byte under another message id, is
    answered DUPLICATE_CONTENT (HTTP 409) naming the original message (``error.details.original.id`` is the
    first acknowledgement's id), and a search by the replay's reference finds no message.
    """
    s: RestSession = ctx.session
    body = s.signed()
    first = await s.submit(ctx, body, reference=new_id("ref"), note="original")
    ctx.require(first.status == 202, f"the original submission was not accepted (HTTP {first.status})")
    replay_ref = new_id("ref")
    second = await s.submit(ctx, body, reference=replay_ref, note="the same signed document under a new message id")
    _check_rejected(ctx, second, "DUPLICATE_CONTENT", statuses=(409,))
    data = second.json()
    error = data.get("error") if isinstance(data, dict) else None
    original = (error.get("details") or {}).get("original") if isinstance(error, dict) else None
    ctx.check(
        isinstance(original, dict) and original.get("id") == _ack(first).get("id"),
        f"the refusal does not name the original message {_ack(first).get('id')!r} (details.original: {original!r})",
    )
    found = await ctx.http.get(s.options.url(f"/v1/messages?reference={replay_ref}"), s.headers(new_id()))
    messages = (found.json() or {}).get("messages") if isinstance(found.json(), dict) else None
    ctx.check(
        isinstance(messages, list) and not messages,
        f"a search by the replay's reference finds {len(messages) if isinstance(messages, list) else 'no list of'} "
        "message(s), not none",
    )


@case("NSW-REST-TA18", REST)
async def mislabelled_document(ctx: CaseContext) -> None:
    """A document declared as another type is refused: what the header claims must be what the document is.

    Prerequisite: as NSW-REST-TA01; the kit's party may also submit a document type whose documents are not
    e-Form Ds (settings 'rest.mislabelled_document_type').
    Predicate: the valid signed e-Form D declared as that type (X-Document-Type) is answered
    DOCUMENT_TYPE_MISMATCH (HTTP 422) naming X-Document-Type.
    """
    s: RestSession = ctx.session
    declared = s.settings.rest.mislabelled_document_type
    ctx.require(
        declared,
        "no second document type the kit's party may submit is configured (settings 'rest.mislabelled_document_type')",
    )
    reply = await s.submit(
        ctx, s.signed(), X_Document_Type=declared, note=f"an e-Form D as X-Document-Type: {declared}"
    )
    _check_rejected(ctx, reply, "DOCUMENT_TYPE_MISMATCH", statuses=(422,))
    data = reply.json()
    error = data.get("error") if isinstance(data, dict) else None
    field = error.get("field") if isinstance(error, dict) else None
    ctx.check(field == "X-Document-Type", f"the refusal names {field!r}, not X-Document-Type")


@case("NSW-REST-TA19", REST)
async def another_partys_certificate(ctx: CaseContext) -> None:
    """A document signed by another party's certificate of the same CA is rejected with CERT_IDENTITY_MISMATCH.

    Prerequisite: the party binds the kit's party to the kit's certificate (its subject, a subjectAltName, a
    fingerprint or a pin), not to anything the kit's CA issued (``signers`` of its trust).
    Predicate: the document signed by a valid certificate of the kit's CA with another subject
    (``conformance-another-partner``) is answered CERT_IDENTITY_MISMATCH (HTTP 403).
    """
    await _cert_case(
        ctx, "another-party", "CERT_IDENTITY_MISMATCH", "signed by another party's certificate of the same CA"
    )


# ----------------------------------------------------------------------------------- the kit as receiver


def _receipt(ctx: CaseContext, m: Incoming, message_id: str | None = None, *, note: str = "") -> None:
    mid = m.headers.get("X-Message-Id", "") if message_id is None else message_id
    m.respond(
        ctx,
        200,
        json.dumps({"message_id": mid, "duplicate": False}).encode(),
        {"Content-Type": "application/json"},
        note=note or "receipt",
    )


def _is_new(seen: set[str]) -> Callable[[Incoming], bool]:
    return lambda m: m.headers.get("X-Message-Id", "") not in seen


@case("NSW-REST-RX01", REST, role="receiver")
async def delivery_well_formed(ctx: CaseContext) -> None:
    """The party delivers a message with its id and document type, in a body readable as declared.

    Prerequisite: the party is configured to deliver to the kit's listener and sends a message within the wait.
    Predicate: the POST carries non-empty X-Message-Id and X-Document-Type headers and a body readable as its
    Content-Type declares (JSON decodes; XML parses with no DTD, no entity, within the size limit); the kit then
    acknowledges it with a JSON receipt.
    """
    s: RestSession = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, _is_new(s.seen), what="a delivery")
    assert m is not None
    mid = m.headers.get("X-Message-Id", "")
    s.seen.add(mid)
    _receipt(ctx, m)
    ctx.check(mid, "the delivery carries no X-Message-Id")
    ctx.check(m.headers.get("X-Document-Type"), "the delivery carries no X-Document-Type")
    content_type = m.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type.endswith("json"):
        try:
            json.loads(m.body)
        except ValueError as exc:
            ctx.fail(f"the delivered body is declared {content_type} but is not JSON: {exc}")
        return
    try:
        parse_xml(m.body, limits=ParserLimits(max_bytes=s.settings.max_message_bytes))
    except NswError as exc:
        ctx.observe(exc.code)
        ctx.fail(f"the delivered body ({content_type or 'no Content-Type'}) is refused by the hardened parser: {exc}")


@case("NSW-REST-RX02", REST, role="receiver")
async def retry_same_id(ctx: CaseContext) -> None:
    """After a transient failure (HTTP 503) the party retries with the same message id and the same content.

    Prerequisite: the party delivers a message to the kit within the wait.
    Predicate: the kit answers the first attempt 503; the party delivers again within the wait with the same
    X-Message-Id and a byte-identical body.
    """
    s: RestSession = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, _is_new(s.seen), what="a delivery")
    assert m is not None
    mid = m.headers.get("X-Message-Id", "")
    s.seen.add(mid)
    m.respond(ctx, 503, b"transient failure (conformance kit)", {"Retry-After": "0"}, note="transient failure")
    again = await s.listener.next(
        ctx,
        s.options.wait,
        lambda x: x.headers.get("X-Message-Id", "") == mid,
        what=f"a retry of {mid}",
        required=False,
    )
    if again is None:
        ctx.fail(f"no retry with message id {mid!r} within {s.options.wait:g} s")
    _receipt(ctx, again)
    ctx.check(again.body == m.body, "the retry's content differs from the first attempt's")


@case("NSW-REST-RX03", REST, role="receiver")
async def wrong_receipt_not_accepted(ctx: CaseContext) -> None:
    """A receipt acknowledging another message is not taken as an acknowledgement.

    Prerequisite: the party delivers a message to the kit within the wait.
    Predicate: the kit answers with a receipt naming another message id; the party delivers the same message
    again (same X-Message-Id) within the wait instead of considering it delivered.
    """
    s: RestSession = ctx.session
    assert s.listener is not None
    m = await s.listener.next(ctx, s.options.wait, _is_new(s.seen), what="a delivery")
    assert m is not None
    mid = m.headers.get("X-Message-Id", "")
    s.seen.add(mid)
    _receipt(ctx, m, f"not-{mid}", note="receipt naming another message")
    again = await s.listener.next(
        ctx,
        s.options.wait,
        lambda x: x.headers.get("X-Message-Id", "") == mid,
        what=f"a resend of {mid}",
        required=False,
    )
    if again is None:
        ctx.fail(f"the party took a receipt for another message as the acknowledgement of {mid!r}")
    _receipt(ctx, again)
