"""``nswgw partner``: simulated receiving partners for a gateway configuration (development only).

For every destination of the configuration (or the ones named with ``--destination``) whose adapter
is ``http`` or ``https`` and whose URL is a plain ``http://`` URL on a loopback host, it listens on
that URL's port and path on 127.0.0.1 and accepts each delivery with the receipt the gateway expects:

* ``receipt = "signed"``: the ``<Receipt>`` of :func:`gateway.ports.receipt_document` (message id,
  SHA-256 of the delivered bytes, duplicate flag), signed with the key of the development PKI
  (``nswgw keys init``) whose certificate the destination's ``[destinations.NAME.trust]`` pins;
* otherwise the plain receipt of the ``http`` adapter: ``{"message_id": ..., "duplicate": ...}``.

Destinations it cannot serve (another adapter, an ``https://`` URL, a host that is not loopback) are
listed as skipped; when none is left the command fails with ``CONFIG_INVALID``. It prints one line per
delivery and runs until Ctrl-C or SIGTERM. It never verifies the gateway's own signature: it stands in
for a partner only far enough for deliveries to be acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from aiohttp import web

from gateway.config import Config, DestinationSettings, load_config
from gateway.errors import ConfigError
from gateway.ports import did_you_mean, receipt_document

__all__ = ["Endpoint", "Skipped", "Partner", "plan", "register"]

SERVED_ADAPTERS = frozenset({"http", "https"})
"""Adapters whose deliveries the simulated partner can accept (one POST per delivery)."""
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Endpoint:
    """One destination the partner answers for."""

    destination: str
    port: int
    path: str
    signer: Any = None
    """A ``signing.keys.Signer`` for signed receipts; None: the plain JSON receipt."""

    @property
    def receipt(self) -> str:
        return "signed" if self.signer is not None else "message-id"


@dataclass(frozen=True)
class Skipped:
    destination: str
    reason: str


def _find_pki(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / "manifest.json").is_file():
            return directory
    return None


def _receipt_signer(name: str, dest: DestinationSettings, pki_dir: Path | None) -> Any:
    """The dev-PKI key whose certificate the destination's receipt trust pins."""
    from signing.dev.pki import DevPki
    from signing.keys import SoftwareSigner, load_certificate

    field_ = f"destinations.{name}.trust.pinned"
    pinned = [p.certificate for p in (dest.trust.pinned if dest.trust else ())]
    if not pinned:
        raise ConfigError(
            f"destination {name} requires signed receipts but pins no certificate: the partner cannot tell "
            "which key of the development PKI signs them",
            field=field_,
        )
    directory = pki_dir or _find_pki(Path(pinned[0]).resolve().parent)
    if directory is None:
        raise ConfigError(
            f"no development PKI (manifest.json) above {pinned[0]}; pass --pki DIR (made by 'nswgw keys init')",
            field="--pki",
        )
    pki = DevPki.open(directory)
    wanted = {load_certificate(p) for p in pinned}
    for party in pki.names:
        issued = pki.party(party)
        if issued.cert in wanted:
            return SoftwareSigner(issued.key, issued.cert, [pki.issuing_cert])
    raise ConfigError(
        f"the development PKI {directory} holds no key for the certificate(s) destination {name} pins "
        f"({', '.join(str(p) for p in pinned)})",
        field=field_,
    )


def plan(
    config: Config, names: Iterable[str] = (), *, pki_dir: str | Path | None = None
) -> tuple[list[Endpoint], list[Skipped]]:
    """Which destinations the partner serves (with their receipt keys) and which it skips, and why."""
    chosen = list(names) or list(config.destinations)
    for name in chosen:
        if name not in config.destinations:
            raise ConfigError(
                f"no destination {name!r} in the configuration{did_you_mean(name, config.destinations, 'destination')}",
                field="--destination",
            )
    pki = Path(pki_dir) if pki_dir is not None else None
    served: list[Endpoint] = []
    skipped: list[Skipped] = []
    taken: dict[tuple[int, str], str] = {}
    for name in chosen:
        dest = config.destinations[name]
        url = urlsplit(dest.url)
        if dest.adapter not in SERVED_ADAPTERS:
            skipped.append(Skipped(name, f"adapter {dest.adapter!r} (the partner speaks http/https only)"))
            continue
        if url.scheme != "http":
            skipped.append(Skipped(name, f"URL scheme {url.scheme!r} (TLS is not simulated: use an http:// URL)"))
            continue
        if url.hostname not in LOOPBACK or url.port is None:
            skipped.append(Skipped(name, f"{dest.url} is not a loopback URL with a port"))
            continue
        key = (url.port, url.path or "/")
        if key in taken:
            skipped.append(Skipped(name, f"{dest.url} is already served for {taken[key]}"))
            continue
        taken[key] = name
        signer = _receipt_signer(name, dest, pki) if dest.receipt == "signed" else None
        served.append(Endpoint(name, url.port, url.path or "/", signer))
    return served, skipped


@dataclass
class Delivery:
    destination: str
    message_id: str
    size: int
    duplicate: bool


@dataclass
class Partner:
    """The simulated partner: one aiohttp server per port, one route per endpoint path."""

    endpoints: Sequence[Endpoint]
    host: str = "127.0.0.1"
    on_delivery: Callable[[Delivery], None] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    _runners: list[web.AppRunner] = field(default_factory=list)

    def _handler(self, endpoint: Endpoint) -> Callable[[web.Request], Any]:
        seen = self._seen.setdefault(endpoint.destination, set())

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            mid = request.headers.get("X-Message-Id", "")
            duplicate = mid in seen
            seen.add(mid)
            delivery = Delivery(endpoint.destination, mid, len(body), duplicate)
            self.deliveries.append(delivery)
            if self.on_delivery is not None:
                self.on_delivery(delivery)
            if endpoint.signer is None:
                return web.json_response({"message_id": mid, "duplicate": duplicate})
            from signing.sign import sign_document

            receipt = await asyncio.to_thread(
                sign_document, receipt_document(mid, body, duplicate=duplicate), endpoint.signer
            )
            return web.Response(body=receipt, content_type="application/xml", headers={"X-Receipt-For": mid})

        return handle

    async def start(self) -> Partner:
        by_port: dict[int, list[Endpoint]] = {}
        for e in self.endpoints:
            by_port.setdefault(e.port, []).append(e)
        try:
            for port, endpoints in by_port.items():
                app = web.Application(client_max_size=32 * 1024 * 1024)
                for e in endpoints:
                    app.router.add_post(e.path, self._handler(e))
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                self._runners.append(runner)
                try:
                    await web.TCPSite(runner, self.host, port).start()
                except OSError as exc:
                    names = ", ".join(e.destination for e in endpoints)
                    raise ConfigError(
                        f"cannot listen on {self.host}:{port} for {names}: {exc.strerror or exc}",
                        field=f"destinations.{endpoints[0].destination}.url",
                    ) from exc
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()


def _print_delivery(out: TextIO) -> Callable[[Delivery], None]:
    def show(d: Delivery) -> None:
        again = " (duplicate)" if d.duplicate else ""
        print(f"{d.destination:<14} {d.message_id}  {d.size} bytes{again}", file=out, flush=True)

    return show


async def _run(endpoints: Sequence[Endpoint], out: TextIO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    partner = await Partner(endpoints, on_delivery=_print_delivery(out)).start()
    try:
        print("nswgw partner ready (Ctrl-C to stop)", file=out, flush=True)
        await stop.wait()
    finally:
        await partner.stop()
    print("nswgw partner stopped", file=out, flush=True)


def cmd_partner(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    served, skipped = plan(config, args.destination or (), pki_dir=args.pki)
    out = sys.stdout
    for e in served:
        by = f"signed by {e.signer.certificate.subject.rfc4514_string()}" if e.signer is not None else "message id"
        print(f"partner {e.destination:<14} http://127.0.0.1:{e.port}{e.path}  receipt: {by}", file=out)
    for s in skipped:
        print(f"skipped {s.destination:<14} {s.reason}", file=out)
    if args.json:
        print(
            json.dumps(
                {
                    "served": [
                        {"destination": e.destination, "port": e.port, "path": e.path, "receipt": e.receipt}
                        for e in served
                    ],
                    "skipped": [{"destination": s.destination, "reason": s.reason} for s in skipped],
                }
            ),
            file=out,
        )
    out.flush()
    if not served:
        raise ConfigError(
            "no destination the partner can serve (it needs adapter http/https and an http:// loopback URL)",
            field="--destination" if args.destination else "destinations",
        )
    asyncio.run(_run(served, out))
    return 0


def register(subparsers: Any) -> None:
    """Add ``nswgw partner``."""
    p = subparsers.add_parser(
        "partner", help="simulated receiving partners on the config's http destination URLs (development)"
    )
    p.add_argument("--config", default="nswgw.toml", help="configuration file (TOML)")
    p.add_argument("--destination", action="append", metavar="NAME", help="serve only this destination (repeatable)")
    p.add_argument(
        "--pki",
        metavar="DIR",
        help="development PKI with the receipt keys (default: found above the pinned certificates)",
    )
    p.add_argument("--json", action="store_true", help="also print the plan as JSON; errors as JSON")
    p.set_defaults(handler=cmd_partner)
