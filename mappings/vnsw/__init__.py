"""``vnsw``: the Vietnam National Single Window ministry envelope.

``Envelope/Header/{Reference, From, To, Subject}`` + ``Envelope/Body/Content/<message>``, no namespace,
as in the MARD web services of the corpus (``shared/corpus/vnsw``). The header is common to every
procedure; the content depends on the Subject's ``documentType`` (procedure), ``type`` and ``function``,
and each (procedure, type, function) is a :class:`VnswMessage` declared in a procedure module:

* :mod:`mappings.vnsw.mard_bnnptnt0600011`: MARD animal quarantine (registration 10/01, quarantine result
  12/05-07, quarantine dispatch 16/12 and 16/14);
* :mod:`mappings.vnsw.mard_bnn0300003`: MARD pesticide import licence (licence 20/18);
* :mod:`mappings.vnsw.mot_maritime`: MOT ship entry and exit (documentType 1 and 2: the FAL declarations,
  types 30 and 50-58, and the whole ship call, type 99; functions 01 and 02; the security notification and the
  confirmation of arrival, types 10 and 40; the administration's permits and orders, types 60, 70, 72, 80 and 90;
  the transit, documentType 3);
* :mod:`mappings.vnsw.mot_inland`: MOT inland-waterway arrival and departure (documentType 4 and 5, types 30,
  50-52, 60 and 70);
* this module: the synchronous acknowledgement (function 99, ``Content/ReceiveDate``) and error list
  (function 00, ``Content/ErrorList/Error``) of any procedure.

A new ministry procedure is a new module calling :func:`register_message`, listed in
:data:`PROCEDURE_MODULES` or published through the entry-point group ``nsw.vnsw_procedures``.

Reading is lenient, as real senders are: a namespaced ``SOAP:Envelope`` root, undeclared elements
(``RegistrationType``, ``SystemSignature``), ``.0`` fractions and ISO timestamps with offsets are accepted;
elements missing from the content are simply absent. Writing is strict: the result validates against the
procedure's XSD (shipped in ``mappings/schemas/vnsw``) or :class:`~gateway.errors.ValidationFailed` is raised.

Times without an offset are Vietnam time (UTC+07:00); emitted times are converted to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from lxml import etree

from gateway.errors import ValidationFailed, ValidationIssue, XmlError
from gateway.model import DocumentKind
from mappings.model import TradeMessage
from mappings.registry import MessageFormat, build_message, document_kind, named_enterprises, register
from mappings.xmlformat import load_schema, local_name, parse_root, schema_issues, to_bytes
from mappings.xmlspec import INT, Codec, Group, Leaf, code_map, get_path, leaves, read, set_path, write

__all__ = [
    "VN_TZ",
    "VNSW_DATETIME",
    "VNSW_UNIT",
    "VNSW_UNIT_NAME",
    "VnswMessage",
    "HEADER",
    "ACK",
    "ERROR_LIST",
    "register_message",
    "messages",
    "find_message",
    "VnswFormat",
    "PROCEDURE_MODULES",
]

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

_VNSW_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$")


def _read_time(text: str) -> dt.datetime:
    m = _VNSW_TIME.match(text)
    if m is None:
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            return dt.datetime.fromisoformat(text).replace(tzinfo=VN_TZ)
        raise ValueError(f"{text!r} is not yyyy-MM-dd HH:mm:ss")
    frac = (m[3] or ".0")[1:7].ljust(6, "0")
    base = dt.datetime.fromisoformat(f"{m[1]}T{m[2]}").replace(microsecond=int(frac))
    if m[4]:
        offset = m[4].replace("Z", "+00:00")
        if ":" not in offset:
            offset = offset[:3] + ":" + offset[3:]
        return dt.datetime.fromisoformat(base.isoformat() + offset)
    return base.replace(tzinfo=VN_TZ)


def _write_time(value: dt.datetime) -> str:
    local = value.astimezone(VN_TZ) if value.tzinfo else value
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond // 1000:03d}"
    return text


VNSW_DATETIME = Codec("VNSW time (yyyy-MM-dd HH:mm:ss[.SSS], Vietnam time)", _read_time, _write_time)

VNSW_UNIT = code_map("VNSW unit code", {"CON": "NAR", "KG": "KGM", "TAN": "TNE", "LIT": "LTR", "CAI": "H87"})
"""VNSW catalogue unit codes that differ from UN/ECE Rec 20; other codes pass through."""

VNSW_UNIT_NAME = code_map(
    "VNSW unit name", {"con": "NAR", "kg": "KGM", "tấn": "TNE", "lít": "LTR", "cái": "H87", "g": "GRM"}
)
"""Vietnamese unit names written next to unit codes."""


def _endpoint(tag: str, path: str) -> Group:
    return Group(
        tag,
        path=path,
        required=True,
        children=(
            Leaf("name", "name", required=True),
            Leaf("identity", "identity", required=True),
            Leaf("countryCode", "country", required=True),
            Leaf("ministryCode", "ministry", required=True),
            Leaf("organizationCode", "organization", required=True),
            Leaf("unitCode", "unit"),
        ),
    )


HEADER = Group(
    "Header",
    path="envelope",
    required=True,
    children=(
        Group(
            "Reference",
            required=True,
            children=(Leaf("version", "version", required=True), Leaf("messageId", "message_id", required=True)),
        ),
        _endpoint("From", "sender"),
        _endpoint("To", "recipient"),
        Group(
            "Subject",
            required=True,
            children=(
                Leaf("documentType", "procedure", required=True),
                Leaf("type", "message_type", required=True),
                Leaf("function", "function", required=True),
                Leaf("reference", "reference", required=True),
                Leaf("documentYear", "reference_year", INT, required=True),
                Leaf("preReference", "previous_reference", required=True),
                Leaf("preDocumentYear", "previous_reference_year", INT),
                Leaf("sendDate", "sent_at", VNSW_DATETIME, required=True),
            ),
        ),
    ),
)
"""The envelope header, common to every procedure (order of the p14 sequence, accepted by the p08 xs:all)."""


@dataclass(frozen=True)
class VnswMessage:
    """One VNSW message: (procedure, type, function), its content mapping table and its XSD.

    ``procedure`` or ``message_type`` ``"*"`` matches any (acknowledgements). ``implies`` are harmonized
    values the message function itself states (the decision of a result message): set when reading,
    checked for contradictions when writing.
    """

    procedure: str
    message_type: str
    function: str
    title: str
    content: Group
    xsd: str
    implies: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.procedure, self.message_type, self.function)


ACK = VnswMessage(
    "*",
    "*",
    "99",
    "Acknowledgement: message received",
    Group("Content", children=(Leaf("ReceiveDate", "acknowledgement.received_at", VNSW_DATETIME, required=True),)),
    "vnsw/vnsw_ack.xsd",
)

ERROR_LIST = VnswMessage(
    "*",
    "*",
    "00",
    "Error list: message refused",
    Group(
        "Content",
        children=(
            Group(
                "ErrorList",
                required=True,
                children=(
                    Group(
                        "Error",
                        path="acknowledgement.errors",
                        many=True,
                        required=True,
                        children=(Leaf("ErrorCode", "code", required=True), Leaf("ErrorName", "message")),
                    ),
                ),
            ),
        ),
    ),
    "vnsw/vnsw_ack.xsd",
)

_MESSAGES: dict[tuple[str, str, str], VnswMessage] = {}

PROCEDURE_MODULES: tuple[str, ...] = (
    "mappings.vnsw.mard_bnnptnt0600011",
    "mappings.vnsw.mard_bnn0300003",
    "mappings.vnsw.mot_maritime",
    "mappings.vnsw.mot_inland",
)
"""Built-in procedure modules; each calls :func:`register_message` on import."""

ENTRY_POINT_GROUP = "nsw.vnsw_procedures"


def register_message(message: VnswMessage) -> VnswMessage:
    """Declare a VNSW message (a procedure module calls this at import)."""
    existing = _MESSAGES.get(message.key)
    if existing is not None and existing != message:
        raise ValueError(f"VNSW message {message.key} declared twice")
    _MESSAGES[message.key] = message
    return message


register_message(ACK)
register_message(ERROR_LIST)


def messages() -> list[VnswMessage]:
    """Every declared VNSW message, sorted by (procedure, type, function)."""
    return [_MESSAGES[k] for k in sorted(_MESSAGES)]


def find_message(procedure: str | None, message_type: str | None, function: str | None) -> VnswMessage | None:
    """The message declared for the triple (function 99/00 fall back to the generic acknowledgements)."""
    for key in ((procedure, message_type, function), ("*", "*", function)):
        found = _MESSAGES.get(key)  # type: ignore[arg-type]
        if found is not None:
            return found
    return None


_SUBJECT = ("documentType", "type", "function")


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    """The first child element of ``element`` with local name ``name`` (namespaces ignored, as senders vary)."""
    if element is None:
        return None
    return next((c for c in element if isinstance(c.tag, str) and local_name(c) == name), None)


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _implied_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


class VnswFormat(MessageFormat):
    """The VNSW ministry envelope (MARD procedures first)."""

    name = "vnsw"
    media_type = "application/xml"
    description = "Vietnam National Single Window ministry envelope (Envelope/Header/Body/Content, no namespace)."

    def parse(self, data: bytes) -> TradeMessage:
        root = parse_root(data)
        if local_name(root) != "Envelope":
            raise ValidationFailed(
                [ValidationIssue(f"/{local_name(root)}", "ROOT_UNEXPECTED", "the VNSW root element is Envelope")]
            )
        issues: list[ValidationIssue] = []
        ctx: dict[str, Any] = {}
        envelope_spec = Group("Envelope", children=(HEADER,))
        read(envelope_spec, root, ctx, issues, where="/Envelope", local_names=True)
        env = ctx.get("envelope", {})
        message = find_message(env.get("procedure"), env.get("message_type"), env.get("function"))
        if message is None:
            issues.append(
                ValidationIssue(
                    "/Envelope/Header/Subject",
                    "MESSAGE_TYPE_UNKNOWN",
                    f"no VNSW mapping for documentType {env.get('procedure')!r}, type {env.get('message_type')!r}, "
                    f"function {env.get('function')!r}",
                )
            )
            raise ValidationFailed(issues)
        body = Group("Envelope", children=(Group("Body", children=(message.content,)),))
        read(body, root, ctx, issues, where="/Envelope", local_names=True)
        for path, value in message.implies:
            set_path(ctx, path, value)
        if issues:
            raise ValidationFailed(issues)
        return build_message(ctx)

    def reference(self, data: bytes) -> tuple[str, str] | None:
        """``Header/Subject/reference`` (the NSW dossier code), read without mapping the body."""
        try:
            element: etree._Element | None = parse_root(data)
        except (ValidationFailed, XmlError):
            return None
        if element is None or local_name(element) != "Envelope":
            return None
        for name in ("Header", "Subject", "reference"):
            element = next((c for c in element if isinstance(c.tag, str) and local_name(c) == name), None)
            if element is None:
                return None
        value = (element.text or "").strip()
        return (value, "/Envelope/Header/Subject/reference") if value else None

    def kind(self, data: bytes) -> DocumentKind:
        """``Header/Subject`` ``documentType/type/function``, read without mapping the body (so a procedure
        without a mapping module is recognised too); an unreadable header is refused as :meth:`parse` refuses it."""
        root = parse_root(data)
        subject = _child(_child(root, "Header"), "Subject") if local_name(root) == "Envelope" else None
        triple = [_text(_child(subject, name)) for name in _SUBJECT]
        if not all(triple):
            return document_kind(self.read(data))
        return DocumentKind(procedure="/".join(triple))

    def enterprises(self, data: bytes) -> tuple[str, ...]:
        """The identifiers of the declarant and exporter in the content; none for a procedure without a mapping
        module (``MESSAGE_TYPE_UNKNOWN``: nothing in its body can be read)."""
        try:
            return named_enterprises(self.read(data))
        except ValidationFailed as exc:
            if any(i.code == "MESSAGE_TYPE_UNKNOWN" for i in exc.issues):
                return ()
            raise

    identity_fields = ("identity", "ministryCode", "organizationCode")

    def identities(self, data: bytes) -> list[tuple[str, str, str]]:
        """``Header/From/{identity, ministryCode, organizationCode}``: each is checked against the sending party
        (an element missing from ``From`` claims ``""``). A ``From`` with none of them (a WS-Addressing
        ``wsa:From``) is no VNSW sender: nothing is claimed, and reading it as ``vnsw`` fails validation."""
        try:
            root = parse_root(data)
        except (ValidationFailed, XmlError):
            return []
        if local_name(root) != "Envelope":
            return []

        def child(el: etree._Element | None, name: str) -> etree._Element | None:
            if el is None:
                return None
            return next((c for c in el if isinstance(c.tag, str) and local_name(c) == name), None)

        sender = child(child(root, "Header"), "From")
        if sender is None or all(child(sender, name) is None for name in self.identity_fields):
            return []
        claims = []
        for name in self.identity_fields:
            el = child(sender, name)
            value = (el.text or "").strip() if el is not None else ""
            claims.append((name, value, f"/Envelope/Header/From/{name}"))
        return claims

    def emit(self, msg: TradeMessage) -> bytes:
        data = msg.model_dump(mode="python")
        env = msg.envelope
        message = find_message(env.procedure, env.message_type, env.function) if env else None
        if message is None:
            triple = (env.procedure, env.message_type, env.function) if env else (None, None, None)
            raise ValidationFailed(
                [ValidationIssue("envelope.function", "MESSAGE_TYPE_UNKNOWN", f"no VNSW mapping for {triple}")]
            )
        issues: list[ValidationIssue] = []
        for path, value in message.implies:
            current = _implied_value(get_path(data, path))
            if current is not None and current != value:
                issues.append(
                    ValidationIssue(
                        path,
                        "MESSAGE_FUNCTION_CONFLICT",
                        f"function {message.function} states {value!r}, the message says {current!r}",
                    )
                )
        root = etree.Element("Envelope")
        content = dataclasses.replace(message.content, required=True)
        write(
            Group("Envelope", children=(HEADER, Group("Body", required=True, children=(content,)))), data, root, issues
        )
        if issues:
            raise ValidationFailed(issues)
        bad = schema_issues(load_schema(message.xsd), root)
        if bad:
            raise ValidationFailed(bad)
        return to_bytes(root)

    def mapping_table(self) -> list[tuple[str, str]]:
        rows = [(f"/Envelope{n}", h) for n, h, _ in leaves(Group("Envelope", children=(HEADER,)))]
        for m in messages():
            label = f"[{m.procedure} {m.message_type}/{m.function}] "
            rows.extend((f"{label}/Envelope/Body/Content{n}", h) for n, h, _ in leaves(m.content))
            rows.extend((f"{label}(function {m.function})", f"{p} = {v!r}") for p, v in m.implies)
        return rows


def _load_procedures() -> None:
    for module in PROCEDURE_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


_load_procedures()
register(VnswFormat)
