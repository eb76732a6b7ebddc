"""One harness per registered adapter alias, for the adapter behaviour suite (tests/adapters/test_adapters_behaviour.py).

A harness stands up the *real* partner side of its protocol on 127.0.0.1 (an aiohttp receiver, a spyne
SOAP ministry, a drop directory, an AS4 receiver), builds the adapter against it, and can switch the
partner between ``ok``, ``down`` (transient failure) and ``reject`` (final refusal). ``receive`` drives the
protocol's receiving side end to end. Every alias in ``gateway.ports.BUILTIN_ADAPTERS`` must have an
entry in :data:`HARNESSES`: the suite fails, not skips, when one is missing.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import ssl
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, ClassVar
from wsgiref.simple_server import WSGIRequestHandler, make_server

import aiohttp
import requests
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.ports import Adapter, OutboundMessage
from helpers.gateway import TOKENS, Receiver, eventually
from signing.keys import SoftwareSigner


def import_spyne() -> Any:
    """spyne 2.14 on Python 3.11: its vendored ``six`` meta-path importer lacks ``find_spec`` (an
    ImportWarning on every later failed import, an error under ``-W error``); give it the PEP 451 methods
    that six 1.16 has, then import spyne."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import spyne.util.six as six

        importer = type(six._importer)
        if not hasattr(importer, "find_spec"):

            def find_spec(self: Any, fullname: str, path: Any, target: Any = None) -> Any:
                return importlib.util.spec_from_loader(fullname, self) if fullname in self.known_modules else None

            importer.find_spec = find_spec
            importer.create_module = lambda self, spec: self.load_module(spec.name)
            importer.exec_module = lambda self, module: None
        import spyne
        from spyne.protocol.soap import Soap11  # noqa: F401
        from spyne.server.wsgi import WsgiApplication  # noqa: F401
    return spyne


# --------------------------------------------------------------------------- VNSW messages


def vnsw_envelope(
    message_id: str,
    *,
    reference: str = "BNNPTNT11190000272",
    sender: str = "BNNPTNT",
    recipient: str = "NSW",
    document_type: str = "BNNPTNT0600011",
    type_: str = "12",
    function: str = "05",
    content: str = "<QuarantineResult><NSWFileCode>BNNPTNT11190000272"
    "</NSWFileCode><Reason>Ho so hop le</Reason></QuarantineResult>",
) -> bytes:
    """A VNSW Envelope shaped like reconstructed/BNNPTNT0600011_t12_f05_*.xml (values fictitious)."""

    def party(name: str) -> str:
        return (
            f"<name>{name}</name><identity>{name}</identity><countryCode>VN</countryCode>"
            f"<ministryCode>{name}</ministryCode><organizationCode>06</organizationCode><unitCode>{name}</unitCode>"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8"?><Envelope><Header>'
        f"<Reference><version>01</version><messageId>{message_id}</messageId></Reference>"
        f"<From>{party(sender)}</From><To>{party(recipient)}</To>"
        f"<Subject><documentType>{document_type}</documentType><type>{type_}</type><function>{function}</function>"
        f"<reference>{reference}</reference><documentYear>2019</documentYear><preReference>{reference}</preReference>"
        "<preDocumentYear>2019</preDocumentYear><sendDate>2019-12-13 09:15:02</sendDate></Subject></Header>"
        f"<Body><Content>{content}</Content><Signature></Signature></Body></Envelope>"
    ).encode()


_MINISTRY_ANSWER = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope><Header><Reference><version>01</version><messageId>{mid}</messageId></Reference>
<From><name>BNNPTNT</name><identity>BNNPTNT</identity><countryCode>VN</countryCode><ministryCode>BNNPTNT</ministryCode><organizationCode>06</organizationCode><unitCode>BNNPTNT</unitCode></From>
<To><name>NSW</name><identity>NSW</identity><countryCode>VN</countryCode><ministryCode>BTC</ministryCode><organizationCode>TCHQ</organizationCode><unitCode>NSW</unitCode></To>
<Subject><documentType>{doc}</documentType><type>{type}</type><function>{function}</function><reference>{ref}</reference><documentYear>2019</documentYear><preReference>{ref}</preReference><preDocumentYear>2019</preDocumentYear><sendDate>2019-12-13 09:15:03</sendDate></Subject></Header>
<Body><Content>{content}</Content><Signature></Signature></Body><SystemSignature></SystemSignature></Envelope>"""


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class SpyneMinistry:
    """A ministry's VNSW gateway written with spyne (another SOAP stack), on 127.0.0.1 in a thread.

    ``receiveRequest(officeCode, documentType, requestPayload)`` answers function 99 (dedup by the
    Envelope's ``messageId``), or per ``mode``: ``down`` (HTTP 503), ``reject`` (function 00, ERR02_CODE),
    ``fault`` (a SOAP fault), ``garbage`` (a responsePayload that is not XML).
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        """Serve HTTPS with this server context."""
        self.mode = "ok"
        self.calls: list[dict[str, str]] = []
        self.processed: list[str] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _answer(self, payload: str, function: str, content: str) -> str:
        from lxml import etree  # the ministry's own parsing, independent of the gateway's

        root = etree.fromstring(payload.encode("utf-8"))
        subject = root.find("Header/Subject")
        get = (lambda n: subject.findtext(n) or "00") if subject is not None else (lambda n: "00")
        return _MINISTRY_ANSWER.format(
            mid=uuid.uuid4(),
            doc=get("documentType"),
            type=get("type"),
            function=function,
            ref=get("reference"),
            content=content,
        )

    def start(self) -> SpyneMinistry:
        import_spyne()
        from spyne import Application, Fault, ServiceBase, Unicode, rpc
        from spyne.protocol.soap import Soap11
        from spyne.server.wsgi import WsgiApplication

        ministry = self

        class MinistryGateway(ServiceBase):
            @rpc(
                Unicode,
                Unicode,
                Unicode,
                _returns=Unicode,
                _out_message_name="receiveResponse",
                _out_variable_name="responsePayload",
            )
            def receiveRequest(ctx, officeCode, documentType, requestPayload):  # noqa: N802,N803
                ministry.calls.append(
                    {"officeCode": officeCode, "documentType": documentType, "requestPayload": requestPayload}
                )
                if ministry.mode == "fault":
                    raise Fault(faultcode="Client.Schema", faultstring="requestPayload does not validate")
                if ministry.mode == "garbage":
                    return "this is not an envelope"
                if ministry.mode == "reject":
                    return ministry._answer(
                        requestPayload,
                        "00",
                        "<ErrorList><Error><ErrorCode>ERR02_CODE</ErrorCode>"
                        "<ErrorName>Phân tích xml bị lỗi</ErrorName></Error></ErrorList>",
                    )
                from lxml import etree

                mid = etree.fromstring(requestPayload.encode("utf-8")).findtext("Header/Reference/messageId")
                if mid not in ministry.processed:
                    ministry.processed.append(mid)
                return ministry._answer(requestPayload, "99", "<ReceiveDate>2019-12-13 09:15:03</ReceiveDate>")

        app = Application(
            [MinistryGateway],
            tns="http://com/vnsw/send/gateway/generated",
            in_protocol=Soap11(validator="lxml"),
            out_protocol=Soap11(),
        )
        wsgi = WsgiApplication(app)

        def guarded(environ: dict[str, Any], start_response: Any) -> Any:
            if self.mode == "down" and environ.get("REQUEST_METHOD") == "POST":
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"maintenance"]
            return wsgi(environ, start_response)

        self._server = make_server("127.0.0.1", 0, guarded, handler_class=_QuietHandler)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None


# --------------------------------------------------------------------------- keys


def webhook_signer() -> SoftwareSigner:
    """The gateway's webhook key (P-256, self-signed: the receiver pins the certificate)."""
    import datetime as dt

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nsw-gateway webhook")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return SoftwareSigner(key, cert)


# --------------------------------------------------------------------------- harnesses


class Harness:
    """The partner side of one adapter alias."""

    alias: ClassVar[str]
    document_type: ClassVar[str] = "eco.form_d"
    party: ClassVar[str] = "MOIT"

    def __init__(self, tmp_path: Path, fixtures: dict[str, Any]) -> None:
        self.tmp_path = tmp_path
        self.fixtures = fixtures

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def adapter(self) -> Adapter:
        raise NotImplementedError

    def payload(self, message_id: str) -> bytes:
        return f"<CertificateOfOrigin><ReferenceNo>{message_id}</ReferenceNo></CertificateOfOrigin>".encode()

    def set_mode(self, mode: str) -> None:
        raise NotImplementedError

    def processed(self) -> list[str]:
        """What the partner processed, one key per distinct message."""
        raise NotImplementedError

    def inbound(self) -> list[Any]:
        """Inbound endpoints to add to the gateway for :meth:`receive`."""
        return []

    async def receive(self, gw: Any, message_id: str) -> str:
        """Push a message into ``gw`` over this protocol's receiving side; the gateway id it got."""
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"{gw.url}/v1/messages",
                data=self.payload(message_id),
                headers={
                    "Authorization": f"Bearer {TOKENS[self.party]}",
                    "X-Message-Id": message_id,
                    "X-Document-Type": self.document_type,
                    "Content-Type": "application/xml",
                },
            ) as r,
        ):
            assert r.status in (200, 202), await r.text()
            return str((await r.json())["id"])


class HttpHarness(Harness):
    alias = "http"

    async def start(self) -> None:
        self.receiver = await Receiver().start()

    async def stop(self) -> None:
        await self.receiver.stop()

    def adapter(self) -> Adapter:
        from adapters.http import HttpAdapter

        return HttpAdapter(self.receiver.url, timeout=5)

    def set_mode(self, mode: str) -> None:
        self.receiver.mode = mode

    def processed(self) -> list[str]:
        return list(self.receiver.processed)


class HttpsHarness(HttpHarness):
    """``https`` is an alias of the same HttpAdapter class; exercised on a loopback http receiver."""

    alias = "https"


class WebhookHarness(HttpHarness):
    """A webhook receiver that verifies the detached JWS before it accepts a result."""

    alias = "webhook"

    async def start(self) -> None:
        from adapters.rest import SIGNATURE_HEADER, verify_webhook

        self.signer = webhook_signer()
        self.receiver = await Receiver().start()
        self.verified: list[dict[str, Any]] = []
        original = self.receiver._handle

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            header = verify_webhook(body, request.headers[SIGNATURE_HEADER], self.signer.certificate)
            self.verified.append({"jws": header, "body": json.loads(body)})
            return await original(request)

        self.receiver._handle = handle  # type: ignore[method-assign]

    def adapter(self) -> Adapter:
        from adapters.rest import WebhookAdapter

        return WebhookAdapter(self.receiver.url, timeout=5, options={"signer": self.signer})


class MailboxHarness(Harness):
    """Results stored for polling; the party polls ``GET /v1/results`` and acknowledges each."""

    alias = "mailbox"

    async def start(self) -> None:
        self.box = self.tmp_path / "mailbox-MARD"
        self.mode = "ok"

    def adapter(self) -> Adapter:
        from adapters.rest import MailboxAdapter

        url = self.box.as_uri() if self.mode != "reject" else "ftp://nowhere/box"
        if self.mode == "down":  # the mailbox directory cannot be written (its parent is a file)
            blocker = self.tmp_path / "not-a-dir"
            blocker.write_bytes(b"")
            url = (blocker / "box").as_uri()
        return MailboxAdapter(url)

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def processed(self) -> list[str]:
        pending = self.box / "pending"
        return sorted(p.stem for p in pending.glob("*.json")) if pending.is_dir() else []

    def mailbox_destination(self) -> dict[str, Any]:
        return {"adapter": "mailbox", "url": self.box.as_uri(), "options": {"party": "MARD"}}

    def inbound(self) -> list[Any]:
        from adapters.rest import ResultsEndpoint

        return [ResultsEndpoint("results")]

    async def receive(self, gw: Any, message_id: str) -> str:
        """A result for MARD reaches its mailbox through the gateway; MARD polls it, acknowledges it."""
        gid = await Harness.receive(self, gw, message_id)
        auth = {"Authorization": f"Bearer {TOKENS['MARD']}"}
        async with aiohttp.ClientSession() as s:

            async def listed() -> list[dict[str, Any]]:
                async with s.get(f"{gw.url}/v1/results", headers=auth) as r:
                    assert r.status == 200
                    return list((await r.json())["results"])

            async def arrived() -> bool:
                return any(x["id"] == gid for x in await listed())

            await eventually(arrived)
            again = await listed()  # not acknowledged yet: listed again
            assert [x for x in again if x["id"] == gid][0]["payload"] == base64.b64encode(
                self.payload(message_id)
            ).decode()
            async with s.post(f"{gw.url}/v1/results/{gid}/ack", headers=auth) as r:
                assert r.status == 200 and (await r.json())["acknowledged"] is True
            assert all(x["id"] != gid for x in await listed())
        return gid


class FileDropHarness(Harness):
    alias = "filedrop"

    async def start(self) -> None:
        self.root = self.tmp_path / "drop-MARD"
        self.mode = "ok"

    def adapter(self) -> Adapter:
        from adapters.filedrop import FileDropAdapter

        if self.mode == "down":  # the outbox cannot be written: its directory is missing
            return FileDropAdapter((self.tmp_path / "unmounted-share").as_uri())
        if self.mode == "reject":
            return FileDropAdapter("ftp://legacy.example/drop")
        (self.root / "outbox").mkdir(parents=True, exist_ok=True)
        return FileDropAdapter(self.root.as_uri())

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def processed(self) -> list[str]:
        out = self.root / "outbox"
        return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []

    def inbound(self) -> list[Any]:
        from adapters.filedrop import FileDropInbox

        return [
            FileDropInbox(
                "mard-drop",
                options={"path": str(self.root), "party": "MOIT", "document_type": "eco.form_d", "interval": 0.05},
            )
        ]

    async def receive(self, gw: Any, message_id: str) -> str:
        from adapters.filedrop import atomic_write, message_id_of
        from gateway.model import gateway_message_id

        data = self.payload(message_id)
        inbox = self.root / "inbox"
        await eventually(inbox.is_dir)
        atomic_write(inbox, f"{message_id}.xml", data)
        await eventually(lambda: (self.root / "processed" / f"{message_id}.xml").exists())
        return gateway_message_id("MOIT", message_id_of(data)[0])


class VnswSoapHarness(Harness):
    alias = "vnsw-soap"
    document_type = "sps.permit"
    party = "MARD"

    async def start(self) -> None:
        self.ministry = await asyncio.to_thread(SpyneMinistry().start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.ministry.stop)

    def adapter(self) -> Adapter:
        from adapters.vnsw_soap import VnswSoapAdapter

        return VnswSoapAdapter(self.ministry.url, timeout=5, options={"office_code": "BNN"})

    def payload(self, message_id: str) -> bytes:
        """MARD's own envelope (``From`` BNNPTNT: the gateway refuses MARD's token claiming another ``From``)."""
        return vnsw_envelope(
            message_id,
            type_="10",
            function="01",
            content="<Registration><NSWFileCode>BNNPTNT11190000272</NSWFileCode></Registration>",
        )

    def set_mode(self, mode: str) -> None:
        self.ministry.mode = {"reject": "fault"}.get(mode, mode)

    def processed(self) -> list[str]:
        return list(self.ministry.processed)

    def inbound(self) -> list[Any]:
        from adapters.vnsw_soap import VnswSoapEndpoint

        return [VnswSoapEndpoint("vnsw", options={"document_types": {"BNNPTNT0600011": "sps.permit"}})]

    async def receive(self, gw: Any, message_id: str) -> str:
        """MARD calls our SOAP endpoint with zeep and gets the function-99 acknowledgement."""
        from gateway.model import gateway_message_id
        from signing.xml import parse_xml

        answer = await asyncio.to_thread(
            call_vnsw_endpoint, f"{gw.url}/vnsw/soap", TOKENS["MARD"], vnsw_envelope(message_id).decode()
        )
        assert parse_xml(answer.encode()).findtext("Header/Subject/function") == "99", answer
        return gateway_message_id("MARD", message_id)


def call_vnsw_endpoint(url: str, token: str, payload: str) -> str:
    """zeep as the ministry's client of our inbound endpoint: WSDL from ``?wsdl``, then receiveRequest."""
    import zeep
    from zeep.transports import Transport

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    try:
        client = zeep.Client(
            f"{url}?wsdl",
            transport=Transport(session=session, timeout=10),
            settings=zeep.Settings(
                strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True, force_https=False
            ),
        )
        return str(client.service.receiveRequest(requestPayload=payload))
    finally:
        session.close()


def soap_driver_errors() -> set[type[BaseException]]:
    """Every exception class a zeep call on a ``requests`` session may raise: zeep's and requests' (each with all
    its subclasses as loaded now), a reset connection and a timeout."""
    import zeep.exceptions as zx

    def below(cls: type[BaseException]) -> set[type[BaseException]]:
        out: set[type[BaseException]] = {cls}
        for sub in cls.__subclasses__():
            out |= below(sub)
        return out

    return below(zx.Error) | below(requests.exceptions.RequestException) | {ConnectionResetError, TimeoutError}


class As4Harness(Harness):
    """The AS4 engineer's receiver (adapters.as4) as the partner state, on loopback."""

    alias = "as4"

    async def start(self) -> None:
        from helpers.as4 import GATEWAY, PARTNER, receiver_for, side

        pki = self.fixtures["dev_pki"]
        self.us = side(pki, "nsw-gateway", GATEWAY)
        self.them = side(pki, "th-asw", PARTNER)
        self.receiver = receiver_for(self.them, self.us)
        self.mode = "ok"
        self.seen: list[str] = []
        inner = self.receiver.sink

        async def sink(message: Any) -> None:
            if self.mode == "reject":
                from gateway.errors import ValidationFailed, ValidationIssue

                raise ValidationFailed([ValidationIssue("/CertificateOfOrigin", "FORM_D_INVALID", "refused")])
            self.seen.append(message.user_message.message_id if hasattr(message, "user_message") else str(message))
            await inner(message)

        self.receiver.sink = sink
        app = self.receiver.app()

        @web.middleware
        async def down(request: web.Request, handler: Any) -> web.StreamResponse:
            if self.mode == "down":
                return web.Response(status=503, text="maintenance")
            return await handler(request)

        app.middlewares.append(down)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/as4"

    async def stop(self) -> None:
        await self.runner.cleanup()

    def adapter(self) -> Adapter:
        from adapters.as4 import As4Adapter
        from helpers.as4 import pmode

        async def no_sleep(seconds: float) -> None:
            return None

        return As4Adapter(
            self.url,
            timeout=5,
            options={
                "pmode": pmode(self.us.party_id, self.them.party_id, attempts=1),
                "signer": self.us.signer,
                "trust": self.them.trust,
                "encryption_certificate": self.them.certificate,
                "sleep": no_sleep,
            },
        )

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def processed(self) -> list[str]:
        return list(self.seen)

    def inbound(self) -> list[Any]:
        """The gateway's ``as4`` inbound endpoint, receiving from TH-ASW as the party MOIT."""
        from adapters.as4.inbound import As4Endpoint
        from helpers.as4 import pmode

        return [
            As4Endpoint(
                "asean",
                options={
                    "party_id": self.us.party_id,
                    "signer": self.us.signer,
                    "partners": {
                        self.them.party_id: {
                            "party": self.party,
                            "pmode": pmode(self.us.party_id, self.them.party_id),
                            "trust": self.them.trust,
                            "document_types": {"eco.form_d": self.document_type},
                        }
                    },
                },
            )
        ]

    async def receive(self, gw: Any, message_id: str) -> str:
        """TH-ASW pushes a signed, encrypted user message to the gateway's /as4 and gets its signed receipt."""
        from adapters.as4 import As4Adapter
        from gateway.model import gateway_message_id
        from helpers.as4 import pmode

        agreement = pmode(self.them.party_id, self.us.party_id, attempts=1)
        async with As4Adapter(
            f"{gw.url}/as4",
            timeout=5,
            options={
                "pmode": agreement,
                "signer": self.them.signer,
                "trust": self.us.trust,
                "encryption_certificate": self.us.certificate,
            },
        ) as sender:
            receipt = await sender.deliver(
                OutboundMessage(
                    message_id=message_id,
                    payload=self.payload(message_id),
                    sender=self.them.party_id,
                    document_type=self.document_type,
                    conversation=message_id,
                )
            )
        assert receipt.message_id == message_id and not receipt.duplicate
        return gateway_message_id(self.party, f"{message_id}@{agreement.message_id_domain}")


CORE_HARNESSES: tuple[type[Harness], ...] = (
    HttpHarness,
    HttpsHarness,
    WebhookHarness,
    MailboxHarness,
    FileDropHarness,
    VnswSoapHarness,
    As4Harness,
)
"""The harnesses of this module; :data:`helpers.harnesses.HARNESSES` adds those of other helper modules."""
