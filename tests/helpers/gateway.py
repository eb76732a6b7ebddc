"""Test rig for the gateway: real loopback receivers, configurations, submissions."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.config import Config, parse_config

TOKENS = {"MOIT": "moit-token", "MARD": "mard-token", "TRADER": "trader-token", "BROKER": "broker-token"}

RIG_DOCUMENT_TYPES = ("eco.form_d", "eco.amendment", "sps.permit", "sps.registration")
"""The document types of :func:`make_config`'s parties, declared ``unchecked``: the rig moves opaque documents."""
VNSW_IDENTITIES = {
    "MARD": {"identity": "BNNPTNT", "ministryCode": "BNNPTNT", "organizationCode": "06"},
    "MOIT": {"identity": "BCT", "ministryCode": "BCT", "organizationCode": "06"},
}
"""The VNSW ``From`` identities of the test parties (``[parties.NAME.identities] vnsw = {...}``)."""


MAX_BODY = 64 * 1024 * 1024
"""The largest request a :class:`Receiver` takes (above any gateway's ``max_message_bytes``)."""


class Receiver:
    """A partner endpoint on 127.0.0.1: records every request and answers with a JSON receipt.

    ``dedup``: remember message ids and acknowledge a repeat as a duplicate without "processing" it.
    ``mode``: ``ok`` | ``down`` (503) | ``reject`` (400) | ``bad-receipt`` (acknowledges another id).
    ``fail_first``: answer 503 to the first N requests, then behave per ``mode``.
    ``delay``: seconds to wait after processing a request before answering it (a slow or hanging partner;
    the request has reached it even if the gateway gives up waiting); lowering it also ends the waits begun.
    """

    def __init__(
        self,
        *,
        dedup: bool = True,
        mode: str = "ok",
        fail_first: int = 0,
        receipt_signer: Any = None,
        verify_with: Any = None,
        delay: float = 0.0,
    ) -> None:
        self.delay = delay
        self.receipt_signer = receipt_signer
        """A ``signing.keys.Signer``: answer with a signed ``<Receipt>`` (``gateway.ports.receipt_document``)."""
        self.verify_with = verify_with
        """``(TrustStore, VerifyPolicy)``: verify the gateway's signature on every delivery (codes in ``verified``)."""
        self.verified: list[str] = []
        self.dedup = dedup
        self.mode = mode
        self.fail_first = fail_first
        self.requests: list[dict[str, Any]] = []
        self.processed: list[str] = []
        self._seen: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbox"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        mid = request.headers.get("X-Message-Id", "")
        self.requests.append({"id": mid, "headers": dict(request.headers), "body": body})
        self.changed.set()
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="try later")
        if self.mode == "down":
            return web.Response(status=503, text="down")
        if self.mode == "reject":
            return web.json_response({"error": "schema"}, status=400)
        if self.mode == "bad-receipt":
            return web.json_response({"message_id": "someone-else"})
        if self.verify_with is not None:
            from gateway.errors import NswError
            from signing.verify import verify_document

            try:
                result = verify_document(body, trust=self.verify_with[0], policy=self.verify_with[1])
                self.verified.append(result.certificate.subject.rfc4514_string())
            except NswError as exc:
                self.verified.append(exc.code)
        duplicate = mid in self._seen
        if not (self.dedup and duplicate):
            self.processed.append(mid)
        self._seen.add(mid)
        arrived = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() < arrived + self.delay:  # lowering ``delay`` cuts the wait short
            await asyncio.sleep(0.02)
        if self.receipt_signer is not None:
            from gateway.ports import receipt_document
            from signing.sign import sign_document

            receipt_for = "someone-else" if self.mode == "bad-receipt-signed" else mid
            payload = b"other" if self.mode == "wrong-digest" else body
            signed = sign_document(receipt_document(receipt_for, payload, duplicate=duplicate), self.receipt_signer)
            return web.Response(body=signed, content_type="application/xml", headers={"X-Receipt-For": mid})
        return web.json_response({"message_id": mid, "duplicate": duplicate})

    async def start(self) -> Receiver:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/inbox", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def counts(self) -> Counter[str]:
        return Counter(self.processed)


def dev_trust(pki: Any, *names: str, **extra: Any) -> dict[str, Any]:
    """A ``[parties.X.trust]`` table: the dev PKI's root (and issuing CA), signers the dev PKI certificates issued
    under ``names`` (subject CN and the dev PKI's organization)."""
    from signing.dev.pki import DEFAULT_ORGANIZATION

    return {
        "anchors": [str(pki.root_cert_path)],
        "intermediates": [str(pki.issuing_cert_path)],
        "signers": [{"subject": {"CN": name, "O": DEFAULT_ORGANIZATION}} for name in names],
        **extra,
    }


def make_config(
    tmp_path: Path,
    destinations: dict[str, str],
    *,
    routes: list[dict[str, Any]] | None = None,
    retry: dict[str, Any] | None = None,
    breaker: dict[str, Any] | None = None,
    concurrency: int = 4,
    gateway: dict[str, Any] | None = None,
    per_destination: dict[str, dict[str, Any]] | None = None,
    parties: dict[str, dict[str, Any]] | None = None,
    document_types: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Config:
    """A gateway configuration for ``destinations`` (name → URL). Its documents are not signed, so it states the
    weak modes it relies on (``verification = "well-formed"``, ``signing = "off"``, a public ``/metrics``) unless
    ``gateway`` sets them. They are opaque too (:func:`doc`), so its document types are declared ``unchecked``;
    ``document_types`` adds or replaces declarations (with content rules)."""
    retry = {"max_attempts": 50, "ttl": 60.0, "initial": 0.01, "max_wait": 0.05, "jitter": 0.01, **(retry or {})}
    data: dict[str, Any] = {
        "gateway": {
            "port": 0,
            "poll_interval": 0.05,
            "verification": "well-formed",
            "signing": "off",
            "metrics": {"public": True},
            **(gateway or {}),
        },
        "store": {"url": f"sqlite:///{tmp_path / 'gw.db'}", "synchronous": "NORMAL"},
        "parties": {
            "MOIT": {
                "tokens": [TOKENS["MOIT"]],
                "document_types": ["eco.form_d", "eco.amendment"],
                "identities": {"vnsw": VNSW_IDENTITIES["MOIT"]},
            },
            "MARD": {
                "tokens": [TOKENS["MARD"]],
                "document_types": ["sps.permit"],
                "identities": {"vnsw": VNSW_IDENTITIES["MARD"]},
            },
            "TRADER": {"tokens": [TOKENS["TRADER"]], "document_types": ["sps.registration"]},
        },
        "destinations": {
            name: {
                "url": url,
                "concurrency": concurrency,
                "timeout": 5.0,
                "retry": retry,
                "breaker": {"failure_threshold": 1000, "reset_timeout": 0.05, **(breaker or {})},
                **((per_destination or {}).get(name, {})),
            }
            for name, url in destinations.items()
        },
        "routes": routes if routes is not None else [{"document_type": "*", "to": list(destinations)}],
        "document_types": {
            **{name: {"unchecked": True} for name in RIG_DOCUMENT_TYPES},
            **(document_types or {}),
        },
    }
    for name, settings in (parties or {}).items():
        data["parties"][name] = {**data["parties"].get(name, {}), **settings}
    data.update(extra or {})
    return parse_config(data)


def doc(n: int | str, size: int = 0) -> bytes:
    pad = "x" * size
    return f"<Doc><No>{n}</No><Pad>{pad}</Pad></Doc>".encode()


async def submit(
    session: aiohttp.ClientSession,
    url: str,
    party: str,
    message_id: str,
    document_type: str,
    body: bytes,
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    h = {
        "Authorization": f"Bearer {TOKENS[party]}",
        "X-Message-Id": message_id,
        "X-Document-Type": document_type,
        "Content-Type": "application/xml",
    }
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    async with session.post(f"{url}/v1/messages", data=body, headers=h) as r:
        return r.status, json.loads(await r.read())


async def eventually(
    predicate: Callable[[], Awaitable[bool] | bool], *, limit: float = 30.0, step: float = 0.02
) -> None:
    """Wait (bounded) for a condition the system must reach; fail if it never does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        if result:
            return
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(step)


def cli_toml(tmp_path: Path, store_url: str, journal: str = "") -> Path:
    """``gw.toml`` in ``tmp_path`` for the ``nswgw`` commands (which read a file): the store at ``store_url``,
    MOIT sending anything to an unreachable ``TH``, and ``journal`` (the TOML of the ``[journal]`` tables)."""
    path = tmp_path / "gw.toml"
    path.write_text(
        f"""
[gateway]
verification = "well-formed"
signing = "off"
[store]
url = "{store_url}"
{journal}
[parties.MOIT]
tokens = ["t"]
document_types = ["*"]
[destinations.TH]
url = "http://127.0.0.1:9/inbox"
[[routes]]
to = ["TH"]
[document_types."eco.form_d"]
unchecked = true
"""
    )
    return path
