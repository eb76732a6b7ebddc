"""Declarative XML mapping tables and the one engine that reads and writes them.

A native XML format is declared as a tree of :class:`Group` and :class:`Leaf` nodes that mirrors the
native document; each leaf names the harmonized path it carries (``"parties.consignee.name"``,
``"quantities[qualifier=female].value"``) and a :class:`Codec` for its text. The same table drives both
directions:

* :func:`read` walks an element against the table and fills a plain dict, which the format then
  validates into a :class:`~mappings.model.TradeMessage`. Reading is lenient: unknown elements are
  ignored, empty elements count as absent, and (with ``local_names=True``) namespaces are ignored.
* :func:`write` walks ``TradeMessage.model_dump()`` against the table and builds the element. Writing is
  strict: a required leaf without a value is a ``NATIVE_REQUIRED_MISSING`` issue, and the format then
  validates the result against its XSD.

Paths are dotted keys relative to the current context. A :class:`Group` with a ``path`` opens a
sub-context (a dict, or a list of dicts with ``many=True``); without one it reads and writes the same
context. ``name[key=value]`` selects (or, when reading, creates) the list entry whose ``key`` is ``value``.
A leaf with ``const`` writes fixed text and, when reading, acts as a discriminator: a group is matched only
by elements whose const children carry that text.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from gateway.errors import ValidationIssue

__all__ = [
    "Codec",
    "TEXT",
    "INT",
    "DECIMAL",
    "DATE",
    "DATETIME",
    "BOOL",
    "code_map",
    "Attr",
    "Leaf",
    "Group",
    "Node",
    "read",
    "write",
    "get_path",
    "set_path",
    "leaves",
]


@dataclass(frozen=True)
class Codec:
    """Converts between native element text and a harmonized value. ``read`` raises ValueError on bad text."""

    name: str
    read: Callable[[str], Any]
    write: Callable[[Any], str]


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _write_decimal(value: Decimal) -> str:
    return format(Decimal(value), "f")


def _int(text: str) -> int:
    value = _decimal(text)
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def _iso_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _iso_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _write_iso_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false")


TEXT = Codec("text", lambda t: t, str)
INT = Codec("integer", _int, str)
DECIMAL = Codec("decimal", _decimal, _write_decimal)
DATE = Codec("date (YYYY-MM-DD)", _iso_date, lambda d: d.isoformat())
DATETIME = Codec("date-time (ISO 8601; no offset = UTC)", _iso_datetime, _write_iso_datetime)
BOOL = Codec("boolean (true/false)", _bool, lambda b: "true" if b else "false")


def code_map(name: str, native_to_harmonized: dict[str, str]) -> Codec:
    """A codec translating native codes to harmonized ones (and back); unknown codes pass through unchanged."""
    back = {v: k for k, v in native_to_harmonized.items()}
    return Codec(
        name,
        lambda t: native_to_harmonized.get(t, t),
        lambda v: back.get(str(getattr(v, "value", v)), str(getattr(v, "value", v))),
    )


@dataclass(frozen=True)
class Attr:
    """An attribute of a leaf's element."""

    name: str
    path: str | None = None
    codec: Codec = TEXT
    const: str | None = None


@dataclass(frozen=True)
class Leaf:
    """A native element with text content, mapped to one harmonized path (or a constant)."""

    tag: str
    path: str | None = None
    codec: Codec = TEXT
    required: bool = False
    const: str | None = None
    attrs: tuple[Attr, ...] = ()
    sets: tuple[tuple[str, Any], ...] = ()
    """(path, value) pairs also set when the leaf is read (implied values such as a unit the format leaves out)."""
    emit_only: bool = False
    """Written but never read (a derived native element, e.g. a unit name next to its unit code)."""
    blank: bool = False
    """Written empty when there is no value (the native XSD requires the element but accepts it empty)."""
    doc: str = ""


@dataclass(frozen=True)
class Group:
    """A native element with child elements.

    ``path`` opens a sub-context, ``many`` maps a repeated element to a list.
    """

    tag: str
    children: tuple[Node, ...] = field(default_factory=tuple)
    path: str | None = None
    many: bool = False
    required: bool = False
    when: str | None = None
    """A path (in the group's parent context) that must hold a value for the group to be written at all: a native
    section that stands for one part of the message (a crew list only when there is a crew)."""
    doc: str = ""


Node = Leaf | Group

# --------------------------------------------------------------------------- paths

_TOKEN = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>[^\]]*)\])?$")


@functools.lru_cache(maxsize=4096)
def _tokens(path: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """The steps of a mapping path (the paths are the mapping tables' own: few, read for every document)."""
    out = []
    for part in path.split("."):
        m = _TOKEN.match(part)
        if m is None:
            raise ValueError(f"bad mapping path {path!r}")
        out.append((m["name"], m["key"], m["value"]))
    return tuple(out)


def get_path(ctx: Any, path: str) -> Any:
    """The value at ``path`` in nested dicts/lists, or None (``"."`` is the context itself)."""
    if path == ".":
        return ctx
    for name, key, value in _tokens(path):
        if not isinstance(ctx, dict):
            return None
        ctx = ctx.get(name)
        if key is not None:
            ctx = next((d for d in (ctx or ()) if isinstance(d, dict) and _same(d.get(key), value)), None)
    return ctx


def _same(a: Any, text: str | None) -> bool:
    if text == "":
        return a is None or a == ""
    return a is not None and str(getattr(a, "value", a)) == text


def set_path(ctx: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in nested dicts, creating dicts (and selected list entries) on the way."""
    if path == ".":
        ctx["."] = value
        return
    tokens = _tokens(path)
    for i, (name, key, sel) in enumerate(tokens):
        last = i == len(tokens) - 1
        if key is not None:
            lst = ctx.setdefault(name, [])
            found = next((d for d in lst if _same(d.get(key), sel)), None)
            if found is None:
                found = {key: sel or None}
                lst.append(found)
            if last:
                raise ValueError(f"path {path!r} ends in a selector")
            ctx = found
        elif last:
            ctx[name] = value
        else:
            ctx = ctx.setdefault(name, {})


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value)


# --------------------------------------------------------------------------- reading


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_Index = dict[str, list[etree._Element]]


def _index(el: etree._Element, local_names: bool) -> _Index:
    """``el``'s element children by tag (by local name with ``local_names``), in document order: one pass over
    the children for every node of the group that reads them."""
    out: _Index = {}
    for child in el:
        tag = child.tag
        if isinstance(tag, str):
            out.setdefault(_local(tag) if local_names else tag, []).append(child)
    return out


def _found(index: _Index, tag: str, local_names: bool) -> list[etree._Element]:
    return index.get(_local(tag) if local_names else tag, [])


def _text(el: etree._Element) -> str:
    return (el.text or "").strip()


def _discriminated(group: Group, el: etree._Element, local_names: bool) -> bool:
    index: _Index | None = None
    for child in group.children:
        if isinstance(child, Leaf) and child.const is not None:
            index = _index(el, local_names) if index is None else index
            found = _found(index, child.tag, local_names)
            if not found or _text(found[0]) != child.const:
                return False
    return True


def read(
    group: Group,
    el: etree._Element,
    ctx: dict[str, Any],
    issues: list[ValidationIssue],
    *,
    where: str = "",
    local_names: bool = False,
) -> None:
    """Fill ``ctx`` from the children of ``el`` according to ``group`` (the element itself already matched)."""
    where = where or f"/{_local(str(el.tag))}"
    index = _index(el, local_names)
    for node in group.children:
        if isinstance(node, Leaf):
            found = _found(index, node.tag, local_names)
            if not found or node.const is not None or node.emit_only:
                continue
            child = found[0]
            at = f"{where}/{_local(node.tag)}"
            text = _text(child)
            if text and node.path:
                try:
                    value = node.codec.read(text)
                    for implied_path, implied in node.sets:
                        set_path(ctx, implied_path, implied)
                    set_path(ctx, node.path, value)
                except ValueError as exc:
                    issues.append(ValidationIssue(at, "NATIVE_VALUE_INVALID", f"expected {node.codec.name}: {exc}"))
            for attr in node.attrs:
                raw = child.get(attr.name)
                if attr.path and raw is not None and raw.strip() and (text or not node.path):
                    try:
                        set_path(ctx, attr.path, attr.codec.read(raw.strip()))
                    except ValueError as exc:
                        issues.append(ValidationIssue(f"{at}/@{attr.name}", "NATIVE_VALUE_INVALID", str(exc)))
            continue
        candidates = [c for c in _found(index, node.tag, local_names) if _discriminated(node, c, local_names)]
        if not candidates:
            continue
        if node.many:
            items = []
            for i, c in enumerate(candidates, start=1):
                sub: dict[str, Any] = {}
                read(node, c, sub, issues, where=f"{where}/{_local(node.tag)}[{i}]", local_names=local_names)
                if sub:
                    items.append(sub.get(".", sub))
            if items:
                if node.path is None:
                    raise ValueError(f"group {node.tag} has many=True but no path")
                existing = get_path(ctx, node.path)
                if isinstance(existing, list):
                    existing.extend(items)
                else:
                    set_path(ctx, node.path, items)
            continue
        at = f"{where}/{_local(node.tag)}"
        if node.path is None:
            read(node, candidates[0], ctx, issues, where=at, local_names=local_names)
        else:
            sub = get_path(ctx, node.path) if isinstance(get_path(ctx, node.path), dict) else {}
            read(node, candidates[0], sub, issues, where=at, local_names=local_names)
            if sub:
                set_path(ctx, node.path, sub)


# --------------------------------------------------------------------------- writing


def _has_content(node: Node, ctx: Any) -> bool:
    if isinstance(node, Leaf):
        if node.const is not None or not node.path:
            return False
        return not _empty(get_path(ctx, node.path))
    if node.when is not None and _empty(get_path(ctx, node.when)):
        return False
    if node.many:
        return not _empty(get_path(ctx, node.path or ""))
    sub = get_path(ctx, node.path) if node.path else ctx
    if _empty(sub):
        return False
    return any(_has_content(c, sub) for c in node.children)


def write(
    group: Group,
    ctx: Any,
    parent: etree._Element,
    issues: list[ValidationIssue],
    *,
    where: str = "",
) -> None:
    """Append the children of ``group`` to ``parent`` from the harmonized dict ``ctx``."""
    for node in group.children:
        if isinstance(node, Leaf):
            _write_leaf(node, ctx, parent, issues, where)
            continue
        if node.when is not None and _empty(get_path(ctx, node.when)):
            continue
        if node.many:
            items = get_path(ctx, node.path or "") or []
            if not items and node.required:
                issues.append(
                    ValidationIssue(
                        _join(where, node.path or ""),
                        "NATIVE_REQUIRED_MISSING",
                        f"{_local(node.tag)} needs at least one entry",
                    )
                )
            for i, item in enumerate(items):
                el = etree.SubElement(parent, node.tag)
                write(node, item, el, issues, where=f"{_join(where, node.path or '')}[{i}]")
            continue
        if not (node.required or _has_content(node, ctx)):
            continue
        sub = get_path(ctx, node.path) if node.path else ctx
        el = etree.SubElement(parent, node.tag)
        write(node, sub if sub is not None else {}, el, issues, where=_join(where, node.path) if node.path else where)


def _write_leaf(node: Leaf, ctx: Any, parent: etree._Element, issues: list[ValidationIssue], where: str) -> None:
    if node.const is not None:
        text: str | None = node.const
    else:
        value = get_path(ctx, node.path) if node.path else None
        if _empty(value):
            if node.required:
                issues.append(
                    ValidationIssue(
                        _join(where, node.path or _local(node.tag)),
                        "NATIVE_REQUIRED_MISSING",
                        f"{_local(node.tag)} is required by the native format",
                    )
                )
            elif node.blank:
                etree.SubElement(parent, node.tag)
            return
        text = node.codec.write(value)
    el = etree.SubElement(parent, node.tag)
    try:
        el.text = text
        for attr in node.attrs:
            if attr.const is not None:
                el.set(attr.name, attr.const)
            elif attr.path:
                raw = get_path(ctx, attr.path)
                if not _empty(raw):
                    el.set(attr.name, attr.codec.write(raw))
    except ValueError as exc:  # lxml refuses control characters
        issues.append(ValidationIssue(_join(where, node.path or _local(node.tag)), "NATIVE_VALUE_INVALID", str(exc)))


def leaves(group: Group, prefix: str = "", native: str = "") -> Iterable[tuple[str, str, Leaf | Attr]]:
    """Yield (native path, harmonized path, node) for every mapped leaf and attribute (for documentation)."""
    for node in group.children:
        npath = f"{native}/{_local(node.tag)}"
        if isinstance(node, Leaf):
            if node.path or node.const is not None:
                yield npath, _join(prefix, node.path) if node.path else f"= {node.const!r}", node
            for attr in node.attrs:
                if attr.path or attr.const is not None:
                    yield f"{npath}/@{attr.name}", _join(prefix, attr.path) if attr.path else f"= {attr.const!r}", attr
            continue
        sub = prefix
        if node.path:
            sub = _join(prefix, node.path) + ("[]" if node.many else "")
        yield from leaves(node, sub, npath)
