"""The registry of message formats, by name.

Every native format is a :class:`MessageFormat`: ``parse(bytes) -> TradeMessage`` and
``emit(TradeMessage) -> bytes``, both raising :class:`~gateway.errors.ValidationFailed` (with every issue)
or an :class:`~gateway.errors.XmlError` on bad input. Built-in formats are listed in :data:`BUILTIN_MODULES`;
third-party formats register through the entry-point group ``nsw.mappings`` (each entry point names a
:class:`MessageFormat` subclass or instance). An unknown name raises
:class:`~gateway.errors.UnknownFormat` with the closest registered names.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import ValidationError

from gateway.errors import UnknownFormat, ValidationFailed, ValidationIssue, XmlError
from gateway.model import CertificateAct, DocumentKind
from gateway.registry import IssuedAct
from mappings import rules
from mappings.model import TradeMessage

__all__ = [
    "MessageFormat",
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "register",
    "get",
    "names",
    "formats",
    "convert",
    "build_message",
    "loc_to_path",
    "document_kind",
    "named_enterprises",
    "certificate_act",
]

BUILTIN_MODULES: tuple[str, ...] = (
    "mappings.jsonfmt",
    "mappings.vnsw",
    "mappings.formd",
    "mappings.sps",
    "mappings.acdd",
    "mappings.vnsw.mot_vr_imported_vehicles",
    "mappings.vnsw.moh_cosmetic",
    "mappings.shipdecision",
)
"""Modules whose import registers the built-in formats."""

ENTRY_POINT_GROUP = "nsw.mappings"


READ_MEMO_BYTES = 256 * 1024
"""Documents up to this size are remembered by :meth:`MessageFormat.read` (larger ones are read each time: the
memo must not keep a large submission alive)."""
READ_MEMO_SIZE = 32
"""How many documents :meth:`MessageFormat.read` remembers (the oldest goes first): more than the intake reads at
once on its worker threads."""
_memo: dict[tuple[str, bytes], TradeMessage] = {}
_memo_lock = threading.Lock()


class MessageFormat(ABC):
    """A native message format mapped to and from the harmonized :class:`TradeMessage`."""

    name: ClassVar[str]
    """Registry name (``vnsw``, ``form-d``, ``sps``, ``acdd``, ``json``)."""
    media_type: ClassVar[str] = "application/xml"
    description: ClassVar[str] = ""

    @abstractmethod
    def parse(self, data: bytes) -> TradeMessage:
        """Read a native message (leniently) into the harmonized model."""

    @abstractmethod
    def emit(self, msg: TradeMessage) -> bytes:
        """Write the harmonized message in this format (strictly: the result validates against its schema)."""

    def read(self, data: bytes) -> TradeMessage:
        """What :meth:`parse` gives, remembered for the last few documents of at most :data:`READ_MEMO_BYTES`:
        the intake reads one submission for several checks (its kind, certificate, reference, validation and
        each mapping), every time from the same bytes. The model is frozen, so the callers share it."""
        if len(data) > READ_MEMO_BYTES:
            return self.parse(data)
        key = (self.name, data)
        with _memo_lock:
            known = _memo.get(key)
        if known is not None:
            return known
        msg = self.parse(data)
        with _memo_lock:
            _memo[key] = msg
            while len(_memo) > READ_MEMO_SIZE:
                del _memo[next(iter(_memo))]
        return msg

    def validate(self, data: bytes) -> list[ValidationIssue]:
        """Every issue of a native message: reading it, then the harmonized rules (empty when valid)."""
        try:
            msg = self.read(data)
        except ValidationFailed as exc:
            return list(exc.issues)
        return rules.validate(msg)

    def mapping_table(self) -> list[tuple[str, str]]:
        """(native path, harmonized path) rows documenting the mapping; empty for formats without one."""
        return []

    def certificate(self, data: bytes) -> CertificateAct | None:
        """What the message does to a certificate of origin (:func:`certificate_act` of what :meth:`parse`
        reads), or ``None`` when it is not about one or cannot be read (reading errors are reported by
        :meth:`parse` and :meth:`validate`, not here). The formats that carry certificates of origin and their
        notifications (``form-d``, ``json``) answer; any other answers ``None`` without reading the message."""
        return None

    def issued(self, data: bytes) -> IssuedAct | None:
        """What the message does to the registry of issued documents (:func:`mappings.issued.issued_act` of what
        :meth:`parse` reads), or ``None`` when it is no issued document or cannot be read (reading errors are
        reported by :meth:`parse` and :meth:`validate`, not here)."""
        from mappings.issued import issued_act

        try:
            return issued_act(self.read(data))
        except (ValidationFailed, XmlError):
            return None

    def reference(self, data: bytes) -> tuple[str, str] | None:
        """The dossier reference the message names (harmonized ``envelope.reference``) and where it stands in
        the native message, or ``None`` when it names none or cannot be read (reading errors are reported by
        :meth:`parse` and :meth:`validate`, not here)."""
        try:
            envelope = self.read(data).envelope
        except (ValidationFailed, XmlError):
            return None
        if envelope is None or not envelope.reference:
            return None
        return envelope.reference, "envelope.reference"

    identity_fields: ClassVar[tuple[str, ...]] = ()
    """The sender identities the format's messages claim, by name (the keys of a party's
    ``[parties.NAME.identities.<format>]`` table); empty for a format whose messages name no sender."""

    def identities(self, data: bytes) -> list[tuple[str, str, str]]:
        """``(name, value, path)`` of each sender identity in :attr:`identity_fields` the message claims (an
        element present but empty claims ``""``); empty when the message cannot be read (reading errors are
        reported by :meth:`parse` and :meth:`validate`, not here)."""
        return []

    def kind(self, data: bytes) -> DocumentKind:
        """What the message is (:func:`document_kind` of what :meth:`parse` reads); reading errors are raised
        as :meth:`parse` raises them. Formats override it to answer from the root or header alone."""
        return document_kind(self.read(data))

    def enterprises(self, data: bytes) -> tuple[str, ...]:
        """The enterprises the message names (:func:`named_enterprises` of what :meth:`parse` reads)."""
        return named_enterprises(self.read(data))


CERTIFICATE_OF_ORIGIN = "861"
"""UN/EDIFACT 1001 code of a certificate of origin: the kind of a message with origin certificate data."""
EXPORT_DECLARATION = "830"
"""UN/EDIFACT 1001 code of a goods declaration for exportation: the kind of a message with ACDD declaration data."""
CUSTOMS_RESPONSE = "961"
"""UN/EDIFACT 1001 code of a general response (Customs): the kind of a message with Customs Response data."""


def document_kind(msg: TradeMessage) -> DocumentKind:
    """The kind of a harmonized message: its VNSW message (``envelope`` procedure/type/function) and its
    document code (``document.type_code``; without one, ``861`` for a message with ``origin_certificate`` data,
    ``830`` with ``customs_declaration`` data, ``961`` with ``customs_response`` data). A cancellation has no
    UN/EDIFACT 1001 code of its own: it is recognised by its native root (:mod:`mappings.acdd`)."""
    env = msg.envelope
    procedure = f"{env.procedure}/{env.message_type}/{env.function}" if env is not None and env.procedure else None
    code = msg.document.type_code if msg.document is not None else None
    if code is None and msg.origin_certificate is not None:
        code = CERTIFICATE_OF_ORIGIN
    if code is None and msg.customs_declaration is not None:
        code = EXPORT_DECLARATION
    if code is None and msg.customs_response is not None:
        code = CUSTOMS_RESPONSE
    return DocumentKind(code=code, procedure=procedure)


_HARMONIZED_PATHS = {
    "issued": "document.number",
    "amended": "origin_certificate.amends",
    "notice": "certificate_notice.certificate_number",
}


def certificate_act(msg: TradeMessage, paths: Mapping[str, str] = _HARMONIZED_PATHS) -> CertificateAct | None:
    """What a harmonized message does to a certificate of origin: a certificate notification acts on the
    certificate it names (its ``kind``: received, utilized, rejected, verification request or answer,
    cancelled); a message with ``origin_certificate`` data issues the certificate it is (``document.number``,
    ``document.issuing_country`` or else ``transport.export_country``) or, with ``origin_certificate.amends``,
    amends the one it names. ``None`` for any other message, or one that does not name the certificate fully
    (which the rules or the schema refuse). ``paths`` names where the message names the certificate
    (``issued``, ``amended``, ``notice``; harmonized paths by default), for a refusal to point at."""
    notice = msg.certificate_notice
    if notice is not None:
        if notice.kind is None or not notice.certificate_number or not notice.issuing_country:
            return None
        detail = {
            key: str(value)
            for key, value in notice.model_dump(mode="json", exclude_none=True).items()
            if key not in ("kind", "certificate_number", "issuing_country")
        }
        return CertificateAct(
            notice.kind.value, notice.issuing_country, notice.certificate_number, paths["notice"], detail
        )
    certificate, document = msg.origin_certificate, msg.document
    if certificate is None or document is None or not document.number:
        return None
    country = document.issuing_country or (msg.transport.export_country if msg.transport is not None else None)
    if not country:
        return None
    if certificate.amends:
        return CertificateAct("amended", country, certificate.amends, paths["amended"], {"amended_by": document.number})
    return CertificateAct("issued", country, document.number, paths["issued"])


def named_enterprises(msg: TradeMessage) -> tuple[str, ...]:
    """The identifiers (tax or registration numbers) of the parties a message is submitted for: the declarant
    (applicant, registrant) and the exporter, in that order, without repeats."""
    found: list[str] = []
    for party in (msg.parties.declarant, msg.parties.exporter):
        if party is not None and party.identifier and party.identifier not in found:
            found.append(party.identifier)
    return tuple(found)


_REGISTRY: dict[str, MessageFormat] = {}
_LOCK = threading.Lock()
_LOADED = False


def register(fmt: MessageFormat | type[MessageFormat]) -> MessageFormat:
    """Register a format under its ``name`` (a class is instantiated). Returns the instance."""
    instance = fmt() if isinstance(fmt, type) else fmt
    existing = _REGISTRY.get(instance.name)
    if existing is not None and type(existing) is not type(instance):
        raise ValueError(
            f"format {instance.name!r} registered twice: {type(existing).__name__} and {type(instance).__name__}"
        )
    _REGISTRY[instance.name] = instance
    return instance


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    with _LOCK:
        if _LOADED:
            return
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            obj: Any = ep.load()
            register(obj)
        _LOADED = True


def names() -> list[str]:
    """Registered format names, sorted."""
    _load()
    return sorted(_REGISTRY)


def formats() -> list[MessageFormat]:
    """Registered formats, sorted by name."""
    return [_REGISTRY[n] for n in names()]


def get(name: str) -> MessageFormat:
    """The format registered as ``name``; :class:`UnknownFormat` ("did you mean ...") otherwise."""
    _load()
    fmt = _REGISTRY.get(name) or _REGISTRY.get(name.strip().lower())
    if fmt is not None:
        return fmt
    close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownFormat(
        f"no message format {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})",
        field="format",
        details={"known": sorted(_REGISTRY), "suggestions": close},
    )


def convert(data: bytes, source: str, target: str) -> bytes:
    """Map a message from one registered format to another (via the harmonized model)."""
    src, dst = get(source), get(target)
    return dst.emit(src.parse(data))


def loc_to_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a validation path: ``('goods', 3, 'hs_code')`` -> ``goods[3].hs_code``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "/"


def build_message(data: Any) -> TradeMessage:
    """Validate a plain dict into a :class:`TradeMessage`, turning every pydantic error into a MODEL_INVALID issue."""
    try:
        return TradeMessage.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            [ValidationIssue(loc_to_path(e["loc"]), "MODEL_INVALID", e["msg"]) for e in exc.errors()]
        ) from None
