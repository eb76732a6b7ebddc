"""``nswgw procedure scaffold``: a mapping-module skeleton from a ministry's XSDs.

The XSDs are read with the gateway's one hardened parser (:func:`signing.xml.parse_xml`); ``xs:include`` and
``xs:import`` are followed only to files inside the directories of the given XSDs (never the network). The
root element's content model is walked (sequences, choices, ``xs:all``, groups, element references,
complex-type extension, simple types and their restrictions) into a tree of :class:`SchemaElement`.

Each leaf element is matched to a candidate harmonized field of the data dictionary by a scored matcher:
the element's name and its parent's are split into words, Vietnamese and English abbreviations seen in the
corpus are normalized (``Ma`` -> code, ``Ten`` -> name, ``MST`` -> tax identifier, ...), and the words are
compared with the words of each dictionary path and description; the XSD type must fit the field's type.
The outputs, all plain text a person finishes:

* ``<name>.py``: the declarative :class:`~mappings.xmlspec.Group`/:class:`~mappings.xmlspec.Leaf` table in
  schema order, each candidate with its score and reason in a comment, and ``UNMATCHED``: the elements left
  for the person (the module imports as written; it registers nothing);
* ``test_<name>.py``: a sample document generated from the schema, validated against the copied XSDs with
  lxml, and a round-trip test marked as needing the person's mapping;
* ``<name>_dictionary_diff.md``: the elements the harmonized model has no field for;
* ``<name>_xsd/``: copies of the XSDs the test validates against.

Bad input is refused with :class:`~gateway.errors.ScaffoldError` codes naming the file or element.
"""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import ScaffoldIncludeOutside, ScaffoldRootMissing, ScaffoldXsdUnreadable, XmlError
from mappings import dictionary
from signing.xml import parse_xml

__all__ = [
    "SimpleType",
    "SchemaElement",
    "Schemas",
    "Match",
    "Scaffold",
    "load_schemas",
    "match",
    "sample_document",
    "scaffold",
    "write_scaffold",
    "register",
]

try:  # the regular-expression parser, to build a sample an XSD pattern accepts
    from re._parser import parse as _sre_parse  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python < 3.11
    from sre_parse import parse as _sre_parse  # type: ignore[no-redef,unused-ignore]

XS = "http://www.w3.org/2001/XMLSchema"
_Q = f"{{{XS}}}"
_MAX_DEPTH = 40
MATCH_THRESHOLD = 0.55
"""Candidates scoring below this are listed as unmatched."""


# --------------------------------------------------------------------------- reading the XSDs


@dataclass(frozen=True)
class SimpleType:
    """The simple content of a leaf: its XSD built-in base and the restrictions on the way to it."""

    base: str = "string"
    enumerations: tuple[str, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    patterns: tuple[str, ...] = ()
    total_digits: int | None = None
    fraction_digits: int | None = None
    min_inclusive: str | None = None
    max_inclusive: str | None = None

    def describe(self) -> str:
        parts = [f"xs:{self.base}"]
        if self.enumerations:
            parts.append("enum " + "|".join(self.enumerations))
        if self.min_length is not None or self.max_length is not None:
            parts.append(f"length {self.min_length or 0}..{self.max_length if self.max_length is not None else ''}")
        parts.extend(f"pattern {p}" for p in self.patterns)
        if self.total_digits is not None:
            parts.append(f"{self.total_digits} digits")
        if self.fraction_digits is not None:
            parts.append(f"{self.fraction_digits} decimals")
        return ", ".join(parts)


@dataclass
class SchemaElement:
    """An element of the root's content model."""

    name: str
    namespace: str | None
    min_occurs: int = 1
    max_occurs: int | None = 1
    """None: unbounded."""
    children: list[SchemaElement] = field(default_factory=list)
    simple: SimpleType | None = None
    """The simple content of a leaf (None for an element with child elements, or an empty one)."""
    in_choice: bool = False
    """One alternative of an ``xs:choice`` (the sample takes the first)."""

    @property
    def repeated(self) -> bool:
        return self.max_occurs is None or self.max_occurs > 1

    @property
    def leaf(self) -> bool:
        return not self.children


@dataclass
class _Doc:
    path: Path
    root: etree._Element
    target_ns: str | None
    qualified: bool


@dataclass
class Schemas:
    """The global declarations of a set of XSDs (names without namespaces: ministry schemas rarely clash)."""

    files: list[Path]
    elements: dict[str, tuple[etree._Element, _Doc]] = field(default_factory=dict)
    types: dict[str, tuple[etree._Element, _Doc]] = field(default_factory=dict)
    groups: dict[str, tuple[etree._Element, _Doc]] = field(default_factory=dict)


def _read_xsd(path: Path) -> etree._Element:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScaffoldXsdUnreadable(f"cannot read {path}: {exc.strerror or exc}", field=str(path)) from exc
    try:
        root = parse_xml(data)
    except XmlError as exc:
        raise ScaffoldXsdUnreadable(f"{path} is not usable XML: [{exc.code}] {exc.message}", field=str(path)) from exc
    if root.tag != f"{_Q}schema":
        raise ScaffoldXsdUnreadable(f"{path}: the root element is not xs:schema", field=str(path))
    return root


def _inside(path: Path, dirs: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


def load_schemas(paths: list[Path]) -> Schemas:
    """Read the XSDs and the includes/imports they name (inside their directories only)."""
    files = [p.resolve() for p in paths]
    dirs = sorted({p.parent for p in files})
    out = Schemas(files=[])
    queue = list(files)
    while queue:
        path = queue.pop(0)
        if path in out.files:
            continue
        root = _read_xsd(path)
        out.files.append(path)
        doc = _Doc(path, root, root.get("targetNamespace"), root.get("elementFormDefault") == "qualified")
        for ref in root:
            if ref.tag not in (f"{_Q}include", f"{_Q}import", f"{_Q}redefine"):
                continue
            location = ref.get("schemaLocation")
            if location is None:
                continue  # an import of a namespace without a location: nothing to read
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location) and not re.match(r"^[A-Za-z]:[\\/]", location):
                raise ScaffoldIncludeOutside(
                    f"{path} includes {location!r}: only files next to the given XSDs are read, never the network",
                    field=str(path),
                )
            target = (path.parent / location).resolve()
            if not _inside(target, dirs):
                raise ScaffoldIncludeOutside(
                    f"{path} includes {location!r}, outside {', '.join(str(d) for d in dirs)}", field=str(path)
                )
            queue.append(target)
        for child in root:
            name = child.get("name")
            if name is None:
                continue
            table = {
                f"{_Q}element": out.elements,
                f"{_Q}complexType": out.types,
                f"{_Q}simpleType": out.types,
                f"{_Q}group": out.groups,
            }.get(str(child.tag))
            if table is not None:
                table.setdefault(name, (child, doc))
    return out


def _local(qname: str | None) -> str:
    return (qname or "").rsplit(":", 1)[-1]


def _occurs(el: etree._Element) -> tuple[int, int | None]:
    low = int(el.get("minOccurs", "1"))
    high_text = el.get("maxOccurs", "1")
    return low, None if high_text == "unbounded" else int(high_text)


_BUILTIN_ALIASES = {
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "nonNegativeInteger": "integer",
    "positiveInteger": "integer",
    "unsignedInt": "integer",
    "unsignedLong": "integer",
    "unsignedShort": "integer",
    "double": "decimal",
    "float": "decimal",
    "normalizedString": "string",
    "token": "string",
    "anyURI": "string",
    "base64Binary": "base64Binary",
}


class _Walker:
    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def simple(self, type_name: str | None, node: etree._Element | None, depth: int = 0) -> SimpleType:
        """The SimpleType of a named type or an anonymous xs:simpleType/xs:restriction."""
        if node is None:
            local = _local(type_name) or "string"
            found = self.schemas.types.get(local)
            if found is None or (type_name or "").startswith(("xs:", "xsd:")) or depth > _MAX_DEPTH:
                return SimpleType(base=_BUILTIN_ALIASES.get(local, local))
            node = found[0]
        restriction = node.find(f"{_Q}restriction")
        if restriction is None:
            content = node.find(f"{_Q}simpleContent")
            if content is not None:
                inner = content.find(f"{_Q}extension")
                if inner is None:
                    inner = content.find(f"{_Q}restriction")
                if inner is not None:
                    return self.simple(inner.get("base"), None, depth + 1)
            return SimpleType()  # a list or union: text the person types
        nested = restriction.find(f"{_Q}simpleType")
        base = self.simple(restriction.get("base"), nested, depth + 1)
        facets: dict[str, list[str]] = {}
        for facet in restriction:
            if isinstance(facet.tag, str) and facet.get("value") is not None:
                facets.setdefault(etree.QName(facet).localname, []).append(str(facet.get("value")))

        def one(name: str) -> int | None:
            return int(facets[name][0]) if name in facets else None

        length = one("length")
        return SimpleType(
            base=base.base,
            enumerations=tuple(facets.get("enumeration", ())) or base.enumerations,
            min_length=length if length is not None else (one("minLength") or base.min_length),
            max_length=length if length is not None else (one("maxLength") or base.max_length),
            patterns=tuple(facets.get("pattern", ())) + base.patterns,
            total_digits=one("totalDigits") or base.total_digits,
            fraction_digits=one("fractionDigits") if "fractionDigits" in facets else base.fraction_digits,
            min_inclusive=facets["minInclusive"][0] if "minInclusive" in facets else base.min_inclusive,
            max_inclusive=facets["maxInclusive"][0] if "maxInclusive" in facets else base.max_inclusive,
        )

    def element(self, el: etree._Element, doc: _Doc, depth: int, top: bool = False) -> SchemaElement:
        if depth > _MAX_DEPTH:
            raise ScaffoldRootMissing(f"content model nests deeper than {_MAX_DEPTH}", field=el.get("name"))
        low, high = _occurs(el)
        ref = el.get("ref")
        if ref is not None:
            found = self.schemas.elements.get(_local(ref))
            if found is None:
                raise ScaffoldRootMissing(f"{doc.path}: element ref {ref!r} is not declared", field=ref)
            out = self.element(found[0], found[1], depth + 1, top=True)
            out.min_occurs, out.max_occurs = low, high
            return out
        name = str(el.get("name")).strip()
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", name):
            raise ScaffoldXsdUnreadable(f"{doc.path}: {name!r} is not an element name", field=name)
        qualified = top or (el.get("form") == "qualified" if el.get("form") else doc.qualified)
        out = SchemaElement(name, doc.target_ns if qualified else None, low, high)
        complex_node = el.find(f"{_Q}complexType")
        simple_node = el.find(f"{_Q}simpleType")
        type_name = el.get("type")
        if complex_node is None and simple_node is None and type_name is not None:
            found = self.schemas.types.get(_local(type_name))
            if found is not None and not type_name.startswith(("xs:", "xsd:")):
                if found[0].tag == f"{_Q}complexType":
                    complex_node, doc = found[0], found[1]
                else:
                    simple_node = found[0]
        if complex_node is not None:
            self.complex(complex_node, doc, out.children, depth + 1)
            # Without simple content a childless element is empty (or holds xs:any): no text in the sample.
            if not out.children and complex_node.find(f"{_Q}simpleContent") is not None:
                out.simple = self.simple(None, complex_node)
        else:
            out.simple = self.simple(type_name, simple_node)
        return out

    def complex(self, node: etree._Element, doc: _Doc, into: list[SchemaElement], depth: int) -> None:
        """Append the elements of a complexType's content model (base type first for an extension)."""
        for part in node:
            tag = part.tag
            if tag in (f"{_Q}sequence", f"{_Q}all", f"{_Q}choice"):
                self.particles(part, doc, into, depth, tag == f"{_Q}choice")
            elif tag == f"{_Q}group":
                self.group(part, into, depth)
            elif tag == f"{_Q}complexContent":
                for derivation in part:
                    if derivation.tag not in (f"{_Q}extension", f"{_Q}restriction"):
                        continue
                    base = self.schemas.types.get(_local(derivation.get("base")))
                    if derivation.tag == f"{_Q}extension" and base is not None:
                        self.complex(base[0], base[1], into, depth + 1)
                    self.complex(derivation, doc, into, depth + 1)

    def group(self, ref: etree._Element, into: list[SchemaElement], depth: int) -> None:
        found = self.schemas.groups.get(_local(ref.get("ref")))
        if found is None:
            raise ScaffoldRootMissing(f"group {ref.get('ref')!r} is not declared", field=ref.get("ref"))
        self.complex(found[0], found[1], into, depth + 1)

    def particles(self, node: etree._Element, doc: _Doc, into: list[SchemaElement], depth: int, choice: bool) -> None:
        for part in node:
            tag = part.tag
            if tag == f"{_Q}element":
                child = self.element(part, doc, depth)
                child.in_choice = choice
                if choice:
                    child.min_occurs = 0
                into.append(child)
            elif tag in (f"{_Q}sequence", f"{_Q}choice", f"{_Q}all"):
                self.particles(part, doc, into, depth + 1, choice or tag == f"{_Q}choice")
            elif tag == f"{_Q}group":
                self.group(part, into, depth)


def root_element(schemas: Schemas, root: str | None) -> SchemaElement:
    """The content model of the named global element (or of the only one)."""
    if root is None:
        if len(schemas.elements) != 1:
            raise ScaffoldRootMissing(
                f"name the root element (--root): the XSDs declare {', '.join(sorted(schemas.elements)) or 'none'}",
                field="--root",
            )
        root = next(iter(schemas.elements))
    found = schemas.elements.get(root)
    if found is None:
        raise ScaffoldRootMissing(
            f"no global element {root!r} in {', '.join(str(f) for f in schemas.files)} "
            f"(declared: {', '.join(sorted(schemas.elements)) or 'none'})",
            field=root,
        )
    return _Walker(schemas).element(found[0], found[1], 0, top=True)


# --------------------------------------------------------------------------- matching

_SYNONYMS: dict[str, tuple[str, ...]] = {
    # Vietnamese abbreviations seen in the corpus (unaccented), then English ones.
    "ma": ("code",),
    "ten": ("name",),
    "ngay": ("date",),
    "so": ("number",),
    "diachi": ("address",),
    "dienthoai": ("phone",),
    "sdt": ("phone",),
    "mst": ("tax", "identifier"),
    "masothue": ("tax", "identifier"),
    "thue": ("tax",),
    "soluong": ("quantity",),
    "luong": ("quantity",),
    "donvi": ("unit",),
    "dv": ("unit",),
    "hang": ("goods",),
    "hanghoa": ("goods",),
    "tenhang": ("description",),
    "mahs": ("hs", "code"),
    "nguoinhan": ("consignee",),
    "nguoixuat": ("exporter",),
    "nhapkhau": ("import",),
    "nuoc": ("country",),
    "quocgia": ("country",),
    "xuatxu": ("origin",),
    "ghichu": ("remarks",),
    "nguoiky": ("signatory",),
    "ky": ("sign",),
    "doanhnghiep": ("enterprise",),
    "dn": ("enterprise",),
    "no": ("number",),
    "nbr": ("number",),
    "num": ("number",),
    "qty": ("quantity",),
    "tel": ("phone",),
    "telephone": ("phone",),
    "mobile": ("phone",),
    "addr": ("address",),
    "desc": ("description",),
    "dt": ("date",),
    "hscode": ("hs", "code"),
    "taxcode": ("tax", "identifier"),
    "mail": ("email",),
    "e": (),
    "id": ("identifier",),
    "identity": ("identifier",),
    "title": ("role",),
    "position": ("role",),
    "note": ("remarks",),
    "notes": ("remarks",),
    "remark": ("remarks",),
    "organization": ("enterprise",),
    "organisation": ("enterprise",),
    "company": ("enterprise",),
    "firm": ("enterprise",),
    "business": ("enterprise",),
    "sign": ("signatory",),
    "signer": ("signatory",),
    "signed": ("signatory",),
    "signature": ("signatory",),
    "importer": ("consignee", "declarant"),
    "exporter": ("exporter",),
    "applicant": ("declarant",),
    "registrant": ("declarant",),
    "seq": ("sequence",),
    "sequenceno": ("sequence",),
    "sort": ("sequence",),
    "place": ("place",),
    "site": ("place",),
    "gate": ("border", "gates"),
    "gates": ("border", "gates"),
    "weight": ("weight",),
    "attached": ("documents",),
    "attachment": ("documents",),
    "price": ("value",),
    "currency": ("currency",),
    "origin": ("origin",),
}
"""Words (after splitting and lower-casing) and the dictionary words they stand for."""

_PARTY_WORDS = {"consignee", "declarant", "exporter", "enterprise", "manufacturer", "carrier", "signatory"}
_STOP = {"of", "the", "a", "an", "or", "and", "in", "on", "by", "to", "is", "e", "g", "s", "for", "with", "as", "it"}


def _ascii(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def words(name: str) -> list[str]:
    """The normalized words of an element name or dictionary path (``ImporterTaxCode`` -> importer, tax, ...)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", _ascii(name))
    raw = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    out: list[str] = []
    i = 0
    while i < len(raw):
        # Vietnamese compounds are written as separate capitalized syllables (DoanhNghiep, SoLuong, MaSoThue).
        size = next((n for n in (3, 2) if "".join(raw[i : i + n]) in _SYNONYMS and i + n <= len(raw)), 1)
        word = "".join(raw[i : i + size])
        i += size
        if word in _STOP:
            continue
        out.extend(_SYNONYMS.get(word, (word,)) or ())
    return out


_TYPE_FIT: dict[str, tuple[str, ...]] = {
    "integer": ("int", "Decimal", "str"),
    "decimal": ("Decimal", "str"),
    "date": ("date", "datetime", "str"),
    "dateTime": ("datetime", "date", "str"),
    "boolean": ("bool",),
    "string": ("str", "enum", "datetime", "date", "Decimal", "int"),
}


@dataclass(frozen=True)
class Match:
    """The best candidate harmonized field for a leaf, with its score (0..1) and why."""

    native: str
    path: str | None
    score: float
    reason: str


def _dictionary_words(within: str | None) -> list[tuple[dictionary.Entry, set[str], set[str]]]:
    out = []
    for e in dictionary.entries():
        if e.type.endswith("[]") or "acknowledgement" in e.path or "envelope" in e.path:
            continue
        if within is not None and not e.path.startswith(within + "[]."):
            continue
        path_words = set(words(e.path.replace("[]", "")))
        if e.path.endswith("identifier"):
            path_words |= {"tax", "identifier", "registration", "code"}
        if e.path.startswith("parties.declarant."):
            path_words |= {"enterprise", "applicant"}
        desc = {w for w in words(e.description) if len(w) > 2}
        out.append((e, path_words, desc))
    return out


def _type_ok(xsd: SimpleType, entry: dictionary.Entry) -> bool:
    kind = entry.type.split(":", 1)[0]
    allowed = _TYPE_FIT.get(xsd.base, ("str",))
    return kind in allowed or (kind == "str" and xsd.base not in ("boolean",))


def match(element: SchemaElement, context: list[str], native: str, within: str | None = None) -> Match:
    """Score every dictionary field for a leaf (only those of the list ``within``, when the leaf is in a
    repeated element mapped to it); the best, or ``path=None`` under the threshold."""
    own = words(element.name)
    pairs = {a + b for a, b in zip(own, own[1:], strict=False)}
    ctx = [w for name in context[-2:] for w in words(name)]
    best: tuple[float, dictionary.Entry | None, str] = (0.0, None, "")
    simple = element.simple or SimpleType()
    for entry, path_words, desc in _dictionary_words(within):
        if not _type_ok(simple, entry):
            continue
        last = words(entry.path.rsplit(".", 1)[-1].replace("[]", ""))
        hits = [w for w in own if w in path_words] + [p for p in pairs if p in path_words]
        if not hits:
            continue
        score = min(len(hits) / max(len(own), 1), 1.0) * 0.6
        if last and all(w in own or w in pairs for w in last):
            score += 0.2
        ctx_hits = [w for w in ctx if w in path_words]
        own_party = [w for w in own if w in _PARTY_WORDS]
        if ctx_hits or (own_party and any(w in path_words for w in own_party)):
            score += 0.15
        elif any(w in path_words for w in _PARTY_WORDS) and not (own_party or ctx_hits):
            score -= 0.2
        desc_hits = [w for w in own if w in desc and w not in hits]
        score += 0.05 * len(desc_hits)
        if (simple.base in ("date", "dateTime") or "date" in own) and entry.type in ("date", "datetime"):
            score += 0.1
        if simple.base == "decimal" and entry.type == "Decimal":
            score += 0.05
        score = round(min(score, 1.0), 2)
        if score > best[0]:
            reason = f"name words {'+'.join(hits)}"
            if ctx_hits:
                reason += f", context {'+'.join(sorted(set(ctx_hits)))}"
            reason += f"; {simple.base} -> {entry.type}"
            best = (score, entry, reason)
    top, found, reason = best
    if found is None or top < MATCH_THRESHOLD:
        why = f"best {found.path} ({top:.2f})" if found is not None else "no dictionary word in common"
        return Match(native, None, top, why)
    return Match(native, found.path, top, reason)


# --------------------------------------------------------------------------- sample document

_SAMPLE_TEXT = {
    "string": "Mau",
    "integer": "1",
    "decimal": "1.5",
    "date": "2024-01-31",
    "dateTime": "2024-01-31T08:00:00",
    "time": "08:00:00",
    "boolean": "true",
    "gYear": "2024",
    "base64Binary": "QUJD",
    "hexBinary": "0A",
}


def _from_regex(items: Any) -> str:
    """The shortest text the parsed regular expression accepts (first alternative, first class member)."""
    out = ""
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out += chr(arg)
        elif name == "ANY":
            out += "a"
        elif name == "IN":
            out += _from_regex(arg[:1]) or "a"
        elif name == "RANGE":
            out += chr(arg[0])
        elif name == "CATEGORY":
            out += {"CATEGORY_DIGIT": "1", "CATEGORY_SPACE": " "}.get(str(arg), "a")
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _, sub = arg
            out += _from_regex(sub) * low
        elif name == "SUBPATTERN":
            out += _from_regex(arg[-1])
        elif name == "BRANCH":
            out += _from_regex(arg[1][0])
    return out


def _pattern_sample(patterns: tuple[str, ...], fallback: str) -> str:
    candidates = [fallback, "A", "1", "01", "0101", "AB12", "0100000001", "2024-01-31", "VN", "ABC", "123456"]
    for pattern in patterns:
        try:
            candidates.insert(0, _from_regex(_sre_parse(pattern)))
        except (re.error, ValueError, TypeError, IndexError):
            continue
    for candidate in candidates:
        if all(re.fullmatch(p.replace("\\i", "[A-Za-z_]").replace("\\c", "[-.\\w]"), candidate) for p in patterns):
            return candidate
    return fallback


def sample_text(simple: SimpleType) -> str:
    """A value of the simple type that its restrictions accept (enumerations first)."""
    if simple.enumerations:
        return simple.enumerations[0]
    text = _SAMPLE_TEXT.get(simple.base, "Mau")
    if simple.base == "decimal" and simple.fraction_digits == 0:
        text = "1"
    low = simple.min_inclusive
    if simple.base in ("integer", "decimal") and low is not None and Decimal(low) > Decimal(text):
        text = low
    if simple.min_length is not None and len(text) < simple.min_length:
        text = text + "X" * (simple.min_length - len(text))
    if simple.max_length is not None and len(text) > simple.max_length:
        text = text[: simple.max_length]
    if simple.patterns:
        text = _pattern_sample(simple.patterns, text)
    return text


def sample_document(root: SchemaElement) -> etree._Element:
    """A document with every required element (and one of each optional one, the first of each choice)."""
    # A prefix, not a default namespace: unqualified local elements must stay in no namespace.
    nsmap = {"tns": root.namespace} if root.namespace else None
    out = etree.Element(etree.QName(root.namespace, root.name).text if root.namespace else root.name, nsmap=nsmap)
    _fill(root, out)
    return out


def _fill(spec: SchemaElement, el: etree._Element) -> None:
    if spec.leaf:
        if spec.simple is not None:
            el.text = sample_text(spec.simple)
        return
    chosen = False
    for child in spec.children:
        if child.in_choice:
            if chosen:
                continue
            chosen = True
        tag = etree.QName(child.namespace, child.name).text if child.namespace else child.name
        _fill(child, etree.SubElement(el, tag))


# --------------------------------------------------------------------------- writing the skeleton

_CODECS = {"integer": "INT", "decimal": "DECIMAL", "date": "DATE", "dateTime": "DATETIME", "boolean": "BOOL"}


@dataclass
class Scaffold:
    """What the scaffold found: the root, one match per leaf, and the generated texts."""

    name: str
    root: SchemaElement
    xsds: list[Path]
    matches: list[Match]
    module: str = ""
    test: str = ""
    report: str = ""
    sample: bytes = b""

    @property
    def unmatched(self) -> list[Match]:
        return [m for m in self.matches if m.path is None]


def _list_prefix(paths: list[str]) -> str | None:
    """The list field most matched children of a repeated element fall in (``goods``, ``documents``)."""
    counts: dict[str, int] = {}
    for p in paths:
        if "[]" in p:
            head = p.split("[]", 1)[0]
            counts[head] = counts.get(head, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def _q(text: str) -> str:
    """A double-quoted Python string literal (as the formatter writes them)."""
    return json.dumps(text, ensure_ascii=False)


def _tag(spec: SchemaElement) -> str:
    return etree.QName(spec.namespace, spec.name).text if spec.namespace else spec.name


class _Writer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.matches: list[Match] = []
        self.lines: list[str] = []
        self.used: dict[str, str] = {}
        """Harmonized paths already taken (by element name): a field carries one element."""

    def node(self, spec: SchemaElement, native: str, context: list[str], prefix: str | None, indent: int) -> None:
        pad = " " * indent
        required = ", required=True" if spec.min_occurs > 0 else ""
        if spec.leaf:
            found = match(spec, context, native, prefix if prefix != "TODO" else None)
            path = found.path
            if path is not None and prefix is not None:
                if path.startswith(prefix + "[]."):
                    path = path[len(prefix) + 3 :]
                else:
                    found = Match(native, None, found.score, f"best {found.path} lies outside {prefix}[]")
                    path = None
            elif path is not None and "[]" in path:
                found = Match(native, None, found.score, f"best {found.path} is in a list; map the repeated parent")
                path = None
            if found.path is not None and found.path in self.used:
                taken = f"best {found.path} is already {self.used[found.path]}'s"
                found, path = Match(native, None, found.score, taken), None
            elif found.path is not None:
                self.used[found.path] = native.rsplit("/", 1)[-1]
            self.matches.append(found)
            codec = _CODECS.get((spec.simple or SimpleType()).base)
            args = [_q(_tag(spec)), _q(path) if path else "None"]
            if codec:
                args.append(codec)
            facets = (spec.simple or SimpleType()).describe()
            if path:
                self.lines.append(f"{pad}# {found.score:.2f}: {found.reason} ({facets})")
            else:
                self.lines.append(f"{pad}# TODO unmatched ({found.reason}; {facets})")
            self.lines.append(f"{pad}Leaf({', '.join(args)}{required}),")
            return
        path_arg = ""
        sub_prefix = prefix
        if spec.repeated:
            leaf_paths = [m.path for m in self._peek(spec, native, context) if m.path]
            head = _list_prefix(leaf_paths) if prefix is None else None
            if head is not None:
                path_arg, sub_prefix = f", path={_q(head)}, many=True", head
                self.lines.append(f"{pad}# repeated: most children match {head}[]")
            else:
                self.lines.append(f"{pad}# TODO repeated element with no list field: give it path=... and many=True")
                path_arg = f", path={_q('todo_' + _constant(spec.name).lower())}, many=True"
                sub_prefix = prefix if prefix is not None else "TODO"
        self.lines.append(f"{pad}Group(")
        self.lines.append(f"{pad}    {_q(_tag(spec))}{path_arg}{required},")
        self.lines.append(f"{pad}    children=(")
        for child in spec.children:
            self.node(child, f"{native}/{child.name}", [*context, spec.name], sub_prefix, indent + 8)
        self.lines.append(f"{pad}    ),")
        self.lines.append(f"{pad}),")

    def _peek(self, spec: SchemaElement, native: str, context: list[str]) -> list[Match]:
        out: list[Match] = []
        for child in spec.children:
            if child.leaf:
                out.append(match(child, [*context, spec.name], f"{native}/{child.name}"))
            else:
                out.extend(self._peek(child, f"{native}/{child.name}", [*context, spec.name]))
        return out


def _constant(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "CONTENT"


def _module_text(sc: Scaffold, writer: _Writer, body: list[str]) -> str:
    const = _constant(sc.root.name)
    matched = len(sc.matches) - len(sc.unmatched)
    unmatched = "\n".join(f"    {_q(m.native)},  # {m.reason}" for m in sc.unmatched)
    files = ", ".join(p.name for p in sc.xsds)
    ns = f" (namespace ``{sc.root.namespace}``)" if sc.root.namespace else ""
    return f'''"""Procedure {sc.name}: GENERATED SKELETON by ``nswgw procedure scaffold`` from {files}.

Root element ``{sc.root.name}``{ns}. Every leaf below carries its best harmonized candidate with the
score and the reason; ``None`` paths and :data:`UNMATCHED` are what the person must finish (map them, carry
them in ``notes[subject=...]``, or leave them out and say so), then register the format. Not a finished mapping.
"""

from __future__ import annotations

from mappings.xmlspec import BOOL, DATE, DATETIME, DECIMAL, INT, TEXT, Group, Leaf

__all__ = ["{const}", "UNMATCHED"]

_CODECS = (BOOL, DATE, DATETIME, DECIMAL, INT, TEXT)  # every codec a finished table may need

{const} = Group(
    {_q(_tag(sc.root))},
    children=(
{chr(10).join(body)}
    ),
)
"""The content of ``{sc.root.name}`` in schema order ({matched} of {len(sc.matches)} leaves matched)."""

# TODO: the elements the matcher found no harmonized field for (native path, why).
UNMATCHED: tuple[str, ...] = (
{unmatched}
)
'''


def _test_text(sc: Scaffold) -> str:
    const = _constant(sc.root.name)
    xsd_dir = f"{sc.name}_xsd"
    main_xsd = sc.xsds[0].name
    marked = bool(sc.unmatched)
    mark = (
        f'@pytest.mark.xfail(strict=True, reason="TODO mapping: {len(sc.unmatched)} unmatched elements")\n'
        if marked
        else ""
    )
    return f'''"""Generated by ``nswgw procedure scaffold`` for {sc.name}: sample, schema, round trip."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.errors import ValidationIssue
from mappings.xmlspec import read, write
from signing.xml import parse_xml

HERE = Path(__file__).resolve().parent
XSD = HERE / {_q(xsd_dir)} / {_q(main_xsd)}
SAMPLE = HERE / {_q(sc.name + "_sample.xml")}


def _module() -> Any:
    spec = importlib.util.spec_from_file_location({_q(sc.name)}, HERE / {_q(sc.name + ".py")})
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(XSD), parser))


def test_generated_sample_validates_against_the_xsd() -> None:
    schema = _schema()
    assert schema.validate(parse_xml(SAMPLE.read_bytes())), schema.error_log


def test_mapping_module_imports_and_lists_what_is_left() -> None:
    module = _module()
    assert module.{const}.tag == {_q(_tag(sc.root))}
    assert isinstance(module.UNMATCHED, tuple)


{mark}def test_sample_round_trips_through_the_mapping() -> None:
    module = _module()
    root = parse_xml(SAMPLE.read_bytes())
    issues: list[ValidationIssue] = []
    ctx: dict[str, Any] = {{}}
    read(module.{const}, root, ctx, issues, local_names=True)
    assert issues == []
    out = etree.Element(root.tag, nsmap=root.nsmap)
    write(module.{const}, ctx, out, issues)
    assert issues == []
    etree.indent(out)
    etree.indent(root)
    assert etree.tostring(out) == etree.tostring(root)
'''


def _report_text(sc: Scaffold) -> str:
    lines = [
        f"# Data-dictionary difference: {sc.name}",
        "",
        f"From {', '.join(p.name for p in sc.xsds)}, root `{sc.root.name}`: "
        f"{len(sc.matches) - len(sc.unmatched)} of {len(sc.matches)} leaf elements have a candidate harmonized field.",
        "",
        "## Fields the harmonized model lacks",
        "",
        "| native element | why unmatched |",
        "|---|---|",
    ]
    lines.extend(f"| `{m.native}` | {m.reason} |" for m in sc.unmatched)
    lines += [
        "",
        "## Candidates (check each)",
        "",
        "| native element | harmonized | score | reason |",
        "|---|---|---|---|",
    ]
    lines.extend(f"| `{m.native}` | `{m.path}` | {m.score:.2f} | {m.reason} |" for m in sc.matches if m.path)
    return "\n".join(lines) + "\n"


def scaffold(xsds: list[Path], name: str, root: str | None = None) -> Scaffold:
    """Read the XSDs and build the skeleton texts (nothing is written)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScaffoldRootMissing(f"--name {name!r} must be a Python module name (a-z, 0-9, _)", field="--name")
    schemas = load_schemas(xsds)
    top = root_element(schemas, root)
    writer = _Writer(name)
    body: list[str] = []
    for child in top.children:
        writer.lines = []
        writer.node(child, f"/{top.name}/{child.name}", [top.name], None, 8)
        body.extend(writer.lines)
    sc = Scaffold(name, top, schemas.files, writer.matches)
    sc.module = _module_text(sc, writer, body)
    sc.test = _test_text(sc)
    sc.report = _report_text(sc)
    sample = sample_document(top)
    etree.indent(sample, space="  ")
    sc.sample = etree.tostring(sample, encoding="UTF-8", xml_declaration=True)
    return sc


def write_scaffold(sc: Scaffold, out_dir: Path) -> list[Path]:
    """Write the module, its test, the sample, the report and the XSD copies into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, data in (
        (f"{sc.name}.py", sc.module.encode("utf-8")),
        (f"test_{sc.name}.py", sc.test.encode("utf-8")),
        (f"{sc.name}_sample.xml", sc.sample),
        (f"{sc.name}_dictionary_diff.md", sc.report.encode("utf-8")),
    ):
        target = out_dir / filename
        target.write_bytes(data)
        written.append(target)
    xsd_dir = out_dir / f"{sc.name}_xsd"
    xsd_dir.mkdir(exist_ok=True)
    base = sc.xsds[0].parent
    for xsd in sc.xsds:
        rel = xsd.relative_to(base) if base in xsd.parents else Path(xsd.name)
        target = xsd_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(xsd.read_bytes())
        written.append(target)
    return written


# --------------------------------------------------------------------------- command line


def _cmd_scaffold(args: argparse.Namespace) -> int:
    sc = scaffold([Path(x) for x in args.xsd], args.name, args.root)
    for path in write_scaffold(sc, Path(args.output)):
        print(f"wrote {path}")
    print(f"{len(sc.matches) - len(sc.unmatched)} of {len(sc.matches)} leaves matched; {len(sc.unmatched)} to finish")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``nswgw procedure scaffold``."""
    p = subparsers.add_parser("procedure", help="onboard a ministry procedure")
    sub = p.add_subparsers(dest="procedure_command", metavar="ACTION", required=True)
    s = sub.add_parser("scaffold", help="write a mapping-module skeleton, a test and a sample from XSDs")
    s.add_argument("--xsd", action="append", required=True, metavar="FILE", help="an XSD (repeat for several)")
    s.add_argument("--name", required=True, help="module name of the procedure (a-z, 0-9, _)")
    s.add_argument("--root", metavar="ELEMENT", help="root element (default: the only global element)")
    s.add_argument("-o", "--output", default=".", metavar="DIR", help="output directory (default: .)")
    s.set_defaults(handler=_cmd_scaffold)
