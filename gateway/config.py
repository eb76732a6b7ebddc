"""The gateway's one typed configuration file (TOML), validated at start.

Errors are :class:`~gateway.errors.ConfigError` whose ``field`` is the
dotted path of the bad key (``destinations.TH.retry.max_attempts``,
``routes[2].to[0]``). An example with every section:
``gateway/examples/gateway.toml``.

Sections:

* ``[gateway]``: listen address, verification/signing switches;
* ``[store]``: connection string and durability;
* ``[parties.NAME]``: who may submit, with which API tokens and document types;
* ``[destinations.NAME]``: where messages go: adapter, URL, format, concurrency
  (bulkhead), retry policy and circuit breaker;
* ``[[routes]]``: which messages go where (first match wins; a route with
  several destinations fans out).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.errors import ConfigError

__all__ = [
    "GatewaySettings",
    "StoreSettings",
    "PartySettings",
    "RetryPolicy",
    "BreakerSettings",
    "DestinationSettings",
    "RouteSettings",
    "Config",
    "load_config",
    "parse_config",
    "token_digest",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class GatewaySettings(_Frozen):
    host: str = "127.0.0.1"
    """Address the HTTP API listens on."""
    port: int = Field(8080, ge=0, le=65535)
    """Port the HTTP API listens on (0: any free port)."""
    verification: Literal["well-formed", "off"] = "well-formed"
    """``well-formed``: every submission passes the hardened XML parser; ``off``: pass-through (benchmarks).
    Signature verification plugs in here once the signing layer is wired."""
    signing: Literal["off"] = "off"
    """Signing of outbound messages (``off`` until the signing layer is wired)."""
    max_message_bytes: int = Field(16 * 1024 * 1024, gt=0)
    """Largest accepted submission."""
    lease_seconds: float = Field(60.0, gt=0)
    """How long a worker holds a claimed delivery before another may take it."""
    poll_interval: float = Field(0.5, gt=0)
    """How often idle delivery workers look for due messages (they are also woken on every new message)."""


class StoreSettings(_Frozen):
    url: str = "sqlite:///nswgw-data/gateway.db"
    """``sqlite:///PATH`` (relative paths are relative to the configuration file)."""
    synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    """SQLite durability: ``FULL`` survives power loss, ``NORMAL`` survives process crashes."""
    max_batch: int = Field(512, gt=0)
    """Most writes committed together in one transaction (group commit)."""


def token_digest(token: str) -> str:
    """SHA-256 hex of an API token, as stored in ``token_sha256``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class PartySettings(_Frozen):
    name: str = ""
    """Human-readable name."""
    tokens: tuple[str, ...] = ()
    """API bearer tokens in clear (development only)."""
    token_sha256: tuple[str, ...] = ()
    """SHA-256 hex digests of the party's API bearer tokens."""
    document_types: tuple[str, ...] = ()
    """Document types the party may submit (``*`` for any)."""

    @field_validator("token_sha256")
    @classmethod
    def _hex(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
                raise ValueError("must be lowercase SHA-256 hex digests")
        return value

    def matches(self, token: str) -> bool:
        digest = token_digest(token)
        known = {token_digest(t) for t in self.tokens} | set(self.token_sha256)
        return any(hmac.compare_digest(digest, k) for k in known)

    def may_send(self, document_type: str) -> bool:
        return "*" in self.document_types or document_type in self.document_types


class RetryPolicy(_Frozen):
    max_attempts: int = Field(12, ge=1)
    """Attempts before the message goes to the dead-letter queue."""
    ttl: float = Field(24 * 3600.0, gt=0)
    """Seconds after queuing after which an undelivered message goes to the dead-letter queue."""
    initial: float = Field(1.0, ge=0)
    """First backoff, in seconds (doubling each attempt)."""
    max_wait: float = Field(300.0, ge=0)
    """Longest backoff between two attempts, in seconds."""
    jitter: float = Field(1.0, ge=0)
    """Random extra wait, uniformly in [0, jitter] seconds."""


class BreakerSettings(_Frozen):
    failure_threshold: int = Field(5, ge=1)
    """Consecutive recoverable failures that open the circuit."""
    reset_timeout: float = Field(30.0, gt=0)
    """Seconds the circuit stays open before one probe is let through."""


class DestinationSettings(_Frozen):
    adapter: str = "http"
    """Adapter name (built-in alias or ``nsw.adapters`` entry point)."""
    url: str
    """The adapter's connection string (for ``http``: the endpoint URL)."""
    format: str = "same"
    """Format the destination expects (``same``: as submitted)."""
    concurrency: int = Field(4, ge=1, le=256)
    """Deliveries in flight at once (the bulkhead: a dead partner ties up only these)."""
    timeout: float = Field(30.0, gt=0)
    """Seconds for one delivery attempt."""
    retry: RetryPolicy = RetryPolicy()
    """Backoff, attempts and time-to-live."""
    breaker: BreakerSettings = BreakerSettings()
    """Circuit breaker."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Adapter-specific options."""


class RouteSettings(_Frozen):
    document_type: str = "*"
    """Document type to match (``*``: any)."""
    procedure: str = "*"
    """Procedure to match (``*``: any)."""
    sender: str = "*"
    """Sending party to match (``*``: any)."""
    destination: str = "*"
    """The destination the sender named (``X-Destination``) to match (``*``: any)."""
    to: tuple[str, ...] = Field(min_length=1)
    """Destinations the message is delivered to (several: fan-out)."""


class Config(_Frozen):
    gateway: GatewaySettings = GatewaySettings()
    store: StoreSettings = StoreSettings()
    parties: dict[str, PartySettings] = Field(default_factory=dict)
    """Parties that submit messages, by name."""
    destinations: dict[str, DestinationSettings] = Field(default_factory=dict)
    """Where messages are delivered, by name."""
    routes: tuple[RouteSettings, ...] = ()
    """Routing rules, first match wins."""

    @field_validator("parties", "destinations")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"{name!r} is not a valid name (letters, digits, . _ : -)")
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        for i, route in enumerate(self.routes):
            for j, dest in enumerate(route.to):
                if dest not in self.destinations:
                    raise _Ref(f"routes[{i}].to[{j}]", dest, self.destinations, "destination")
            if route.sender != "*" and route.sender not in self.parties:
                raise _Ref(f"routes[{i}].sender", route.sender, self.parties, "party")
        return self

    def party_for_token(self, token: str) -> str | None:
        for name, party in self.parties.items():
            if party.matches(token):
                return name
        return None


class _Ref(ValueError):
    def __init__(self, field: str, name: str, known: dict[str, Any], kind: str) -> None:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")
        self.field = field


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: dict[str, Any], *, base: Path | None = None) -> Config:
    """Validate a decoded configuration; relative SQLite paths are resolved against ``base``."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = first.get("ctx", {}).get("error")
        if isinstance(ctx_error, _Ref):
            raise ConfigError(str(ctx_error), field=ctx_error.field) from None
        field = _loc(tuple(first["loc"]))
        raise ConfigError(f"{first['msg']} (input: {first.get('input')!r})"[:300], field=field or None,
                          details={"errors": len(exc.errors())}) from None
    from adapters.base import resolve_adapter

    for name, dest in config.destinations.items():
        resolve_adapter(dest.adapter, field=f"destinations.{name}.adapter")
    url = config.store.url
    if base is not None and url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_absolute():
        path = (base / url[len("sqlite:///"):]).resolve()
        config = config.model_copy(update={"store": config.store.model_copy(update={"url": f"sqlite:///{path}"})})
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML configuration file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}", field=str(p)) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}", field=str(p)) from exc
    return parse_config(data, base=p.parent)
