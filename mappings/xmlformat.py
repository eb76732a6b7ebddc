"""Shared plumbing of the XML formats: shipped XSDs, the hardened parser, schema issues, serialization."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.errors import ValidationFailed, ValidationIssue
from signing.xml import parse_xml

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
"""Where the shipped XSDs live (package data)."""

__all__ = [
    "SCHEMA_DIR",
    "load_schema",
    "schema_issues",
    "assert_valid",
    "parse_root",
    "to_bytes",
    "local_name",
    "emit_strict",
    "read_strict",
]


def _schema_parser() -> etree.XMLParser:
    # Our own shipped, trusted XSDs; still no network and no entity expansion.
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


_SCHEMA_LOCK = threading.Lock()
"""Held while a schema is built: libxml2 sets up its table of built-in schema types on first use without a lock, and
two threads building schemas at once (the intake's first submissions, in worker threads) can leave it damaged, so
that every schema built afterwards fails (``XMLSchemaParseError``, ``the given type is not a built-in type``)."""


@cache
def load_schema(relpath: str) -> etree.XMLSchema:
    """The shipped XSD ``mappings/schemas/<relpath>`` (includes and imports resolve next to it)."""
    path = SCHEMA_DIR.joinpath(*relpath.split("/"))
    with _SCHEMA_LOCK:
        doc = etree.parse(str(path), _schema_parser())
        return etree.XMLSchema(doc)


def schema_issues(schema: etree.XMLSchema, root: etree._Element) -> list[ValidationIssue]:
    """Every XSD violation of ``root`` as a SCHEMA_INVALID issue (path: the element's XPath)."""
    if schema.validate(root):
        return []
    return [ValidationIssue(e.path or f"line {e.line}", "SCHEMA_INVALID", e.message) for e in schema.error_log]


def assert_valid(schema: etree.XMLSchema, root: etree._Element) -> None:
    """Raise ValidationFailed when ``root`` does not validate against ``schema``."""
    issues = schema_issues(schema, root)
    if issues:
        raise ValidationFailed(issues)


_DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"


def parse_root(data: bytes) -> etree._Element:
    """Parse untrusted bytes with the gateway's one hardened parser.

    An enveloped ``ds:Signature`` directly under the root is transport evidence, checked by
    :mod:`signing` before mapping, not content: it is dropped so that a signed document reads
    (and validates against its XSD) exactly like the unsigned one.
    """
    root = parse_xml(data)
    for signature in root.findall(_DS_SIGNATURE):
        root.remove(signature)
    return root


def to_bytes(root: etree._Element) -> bytes:
    """Serialize an emitted document: UTF-8, XML declaration, indented."""
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def local_name(el: etree._Element) -> str:
    return etree.QName(el).localname


def emit_strict(spec: Any, data: dict[str, Any], nsmap: dict[str | None, str], xsd: str) -> bytes:
    """Write ``data`` by the mapping table ``spec`` and serialize it, refusing (VALIDATION_FAILED) anything the
    table cannot write or the shipped XSD ``xsd`` does not accept: formats emit strictly."""
    from mappings.xmlspec import write

    issues: list[ValidationIssue] = []
    root = etree.Element(spec.tag, nsmap=nsmap)
    write(spec, data, root, issues)
    if issues:
        raise ValidationFailed(issues)
    assert_valid(load_schema(xsd), root)
    return to_bytes(root)


def read_strict(spec: Any, root: etree._Element, xsd: str, where: str) -> dict[str, Any]:
    """What ``root`` carries by the mapping table ``spec`` (``where``: the root's path in issues), refusing
    (VALIDATION_FAILED) a document the shipped XSD ``xsd`` does not accept or the table cannot read."""
    from mappings.xmlspec import read

    assert_valid(load_schema(xsd), root)
    issues: list[ValidationIssue] = []
    ctx: dict[str, Any] = {}
    read(spec, root, ctx, issues, where=where)
    if issues:
        raise ValidationFailed(issues)
    return ctx
