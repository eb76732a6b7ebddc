"""The ``reference.list`` document: a version of a policy list as its owning ministry publishes it, signed like
any message (namespace :data:`NS`; its elements and rules are described in docs/reference-lists.md)::

    <ReferenceList xmlns="urn:nsw-gateway:reference-list:1">
      <Name>import-prohibited.moit</Name>
      <Owner>MOIT</Owner>
      <Purpose>prohibited</Purpose>               <!-- or inspection -->
      <EffectiveFrom>2027-01-01T00:00:00Z</EffectiveFrom>
      <Entry><Code>0302</Code><Note>fresh fish</Note></Entry>
    </ReferenceList>

:func:`read_reference_list` reads it into a :class:`~gateway.reference.ReferenceDraft` or raises
``REFERENCE_LIST_INVALID`` naming the element (``ReferenceList/EffectiveFrom``, ``ReferenceList/Entry[2]/Code``,
1-based like XPath).
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from gateway.errors import ReferenceListInvalid
from gateway.reference import PURPOSES, Purpose, ReferenceDraft, ReferenceEntry
from signing.xml import parse_xml

__all__ = ["NS", "ROOT", "NAME_PATTERN", "read_reference_list", "parse_effective", "parse_name", "parse_code"]

NS = "urn:nsw-gateway:reference-list:1"
ROOT = f"{{{NS}}}ReferenceList"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}\.[a-z][a-z0-9-]{0,30}$")
"""``<what>.<owner>`` in lower case: ``import-prohibited.moit``."""
_CODE = re.compile(r"^[0-9]{2,10}$")
_CHILDREN = ("Name", "Owner", "Purpose", "EffectiveFrom")


def parse_name(text: str, *, field: str) -> str:
    if not NAME_PATTERN.match(text):
        raise ReferenceListInvalid(f"{text!r} is not a list name like import-prohibited.moit", field=field)
    return text


def parse_effective(text: str, *, field: str) -> float:
    """An ISO 8601 instant with its offset (``Z`` or ``+07:00``) as seconds since the epoch."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ReferenceListInvalid(f"{text!r} is not an ISO 8601 date and time", field=field) from None
    if at.tzinfo is None:
        raise ReferenceListInvalid(f"{text!r} has no UTC offset (add Z or +07:00)", field=field)
    return at.timestamp()


def parse_code(text: str, *, field: str) -> str:
    if not _CODE.match(text):
        raise ReferenceListInvalid(f"{text!r} is not an HS code prefix of 2 to 10 digits", field=field)
    return text


def parse_purpose(text: str, *, field: str) -> Purpose:
    for purpose in PURPOSES:
        if text == purpose:
            return purpose
    raise ReferenceListInvalid(f"{text!r} is not one of {', '.join(PURPOSES)}", field=field)


def read_reference_list(raw: bytes) -> ReferenceDraft:
    """The version ``raw`` (a ``ReferenceList`` document) states; ``REFERENCE_LIST_INVALID`` naming the element
    otherwise (XML that does not parse: the parser's own ``XML_*`` codes)."""
    root = parse_xml(raw)
    if root.tag != ROOT:
        raise ReferenceListInvalid(f"the root element is {root.tag!s}, not {ROOT}", field="/")
    values: dict[str, str] = {}
    entries: list[ReferenceEntry] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        where = f"ReferenceList/{qname.localname}"
        if qname.namespace != NS or qname.localname not in (*_CHILDREN, "Entry"):
            raise ReferenceListInvalid(f"unexpected element {child.tag}", field=where)
        if qname.localname == "Entry":
            where = f"ReferenceList/Entry[{len(entries) + 1}]"
            parts: dict[str, str] = {}
            for part in child:
                if not isinstance(part.tag, str):
                    continue
                name = etree.QName(part)
                if name.namespace != NS or name.localname not in ("Code", "Note") or name.localname in parts:
                    raise ReferenceListInvalid(f"unexpected element {part.tag}", field=f"{where}/{name.localname}")
                parts[name.localname] = (part.text or "").strip()
            if "Code" not in parts:
                raise ReferenceListInvalid("an entry needs its Code", field=f"{where}/Code")
            entries.append(ReferenceEntry(parse_code(parts["Code"], field=f"{where}/Code"), parts.get("Note", "")))
            continue
        if entries:
            raise ReferenceListInvalid(f"{qname.localname} comes before the entries", field=where)
        if qname.localname in values:
            raise ReferenceListInvalid(f"{qname.localname} is given twice", field=where)
        values[qname.localname] = (child.text or "").strip()
    for required in _CHILDREN:
        if not values.get(required):
            raise ReferenceListInvalid(f"{required} is required", field=f"ReferenceList/{required}")
    return ReferenceDraft(
        name=parse_name(values["Name"], field="ReferenceList/Name"),
        owner=values["Owner"],
        purpose=parse_purpose(values["Purpose"], field="ReferenceList/Purpose"),
        effective_from=parse_effective(values["EffectiveFrom"], field="ReferenceList/EffectiveFrom"),
        entries=tuple(entries),
    )
