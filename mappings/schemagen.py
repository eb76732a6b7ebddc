"""The XSD and the partner-guide tables of a gateway-defined XML format, generated from its mapping tables.

The formats whose schema the gateway defines itself (``form-d``, ``acdd``) describe their documents only as
:mod:`mappings.xmlspec` tables. :func:`generate_xsd` turns a :class:`SchemaSpec` into the shipped XSD: one
``xs:simpleType`` per type its elements use (from :data:`SIMPLE_TYPES`, in that order), then one global element
per root, each element annotated with its harmonized field, typed by the field's code list, by
:data:`FIELD_TYPES` or by its codec. :func:`rules_table` and :func:`elements_table` are the Markdown tables of a
partner guide; each format writes the guide's prose itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from lxml import etree

from mappings.dictionary import entries, field_for
from mappings.model import CertificateNoticeKind, CustomsResponseStatus
from mappings.xmlspec import BOOL, DATE, DATETIME, DECIMAL, INT, TEXT, Group, Leaf, leaves

__all__ = [
    "SIMPLE_TYPES",
    "CODE_LIST_TYPES",
    "FIELD_TYPES",
    "SchemaSpec",
    "generate_xsd",
    "rules_table",
    "elements_table",
]

_XS = "http://www.w3.org/2001/XMLSchema"
_X = "{" + _XS + "}"

SIMPLE_TYPES: dict[str, tuple[str, dict[str, str] | tuple[str, ...]]] = {
    "NonEmptyString": ("xs:string", {"minLength": "1", "pattern": r"(\s*[^\s]\s*)+"}),
    "NonNegativeDecimal": ("xs:decimal", {"minInclusive": "0"}),
    "CountryCode": ("xs:string", {"pattern": "[A-Z]{2}"}),
    "CurrencyCode": ("xs:string", {"pattern": "[A-Z]{3}"}),
    "UnitCode": ("xs:string", {"pattern": "[A-Z0-9]{1,3}"}),
    "HSCode": ("xs:string", {"pattern": "[0-9]{6,10}"}),
    "LocationCode": ("xs:string", {"pattern": "[A-Z]{2}[A-Z2-9]{3}"}),
    "OriginCriterion": ("xs:string", {"pattern": r"WO|CC|CTH|CTSH|SP|(RVC|PC) ?[0-9]{1,3}([.,][0-9]+)?%"}),
    "TransportModeCode": ("xs:string", {"pattern": "[0-9]"}),
    "ResponseStatusCode": ("xs:string", tuple(s.value for s in CustomsResponseStatus)),
    "NotificationTypeCode": ("xs:string", tuple(k.value for k in CertificateNoticeKind)),
}
"""The simple types of the generated schemas, by name: the base type and its facets (a tuple: enumeration)."""

CODE_LIST_TYPES: dict[str, str] = {
    "ISO3166": "CountryCode",
    "ISO4217": "CurrencyCode",
    "REC20": "UnitCode",
    "HS": "HSCode",
    "UNLOCODE": "LocationCode",
    "ORIGIN_CRITERION": "OriginCriterion",
}
"""The simple type of a field with a code list (``code_list`` in its metadata)."""

FIELD_TYPES: dict[str, str] = {
    "transport.border_mode": "TransportModeCode",
    "customs_response.status": "ResponseStatusCode",
    "certificate_notice.kind": "NotificationTypeCode",
}
"""The simple type of a field constrained by the model rather than by a code list, by its dictionary path."""

_CODEC_TYPES: dict[str, str] = {
    TEXT.name: "NonEmptyString",
    INT.name: "xs:nonNegativeInteger",
    DECIMAL.name: "NonNegativeDecimal",
    DATE.name: "xs:date",
    DATETIME.name: "xs:dateTime",
    BOOL.name: "xs:boolean",
}


@dataclass(frozen=True)
class SchemaSpec:
    """What a generated XSD is made of."""

    namespace: str
    """The target namespace (also the default namespace of the XSD)."""
    roots: tuple[Group, ...]
    """The mapping table of each root element, in the order the XSD declares them."""
    annotation: str
    """The documentation of the schema element."""
    root_docs: Mapping[str, str] = field(default_factory=dict)
    """The documentation of a root element, by its tag; a root without one is not annotated."""
    dictionary_paths: bool = False
    """Document each element by its data-dictionary entry: its path as the dictionary writes it, ``[]`` after
    each list (``goods[].hs_code``), and the WCO id the dictionary lists (a party's name and identifier carry
    the role's id). Otherwise by the model field alone, with the path as the mapping table writes it."""


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _normal(path: str) -> str:
    return re.sub(r"\[[^\]]*\]", "[]", path)


@cache
def _wco_ids() -> dict[str, str]:
    return {e.path: e.wco for e in entries() if e.wco}


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def _field_wco(path: str) -> str:
    info = field_for(path)
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("wco") or "")


def _doc_text(spec: SchemaSpec, path: str | None, prefix: str) -> str:
    if not path:
        return ""
    full = _join(prefix, path)
    info = field_for(full)
    shown = _normal(full) if spec.dictionary_paths else full
    if info is None:
        return f"Harmonized: {shown}."
    wco = (_wco_ids().get(shown) if spec.dictionary_paths else None) or _field_wco(full)
    return f"{info.description} Harmonized: {shown}." + (f" WCO DM {wco}." if wco else "")


def _annotate(el: etree._Element, text: str) -> None:
    if text:
        ann = etree.SubElement(el, _X + "annotation")
        etree.SubElement(ann, _X + "documentation").text = text


def _type_of(path: str | None, prefix: str, default: str) -> str:
    full = _normal(_join(prefix, path or ""))
    if full in FIELD_TYPES:
        return FIELD_TYPES[full]
    info = field_for(full)
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    return CODE_LIST_TYPES.get(str(extra.get("code_list")), default)


def _sequence(spec: SchemaSpec, group: Group, parent: etree._Element, prefix: str, used: set[str]) -> None:
    seq = etree.SubElement(etree.SubElement(parent, _X + "complexType"), _X + "sequence")
    for node in group.children:
        el = etree.SubElement(seq, _X + "element", name=_local(node.tag))
        if not node.required:
            el.set("minOccurs", "0")
        if isinstance(node, Group) and node.many:
            el.set("maxOccurs", "unbounded")
        if isinstance(node, Leaf):
            _annotate(el, _doc_text(spec, node.path, prefix))
            base = _type_of(node.path, prefix, _CODEC_TYPES.get(node.codec.name, "NonEmptyString"))
            used.add(base)
            if node.attrs:
                sc = etree.SubElement(etree.SubElement(el, _X + "complexType"), _X + "simpleContent")
                ext = etree.SubElement(sc, _X + "extension", base=base)
                for attr in node.attrs:
                    kind = _type_of(attr.path, prefix, "NonEmptyString")
                    used.add(kind)
                    a = etree.SubElement(ext, _X + "attribute", name=attr.name, type=kind, use="required")
                    _annotate(a, _doc_text(spec, attr.path, prefix))
            else:
                el.set("type", base)
            continue
        sub = prefix
        if node.path:
            sub = _join(prefix, node.path) + ("[]" if node.many and spec.dictionary_paths else "")
        _annotate(el, _doc_text(spec, node.path, prefix))
        _sequence(spec, node, el, sub, used)


def generate_xsd(spec: SchemaSpec) -> bytes:
    """The XSD of ``spec``: UTF-8 with an XML declaration, indented by two spaces, ending in a newline."""
    schema = etree.Element(
        _X + "schema",
        nsmap={"xs": _XS, None: spec.namespace},
        targetNamespace=spec.namespace,
        elementFormDefault="qualified",
        version="1",
    )
    _annotate(schema, spec.annotation)
    used = {"NonEmptyString"}
    elements = []
    for group in spec.roots:
        root = etree.Element(_X + "element", name=_local(group.tag))
        _annotate(root, spec.root_docs.get(group.tag, ""))
        _sequence(spec, group, root, "", used)
        elements.append(root)
    for name, (base, facets) in SIMPLE_TYPES.items():
        if name not in used:
            continue
        r = etree.SubElement(etree.SubElement(schema, _X + "simpleType", name=name), _X + "restriction", base=base)
        if isinstance(facets, dict):
            for facet, value in facets.items():
                etree.SubElement(r, _X + facet, value=value)
        else:
            for value in facets:
                etree.SubElement(r, _X + "enumeration", value=value)
    schema.extend(elements)
    etree.indent(schema, space="  ")
    return etree.tostring(schema, encoding="UTF-8", xml_declaration=True) + b"\n"


def rules_table(codes: Iterable[tuple[str, str]]) -> list[str]:
    """The partner guide's "Business rules" section listing the issue ``codes`` (code, rule), without its last
    newline."""
    lines = ["## Business rules (checked after the schema)", "", "| code | rule |", "|---|---|"]
    lines.extend(f"| `{c}` | {m} |" for c, m in codes)
    return lines


def elements_table(spec: SchemaSpec, root: Group) -> list[str]:
    """The partner guide's table of the elements and attributes of ``root``: native path, harmonized field,
    description (with the WCO id as :attr:`SchemaSpec.dictionary_paths` chooses it)."""
    lines = ["| element | harmonized field | description |", "|---|---|---|"]
    for native, harmonized, node in leaves(root, native=f"/{_local(root.tag)}"):
        info = field_for(harmonized) if node.path else None
        desc = (info.description or "") if info is not None else ""
        shown = _normal(harmonized) if spec.dictionary_paths else harmonized
        wco = _wco_ids().get(shown) if spec.dictionary_paths else (_field_wco(harmonized) if info else None)
        if wco:
            desc += f" (WCO DM {wco})"
        required = " (required)" if isinstance(node, Leaf) and node.required else ""
        lines.append(f"| `{native}`{required} | `{shown}` | {desc} |")
    return lines
