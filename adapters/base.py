"""The one adapter contract, and the registry that finds adapters by name.

An adapter moves bytes between the gateway and one kind of partner endpoint.
It has two methods, :meth:`Adapter.deliver` (send one message, return the
receiver's receipt) and :meth:`Adapter.receive` (pull inbound messages, for
transports that are polled), and three class attributes:

* ``scheme``: the name it is registered under (``http``);
* ``recoverable``: the exception types worth a retry (a timeout, a 503);
  everything else (a 4xx, a SOAP fault, a validation error) is final;
* ``capabilities``: what it can do (``deliver``, ``receive``, ``receipt``...).

Adapters translate their driver's exceptions at this boundary
(``raise PartnerUnavailable(...) from exc``): nothing from aiohttp, zeep or
a file system leaves an adapter untranslated.

Built-in adapters are registered in :data:`BUILTIN_ADAPTERS` under an alias;
third-party ones through the entry-point group ``nsw.adapters``. An unknown
name is a :class:`~gateway.errors.ConfigError` that says "did you mean ...".
"""

from __future__ import annotations

import abc
import difflib
import importlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from gateway.errors import ConfigError, GatewayError, PartnerUnavailable, ReceiptInvalid
from gateway.ports import Receipt

__all__ = [
    "Adapter",
    "OutboundMessage",
    "InboundMessage",
    "Receipt",
    "BUILTIN_ADAPTERS",
    "ENTRY_POINT_GROUP",
    "adapter_names",
    "resolve_adapter",
]

ENTRY_POINT_GROUP = "nsw.adapters"

BUILTIN_ADAPTERS: Mapping[str, str] = {
    "http": "adapters.http:HttpAdapter",
    "https": "adapters.http:HttpAdapter",
    "as4": "adapters.as4.adapter:As4Adapter",
    "vnsw-soap": "adapters.vnsw_soap.outbound:VnswSoapAdapter",
    "webhook": "adapters.rest:WebhookAdapter",
    "mailbox": "adapters.rest:MailboxAdapter",
    "filedrop": "adapters.filedrop:FileDropAdapter",
}
"""Alias → ``module:Class`` of the adapters shipped with the gateway."""


@dataclass(frozen=True)
class OutboundMessage:
    """One delivery as an adapter sees it. ``message_id`` is the same on every attempt."""

    message_id: str
    payload: bytes
    sender: str
    document_type: str
    conversation: str
    reference: str | None = None
    content_type: str = "application/xml"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundMessage:
    """A message pulled by :meth:`Adapter.receive`."""

    payload: bytes
    message_id: str
    document_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Adapter(abc.ABC):
    """Base of every adapter. One instance per destination; it owns its connections."""

    scheme: ClassVar[str]
    recoverable: ClassVar[tuple[type[BaseException], ...]] = (PartnerUnavailable, ReceiptInvalid)
    capabilities: ClassVar[frozenset[str]] = frozenset({"deliver"})

    def __init__(self, url: str, *, timeout: float = 30.0, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.options: dict[str, Any] = dict(options or {})

    async def open(self) -> None:
        """Acquire connections (called once before the first delivery)."""

    async def close(self) -> None:
        """Release every connection."""

    async def __aenter__(self) -> Adapter:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def deliver(self, message: OutboundMessage) -> Receipt:
        """Send one message; return the receiver's receipt.

        Raise an exception in :attr:`recoverable` for a transient failure and
        :class:`~gateway.errors.PartnerRejected` for a final refusal.
        """

    def receive(self) -> AsyncIterator[InboundMessage]:
        """Pull inbound messages (only adapters with the ``receive`` capability)."""
        raise GatewayError(f"the {self.scheme} adapter cannot receive; partners push to the API", field="adapter")


def _registry(builtins: Mapping[str, str] = BUILTIN_ADAPTERS, group: str = ENTRY_POINT_GROUP) -> dict[str, str]:
    names = dict(builtins)
    for ep in entry_points(group=group):
        names.setdefault(ep.name, ep.value)
    return names


def _resolve(name: str, registry: Mapping[str, str], base: type, what: str, field: str) -> Any:
    """Load the class registered as ``name``; CONFIG_INVALID naming ``field`` (with "did you mean") otherwise."""
    target = registry.get(name)
    if target is None:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known {what}s: {', '.join(sorted(registry))}"
        raise ConfigError(f"unknown {what} {name!r}{hint}", field=field)
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {name!r} ({target}) cannot be loaded: {exc}", field=field) from exc
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{what} {name!r} ({target}) is not an {base.__name__}", field=field)
    return cls


def adapter_names() -> list[str]:
    """Every adapter name that :func:`resolve_adapter` accepts."""
    return sorted(_registry())


def resolve_adapter(name: str, *, field: str = "adapter") -> type[Adapter]:
    """The adapter class registered as ``name``; :class:`ConfigError` naming ``field`` otherwise."""
    return _resolve(name, _registry(), Adapter, "adapter", field)


# --------------------------------------------------------------------------- inbound (issue 5)
#
# The inbound contract is as small as the outbound one. An inbound endpoint is
# how one kind of party gets messages *into* the gateway: routes mounted on the
# gateway's aiohttp app (a SOAP endpoint, a polling API) and/or a background
# task (a watched directory). It receives an :class:`Intake` and calls
# ``intake.submit(party, envelope, raw)`` (``Broker.submit``), nothing else of
# the core. Built-ins are registered by alias in :data:`BUILTIN_INBOUND`;
# third-party ones through the entry-point group ``nsw.inbound``; configured as
# ``[inbound.NAME] endpoint = "<alias>"`` with ``options``.


@dataclass(frozen=True)
class Intake:
    """What the gateway hands an inbound endpoint."""

    submit: Any
    """``async submit(party, envelope, raw) -> Submission``: :meth:`gateway.broker.Broker.submit`."""
    party_of: Any
    """``party_of(request) -> str``: the party the API authenticated for an aiohttp request."""
    store: Any = None
    """The gateway's :class:`~gateway.store.base.Store` (read-only use: status, correlation)."""
    config: Any = None
    """The gateway's :class:`~gateway.config.Config`."""


class InboundEndpoint(abc.ABC):
    """Base of every inbound endpoint: :meth:`routes` to mount and/or :meth:`start`/:meth:`stop` a task."""

    scheme: ClassVar[str]

    def __init__(self, name: str, *, options: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.options: dict[str, Any] = dict(options or {})

    def routes(self, intake: Intake) -> list[Any]:
        """aiohttp route definitions (``web.get(...)``, ``web.post(...)``) behind the API's authentication."""
        return []

    def public_paths(self) -> list[str]:
        """Paths of :meth:`routes` that authenticate their callers themselves (an AS4 partner by its
        WS-Security signature): the API's bearer-token check skips them. Default: none."""
        return []

    async def start(self, intake: Intake) -> None:
        """Start background work (called once the store is open)."""

    async def stop(self) -> None:
        """Stop background work; nothing in flight may be lost."""


INBOUND_ENTRY_POINT_GROUP = "nsw.inbound"

BUILTIN_INBOUND: Mapping[str, str] = {
    "vnsw-soap": "adapters.vnsw_soap.inbound:VnswSoapEndpoint",
    "filedrop": "adapters.filedrop:FileDropInbox",
    "poll": "adapters.rest:ResultsEndpoint",
    "as4": "adapters.as4.inbound:As4Endpoint",
}
"""Alias → ``module:Class`` of the inbound endpoints shipped with the gateway."""


def resolve_inbound(name: str, *, field: str = "endpoint") -> type[InboundEndpoint]:
    """The inbound endpoint class registered as ``name``; :class:`ConfigError` naming ``field`` otherwise."""
    return _resolve(
        name, _registry(BUILTIN_INBOUND, INBOUND_ENTRY_POINT_GROUP), InboundEndpoint, "inbound endpoint", field
    )


__all__ += ["Intake", "InboundEndpoint", "BUILTIN_INBOUND", "INBOUND_ENTRY_POINT_GROUP", "resolve_inbound"]


def build_inbound(config: Any) -> list[InboundEndpoint]:
    """The endpoints configured in ``[inbound.NAME]`` sections, in order."""
    return [
        resolve_inbound(s.endpoint, field=f"inbound.{name}.endpoint")(name, options=s.options)
        for name, s in (getattr(config, "inbound", None) or {}).items()
    ]


__all__ += ["build_inbound"]
